/**
 * The `check` command: the path to a token reported stage by stage, explaining the first failure.
 *
 * @module
 */

import { ExitCode } from "../../errors.ts";
import type { CommandContext } from "../context.ts";
import { StageLog } from "../stages.ts";
import { connectAndFetch, prepare } from "./prepare.ts";

/**
 * `check`: the whole path, one line per stage with its state and time (on stdout, or as `stages`
 * in `--json`); stops at the first failure.
 */
export async function checkCommand(ctx: CommandContext): Promise<number> {
  const log = new StageLog(ctx.json ? undefined : ctx.io.out);
  try {
    const prepared = await prepare(ctx, "check", log);
    const { problems, clientId, broker } = prepared;
    const token = await connectAndFetch(prepared, log);
    if (!log.has("token")) log.end("token", "ok", log.elapsed(), `expires ${token.expiresAt}`);
    const errors = problems.filter((p) => p.severity === "error").length;
    const despite = errors
      ? `, although the offline checks found ${errors} error${errors === 1 ? "" : "s"}`
      : "";
    if (ctx.json) {
      ctx.io.out(JSON.stringify(
        {
          ok: true,
          clientId,
          ...(broker === undefined ? {} : { url: broker.url }),
          ...(prepared.restUrl === undefined ? {} : { via: "rest", restUrl: prepared.restUrl }),
          stages: log.reports,
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
          ? `ok: ${clientId} can connect to ${broker?.url} and get a token${despite}`
          : `ok: ${clientId} can get a token from ${prepared.restUrl} over REST${despite}`,
      );
    }
    return ExitCode.OK;
  } catch (error) {
    log.fail(error);
    // The --json error report lists the stages this check got through.
    ctx.run.checkStages = log.reports;
    throw error;
  }
}
