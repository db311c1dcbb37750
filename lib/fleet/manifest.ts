/**
 * Fleet manifests: the list of devices a fleet check works through, read as a stream of text so
 * that a manifest of any length is never held in memory as a whole.
 *
 * Two forms are read:
 * - CSV (RFC 4180, through `csv-parse`) with a header naming some of the columns `keystore`,
 *   `password`, `alias`, `client_id`, `key` in any order (`keystore` is required);
 * - JSON lines: one object per line with the same names as keys.
 *
 * `password` is a password source as the command line takes it (`pass:VALUE`, `env:NAME`,
 * `file:PATH`, or the value itself); reading it is the caller's job (see `checkFleet`'s
 * `resolvePassword`). Empty cells count as absent; paths, alias and client id lose surrounding
 * spaces, a password is kept as written.
 *
 * @module
 */

import { loadCsvParse } from "../deps.ts";
import { type ErrorCode, UsageError } from "../errors.ts";

/** One device of a fleet: where its keystore is and how to open it. */
export interface FleetDevice {
  /** Path of the device's keystore (JKS, PKCS#12 or PEM), as the caller's `readFile` takes it. */
  keystore: string;
  /** Password source of the keystore (`pass:VALUE`, `env:NAME`, `file:PATH` or the value). */
  password?: string;
  /** Alias of the key entry, when the keystore has several. */
  alias?: string;
  /** An explicit client id (checked against the certificate's CN). @default `d:<CN>` */
  clientId?: string;
  /** Path of a separate PEM private key, when `keystore` is a PEM certificate (chain) file. */
  key?: string;
  /** The manifest line the device was read from (1-based), for messages. */
  line?: number;
}

/**
 * The longest manifest line (CSV record or JSON line) read, in characters: far more than a path, a
 * password spec, an alias and a client id need, and a bound on what one line may make the reader
 * hold. A longer line is a usage error (`MANIFEST_LINE_TOO_LONG`).
 */
export const MAX_MANIFEST_LINE_CHARS = 64 * 1024;

/** The manifest columns (CSV header names and JSON keys). */
export const MANIFEST_COLUMNS = ["keystore", "password", "alias", "client_id", "key"] as const;

/** One of {@linkcode MANIFEST_COLUMNS}. */
export type ManifestColumn = typeof MANIFEST_COLUMNS[number];

/** Options of {@linkcode readManifest}. */
export interface ReadManifestOptions {
  /** The manifest's form. @default detected: JSON lines when the first non-blank text is `{` */
  format?: "csv" | "jsonl";
  /** Label of the manifest in messages (the command line passes the path). @default "manifest" */
  name?: string;
}

/**
 * Reads a fleet manifest, one device at a time, as its text arrives.
 *
 * @param text The manifest's text in chunks (strings, or UTF-8 bytes), e.g. a file's stream.
 * @param options The form (detected when left out) and the manifest's label.
 * @returns The devices, in manifest order, each with the line it came from.
 * @throws {UsageError} at the first malformed line, naming the manifest, the line and the column:
 *   `MANIFEST_EMPTY` (no header), `MANIFEST_COLUMN` (unknown or repeated column),
 *   `MANIFEST_HEADER` (no `keystore` column), `MANIFEST_QUOTE` (a quote not closed, or text after
 *   a closing quote), `MANIFEST_FIELDS` (a line with more or fewer cells than the header),
 *   `MANIFEST_KEYSTORE` (a line without a keystore), `MANIFEST_JSON` (a JSON line that is not an
 *   object of strings).
 *
 * @example A CSV manifest
 * ```ts
 * import { readManifest } from "../../mod.ts";
 *
 * const csv = "keystore,password,client_id\n" +
 *   "devices/a.p12,env:A_PASSWORD,\n" +
 *   '"devices/b, the second.jks",changeit,d:device-b\n';
 * const devices = await Array.fromAsync(readManifest([csv]));
 * if (devices.length !== 2) throw new Error(`${devices.length}`);
 * if (devices[1].keystore !== "devices/b, the second.jks") throw new Error(devices[1].keystore);
 * if (devices[1].line !== 3 || devices[0].clientId !== undefined) throw new Error("line 3");
 * ```
 *
 * @example A malformed line is a usage error naming line and column
 * ```ts
 * import { readManifest, UsageError } from "../../mod.ts";
 *
 * try {
 *   await Array.fromAsync(readManifest(["keystore,pasword\na.p12,x\n"], { name: "fleet.csv" }));
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof UsageError) || err.code !== "MANIFEST_COLUMN") throw err;
 *   if (!err.message.includes(`"fleet.csv" line 1, column 2`)) throw err;
 * }
 * ```
 */
export async function* readManifest(
  text: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  options: ReadManifestOptions = {},
): AsyncGenerator<FleetDevice> {
  const name = options.name ?? "manifest";
  const chunks = decodeChunks(text);
  // Look far enough to see the first non-blank character, then hand on everything read.
  // (Not a for-await loop: leaving it early would close the stream.)
  const head: string[] = [];
  let first: string | undefined;
  while (first === undefined) {
    const next = await chunks.next();
    if (next.done) break;
    head.push(next.value);
    first = next.value.match(/\S/)?.[0];
  }
  const all = prepend(head, chunks);
  if (first === undefined) {
    throw new UsageError(`The manifest "${name}" is empty`, {
      code: "MANIFEST_EMPTY",
      hint: `Start it with a header line naming the columns: ${MANIFEST_COLUMNS.join(",")}.`,
    });
  }
  const format = options.format ?? (first === "{" ? "jsonl" : "csv");
  if (format === "jsonl") yield* readJsonLines(all, name);
  else yield* readCsv(all, name);
}

async function* decodeChunks(
  text: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  for await (const chunk of text) {
    const s = typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    if (s !== "") yield s;
  }
  const rest = decoder.decode();
  if (rest !== "") yield rest;
}

async function* prepend(head: string[], rest: AsyncIterator<string>): AsyncGenerator<string> {
  yield* head;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

function usage(
  name: string,
  line: number,
  column: number | undefined,
  what: string,
  code: ErrorCode,
): UsageError {
  const where = column === undefined ? `line ${line}` : `line ${line}, column ${column}`;
  return new UsageError(`The manifest "${name}" ${where}: ${what}`, {
    code,
    hint: `A manifest is CSV with a header (${
      MANIFEST_COLUMNS.join(",")
    }; only keystore is required) or one JSON object per line with those keys.`,
  });
}

function isColumn(text: string): text is ManifestColumn {
  return (MANIFEST_COLUMNS as readonly string[]).includes(text);
}

/**
 * A device from its cells. Paths, alias and client id lose surrounding spaces; a password is kept
 * exactly as written (spaces may be part of it). Empty cells count as absent.
 */
function toDevice(cells: Partial<Record<ManifestColumn, string>>, line: number): FleetDevice {
  const trimmed = (v: string | undefined): string | undefined => v?.trim() || undefined;
  const device: FleetDevice = { keystore: trimmed(cells.keystore) ?? "", line };
  const password = cells.password === "" ? undefined : cells.password;
  const alias = trimmed(cells.alias);
  const clientId = trimmed(cells.client_id);
  const key = trimmed(cells.key);
  if (password !== undefined) device.password = password;
  if (alias !== undefined) device.alias = alias;
  if (clientId !== undefined) device.clientId = clientId;
  if (key !== undefined) device.key = key;
  return device;
}

/** What `csv-parse` tells of a record (option `info`). */
interface CsvInfo {
  /** The line the record ends on (1-based). */
  lines: number;
  /** Empty lines skipped so far. */
  empty_lines: number;
}

/** What a `csv-parse` error carries besides its message. */
interface CsvErrorFields {
  code?: string;
  /** The field (0-based), or the number of fields for a length mismatch. */
  column?: number | string;
  empty_lines?: number;
}

async function* readCsv(text: AsyncIterable<string>, name: string): AsyncGenerator<FleetDevice> {
  const { parse } = await loadCsvParse();
  // Where the last record parsed ended, and how many empty lines had been skipped by then: a
  // record the parser refuses starts on the first non-empty line after it.
  const parsed = { lines: 0, emptyLines: 0, headerCells: 0 };
  const parser = parse({
    info: true,
    bom: true,
    skip_empty_lines: true,
    max_record_size: MAX_MANIFEST_LINE_CHARS,
    on_record: (record, context) => {
      if (context.records === 1) {
        // With `info`, the record comes wrapped: `{ record, info }`.
        parsed.headerCells = (record as unknown as { record: string[] }).record.length;
      }
      parsed.lines = context.lines;
      parsed.emptyLines = context.empty_lines;
      return record;
    },
  });
  // Feed the parser as it asks for more (backpressure), ending it after the last chunk.
  const feeding = (async (): Promise<void> => {
    try {
      for await (const chunk of text) {
        if (parser.destroyed) return;
        if (!parser.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              parser.off("drain", done);
              parser.off("close", done);
              resolve();
            };
            parser.on("drain", done);
            parser.on("close", done);
          });
        }
      }
      if (!parser.destroyed) parser.end();
    } catch (error) {
      parser.destroy(error as Error);
    }
  })();
  let columns: ManifestColumn[] | undefined;
  // The same for the records handed on (the parser may be ahead).
  const consumed = { lines: 0, emptyLines: 0 };
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: CsvInfo }>) {
      const { record, info } = item;
      const line = consumed.lines + 1 + info.empty_lines - consumed.emptyLines;
      consumed.lines = info.lines;
      consumed.emptyLines = info.empty_lines;
      if (columns === undefined) {
        columns = header(record, name, line);
        continue;
      }
      const cells: Partial<Record<ManifestColumn, string>> = {};
      columns.forEach((column, i) => cells[column] = record[i]);
      if (!cells.keystore?.trim()) {
        const at = columns.indexOf("keystore") + 1;
        throw usage(name, line, at, "the keystore cell is empty", "MANIFEST_KEYSTORE");
      }
      yield toDevice(cells, line);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const csv = error as CsvErrorFields;
    const line = parsed.lines + 1 + (csv.empty_lines ?? parsed.emptyLines) - parsed.emptyLines;
    throw csvError(csv, name, line, parsed.headerCells);
  } finally {
    parser.destroy();
    await feeding;
  }
  if (columns === undefined) {
    throw new UsageError(`The manifest "${name}" has no header line`, {
      code: "MANIFEST_EMPTY",
      hint: `Start it with a header line naming the columns: ${MANIFEST_COLUMNS.join(",")}.`,
    });
  }
}

function header(record: string[], name: string, line: number): ManifestColumn[] {
  const columns: ManifestColumn[] = [];
  record.forEach((cell, i) => {
    const column = cell.trim().toLowerCase();
    if (!isColumn(column)) {
      throw usage(
        name,
        line,
        i + 1,
        `unknown column "${cell}" (the columns are ${MANIFEST_COLUMNS.join(", ")})`,
        "MANIFEST_COLUMN",
      );
    }
    if (columns.includes(column)) {
      throw usage(name, line, i + 1, `column "${cell}" appears twice`, "MANIFEST_COLUMN");
    }
    columns.push(column);
  });
  if (!columns.includes("keystore")) {
    throw usage(name, line, undefined, 'the header has no "keystore" column', "MANIFEST_HEADER");
  }
  return columns;
}

/** A line longer than {@linkcode MAX_MANIFEST_LINE_CHARS}. */
function tooLong(name: string, line: number): UsageError {
  return usage(
    name,
    line,
    undefined,
    `longer than ${MAX_MANIFEST_LINE_CHARS} characters (no device needs that much)`,
    "MANIFEST_LINE_TOO_LONG",
  );
}

function csvError(
  error: CsvErrorFields,
  name: string,
  line: number,
  headerCells: number,
): UsageError {
  const field = typeof error.column === "number" ? error.column + 1 : undefined;
  switch (error.code) {
    case "CSV_MAX_RECORD_SIZE":
      return tooLong(name, line);
    case "CSV_QUOTE_NOT_CLOSED":
      return usage(name, line, field, "a quoted cell is not closed", "MANIFEST_QUOTE");
    case "CSV_INVALID_CLOSING_QUOTE":
    case "CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE":
      return usage(name, line, field, "text after a closing quote", "MANIFEST_QUOTE");
    case "INVALID_OPENING_QUOTE":
      return usage(
        name,
        line,
        field,
        "a quote inside a cell that does not start with one (no space before an opening quote)",
        "MANIFEST_QUOTE",
      );
    case "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH":
    case "CSV_RECORD_DONT_MATCH_COLUMNS_LENGTH":
      return usage(
        name,
        line,
        undefined,
        `${error.column} cells where the header has ${headerCells}`,
        "MANIFEST_FIELDS",
      );
    default:
      return usage(
        name,
        line,
        field,
        `cannot be read as CSV (${error.code ?? "unknown error"})`,
        "MANIFEST_CSV",
      );
  }
}

async function* readJsonLines(
  text: AsyncIterable<string>,
  name: string,
): AsyncGenerator<FleetDevice> {
  let buffered = "";
  let line = 0;
  const parseLine = (source: string, at: number): FleetDevice | undefined => {
    if (source.trim() === "") return undefined;
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (cause) {
      const position = /position (\d+)/.exec(String(cause))?.[1];
      const column = position === undefined ? undefined : Number(position) + 1;
      throw usage(name, at, column, "not a JSON object", "MANIFEST_JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw usage(name, at, undefined, "not a JSON object", "MANIFEST_JSON");
    }
    const cells: Partial<Record<ManifestColumn, string>> = {};
    for (const [key, cell] of Object.entries(value)) {
      const column = key === "clientId" ? "client_id" : key;
      if (!isColumn(column)) {
        const keys = MANIFEST_COLUMNS.join(", ");
        throw usage(
          name,
          at,
          undefined,
          `unknown key "${key}" (the keys are ${keys})`,
          "MANIFEST_COLUMN",
        );
      }
      if (cell === null || cell === undefined) continue;
      if (typeof cell !== "string") {
        throw usage(name, at, undefined, `"${key}" is not a string`, "MANIFEST_JSON");
      }
      cells[column] = cell;
    }
    if (!cells.keystore?.trim()) {
      throw usage(name, at, undefined, 'no "keystore" given', "MANIFEST_KEYSTORE");
    }
    return toDevice(cells, at);
  };
  for await (const chunk of text) {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const source = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const device = parseLine(source, ++line);
      if (device) yield device;
    }
    if (buffered.length > MAX_MANIFEST_LINE_CHARS) throw tooLong(name, line + 1);
  }
  const device = parseLine(buffered, ++line);
  if (device) yield device;
}
