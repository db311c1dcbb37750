/**
 * The JWT session token over MQTT: subscribe to `s/dat`, publish an empty message with QoS 0 on
 * `s/uat`, and take the `71,<JWT>` that arrives on `s/dat`, as Cumulocity documents it.
 *
 * @module
 */

import { TokenError } from "./errors.ts";
import type { Session, StageListener } from "./session.ts";

/** A JWT session token and the facts decoded from it (not verified: see {@linkcode decodeToken}). */
export interface DeviceToken {
  /** The compact JWT, for `Authorization: Bearer <token>`. Never log it. */
  token: string;
  /** All claims of the payload (`iss`, `aud`, `sub`, `ten`, `iat`, `nbf`, `exp`, `tci`, ...). */
  claims: Record<string, unknown>;
  /** `exp` as ISO 8601 (UTC), when present. */
  expiresAt: string | undefined;
  /** `iat` as ISO 8601 (UTC), when present. */
  issuedAt: string | undefined;
  /** The tenant id (`ten`), when present. */
  tenant: string | undefined;
  /** The issuer (`iss`, the tenant domain), when present. */
  issuer: string | undefined;
  /** The subject (`sub`, `device_<id>`), when present. */
  subject: string | undefined;
}

/** Options of {@linkcode requestToken}. */
export interface RequestTokenOptions {
  /** How many requests to send on `s/uat` before giving up. @default 3 */
  attempts?: number;
  /** How long to wait for the `71` reply to each request, in milliseconds. @default 20000 */
  attemptTimeoutMs?: number;
  /** Called with the time of `subscribe` (the SUBACK) and `token` (the reply) once each succeeded. */
  onStage?: StageListener;
}

/** The topic the platform answers on. */
export const TOKEN_RESPONSE_TOPIC = "s/dat";
/** The topic a token is requested on. */
export const TOKEN_REQUEST_TOPIC = "s/uat";

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Decodes a compact JWT into a {@linkcode DeviceToken}.
 *
 * The signature is **not** checked: the device has no key to check it with (no documented source
 * of the platform's signing key for device tokens was found: *unverified*), and it does not need
 * to: the token is checked by the platform when the device uses it. The decoded claims are for display and for knowing when to renew.
 *
 * @param jwt The compact JWT (`header.payload.signature`).
 * @returns The token and its decoded claims.
 * @throws {TokenError} `TOKEN_MALFORMED` when it is not a JWT with a JSON payload.
 *
 * @example
 * ```ts
 * import { decodeToken } from "./token.ts";
 * const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
 * const jwt = `${b64({ alg: "RS256" })}.${b64({ ten: "t123", exp: 1700000000, sub: "device_d1" })}.c2ln`;
 * const token = decodeToken(jwt);
 * if (token.tenant !== "t123" || token.expiresAt !== "2023-11-14T22:13:20.000Z") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function decodeToken(jwt: string): DeviceToken {
  const token = jwt.trim();
  if (!JWT.test(token)) throw malformed("it is not a compact JWT (three base64url parts)");
  // The payload is base64url-encoded JSON (RFC 7519), decoded with the platform's base64url and
  // JSON. `jose` did this before; it was the only npm package a `token` run with PEM stores
  // loaded, and its import took about 7 ms in a cold process (Deno 2.9.6). The signature is not
  // checked (see above), which is all that a JWT library would add here.
  let claims: unknown;
  try {
    const payload = Uint8Array.fromBase64(token.split(".")[1], {
      alphabet: "base64url",
      lastChunkHandling: "loose",
    });
    claims = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (cause) {
    throw malformed("its payload is not base64url-encoded JSON", cause);
  }
  if (claims === null || typeof claims !== "object" || Array.isArray(claims)) {
    throw malformed("its payload is not a JSON object");
  }
  return {
    token,
    claims: claims as Record<string, unknown>,
    ...facts(claims as Record<string, unknown>),
  };
}

/**
 * Requests a JWT session token on a connected session: subscribes to `s/dat` (the exact topic,
 * QoS 0), publishes an empty message with QoS 0 on `s/uat`, and takes the first `71,<JWT>` line
 * that arrives on `s/dat`; other `s/dat` lines are ignored. When no reply arrives within
 * `attemptTimeoutMs`, the request is sent again, up to `attempts` times (the platform can lose
 * replies, and no error reply for a refused request is documented: *unverified*). A reply to an
 * earlier request is still accepted while waiting for a later one.
 *
 * @param session A connected session (from `connect`).
 * @param options Attempts, per-attempt timeout, stage listener.
 * @returns The token, decoded (signature not checked: see {@linkcode decodeToken}).
 * @throws {TokenError} `TOKEN_TIMEOUT` when no `71` arrived after all attempts,
 * `TOKEN_MALFORMED` for a `71` line without a JWT, `TOKEN_CONNECTION_LOST` when the connection
 * dropped while subscribing (stage `subscribe`), requesting or waiting (stage `token`).
 * @throws {MqttError} When subscribing or publishing fails.
 *
 * @example With a stand-in session that answers like the platform
 * ```ts
 * import { requestToken } from "./token.ts";
 * import type { Session, SessionCallbacks } from "./session.ts";
 * const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "");
 * const jwt = `${b64({ alg: "RS256" })}.${b64({ ten: "t123", sub: "device_d1" })}.c2ln`;
 * const listeners = new Set<SessionCallbacks>();
 * const session: Session = {
 *   clientId: "d:d1",
 *   url: "mqtts://example.com:8883",
 *   connected: true,
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
 *   close: () => Promise.resolve(),
 * };
 * const token = await requestToken(session, { attempts: 3, attemptTimeoutMs: 1000 });
 * if (token.tenant !== "t123" || token.subject !== "device_d1") throw new Error("unexpected");
 * ```
 */
export async function requestToken(
  session: Session,
  options: RequestTokenOptions = {},
): Promise<DeviceToken> {
  const attempts = options.attempts ?? 3;
  // Timers hold at most 2^31-1 ms (~24.8 days); a longer delay would fire at once.
  const attemptTimeoutMs = Math.min(options.attemptTimeoutMs ?? 20_000, 2 ** 31 - 1);
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new TypeError(`attempts must be a positive integer, got ${attempts}`);
  }
  const decoder = new TextDecoder();
  let reply: string | undefined;
  let lost: Error | undefined;
  let wake: (() => void) | undefined;
  const remove = session.listen({
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
      await session.subscribe(TOKEN_RESPONSE_TOPIC, { qos: 0 });
    } catch (err) {
      throw lostError(err, session, "subscribe") ?? err;
    }
    options.onStage?.("subscribe", performance.now() - mark, TOKEN_RESPONSE_TOPIC);
    mark = performance.now();
    for (let attempt = 1; attempt <= attempts && reply === undefined; attempt++) {
      throwIfLost(lost, session);
      try {
        await session.publish(TOKEN_REQUEST_TOPIC, new Uint8Array(0), { qos: 0 });
      } catch (err) {
        throw lostError(err, session, "token") ?? err;
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
      throwIfLost(lost, session);
      throw new TokenError(
        `No token arrived on ${TOKEN_RESPONSE_TOPIC} from ${session.url} after ${attempts} request${
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

function throwIfLost(lost: Error | undefined, session: Session): void {
  if (lost === undefined) return;
  throw new TokenError(
    `The connection to ${session.url} was lost while waiting for the token${reasonOf(lost)}`,
    {
      code: "TOKEN_CONNECTION_LOST",
      hint:
        "The broker closed the connection after the token request; check the broker's log, then try again.",
      cause: lost,
    },
  );
}

/**
 * Why the session lost its connection, as ` (reason)`, when the session knew it (a reset, an
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
  session: Session,
  stage: "subscribe" | "token",
): TokenError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== "CONNECTION_LOST" && code !== "MQTT_NOT_CONNECTED") return undefined;
  const what = stage === "subscribe"
    ? `subscribing to ${TOKEN_RESPONSE_TOPIC}`
    : "requesting the token";
  return new TokenError(`The connection to ${session.url} was lost while ${what}${reasonOf(err)}`, {
    code: "TOKEN_CONNECTION_LOST",
    stage,
    hint:
      "The connection ended after the broker had accepted it; check the broker's log (does it allow this device to use s/dat and s/uat?), then try again.",
    cause: err,
  });
}

function malformed(why: string, cause?: unknown): TokenError {
  return new TokenError(`The token reply (71) is malformed: ${why}`, {
    code: "TOKEN_MALFORMED",
    hint:
      "The broker answered on s/dat, but not with 71,<JWT>; check that the URL is Cumulocity's MQTT endpoint.",
    cause,
  });
}

function facts(
  claims: Record<string, unknown>,
): Pick<DeviceToken, "expiresAt" | "issuedAt" | "tenant" | "issuer" | "subject"> {
  return {
    expiresAt: isoTime(claims.exp),
    issuedAt: isoTime(claims.iat),
    tenant: text(claims.ten),
    issuer: text(claims.iss),
    subject: text(claims.sub),
  };
}

function isoTime(seconds: unknown): string | undefined {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return undefined;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
