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
import { ExitCode, UsageError } from "../../errors.ts";
import { checkFleet, type FleetMode } from "../../fleet/check_fleet.ts";
import { fleetJUnitReport } from "../../fleet/junit.ts";
import { type FleetDevice, readManifest } from "../../fleet/manifest.ts";
import type { DeviceResult, FailureClass, FleetSummary } from "../../fleet/result.ts";
import { parsePasswordSpec } from "../../stores/password_spec.ts";
import type { CommandContext } from "../context.ts";
import { EXIT_CODES } from "../exit_codes.ts";
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
  if (values.junit !== undefined) plan.write.push(dirname(values.junit));
  const reportDir = plan.write.slice();
  if (values.manifest === undefined) return { ...plan, read: reportDir };
  const { state } = await Deno.permissions.query({ name: "read", path: values.manifest });
  // Without access to the manifest, it is reported missing first (its files come next time).
  if (state !== "granted") return { ...plan, read: reportDir };
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

function printSummary(ctx: CommandContext, summary: FleetSummary, results: DeviceResult[]): void {
  const seconds = (summary.durationMs / 1000).toFixed(1);
  ctx.io.out(
    `fleet: ${summary.passed} of ${summary.devices} devices passed, ${summary.failed} failed ` +
      `(${seconds} s)`,
  );
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
    if (c.hint) ctx.io.out(`      hint: ${c.hint}`);
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
        progress.tick(result);
        if (keep(result)) results.push(result);
        if (ctx.json) ctx.io.out(JSON.stringify({ kind: "device", ...result }));
      },
    });
  } finally {
    progress.stop();
  }
  const exitCode = summary.classes.length === 0
    ? ExitCode.OK
    : exitCodeOf(summary.classes[0].class);
  if (values.junit !== undefined) {
    await writeJUnit(values.junit, await fleetJUnitReport(results, summary, { startedAt }));
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ kind: "summary", ok: summary.failed === 0, exitCode, ...summary }));
  } else {
    printSummary(ctx, summary, results);
  }
  return exitCode;
}
