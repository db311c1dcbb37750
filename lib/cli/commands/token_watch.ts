/**
 * `token --watch`: stay connected, keep the token fresh and print each new one on its own line
 * until SIGINT or SIGTERM, then disconnect cleanly.
 *
 * @module
 */

import { ExitCode } from "../../errors.ts";
import type { DeviceToken } from "../../token/decode_token.ts";
import type { CommandContext } from "../context.ts";
import { errorMessage, progress } from "../output.ts";
import type { Prepared } from "./prepare.ts";

/** The signals that end a watch (SIGTERM as sent by service managers and `kill`). */
const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/**
 * Connects with automatic reconnect, keeps the token (`keepToken`) and prints each token: alone
 * on a line, or with `--json` one compact JSON object per line. Returns 0 once a stop signal
 * has closed the connection.
 *
 * @throws {C8yError} When connecting or the first token request fails (as `token` does).
 */
export async function watchTokens(ctx: CommandContext, prepared: Prepared): Promise<number> {
  const [{ connect }, { keepToken }] = await Promise.all([
    import("../../connect/connection.ts"),
    import("../../token/keep_token.ts"),
  ]);
  const { connection: options, clientId, broker } = prepared;
  // --watch is refused with --via rest (`tokenRoute`), so there is always a broker.
  if (broker === undefined) throw new Error("--watch without an MQTT broker");
  const connection = await connect({
    url: broker.url,
    identity: options.identity,
    trust: options.trust,
    clientId,
    checkClientId: options.checkClientId,
    findings: options.findings,
    connectTimeoutMs: options.timeoutMs,
    reconnect: true,
    callbacks: {
      connectionLost: (cause) =>
        status(ctx, `! ${errorMessage(cause)}; reconnecting`, {
          event: "connection-lost",
          ...codeOf(cause),
          message: errorMessage(cause),
        }),
      // A failed reconnect attempt (it is tried again with backoff).
      error: (err) =>
        status(ctx, `! ${err.code}: ${errorMessage(err)}`, {
          event: "reconnect-failed",
          code: err.code,
          message: errorMessage(err),
        }),
      connectComplete: (reconnect) => {
        if (reconnect) {
          status(ctx, `✓ reconnected to ${broker.url}`, { event: "reconnected", url: broker.url });
        }
      },
    },
  });
  let stopped: () => void = () => {};
  const stop = new Promise<void>((resolve) => stopped = resolve);
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, stopped);
  try {
    progress(ctx, `✓ connected to ${broker.url} as ${clientId}; Ctrl-C ends the watch`);
    const print = (token: DeviceToken): void => {
      if (ctx.json) {
        ctx.io.out(JSON.stringify({
          token: token.token,
          clientId,
          url: broker.url,
          tenant: token.tenant,
          subject: token.subject,
          issuedAt: token.issuedAt,
          expiresAt: token.expiresAt,
        }));
      } else {
        progress(ctx, `✓ token for ${token.subject ?? clientId}, expires ${token.expiresAt}`);
        ctx.io.out(token.token);
      }
    };
    const keeping = keepToken(connection, {
      tokenRenewed: print,
      // A failed renewal is retried and the watch goes on (also under --json, on stderr). No
      // token is ever part of the message.
      error: (err) =>
        status(ctx, `! token renewal failed: ${err.message}; retrying`, {
          event: "renewal-failed",
          code: err.code,
          message: errorMessage(err),
        }),
      request: { attemptTimeoutMs: options.timeoutMs },
    });
    // A stop signal before the first token ends the watch as well.
    const keeper = await Promise.race([keeping, stop.then(() => undefined)]);
    if (keeper === undefined) {
      keeping.then((k) => k.stop(), () => {});
    } else {
      await stop;
      keeper.stop();
    }
    status(ctx, "✓ stopping: disconnecting", { event: "stopping" });
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, stopped);
    await connection.close();
  }
  return ExitCode.OK;
}

/**
 * A change of the watch's connection on stderr (unless --quiet): the text line, or with --json
 * one compact JSON object (`event`, `time` and the details) so that stderr stays parseable. Built
 * from error codes and messages only: never a token.
 */
function status(ctx: CommandContext, line: string, json: Record<string, unknown>): void {
  if (ctx.quiet) return;
  ctx.io.err(ctx.json ? JSON.stringify({ ...json, time: new Date().toISOString() }) : line);
}

/** `{ code }` of a C8yError (or a Node error with a string code), else nothing. */
function codeOf(error: unknown): { code?: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? { code } : {};
}
