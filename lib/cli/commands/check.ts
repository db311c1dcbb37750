/**
 * The `check` command: the path to a token reported stage by stage, explaining the first failure.
 *
 * @module
 */

import { C8yError, ExitCode } from "../../errors.ts";
import type { Stage } from "../../errors.ts";
import { diagnose } from "../../diagnose.ts";
import { parseBrokerUrl } from "../../broker_url.ts";
import type { Problem } from "../../types.ts";
import type { CommandContext } from "../context.ts";
import { loadStores } from "../load_stores.ts";
import { required, seconds } from "../options.ts";
import { describeKey, errorMessage, MARK, ms, plural } from "../output.ts";
import { connectClientId, firstError } from "./prepare.ts";

/** One stage of `check`, as reported and put in the JSON output. */
export interface StageReport {
  stage: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

/** `check`: the whole path, stage by stage, with timings; stops at the first failure. */
export async function checkCommand(ctx: CommandContext): Promise<number> {
  const url = required(ctx.values, "url", "check");
  const broker = parseBrokerUrl(url);
  const timeoutMs = seconds(ctx.values.timeout, "--timeout", 20) * 1000;
  const stages: StageReport[] = [];
  const report = (stage: string, ok: boolean, elapsed: number, detail?: string) => {
    stages.push({ stage, ok, ms: Math.round(elapsed * 10) / 10, detail });
    if (!ctx.json) {
      ctx.io.out(
        `${ok ? "✓" : "✗"} ${stage.padEnd(12)} ${ms(elapsed).padStart(8)}  ${detail ?? ""}`
          .trimEnd(),
      );
    }
  };
  let problems: Problem[] = [];
  let current = "keystore";
  let stageStart = performance.now();
  try {
    const stores = await loadStores(ctx.run, ctx.values, "check", (kind, loaded) => {
      if (kind === "keystore") {
        const { identity } = loaded;
        const leaf = identity!.chain[0]?.summary;
        report(
          "keystore",
          true,
          loaded.timings.keystore ?? 0,
          `${identity!.format}${identity!.alias ? ` alias "${identity!.alias}"` : ""}, ${
            leaf ? describeKey(leaf) : identity!.keyType
          }, chain of ${identity!.chain.length}`,
        );
        current = "truststore";
      } else {
        const trust = loaded.trust!;
        report(
          "truststore",
          true,
          loaded.timings.truststore ?? 0,
          plural(trust.certificates.length, `${trust.format}, `, "certificate"),
        );
      }
      stageStart = performance.now();
    });
    const identity = stores.identity!;
    current = "certificates";
    stageStart = performance.now();
    problems = diagnose({ identity, trust: stores.trust, clientId: ctx.values["client-id"] });
    const blocking = firstError(problems);
    const counts = ["error", "warning"].map((s) => {
      const n = problems.filter((p) => p.severity === s).length;
      return n ? `${n} ${s}${n === 1 ? "" : "s"}` : "";
    }).filter(Boolean).join(", ");
    if (blocking && !ctx.values.force) throw blocking;
    const id = connectClientId(identity, ctx.values["client-id"], ctx.values.force);
    report(
      "certificates",
      true,
      performance.now() - stageStart,
      `${id}; ${counts || "no errors or warnings"}`,
    );
    printStageProblems(ctx, problems);
    const { fetchToken } = await import("../../fetch_token.ts");
    current = "dns";
    stageStart = performance.now();
    const token = await fetchToken({
      url: broker.url,
      identity,
      trust: stores.trust,
      clientId: id,
      timeoutMs,
      onStage: (stage: Stage, elapsed: number, detail?: string) => {
        report(stage, true, elapsed, detail);
        current = nextStage(stage);
        stageStart = performance.now();
      },
    });
    if (!stages.some((s) => s.stage === "token")) {
      report("token", true, performance.now() - stageStart, `expires ${token.expiresAt}`);
    }
    if (ctx.json) {
      ctx.io.out(JSON.stringify(
        {
          ok: true,
          clientId: id,
          url: broker.url,
          stages,
          problems,
          tenant: token.tenant,
          expiresAt: token.expiresAt,
        },
        null,
        2,
      ));
    } else {
      ctx.io.out(`ok: ${id} can connect to ${broker.url} and get a token`);
    }
    return ExitCode.OK;
  } catch (error) {
    const stage = error instanceof C8yError && error.stage !== "usage" ? error.stage : current;
    const label = stage === "store" ? current : stage === "certificate" ? "certificates" : stage;
    report(label, false, performance.now() - stageStart, ctx.run.scrub(errorMessage(error)));
    if (label === "certificates") {
      printStageProblems(ctx, problems.filter((p) => p.message !== errorMessage(error)));
    }
    if (error instanceof C8yError) {
      (error as C8yError & { checkStages?: StageReport[] }).checkStages = stages;
    }
    throw error;
  }
}

/** Lists the offline problems under the certificates stage of `check`. */
function printStageProblems(ctx: CommandContext, problems: Problem[]): void {
  if (ctx.json) return;
  for (const p of problems) ctx.io.out(`    ${MARK[p.severity]} ${p.code}: ${p.message}`);
}

function nextStage(stage: Stage): string {
  const order = ["dns", "tcp", "tls", "mqtt", "subscribe", "token"];
  return order[order.indexOf(stage) + 1] ?? stage;
}
