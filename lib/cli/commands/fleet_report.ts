/**
 * How a `fleet` run reports: the progress on stderr, the JUnit file written through a temporary
 * file, and the final table of failure classes in the words of the manifest or the flags.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import process from "node:process";
import { loadCliProgress } from "../../deps.ts";
import { ExitCode } from "../../errors.ts";
import type { DeviceResult, FailureClass, FleetSummary } from "../../fleet/result.ts";
import type { CommandContext } from "../context.ts";
import { EXIT_CODES } from "../exit_codes.ts";
import { fleetFlags, withFlags } from "../flags.ts";

/** The exit code of a failure class (the table of `exit_codes.ts`). */
export function exitCodeOf(cls: FailureClass): number {
  return EXIT_CODES.find((row) => row.class.toLowerCase() === cls)?.code ?? ExitCode.INTERNAL;
}

/** Progress on stderr: a bar on a terminal, otherwise a line every 2 seconds and at the end. */
export async function startProgress(
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
export async function writeJUnit(path: string, xml: string): Promise<void> {
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
export function printDuplicates(ctx: CommandContext, duplicates: FleetSummary["duplicates"]): void {
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

export function printSummary(
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
