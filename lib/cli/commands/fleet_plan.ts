/**
 * What a `fleet` run will read, worked out before it starts: the option checks, the devices of a
 * manifest or a directory (streamed), the paths and variables the permission planner must name,
 * and the `--junit` target.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { PermissionError, UsageError } from "../../errors.ts";
import { type FleetDevice, readManifest } from "../../fleet/manifest.ts";
import { parsePasswordSpec } from "../../stores/password_spec.ts";
import type { Values } from "../options.ts";
import { required, seconds } from "../option_values.ts";

/** The most devices `--concurrency` allows at once (each holds a socket and a keystore). */
export const MAX_FLEET_CONCURRENCY = 1000;

/** File names `--keystores DIR` takes as keystores (besides PEM pairs, see below). */
const STORE_EXTENSIONS = [".p12", ".pfx", ".jks", ".keystore"];

/** More paths than this are named by their directories in the suggested `--allow-read`. */
const MAX_NAMED_PATHS = 20;

/** A device list opened from the command line, and what reading it needs. */
export interface FleetPlan {
  /** How many devices the list holds (known once the manifest was read; for the progress). */
  devices: number | undefined;
  /** Files and directories the run reads (the manifest's keystores, keys, password files). */
  read: string[];
  /** Environment variables the manifest's `env:` passwords name. */
  env: string[];
  /** Where `--junit` writes (its directory, also read: a temporary file there is renamed). */
  write: string[];
  /** The manifest, when Deno may not read it yet (so the files it names are not known yet). */
  unreadManifest?: string;
}

/**
 * A missing permission, with what the suggested line cannot name yet: when the manifest itself
 * is not readable, the keystores, key files, password files and variables it lists are named
 * once it is (by the next run), which the hint says.
 *
 * @param error What the permission check threw.
 * @param plan The plan of the run.
 * @returns The error to report.
 */
export function withManifestNote(error: unknown, plan: FleetPlan | undefined): unknown {
  if (!(error instanceof PermissionError) || plan?.unreadManifest === undefined) return error;
  return new PermissionError(error.message, {
    code: error.code,
    hint: `The manifest "${plan.unreadManifest}" cannot be read yet, so this line does not ` +
      "name the keystores, key files and password files (or env: variables) it lists: once " +
      `the manifest may be read, the next run names each of them. ${error.hint}`,
    cause: error.cause,
  });
}

/**
 * Checks the fleet options that need no file (exit 2 before anything is read): one source,
 * a URL unless offline, a whole `--concurrency`.
 */
export function validateFleet(values: Values): void {
  if ((values.manifest === undefined) === (values.keystores === undefined)) {
    throw new UsageError("The fleet command needs one of --manifest FILE or --keystores DIR", {
      code: "USAGE",
      hint: "Run c8y-mqtt-cert --help for the usage of fleet.",
    });
  }
  if (values.offline && values["no-token"]) {
    throw new UsageError("--offline and --no-token do not go together", {
      code: "USAGE",
      hint: "--offline connects nothing; --no-token connects without asking for a token.",
    });
  }
  if (!values.offline) required(values, "url", "fleet");
  concurrency(values);
  seconds(values.timeout, "--timeout", 20);
}

export function concurrency(values: Values): number {
  const text = values.concurrency;
  if (text === undefined) return 50;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_FLEET_CONCURRENCY) {
    throw new UsageError(
      `--concurrency must be a whole number from 1 to ${MAX_FLEET_CONCURRENCY}, not "${text}"`,
      { code: "USAGE", hint: "For example --concurrency 50 (the default)." },
    );
  }
  return n;
}

/**
 * Checks the `--junit` target before any device is read: its directory must exist and the path
 * must not be a directory (the report is renamed onto it at the end). A path Deno may not look
 * at yet is left to the permission check (`lenient`), and checked again before the run.
 *
 * @throws {UsageError} `OPTION_INVALID` naming the path.
 */
export async function checkJUnitTarget(path: string, lenient = false): Promise<void> {
  const dir = dirname(path);
  /** The path's kind, `missing`, or `unknown` when Deno may not look yet (and `lenient`). */
  const kind = async (p: string): Promise<"directory" | "other" | "missing" | "unknown"> => {
    // Asked first: a look without the permission would make Deno prompt on a terminal.
    if (lenient && (await Deno.permissions.query({ name: "read", path: p })).state !== "granted") {
      return "unknown";
    }
    try {
      return (await Deno.stat(p)).isDirectory ? "directory" : "other";
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return "missing";
      if (lenient) return "unknown";
      throw error;
    }
  };
  if (await kind(path) === "directory") {
    throw new UsageError(`--junit "${path}" is a directory, not a file`, {
      code: "OPTION_INVALID",
      hint: `Name the report file, e.g. --junit ${join(path, "fleet.xml")}.`,
    });
  }
  const where = await kind(dir);
  if (where === "unknown") return;
  if (where === "missing") {
    throw new UsageError(`--junit "${path}": the directory "${dir}" does not exist`, {
      code: "OPTION_INVALID",
      hint: `Create it first (mkdir -p ${dir}), or name a file in an existing directory.`,
    });
  }
  if (where !== "directory") {
    throw new UsageError(`--junit "${path}": "${dir}" is not a directory`, {
      code: "OPTION_INVALID",
      hint: "Name a file in an existing directory.",
    });
  }
}

/** A path of the manifest, taken relative to the manifest's directory. */
function fromManifest(manifest: string, path: string): string {
  return isAbsolute(path) ? path : join(dirname(manifest), path);
}

/**
 * Opens the manifest after checking what the path is: a missing file, a directory, or a FIFO,
 * socket or device (which `open()` would wait on for ever) is a usage error naming the path.
 */
async function openManifest(path: string): Promise<Deno.FsFile> {
  const refuse = (what: string, hint: string): UsageError =>
    new UsageError(`The manifest "${path}" ${what}`, { code: "OPTION_INVALID", hint });
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw refuse("does not exist", "Check the path (it is relative to the current directory).");
    }
    throw cause;
  }
  if (info.isDirectory) {
    throw refuse(
      "is a directory, not a file",
      "Give the manifest file, or use --keystores DIR for every keystore of a directory.",
    );
  }
  if (!info.isFile) {
    throw refuse(
      "is not a regular file (a FIFO, socket or device)",
      "Give the path of the manifest file itself, not a pipe or device.",
    );
  }
  return await Deno.open(path, { read: true });
}

/** The manifest's devices with their paths resolved and the default password filled in. */
function manifestDevices(values: Values): () => AsyncGenerator<FleetDevice> {
  const manifest = values.manifest!;
  const fallback = values["keystore-password"];
  return async function* (): AsyncGenerator<FleetDevice> {
    const file = await openManifest(manifest);
    for await (const device of readManifest(file.readable, { name: manifest })) {
      const password = device.password ?? fallback;
      const spec = password === undefined ? undefined : parsePasswordSpec(password, "password");
      if (spec?.kind === "stdin" && device.password !== undefined) {
        throw new UsageError(
          `The manifest "${manifest}" line ${device.line}: a device's password cannot be read from stdin`,
          { code: "PASSWORD_SOURCE", hint: "Give it as env:NAME or file:PATH." },
        );
      }
      yield {
        ...device,
        keystore: fromManifest(manifest, device.keystore),
        ...(device.key === undefined ? {} : { key: fromManifest(manifest, device.key) }),
        ...(password === undefined ? {} : {
          password: spec?.kind === "file" && device.password !== undefined
            ? `file:${fromManifest(manifest, spec.path)}`
            : password,
        }),
      };
    }
  };
}

/**
 * The keystores of a directory, by name: files ending in `.p12`, `.pfx`, `.jks`, `.keystore`, and
 * PEM pairs: `NAME.key` with `NAME.chain.pem` (or `NAME.pem` when there is no chain file).
 */
function directoryDevices(values: Values): () => AsyncGenerator<FleetDevice> {
  const dir = values.keystores!;
  const password = values["keystore-password"];
  return async function* (): AsyncGenerator<FleetDevice> {
    const names = new Set<string>();
    let info: Deno.FileInfo | undefined;
    try {
      info = await Deno.stat(dir);
    } catch (cause) {
      if (!(cause instanceof Deno.errors.NotFound)) throw cause;
    }
    if (!info?.isDirectory) {
      throw new UsageError(
        `--keystores "${dir}" ${info === undefined ? "does not exist" : "is not a directory"}`,
        {
          code: "OPTION_INVALID",
          hint: "Give the directory that holds the keystores, or a manifest with --manifest FILE.",
        },
      );
    }
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile || entry.isSymlink) names.add(entry.name);
    }
    for (const name of [...names].sort()) {
      const withPassword = (device: FleetDevice): FleetDevice =>
        password === undefined ? device : { ...device, password };
      if (STORE_EXTENSIONS.some((ext) => name.toLowerCase().endsWith(ext))) {
        yield withPassword({ keystore: join(dir, name) });
      } else if (name.endsWith(".key")) {
        const stem = name.slice(0, -".key".length);
        const cert = [`${stem}.chain.pem`, `${stem}.pem`].find((c) => names.has(c));
        if (cert) yield withPassword({ keystore: join(dir, cert), key: join(dir, name) });
      }
    }
  };
}

export function fleetSource(values: Values): () => AsyncGenerator<FleetDevice> {
  return values.manifest === undefined ? directoryDevices(values) : manifestDevices(values);
}

/**
 * Reads the manifest (when Deno may) to learn every file and variable the run needs, before any
 * permission is checked or anything connects: a malformed manifest is a usage error here.
 */
export async function planFleet(values: Values): Promise<FleetPlan> {
  const plan: FleetPlan = { devices: undefined, read: [], env: [], write: [] };
  // The report is written to a temporary file beside it and renamed: Deno checks read and write
  // access to both names for the rename.
  if (values.junit !== undefined) {
    await checkJUnitTarget(values.junit, true);
    plan.write.push(dirname(values.junit));
  }
  const reportDir = plan.write.slice();
  if (values.manifest === undefined) return { ...plan, read: reportDir };
  const { state } = await Deno.permissions.query({ name: "read", path: values.manifest });
  // Without access to the manifest, it is reported missing first (its files come next time).
  if (state !== "granted") return { ...plan, read: reportDir, unreadManifest: values.manifest };
  const paths = new Set<string>();
  const env = new Set<string>();
  let devices = 0;
  for await (const device of fleetSource(values)()) {
    devices++;
    paths.add(device.keystore);
    if (device.key !== undefined) paths.add(device.key);
    if (device.password === undefined) continue;
    const spec = parsePasswordSpec(device.password, "password");
    if (spec.kind === "file") paths.add(spec.path);
    if (spec.kind === "env") env.add(spec.name);
  }
  plan.devices = devices;
  plan.env = [...env];
  plan.read = paths.size <= MAX_NAMED_PATHS
    ? [...paths]
    : [...new Set([...paths].map((p) => dirname(p)))].sort();
  plan.read.push(...reportDir);
  return plan;
}
