/**
 * The `token` command: fetch the device's JWT and print it.
 *
 * @module
 */

import { ExitCode } from "../../errors.ts";
import type { CommandContext } from "../context.ts";
import { StageLog } from "../stages.ts";
import { connectAndFetch, prepare } from "./prepare.ts";

/**
 * `token`: connect, fetch the JWT and print it alone on stdout (or as JSON, with each stage's
 * time). The stages go to stderr as progress, in `check`'s words; the connection's details (TLS
 * version, server certificate, CONNACK) with `--verbose`.
 */
export async function tokenCommand(ctx: CommandContext): Promise<number> {
  const verbose = ctx.values.verbose ?? false;
  const quiet = ctx.quiet || ctx.json;
  const log = new StageLog(
    quiet ? undefined : ctx.io.err,
    "store",
    verbose ? undefined : ["dns", "tcp", "tls", "mqtt", "subscribe"],
  );
  try {
    const prepared = await prepare(ctx, "token", log);
    if (ctx.values.watch) {
      const { watchTokens } = await import("./token_watch.ts");
      return await watchTokens(ctx, prepared);
    }
    const token = await connectAndFetch(prepared, log);
    if (ctx.json) {
      ctx.io.out(JSON.stringify(
        {
          ok: true,
          token: token.token,
          clientId: prepared.clientId,
          ...(prepared.broker === undefined ? {} : { url: prepared.broker.url }),
          ...(prepared.restUrl === undefined ? {} : { via: "rest", restUrl: prepared.restUrl }),
          tenant: token.tenant,
          issuer: token.issuer,
          subject: token.subject,
          issuedAt: token.issuedAt,
          expiresAt: token.expiresAt,
          claims: token.claims,
          timings: log.timings(),
        },
        null,
        2,
      ));
    } else {
      ctx.io.out(token.token);
    }
    return ExitCode.OK;
  } catch (error) {
    log.fail(error);
    throw error;
  }
}
