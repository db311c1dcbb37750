/**
 * The JWT session token over MQTT: subscribe to `s/dat`, publish an empty message with QoS 0 on
 * `s/uat`, and take the `71,<JWT>` that arrives on `s/dat`, as Cumulocity documents it.
 *
 * @module
 */

import { checkNumberOption } from "../check_option.ts";
import { TokenError, UsageError } from "../errors.ts";
import type { DeviceConnection, StageListener } from "../connect/connection.ts";
import { decodeToken, type DeviceToken } from "./decode_token.ts";

/** What {@linkcode requestToken} uses of a {@linkcode DeviceConnection}. */
export type TokenConnection = Pick<DeviceConnection, "url" | "subscribe" | "publish" | "listen">;

/** Options of {@linkcode requestToken}. */
export interface RequestTokenOptions {
  /** How many requests to send on `s/uat` before giving up. @default 3 */
  attempts?: number;
  /**
   * How long to wait for the SUBACK of `s/dat`, and for the `71` reply to each request, in
   * milliseconds. @default 20000
   */
  attemptTimeoutMs?: number;
  /** Called with the time of `subscribe` (the SUBACK) and `token` (the reply) once each succeeded. */
  onStage?: StageListener;
}

/** The topic the platform answers on. */
export const TOKEN_RESPONSE_TOPIC = "s/dat";
/** The topic a token is requested on. */
export const TOKEN_REQUEST_TOPIC = "s/uat";

/**
 * Requests a JWT session token on a live connection: subscribes to `s/dat` (the exact topic,
 * QoS 0), publishes an empty message with QoS 0 on `s/uat`, and takes the first `71,<JWT>` line
 * that arrives on `s/dat`; other `s/dat` lines are ignored. When no reply arrives within
 * `attemptTimeoutMs`, the request is sent again, up to `attempts` times (the platform can lose
 * replies, and no error reply for a refused request is documented: *unverified*). A reply to an
 * earlier request is still accepted while waiting for a later one.
 *
 * @param connection A live connection (from `connect`).
 * @param options Attempts, per-attempt timeout, stage listener.
 * @returns The token, decoded (signature not checked: see {@linkcode decodeToken}).
 * @throws {TokenError} `TOKEN_TIMEOUT` when no `71` arrived after all attempts,
 * `TOKEN_MALFORMED` for a `71` line without a JWT, `TOKEN_CONNECTION_LOST` when the connection
 * dropped while subscribing (stage `subscribe`), requesting or waiting (stage `token`).
 * @throws {UsageError} `OPTION_INVALID` for `attempts` below 1.
 * @throws {MqttError} When subscribing or publishing fails: `MQTT_SUBSCRIBE_REFUSED`,
 * `MQTT_SUBACK_TIMEOUT` (no SUBACK within `attemptTimeoutMs`), `MQTT_PUBACK_TIMEOUT`.
 *
 * @example With a stand-in connection that answers like the platform
 * ```ts
 * import { type ConnectionCallbacks, requestToken, type TokenConnection } from "../../mod.ts";
 * const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "");
 * const jwt = `${b64({ alg: "RS256" })}.${b64({ ten: "t123", sub: "device_d1" })}.c2ln`;
 * const listeners = new Set<ConnectionCallbacks>();
 * const connection: TokenConnection = {
 *   url: "mqtts://example.com:8883",
 *   subscribe: () => Promise.resolve(0),
 *   publish(topic) {
 *     const reply = new TextEncoder().encode(`71,${jwt}`);
 *     if (topic === "s/uat") setTimeout(() => listeners.forEach((l) => l.messageArrived?.("s/dat", reply)));
 *     return Promise.resolve();
 *   },
 *   listen(callbacks) {
 *     listeners.add(callbacks);
 *     return () => listeners.delete(callbacks);
 *   },
 * };
 * const token = await requestToken(connection, { attempts: 3, attemptTimeoutMs: 1000 });
 * if (token.tenant !== "t123" || token.subject !== "device_d1") throw new Error("unexpected");
 * ```
 */
export async function requestToken(
  connection: TokenConnection,
  options: RequestTokenOptions = {},
): Promise<DeviceToken> {
  const attempts = options.attempts ?? 3;
  // Timers hold at most 2^31-1 ms (~24.8 days); a longer delay would fire at once.
  const attemptTimeoutMs = Math.min(
    checkNumberOption("attemptTimeoutMs", options.attemptTimeoutMs) ?? 20_000,
    2 ** 31 - 1,
  );
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new UsageError(`attempts must be a positive whole number, not ${attempts}`, {
      code: "OPTION_INVALID",
      hint: "Leave attempts out for 3 requests.",
    });
  }
  const decoder = new TextDecoder();
  let reply: string | undefined;
  let lost: Error | undefined;
  let wake: (() => void) | undefined;
  const remove = connection.listen({
    messageArrived(topic, payload): void {
      if (topic !== TOKEN_RESPONSE_TOPIC || reply !== undefined) return;
      for (const line of decoder.decode(payload).split(/\r?\n/)) {
        if (line === "71" || line.startsWith("71,")) {
          reply = line;
          wake?.();
          return;
        }
      }
    },
    connectionLost(cause): void {
      lost ??= cause;
      wake?.();
    },
  });
  try {
    let mark = performance.now();
    try {
      await connection.subscribe(TOKEN_RESPONSE_TOPIC, { qos: 0, timeoutMs: attemptTimeoutMs });
    } catch (err) {
      throw lostError(err, connection, "subscribe") ?? err;
    }
    options.onStage?.("subscribe", performance.now() - mark, TOKEN_RESPONSE_TOPIC);
    mark = performance.now();
    for (let attempt = 1; attempt <= attempts && reply === undefined; attempt++) {
      throwIfLost(lost, connection);
      try {
        await connection.publish(TOKEN_REQUEST_TOPIC, new Uint8Array(0), {
          qos: 0,
          timeoutMs: attemptTimeoutMs,
        });
      } catch (err) {
        throw lostError(err, connection, "token") ?? err;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, attemptTimeoutMs);
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
        if (reply !== undefined || lost !== undefined) done();
      });
    }
    if (reply === undefined) {
      throwIfLost(lost, connection);
      throw new TokenError(
        `No token arrived on ${TOKEN_RESPONSE_TOPIC} from ${connection.url} after ${attempts} request${
          attempts === 1 ? "" : "s"
        } on ${TOKEN_REQUEST_TOPIC} (${attemptTimeoutMs / 1000} s each)`,
        {
          code: "TOKEN_TIMEOUT",
          hint: "No error reply is documented for a refused token request: check that the device " +
            "is registered in the tenant (device user device_<CN>) and that the broker supports " +
            "JWT retrieval on s/uat (Cumulocity does; a generic MQTT broker does not).",
        },
      );
    }
    const jwt = reply.slice(3).trim().replace(/^"(.*)"$/, "$1");
    const token = decodeToken(jwt);
    options.onStage?.(
      "token",
      performance.now() - mark,
      `71 on ${TOKEN_RESPONSE_TOPIC}, ${token.subject ?? "no subject"}, expires ${token.expiresAt}`,
    );
    return token;
  } finally {
    remove();
  }
}

function throwIfLost(lost: Error | undefined, connection: TokenConnection): void {
  if (lost === undefined) return;
  throw new TokenError(
    `The connection to ${connection.url} was lost while waiting for the token${reasonOf(lost)}`,
    {
      code: "TOKEN_CONNECTION_LOST",
      hint:
        "The broker closed the connection after the token request; check the broker's log, then try again.",
      cause: lost,
    },
  );
}

/**
 * Why the connection was lost, as ` (reason)`, when it is known (a reset, an
 * alert, a packet the broker must not send); empty for a plain close.
 */
function reasonOf(err: unknown): string {
  const reason = (err as { cause?: unknown } | null)?.cause;
  return reason instanceof Error ? ` (${reason.message})` : "";
}

/**
 * A subscribe or publish that failed because the connection went away (not because the broker
 * refused it) as `TOKEN_CONNECTION_LOST` in the stage it happened; `undefined` for other errors.
 */
function lostError(
  err: unknown,
  connection: TokenConnection,
  stage: "subscribe" | "token",
): TokenError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== "CONNECTION_LOST" && code !== "MQTT_NOT_CONNECTED") return undefined;
  const what = stage === "subscribe"
    ? `subscribing to ${TOKEN_RESPONSE_TOPIC}`
    : "requesting the token";
  return new TokenError(
    `The connection to ${connection.url} was lost while ${what}${reasonOf(err)}`,
    {
      code: "TOKEN_CONNECTION_LOST",
      stage,
      hint:
        "The connection ended after the broker had accepted it; check the broker's log (does it allow this device to use s/dat and s/uat?), then try again.",
      cause: err,
    },
  );
}
