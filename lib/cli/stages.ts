/**
 * The stages of one `token` or `check` run, each reported once with its real state: `✓` passed,
 * `!` passed with warnings (or not yet confirmed), `✗` failed. `check` prints them as its table on
 * stdout and lists them as `stages` in `--json`; `token` prints the same lines as its progress on
 * stderr and their times as `timings`. The names are the library's {@linkcode Stage}s, so
 * `stages[].stage`, `error.stage` and the keys of `timings` are one vocabulary: `store`,
 * `certificate`, `dns`, `tcp`, `tls`, `mqtt`, `subscribe`, `token` (over REST `http` instead of
 * `mqtt` and `subscribe`).
 *
 * @module
 */

import { C8yError, type Stage } from "../errors.ts";
import type { Problem } from "../types.ts";
import { errorMessage, MARK, ms } from "./output.ts";

/** How a stage ended. */
export type StageState = "ok" | "warning" | "error";

/** One stage as printed and put in the JSON output. */
export interface StageReport {
  /** The stage's name. */
  stage: Stage;
  /** How it ended. */
  state: StageState;
  /** Whether it passed (`ok` or `warning`). */
  ok: boolean;
  /** How long it took, in milliseconds (one decimal). */
  ms: number;
  /** What it found, in a few words. */
  detail?: string;
}

const MARKS: Record<StageState, string> = { ok: "✓", warning: "!", error: "✗" };

/** The stages of a connection, in order (what `fetchToken` reports), over MQTT and over REST. */
export const CONNECTION_STAGES: Record<"mqtt" | "rest", readonly Stage[]> = {
  mqtt: ["dns", "tcp", "tls", "mqtt", "subscribe", "token"],
  rest: ["dns", "tcp", "tls", "http", "token"],
};

/**
 * The stages of one run as they happen: each begins, then passes, warns or fails, once. The last
 * one begun is the one under way, under which an error without a stage of its own is reported.
 */
export class StageLog {
  /** Every stage ended, in order. */
  readonly reports: StageReport[] = [];
  readonly #begun: { stage: Stage; startedAt: number }[] = [];
  readonly #print: ((line: string) => void) | undefined;
  readonly #quiet: ReadonlySet<Stage>;

  /**
   * @param print Where the lines go (`undefined`: nowhere, e.g. under `--json`).
   * @param first The stage under way from the start.
   * @param withoutDetail Stages whose line leaves out the detail when they pass (`token`
   *   without `--verbose`); the JSON keeps it.
   */
  constructor(
    print: ((line: string) => void) | undefined,
    first: Stage = "store",
    withoutDetail: readonly Stage[] = [],
  ) {
    this.#print = print;
    this.#quiet = new Set(withoutDetail);
    this.begin(first);
  }

  /** Starts `stage`: its clock, and the stage a failure without its own is reported under. */
  begin(stage: Stage): void {
    this.#begun.push({ stage, startedAt: performance.now() });
  }

  /** The stage under way. */
  get running(): Stage {
    return this.#begun.at(-1)!.stage;
  }

  /** The time since the stage under way began, in ms. */
  elapsed(): number {
    return performance.now() - this.#begun.at(-1)!.startedAt;
  }

  /** Whether `stage` has been reported. */
  has(stage: Stage): boolean {
    return this.reports.some((r) => r.stage === stage);
  }

  /** Reports `stage` as ended in `state` after `elapsedMs`. */
  end(stage: Stage, state: StageState, elapsedMs: number, detail?: string): void {
    const report: StageReport = {
      stage,
      state,
      ok: state !== "error",
      ms: Math.round(elapsedMs * 10) / 10,
      detail,
    };
    this.reports.push(report);
    const shown = state === "ok" && this.#quiet.has(stage) ? "" : detail ?? "";
    this.#print?.(
      `${MARKS[state]} ${stage.padEnd(12)} ${ms(elapsedMs).padStart(8)}  ${shown}`.trimEnd(),
    );
  }

  /**
   * Reports the certificate checks: `✗` with errors (also when `--force` goes on), `!` with
   * warnings, `✓` otherwise; the findings follow, one line each with their code.
   *
   * @param problems What `diagnose()` found.
   * @param clientId The client id the run connects with (`undefined` when none can be built).
   * @param options `force`: the run goes on despite errors; `info`: list informational findings;
   *   `given`: the `--client-id` given, named when no client id can be connected with.
   */
  certificate(
    problems: readonly Problem[],
    clientId: string | undefined,
    options: { force: boolean; info: boolean; given?: string },
  ): void {
    const count = (severity: string): number =>
      problems.filter((p) => p.severity === severity).length;
    const errors = count("error");
    const warnings = count("warning");
    const counts = [
      errors ? `${errors} error${errors === 1 ? "" : "s"}` : "",
      warnings ? `${warnings} warning${warnings === 1 ? "" : "s"}` : "",
    ].filter(Boolean).join(", ");
    const state: StageState = errors ? "error" : warnings ? "warning" : "ok";
    const going = errors && options.force ? " (--force: connecting anyway)" : "";
    // No client id to connect with: name the one given, which the findings object to.
    const label = clientId
      ? `${clientId}; `
      : options.given !== undefined
      ? `--client-id ${options.given}; `
      : "";
    this.end(
      "certificate",
      state,
      this.elapsed(),
      `${label}${counts || "no errors or warnings"}${going}`,
    );
    for (const p of problems) {
      if (p.severity !== "info" || options.info) {
        this.#print?.(`    ${MARK[p.severity]} ${p.code}: ${p.message}`);
      }
    }
  }

  /**
   * Reports a failure under its stage: the error's own, or the stage under way when the error
   * has none of its own (a usage error). A stage already reported is not reported again.
   */
  fail(error: unknown): void {
    const stage = error instanceof C8yError && error.stage !== "usage" &&
        error.stage !== "permission"
      ? error.stage
      : this.running;
    if (this.has(stage)) return;
    this.end(stage, "error", this.elapsed(), errorMessage(error));
  }

  /** The time of each stage reported, in ms (one decimal): `token --json`'s `timings`. */
  timings(): Partial<Record<Stage, number>> {
    return Object.fromEntries(this.reports.map((r) => [r.stage, r.ms]));
  }
}
