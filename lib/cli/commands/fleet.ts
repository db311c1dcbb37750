/**
 * The `fleet` command: checks a batch of device keystores (a manifest, or every keystore of a
 * directory) in one run through `checkFleet()`, with progress on stderr, a table of failure
 * classes, JSON lines and a JUnit report; exits with the code of the most common failure class.
 *
 * @module
 */

import { ExitCode, UsageError } from "../../errors.ts";
import { checkFleet, type FleetMode } from "../../fleet/check_fleet.ts";
import { fleetJUnitReport } from "../../fleet/junit.ts";
import type { DeviceFailure, DeviceResult, FleetSummary } from "../../fleet/result.ts";
import { parsePasswordSpec } from "../../stores/password_spec.ts";
import type { CommandContext } from "../context.ts";
import { readStoreFile } from "../files.ts";
import { readTrustStore } from "../load_stores.ts";
import { seconds, storeType } from "../option_values.ts";
import { resolvePassword } from "../passwords.ts";
import { checkJUnitTarget, concurrency, type FleetPlan, fleetSource } from "./fleet_plan.ts";
import {
  exitCodeOf,
  inFleetWords,
  printSummary,
  startProgress,
  writeJUnit,
} from "./fleet_report.ts";

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
