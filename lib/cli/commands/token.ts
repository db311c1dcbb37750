/**
 * The `token` command: fetch the device's JWT and print it.
 *
 * @module
 */

import { ExitCode } from "../../errors.ts";
import type { Stage } from "../../errors.ts";
import { parseBrokerUrl } from "../../broker_url.ts";
import type { CommandContext } from "../context.ts";
import { required, seconds } from "../options.ts";
import { MARK, ms, progress, roundTimings } from "../output.ts";
import { connectClientId, firstError, offline } from "./prepare.ts";

/** `token`: connect, fetch the JWT and print it alone on stdout (or as JSON). */
export async function tokenCommand(ctx: CommandContext): Promise<number> {
  const url = required(ctx.values, "url", "token");
  const broker = parseBrokerUrl(url);
  const timeoutMs = seconds(ctx.values.timeout, "--timeout", 20) * 1000;
  const { stores, identity, problems } = await offline(ctx, "token");
  const blocking = ctx.values.force ? undefined : firstError(problems);
  if (blocking) throw blocking;
  const id = connectClientId(identity, ctx.values["client-id"], ctx.values.force);
  progress(
    ctx,
    `✓ keystore ${stores.keystorePath}: ${identity.format}, ${id} (${ms(stores.timings.keystore)})`,
  );
  // Errors and warnings only: `inspect` and `check` show the informational findings.
  for (const p of problems) {
    if (p.severity !== "info") progress(ctx, `${MARK[p.severity]} ${p.severity}: ${p.message}`);
  }
  const timings: Partial<Record<Stage, number>> = {
    store: (stores.timings.keystore ?? 0) + (stores.timings.truststore ?? 0),
  };
  const { fetchToken } = await import("../../fetch_token.ts");
  const token = await fetchToken({
    url: broker.url,
    identity,
    trust: stores.trust,
    clientId: id,
    timeoutMs,
    onStage: (stage: Stage, elapsed: number) => {
      timings[stage] = elapsed;
      progress(ctx, `✓ ${stage} (${ms(elapsed)})`);
    },
  });
  if (ctx.json) {
    ctx.io.out(JSON.stringify(
      {
        ok: true,
        token: token.token,
        clientId: id,
        url: broker.url,
        tenant: token.tenant,
        issuer: token.issuer,
        subject: token.subject,
        issuedAt: token.issuedAt,
        expiresAt: token.expiresAt,
        claims: token.claims,
        timings: roundTimings(timings),
      },
      null,
      2,
    ));
  } else {
    progress(ctx, `✓ token for ${token.subject ?? id}, expires ${token.expiresAt}`);
    ctx.io.out(token.token);
  }
  return ExitCode.OK;
}
