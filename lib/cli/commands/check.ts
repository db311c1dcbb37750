/**
 * The `check` command: the path to a token reported stage by stage, explaining the first failure.
 *
 * @module
 */

import { C8yError, ExitCode } from "../../errors.ts";
import type { Stage } from "../../errors.ts";
import type { Problem } from "../../types.ts";
import type { CommandContext, StageReport } from "../context.ts";
import type { LoadedStores } from "../load_stores.ts";
import { describeKey, errorMessage, MARK, ms, plural } from "../output.ts";
import { prepare, type PrepareHooks } from "./prepare.ts";

/** The stages `fetchToken` reports, in order, over MQTT and over REST. */
const CONNECTION_STAGES: Record<"mqtt" | "rest", readonly Stage[]> = {
  mqtt: ["dns", "tcp", "tls", "mqtt", "subscribe", "token"],
  rest: ["dns", "tcp", "tls", "http", "token"],
};

/** `check`: the whole path, stage by stage, with timings; stops at the first failure. */
export async function checkCommand(ctx: CommandContext): Promise<number> {
  const stages = new CheckStages(ctx);
  try {
    const prepared = await prepare(ctx, "check", stages);
    const { problems, clientId } = prepared;
    const counts = ["error", "warning"].map((s) => {
      const n = problems.filter((p) => p.severity === s).length;
      return n ? `${n} ${s}${n === 1 ? "" : "s"}` : "";
    }).filter(Boolean).join(", ");
    stages.pass(
      "certificates",
      stages.elapsed(),
      `${clientId}; ${counts || "no errors or warnings"}`,
    );
    printStageProblems(ctx, problems);
    const { fetchToken } = await import("../../token/fetch_token.ts");
    const via = prepared.connection.via ?? "mqtt";
    // Stage times are what `check` is for: MQTT.js loads before the dns stage starts, so that its
    // load (tens of milliseconds in a cold process) does not show as a slow lookup or connect.
    if (via === "mqtt") await (await import("../../deps.ts")).loadMqtt();
    const order = CONNECTION_STAGES[via];
    stages.begin("dns");
    const token = await fetchToken({
      ...prepared.connection,
      onStage: (stage: Stage, elapsed: number, detail?: string) => {
        stages.pass(stage, elapsed, detail);
        stages.begin(order[order.indexOf(stage) + 1] ?? stage);
      },
    });
    if (!stages.reports.some((s) => s.stage === "token")) {
      stages.pass("token", stages.elapsed(), `expires ${token.expiresAt}`);
    }
    if (ctx.json) {
      ctx.io.out(JSON.stringify(
        {
          ok: true,
          clientId,
          url: prepared.broker.url,
          ...(prepared.restUrl === undefined ? {} : { via: "rest", restUrl: prepared.restUrl }),
          stages: stages.reports,
          problems,
          tenant: token.tenant,
          expiresAt: token.expiresAt,
        },
        null,
        2,
      ));
    } else {
      ctx.io.out(
        prepared.restUrl === undefined
          ? `ok: ${clientId} can connect to ${prepared.broker.url} and get a token`
          : `ok: ${clientId} can get a token from ${prepared.restUrl} over REST`,
      );
    }
    return ExitCode.OK;
  } catch (error) {
    stages.fail(error);
    // The --json error report lists the stages this check got through.
    if (error instanceof C8yError) ctx.run.checkStages = stages.reports;
    throw error;
  }
}

/**
 * The stages of one `check` as they run, in a list: each stage begins, then passes or fails, and
 * the last one begun is the one under way. It hears the preparation's progress as its hooks.
 */
class CheckStages implements PrepareHooks {
  /** What each ended stage reported, in order: the `stages` of the JSON output. */
  readonly reports: StageReport[] = [];
  /** The stages begun, in order, with when each began (`performance.now()`, ms). */
  readonly #begun: { stage: string; startedAt: number }[] = [];
  /** The offline problems, once the certificate checks have run. */
  #problems: Problem[] = [];

  constructor(readonly ctx: CommandContext) {
    this.begin("keystore");
  }

  /** Starts `stage` (its clock, and the name a failure is reported under). */
  begin(stage: string): void {
    this.#begun.push({ stage, startedAt: performance.now() });
  }

  /** The time since the stage under way began, in ms. */
  elapsed(): number {
    return performance.now() - this.#running.startedAt;
  }

  /** Reports `stage` as passed after `elapsedMs`. */
  pass(stage: string, elapsedMs: number, detail?: string): void {
    this.#report(stage, true, elapsedMs, detail);
  }

  /**
   * Reports the failure under its stage: the error's own, or the stage under way when the error
   * does not say (a usage error) or only says "store"; the problems found beside it are listed
   * when the certificates failed.
   */
  fail(error: unknown): void {
    const running = this.#running.stage;
    const stage = error instanceof C8yError && error.stage !== "usage" ? error.stage : running;
    const label = stage === "store" ? running : stage === "certificate" ? "certificates" : stage;
    this.#report(label, false, this.elapsed(), errorMessage(error));
    if (label === "certificates") {
      printStageProblems(this.ctx, this.#problems.filter((p) => p.message !== errorMessage(error)));
    }
  }

  onLoaded(kind: "keystore" | "truststore", loaded: LoadedStores): void {
    if (kind === "keystore") {
      const identity = loaded.identity!;
      const leaf = identity.chain[0]?.summary;
      this.pass(
        "keystore",
        loaded.timings.keystore ?? 0,
        `${identity.format}${identity.alias ? ` alias "${identity.alias}"` : ""}, ${
          leaf ? describeKey(leaf) : identity.keyType
        }, chain of ${identity.chain.length}`,
      );
      this.begin("truststore");
    } else {
      const trust = loaded.trust!;
      this.pass(
        "truststore",
        loaded.timings.truststore ?? 0,
        plural(trust.certificates.length, `${trust.format}, `, "certificate"),
      );
    }
  }

  onChecking(): void {
    this.begin("certificates");
  }

  onDiagnosed(problems: Problem[]): void {
    this.#problems = problems;
  }

  get #running(): { stage: string; startedAt: number } {
    return this.#begun.at(-1)!;
  }

  #report(stage: string, ok: boolean, elapsedMs: number, detail?: string): void {
    this.reports.push({ stage, ok, ms: Math.round(elapsedMs * 10) / 10, detail });
    if (!this.ctx.json) {
      this.ctx.io.out(
        `${ok ? "✓" : "✗"} ${stage.padEnd(12)} ${ms(elapsedMs).padStart(8)}  ${detail ?? ""}`
          .trimEnd(),
      );
    }
  }
}

/** Lists the offline problems under the certificates stage of `check`. */
function printStageProblems(ctx: CommandContext, problems: Problem[]): void {
  if (ctx.json) return;
  for (const p of problems) ctx.io.out(`    ${MARK[p.severity]} ${p.code}: ${p.message}`);
}
