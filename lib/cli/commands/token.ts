/**
 * The `token` command: fetch the device's JWT and print it.
 *
 * @module
 */

import { ExitCode } from "../../errors.ts";
import type { Stage } from "../../errors.ts";
import type { CommandContext } from "../context.ts";
import { MARK, ms, progress, roundTimings } from "../output.ts";
import { prepare } from "./prepare.ts";

/** `token`: connect, fetch the JWT and print it alone on stdout (or as JSON). */
export async function tokenCommand(ctx: CommandContext): Promise<number> {
  const prepared = await prepare(ctx, "token");
  const { stores, identity, clientId: id } = prepared;
  progress(
    ctx,
    `✓ keystore ${stores.keystorePath}: ${identity.format}, ${id} (${ms(stores.timings.keystore)})`,
  );
  // Errors and warnings only: `inspect` and `check` show the informational findings.
  for (const p of prepared.problems) {
    if (p.severity !== "info") progress(ctx, `${MARK[p.severity]} ${p.severity}: ${p.message}`);
  }
  if (ctx.values.watch) {
    const { watchTokens } = await import("./token_watch.ts");
    return await watchTokens(ctx, prepared);
  }
  const timings: Partial<Record<Stage, number>> = {
    store: (stores.timings.keystore ?? 0) + (stores.timings.truststore ?? 0),
  };
  const { fetchToken } = await import("../../token/fetch_token.ts");
  const token = await fetchToken({
    ...prepared.connection,
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
        url: prepared.broker.url,
        ...(prepared.restUrl === undefined ? {} : { via: "rest", restUrl: prepared.restUrl }),
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
