/**
 * The `fleet` command: checks a batch of device keystores (a manifest, or every keystore of a
 * directory) in one run through `checkFleet()`, with progress on stderr, a table of failure
 * classes, JSON lines and a JUnit report; exits with the code of the most common failure class.
 *
 * @module
 */

import { basename, dirname, isAbsolute, join } from "node:path";
import process from "node:process";
import { loadCliProgress } from "../../deps.ts";
import { ExitCode, PermissionError, UsageError } from "../../errors.ts";
import { checkFleet, type FleetMode } from "../../fleet/check_fleet.ts";
import { fleetJUnitReport } from "../../fleet/junit.ts";
import { type FleetDevice, readManifest } from "../../fleet/manifest.ts";
import type {
  DeviceFailure,
  DeviceResult,
  FailureClass,
  FleetSummary,
} from "../../fleet/result.ts";
import { parsePasswordSpec } from "../../stores/password_spec.ts";
import type { CommandContext } from "../context.ts";
import { EXIT_CODES } from "../exit_codes.ts";
import { fleetFlags, withFlags } from "../flags.ts";
import { readStoreFile } from "../files.ts";
import { readTrustStore } from "../load_stores.ts";
import { required, seconds, storeType, type Values } from "../options.ts";
import { resolvePassword } from "../passwords.ts";

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

function concurrency(values: Values): number {
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

/** The manifest's devices with their paths resolved and the default password filled in. */
function manifestDevices(values: Values): () => AsyncGenerator<FleetDevice> {
  const manifest = values.manifest!;
  const fallback = values["keystore-password"];
  return async function* (): AsyncGenerator<FleetDevice> {
    const file = await Deno.open(manifest);
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

function fleetSource(values: Values): () => AsyncGenerator<FleetDevice> {
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

/** The exit code of a failure class (the table of `exit_codes.ts`). */
export function exitCodeOf(cls: FailureClass): number {
  return EXIT_CODES.find((row) => row.class.toLowerCase() === cls)?.code ?? ExitCode.INTERNAL;
}

/** Progress on stderr: a bar on a terminal, otherwise a line every 2 seconds and at the end. */
async function startProgress(
  ctx: CommandContext,
  total: number | undefined,
): Promise<{ tick(result: DeviceResult): void; stop(): void }> {
  let done = 0;
  let failed = 0;
  if (ctx.quiet) return { tick: () => {}, stop: () => {} };
  if (Deno.stderr.isTerminal() && total !== undefined) {
    const progress = await loadCliProgress();
    const bar = new progress.SingleBar({
      format: "fleet [{bar}] {value}/{total} devices, {failed} failed, {eta_formatted} left",
      hideCursor: true,
      stream: process.stderr,
    }, progress.Presets.shades_classic);
    bar.start(total, 0, { failed: 0 });
    return {
      tick(result): void {
        if (!result.ok) failed++;
        bar.increment(1, { failed });
      },
      stop: () => bar.stop(),
    };
  }
  const of = total === undefined ? "" : ` of ${total}`;
  let last = performance.now();
  const line = (): void => ctx.io.err(`fleet: ${done}${of} devices done, ${failed} failed`);
  return {
    tick(result): void {
      done++;
      if (!result.ok) failed++;
      if (performance.now() - last >= 2000) {
        last = performance.now();
        line();
      }
    },
    stop: line,
  };
}

/** Writes the JUnit report next to its final name, then renames it (never half a file). */
async function writeJUnit(path: string, xml: string): Promise<void> {
  const temp = await Deno.makeTempFile({
    dir: dirname(path),
    prefix: `.${basename(path)}.`,
    suffix: ".tmp",
  });
  try {
    await Deno.writeTextFile(temp, xml);
    await Deno.chmod(temp, 0o644); // A temporary file is made private; a report is not.
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

const SHOWN_DEVICES = 10;

/**
 * A device's failure in the words of its source (see `fleetFlags`): the manifest's columns or
 * `--keystore-password`, never the library's option names. A key password of its own cannot be
 * given in a fleet run, and the hint of a key password failure says so.
 */
export function inFleetWords(
  source: "manifest" | "keystores",
): (
  failure: { code: string; hint: string; message?: string },
) => { hint: string; message?: string } {
  const flags = fleetFlags(source);
  const list = source === "manifest" ? "a manifest" : "--keystores";
  return (failure) => {
    let hint = withFlags(failure.hint, flags);
    if (failure.hint.includes("`keyPassword`")) {
      hint = failure.code === "KEY_PASSWORD_REQUIRED"
        ? `Give the key's passphrase with ${flags.password}: fleet opens the key with it.`
        : `Check ${flags.password}: fleet opens the key with it too. A key with a password of ` +
          `its own (keytool -keypass, or a PEM key file with another passphrase) cannot be ` +
          `given in ${list}: check that device alone with check --key-password.`;
    }
    return {
      hint,
      ...(failure.message === undefined ? {} : { message: withFlags(failure.message, flags) }),
    };
  };
}

/**
 * Offline, client ids used by more than one device are a warning (nothing connects); online the
 * same devices fail as `CLIENT_ID_DUPLICATE` and appear in the table instead.
 */
function printDuplicates(ctx: CommandContext, duplicates: FleetSummary["duplicates"]): void {
  if (duplicates.length === 0) return;
  ctx.io.out(
    `warning CLIENT_ID_DUPLICATE: ${duplicates.length} client id(s) used by more than one device ` +
      "(the platform admits one connection per client id; a run that connects fails these " +
      "devices before connecting them):",
  );
  for (const d of duplicates.slice(0, SHOWN_DEVICES)) {
    const more = d.devices.length > SHOWN_DEVICES
      ? `, and ${d.devices.length - SHOWN_DEVICES} more`
      : "";
    ctx.io.out(
      `  ${d.clientId} (${d.devices.length} devices): ` +
        `${d.devices.slice(0, SHOWN_DEVICES).join(", ")}${more}`,
    );
  }
  if (duplicates.length > SHOWN_DEVICES) {
    ctx.io.out(`  ... and ${duplicates.length - SHOWN_DEVICES} more client ids (see --json)`);
  }
}

function printSummary(
  ctx: CommandContext,
  summary: FleetSummary,
  results: DeviceResult[],
  offline: boolean,
): void {
  const seconds = (summary.durationMs / 1000).toFixed(1);
  ctx.io.out(
    `fleet: ${summary.passed} of ${summary.devices} devices passed, ${summary.failed} failed ` +
      `(${seconds} s)`,
  );
  if (offline) printDuplicates(ctx, summary.duplicates);
  if (summary.classes.length === 0) return;
  ctx.io.out("failure classes (most common first):");
  const width = Math.max(...summary.classes.map((c) => c.class.length));
  for (const c of summary.classes) {
    const codes = Object.entries(c.codes).sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ${n}`).join(", ");
    ctx.io.out(`  ${c.class.padEnd(width)}  ${String(c.count).padStart(5)}  ${codes}`);
    const more = c.devices.length > SHOWN_DEVICES
      ? `, and ${c.devices.length - SHOWN_DEVICES} more`
      : "";
    ctx.io.out(`      devices: ${c.devices.slice(0, SHOWN_DEVICES).join(", ")}${more}`);
    // Each distinct hint once, with its code (a store failure may be a path or a password).
    const shown = new Set<string>();
    for (const h of c.hints) {
      if (shown.has(`${h.code}\n${h.hint}`)) continue;
      shown.add(`${h.code}\n${h.hint}`);
      ctx.io.out(`      hint (${h.code}): ${h.hint}`);
    }
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) ctx.io.out("failed devices:");
  for (const r of failed.slice(0, 50)) {
    const where = r.line === undefined ? r.keystore : `${r.keystore} (line ${r.line})`;
    ctx.io.out(`  ✗ ${where}: ${r.error!.class} ${r.error!.code}: ${r.error!.message}`);
  }
  if (failed.length > 50) ctx.io.out(`  ... and ${failed.length - 50} more (see --json)`);
  const top = summary.classes[0];
  ctx.io.out(`exit code ${exitCodeOf(top.class)} (${top.class}, the most common failure class)`);
}

/**
 * Runs `fleet`: reads the truststore, checks every device (see `checkFleet`), reports, and
 * returns 0 when every device passed, otherwise the exit code of the most common failure class.
 */
export async function fleetCommand(ctx: CommandContext, plan: FleetPlan): Promise<number> {
  const { values } = ctx;
  if (values.junit !== undefined) await checkJUnitTarget(values.junit);
  const mode: FleetMode = values.offline ? "offline" : values["no-token"] ? "connect" : "token";
  const trust = values.truststore === undefined ? undefined : await readTrustStore(
    ctx.run,
    values,
    values.truststore,
    "truststore",
    {
      type: storeType(values["truststore-type"], "--truststore-type"),
      passwordOption: "truststore-password",
    },
  );
  const words = inFleetWords(values.manifest === undefined ? "keystores" : "manifest");
  const passwords = new Map<string, Promise<string>>();
  const results: DeviceResult[] = [];
  // Every result for the JUnit report; otherwise the failures for the table (not under --json).
  const keep = (r: DeviceResult): boolean => values.junit !== undefined || (!ctx.json && !r.ok);
  const progress = await startProgress(ctx, plan.devices);
  const startedAt = new Date();
  let summary: FleetSummary;
  try {
    summary = await checkFleet(fleetSource(values), {
      mode,
      url: values.offline ? undefined : values.url,
      trust,
      concurrency: concurrency(values),
      timeoutMs: seconds(values.timeout, "--timeout", 20) * 1000,
      readFile: (path, what) => readStoreFile(path, what),
      resolvePassword: (spec) => {
        // One read per source (a file or variable many devices share), remembered as a secret.
        let password = passwords.get(spec);
        if (password === undefined) {
          const option = spec === values["keystore-password"]
            ? "--keystore-password"
            : "The manifest's password";
          password = resolvePassword(ctx.run, parsePasswordSpec(spec, option), option);
          passwords.set(spec, password);
        }
        return password;
      },
      onResult: (result) => {
        if (result.error !== undefined) {
          result.error = { ...result.error, ...words(result.error) } as DeviceFailure;
        }
        progress.tick(result);
        if (keep(result)) results.push(result);
        if (ctx.json) ctx.io.out(JSON.stringify({ kind: "device", ...result }));
      },
    });
  } finally {
    progress.stop();
  }
  summary.classes = summary.classes.map((c) => ({
    ...c,
    hint: words({
      code: Object.entries(c.codes).sort((a, b) => b[1] - a[1])[0]?.[0] ?? "",
      hint: c.hint,
    }).hint,
    hints: c.hints.map((h) => ({ ...h, hint: words(h).hint })),
  }));
  const exitCode = summary.classes.length === 0
    ? ExitCode.OK
    : exitCodeOf(summary.classes[0].class);
  // The summary is printed whatever becomes of the report; a report that cannot be written is
  // reported after it, and the run exits 2 (the devices' code is named in the error).
  let reportError: UsageError | undefined;
  if (values.junit !== undefined) {
    try {
      await writeJUnit(values.junit, await fleetJUnitReport(results, summary, { startedAt }));
    } catch (error) {
      const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
      reportError = new UsageError(
        `The JUnit report "${values.junit}" could not be written: ${why}` +
          ` (exit code ${ExitCode.USAGE} instead of the devices' ${exitCode})`,
        {
          code: "REPORT_WRITE",
          hint: "Check that --junit names a writable file in an existing directory; the devices' " +
            "results are in the summary above.",
        },
      );
    }
  }
  if (ctx.json) {
    const failure = reportError === undefined ? {} : {
      error: {
        code: reportError.code,
        stage: reportError.stage,
        message: reportError.message,
        hint: reportError.hint,
        exitCode: reportError.exitCode,
      },
    };
    ctx.io.out(JSON.stringify({
      kind: "summary",
      ok: summary.failed === 0 && reportError === undefined,
      exitCode: reportError?.exitCode ?? exitCode,
      devicesExitCode: exitCode,
      ...summary,
      ...failure,
    }));
  } else {
    printSummary(ctx, summary, results, mode === "offline");
    if (reportError !== undefined) {
      ctx.io.err(`error: ${reportError.message}`);
      ctx.io.err(`hint: ${reportError.hint}`);
    }
  }
  if (reportError !== undefined) return reportError.exitCode;
  return exitCode;
}
