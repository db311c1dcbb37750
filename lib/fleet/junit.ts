/**
 * A fleet run as a JUnit XML report for CI: one test case per device, a failure element (class,
 * code, message, hint) for each device that failed, written with `xmlbuilder2`.
 *
 * @module
 */

import { loadXmlBuilder } from "../deps.ts";
import { deviceLabel, type DeviceResult, type FleetSummary } from "./result.ts";

/** Options of {@linkcode fleetJUnitReport}. */
export interface FleetJUnitOptions {
  /** The test suite's name. @default "c8y-mqtt-cert fleet" */
  name?: string;
  /** When the run started (the suite's `timestamp`). @default now */
  startedAt?: Date;
}

/**
 * Writes a fleet run as JUnit XML: a `testsuites` element holding one `testsuite` with one
 * `testcase` per device (named by its keystore and manifest line, `classname` its client id),
 * times in seconds, and for each failed device a `failure` whose `type` is the failure class and
 * code, whose `message` is the error's message, and whose text is the hint. Offline warnings go
 * into the test case's `system-out`.
 *
 * @param results Every device's result (in any order; they are listed by index).
 * @param summary The run's summary (for the totals and the time).
 * @param options The suite's name and start time.
 * @returns The XML document (UTF-8, with an XML declaration).
 *
 * @example
 * ```ts
 * import { fleetJUnitReport, type DeviceResult, type FleetSummary } from "../../mod.ts";
 * const failed: DeviceResult = {
 *   index: 0, keystore: "a.p12", line: 2, ok: false, stages: [], totalMs: 3, warnings: [],
 *   error: { code: "KEYSTORE_PASSWORD", class: "store", stage: "store", message: "Wrong <password>", hint: "" },
 * };
 * const summary = { devices: 1, passed: 0, failed: 1, durationMs: 5 } as FleetSummary;
 * const xml = await fleetJUnitReport([failed], summary);
 * if (!xml.includes('<failure message="Wrong &lt;password&gt;" type="store KEYSTORE_PASSWORD"')) {
 *   throw new Error(xml);
 * }
 * ```
 */
export async function fleetJUnitReport(
  results: readonly DeviceResult[],
  summary: FleetSummary,
  options: FleetJUnitOptions = {},
): Promise<string> {
  const { create } = await loadXmlBuilder();
  const name = options.name ?? "c8y-mqtt-cert fleet";
  const seconds = (ms: number): string => (ms / 1000).toFixed(3);
  const root = create({ version: "1.0", encoding: "UTF-8" }).ele("testsuites", {
    name,
    tests: String(summary.devices),
    failures: String(summary.failed),
    errors: "0",
    time: seconds(summary.durationMs),
  });
  const suite = root.ele("testsuite", {
    name,
    tests: String(summary.devices),
    failures: String(summary.failed),
    errors: "0",
    skipped: "0",
    time: seconds(summary.durationMs),
    timestamp: (options.startedAt ?? new Date()).toISOString().replace(/\.\d+Z$/, ""),
  });
  for (const result of [...results].sort((a, b) => a.index - b.index)) {
    const testcase = suite.ele("testcase", {
      name: deviceLabel(result),
      classname: result.clientId ?? result.keystore,
      time: seconds(result.totalMs),
    });
    if (result.error) {
      testcase.ele("failure", {
        message: result.error.message,
        type: `${result.error.class} ${result.error.code}`,
      }).txt(result.error.hint || result.error.message);
    }
    if (result.warnings.length > 0) {
      testcase.ele("system-out").txt(
        result.warnings.map((w) => `warning ${w.code}: ${w.message}`).join("\n"),
      );
    }
  }
  return root.end({ prettyPrint: true }) + "\n";
}
