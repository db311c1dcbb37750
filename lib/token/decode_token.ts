/**
 * Decoding a device's JWT session token: its claims, for display and for knowing when to renew.
 *
 * @module
 */

import { TokenError } from "../errors.ts";

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
 * import { decodeToken } from "../../mod.ts";
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
