/**
 * What can go wrong with the REST token request, each as a {@linkcode C8yError} naming its stage:
 * resolver and socket errors, TLS errors and alerts (also the TLS 1.3 late rejection), HTTP
 * statuses, and answers that hold no token. Pure: every function takes what happened (an error,
 * a status and the answer's bytes) and returns an error object or the token.
 *
 * Messages name what came back (first bytes, JSON keys, the server's own message), with anything
 * shaped like a token left out.
 *
 * @module
 */

import { type C8yError, type Stage, TlsError, TokenError } from "../errors.ts";
import {
  classifyNetworkError,
  clientCertAlert,
  type EndpointWords,
  errorCode,
  hostnameMismatch,
  isUntrustedServer,
  localRejection,
  seconds,
  timeoutError as sharedTimeoutError,
} from "../connect/classify.ts";
import { decodeToken, type DeviceToken } from "./decode_token.ts";
import type { RestAddress } from "./rest_url.ts";

/** What came back: the body bytes (at most 64 KiB) and its declared type. */
export interface Answer {
  bytes: Uint8Array;
  contentType: string;
}

export function tooLarge(
  address: RestAddress,
  size: string,
  contentType: string,
  limitBytes: number,
): TokenError {
  return new TokenError(
    `${address.url} answered the token request with ${size} (${contentType}); a token answer is at most ${limitBytes} bytes`,
    {
      code: "TOKEN_TOO_LARGE",
      hint:
        "Check that the REST URL names the tenant's HTTPS address, not a proxy or another service.",
    },
  );
}

/** Takes `accessToken` from a 2xx answer. */
export function tokenOf(answer: Answer, address: RestAddress): DeviceToken {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(answer.bytes));
  } catch (cause) {
    throw new TokenError(
      `${address.url} answered the token request with something that is not JSON (${answer.contentType}: ${
        preview(answer.bytes)
      })`,
      {
        code: "TOKEN_NOT_JSON",
        hint:
          "Check that the REST URL names the tenant's HTTPS address (a proxy or login page answers HTML).",
        cause,
      },
    );
  }
  const accessToken = (body as { accessToken?: unknown } | null)?.accessToken;
  if (typeof accessToken !== "string" || accessToken === "") {
    const shape = body !== null && typeof body === "object" && !Array.isArray(body)
      ? `an object with ${keysOf(body as Record<string, unknown>)}`
      : `JSON ${Array.isArray(body) ? "array" : body === null ? "null" : typeof body}`;
    throw new TokenError(
      `${address.url} answered the token request without an accessToken (${shape})`,
      {
        code: "TOKEN_NO_ACCESS_TOKEN",
        hint:
          'The platform answers {"accessToken": "<JWT>"}; check the REST URL and the platform version (10.20.237 or later).',
      },
    );
  }
  return decodeToken(accessToken);
}

function keysOf(body: Record<string, unknown>): string {
  const keys = Object.keys(body);
  if (keys.length === 0) return "no keys";
  const shown = keys.slice(0, 8).map((k) => JSON.stringify(k.slice(0, 40))).join(", ");
  return `keys ${shown}${keys.length > 8 ? ", ..." : ""}`;
}

/**
 * The first bytes of an answer for a message: printable text (anything shaped like a JWT or a
 * long base64 run replaced by `<...>`), other bytes in hex.
 */
function preview(bytes: Uint8Array): string {
  if (bytes.length === 0) return "an empty body";
  const head = bytes.subarray(0, 60);
  const text = new TextDecoder().decode(head);
  if (/^[\x20-\x7e\t\r\n]+$/.test(text)) {
    const shown = text.replace(/\s+/g, " ").replace(/[A-Za-z0-9_\-+/=.]{24,}/g, "<...>");
    return `"${shown}${bytes.length > head.length ? "..." : ""}"`;
  }
  const hex = Array.from(head.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
  return `bytes ${hex}${bytes.length > 8 ? " ..." : ""}`;
}

const REGISTRATION_HINT =
  "Only devices registered for certificate authentication get a token: upload the CA that issued " +
  "the device certificate (or its immediate issuer) to the tenant's trusted certificates with " +
  "auto-registration, or register the device in bulk with AUTH_TYPE=CERTIFICATES; when only a CA " +
  "above the immediate issuer is uploaded, send the device's chain in the X-Ssl-Cert-Chain header.";

export function statusError(status: number, answer: Answer, address: RestAddress): TokenError {
  const said = serverMessage(answer);
  const because = said === undefined ? "" : `: ${said}`;
  if (status === 401 || status === 403) {
    return new TokenError(
      `${address.url} refused the device certificate with HTTP ${status} ${
        status === 401 ? "Unauthorized" : "Forbidden"
      }${because}`,
      {
        code: status === 401 ? "HTTP_UNAUTHORIZED" : "HTTP_FORBIDDEN",
        stage: "http",
        hint: REGISTRATION_HINT,
      },
    );
  }
  const hint = status === 404
    ? "This server has no device token endpoint: check the REST URL (the tenant's HTTPS address) and that the platform is 10.20.237 or later."
    : status >= 500
    ? "The platform had a problem answering; try again later."
    : status >= 300 && status < 400
    ? "The server redirects elsewhere: give the tenant's own HTTPS address as the REST URL."
    : "Check the REST URL: it must name the tenant's HTTPS address.";
  return new TokenError(
    `${address.url} answered the token request with HTTP ${status}${
      because || ` (${preview(answer.bytes)})`
    }`,
    { code: "HTTP_STATUS", stage: "http", hint },
  );
}

/**
 * The `message` (or `error`) of a JSON error answer, as the platform sends them, shortened and
 * with anything shaped like a token left out; `undefined` when there is none.
 */
function serverMessage(answer: Answer): string | undefined {
  try {
    const body = JSON.parse(new TextDecoder().decode(answer.bytes));
    const text = typeof body?.message === "string"
      ? body.message
      : typeof body?.error === "string"
      ? body.error
      : undefined;
    if (text === undefined) return undefined;
    const clean = text.replace(/[^\x20-\x7e]+/g, " ").replace(/[A-Za-z0-9_\-+/=.]{24,}/g, "<...>");
    return `"${clean.length > 160 ? `${clean.slice(0, 160)}...` : clean}"`;
  } catch {
    return undefined;
  }
}

/** The REST endpoint's words in the failures it shares with the broker (`classify.ts`). */
const REST_WORDS: EndpointWords = {
  host: "REST host",
  peer: "the platform",
  notFoundHint:
    "Check the spelling of the tenant domain in the REST URL, e.g. https://<tenant>.cumulocity.com.",
  refusedHint:
    "Check the REST URL's port: the platform's HTTPS port is 443 (some installations serve mutual TLS on another).",
  moreTime: "allow more time",
  tlsTimeoutHint: "Check that the REST URL names an HTTPS port (443), not a plain HTTP one.",
};

export function timeoutError(stage: Stage, address: RestAddress, timeoutMs: number): C8yError {
  if (stage !== "http" && stage !== "token") {
    return sharedTimeoutError(stage, address, timeoutMs, REST_WORDS);
  }
  const within = `within ${seconds(timeoutMs)}`;
  return new TokenError(`${address.url} did not answer the token request ${within}`, {
    code: "HTTP_TIMEOUT",
    stage: "http",
    hint: "The platform may be overloaded; try again, or allow more time.",
  });
}

export function networkError(err: Error, stage: "dns" | "tcp", address: RestAddress): C8yError {
  // https.request sets up its TLS context (and OpenSSL judges the device key) before connecting.
  return localRejection(err, address.url) ?? classifyNetworkError(err, stage, address, REST_WORDS);
}

const REFUSED_HINT =
  "Upload the CA that issued the device certificate (or its immediate issuer) to the tenant's " +
  "trusted certificates, and check that the keystore holds the full chain (`inspect`).";

export function tlsError(err: Error, address: RestAddress, ownCa: boolean): C8yError {
  const code = errorCode(err) ?? "";
  if (err instanceof Deno.errors.NotCapable) return networkError(err, "tcp", address);
  const local = localRejection(err, address.url);
  if (local !== undefined) return local;
  if (isUntrustedServer(err)) {
    return new TlsError(
      `The server certificate of ${address.url} is not trusted (${code || err.message})`,
      {
        code: "TLS_SERVER_UNTRUSTED",
        hint: ownCa
          ? "The truststore does not hold the CA that signed the server's certificate: add it, or leave the truststore out to use the default root CAs."
          : "The default root CAs do not trust it: give a truststore with the CA that signed the server's certificate.",
        cause: err,
      },
    );
  }
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") {
    return new TlsError(
      `The server certificate of ${address.url} is ${
        code === "CERT_NOT_YET_VALID" ? "not yet valid" : "expired"
      }`,
      {
        code: "TLS_SERVER_EXPIRED",
        hint:
          "Check this machine's clock; if it is right, the server's certificate must be renewed.",
        cause: err,
      },
    );
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return hostnameMismatch(err, address.url, address.host);
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number/.test(err.message)) {
    return new TlsError(`${address.url} does not speak TLS`, {
      code: "TLS_NOT_TLS",
      hint: "Check the REST URL's port: HTTPS is 443 (80 is plain HTTP).",
      cause: err,
    });
  }
  const late = lateError(err, address, null);
  if (late instanceof TlsError && late.code !== "TLS_HANDSHAKE_FAILED") return late;
  return new TlsError(`The TLS handshake with ${address.url} failed: ${err.message}`, {
    code: "TLS_HANDSHAKE_FAILED",
    hint: "Check the REST URL and port; the server may also have refused the device certificate.",
    cause: err,
  });
}

/** Cumulocity's MQTT ports: an HTTP request there is answered with a close. */
const MQTT_PORTS = new Set([8883, 1883]);

/**
 * An error or close after the client's handshake and before the whole answer: an alert about the
 * device certificate, or a bare close or reset. Under TLS 1.3 a bare close is how a server
 * refuses a client certificate, but also what an MQTT broker does with an HTTP request: when the
 * address is an MQTT port (8883, 1883) or the broker's own (`brokerAddress`), the wrong endpoint
 * is named first (`TLS_CLOSED_AFTER_HANDSHAKE`); otherwise the certificate is, with the port second
 * (`TLS_CLIENT_CERT_REFUSED`). Under TLS 1.2 the server had accepted the certificate, so the HTTP
 * side hung up.
 */
export function lateError(
  err: Error | undefined,
  address: RestAddress,
  protocol: string | null,
  brokerAddress?: { host: string; port: number },
): C8yError {
  if (/CERTIFICATE_REQUIRED/.test(errorCode(err) ?? "")) {
    return new TlsError(`${address.url} requires a client certificate, but none was sent`, {
      code: "TLS_CLIENT_CERT_REQUIRED",
      hint: "Give the device keystore with its private key and certificate.",
      cause: err,
    });
  }
  const alert = clientCertAlert(err);
  if (alert !== undefined) {
    return new TlsError(`${address.url} refused the device certificate (TLS alert "${alert}")`, {
      code: "TLS_CLIENT_CERT_REFUSED",
      hint: REFUSED_HINT,
      cause: err,
    });
  }
  const isBroker = brokerAddress !== undefined && brokerAddress.port === address.port &&
    brokerAddress.host.toLowerCase() === address.host;
  const mqttPort = isBroker || MQTT_PORTS.has(address.port);
  const closed = `${address.url} closed the connection right after the TLS 1.3 handshake, ` +
    "without answering the token request";
  if (protocol === "TLSv1.3" && mqttPort) {
    const why = isBroker
      ? "it is the MQTT broker's address, which does not speak HTTP"
      : `port ${address.port} is Cumulocity's MQTT ${
        address.port === 1883 ? "" : "over TLS "
      }port, which does not speak HTTP`;
    return new TlsError(
      `${closed}: most likely this is not the REST endpoint (${why}); else the server did not accept the device certificate`,
      {
        code: "TLS_CLOSED_AFTER_HANDSHAKE",
        hint:
          "Give the tenant's HTTPS address as the REST URL: https://<tenant domain> (port 443), not the MQTT broker's (port 8883).",
        cause: err,
      },
    );
  }
  if (protocol === "TLSv1.3") {
    return new TlsError(
      `${closed}: most likely it did not accept the device certificate (how a server refuses one ` +
        `under TLS 1.3); else port ${address.port} is not the REST endpoint (an MQTT port such as ` +
        "8883 closes the connection on an HTTP request)",
      { code: "TLS_CLIENT_CERT_REFUSED", hint: REFUSED_HINT, cause: err },
    );
  }
  if (protocol === null) {
    return new TlsError(
      `The TLS handshake with ${address.url} failed: ${err?.message ?? "closed"}`,
      {
        code: "TLS_HANDSHAKE_FAILED",
        hint:
          "Check the REST URL and port; the server may also have refused the device certificate.",
        cause: err,
      },
    );
  }
  return new TokenError(
    `${address.url} closed the connection before answering the token request${
      err ? ` (${err.message})` : ""
    }`,
    {
      code: "HTTP_CONNECTION_CLOSED",
      stage: "http",
      hint: "Check that the REST URL names the tenant's HTTPS address; try again.",
      cause: err,
    },
  );
}

/** An error `https.request` throws before connecting (a permission, or anything else). */
export function requestRefused(err: unknown, address: RestAddress): C8yError {
  return networkError(err instanceof Error ? err : new Error(String(err)), "tcp", address);
}
