/**
 * Turns what can go wrong on the way to a TLS session into a {@linkcode C8yError} naming the
 * stage: resolver and socket errors, TLS errors and alerts, the TLS 1.3 late rejection, and waits
 * that ran out (the MQTT session's failures are `classify_mqtt.ts`).
 *
 * Pure: every function takes what happened (an error, a return code, the first bytes) and returns
 * an error object; nothing here opens a connection.
 *
 * @module
 */

import { type BrokerAddress, hostPort } from "./broker_url.ts";
import {
  type C8yError,
  MqttError,
  NetworkError,
  PermissionError,
  type Stage,
  TlsError,
} from "../errors.ts";
import type { TlsConnectOptions } from "./tls_options.ts";
/** `2 s`, `0.3 s`. */
export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** The string `code` of an error, if it has one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Where a connection goes: the broker, or the platform's REST endpoint. */
export type Endpoint = Pick<BrokerAddress, "host" | "port" | "url">;

/**
 * The words that differ between the MQTT broker and the REST endpoint in the failures of the
 * stages they share (`dns`, `tcp`, `tls`); everything else is worded once, here.
 */
export interface EndpointWords {
  /** What the host is, in a message: `broker host`, `REST host`. */
  host: string;
  /** Where the connection goes, in a hint: `the broker`, `the platform`. */
  peer: string;
  /** Hint for a host name that does not exist. */
  notFoundHint: string;
  /** Hint for a refused connection. */
  refusedHint: string;
  /** How to allow more time, ending the TCP timeout hint. */
  moreTime: string;
  /** Hint for a TLS handshake that did not finish in time. */
  tlsTimeoutHint: string;
}

/** The broker's words (the default). */
export const BROKER_WORDS: EndpointWords = {
  host: "broker host",
  peer: "the broker",
  notFoundHint:
    "Check the spelling of the tenant domain in the URL, e.g. ssl://<tenant>.cumulocity.com:8883.",
  refusedHint: "Check the port (Cumulocity uses 8883) and that the broker is running.",
  moreTime: "try a longer `connectTimeoutMs`",
  tlsTimeoutHint:
    "Check that the URL names the broker's MQTT over TLS port (8883), not a plain MQTT port (1883).",
};

/** A stage (`dns`, `tcp`, `tls`) that did not finish within the connection's time limit. */
export function timeoutError(
  stage: Stage,
  endpoint: Endpoint,
  timeoutMs: number,
  words: EndpointWords = BROKER_WORDS,
): C8yError {
  const within = `within ${seconds(timeoutMs)}`;
  if (stage === "dns") {
    return new NetworkError(`Looking up "${endpoint.host}" did not finish ${within}`, {
      code: "NETWORK_TIMEOUT",
      stage: "dns",
      hint: "Check the DNS configuration and the network connection.",
    });
  }
  if (stage === "tcp") {
    return new NetworkError(
      `Could not connect to ${endpoint.host} port ${endpoint.port} ${within} (no answer)`,
      {
        code: "NETWORK_TIMEOUT",
        stage: "tcp",
        hint: "A firewall or proxy may drop traffic to this port; check that outgoing port " +
          `${endpoint.port} is open, or ${words.moreTime}.`,
      },
    );
  }
  return new TlsError(`The TLS handshake with ${endpoint.url} did not finish ${within}`, {
    code: "TLS_TIMEOUT",
    hint: words.tlsTimeoutHint,
  });
}

/** A resolver or socket error of stage `dns` or `tcp` (or a missing net permission). */
export function classifyNetworkError(
  err: unknown,
  stage: Stage,
  endpoint: Endpoint,
  words: EndpointWords = BROKER_WORDS,
): C8yError {
  const code = errorCode(err);
  const where = `${endpoint.host} port ${endpoint.port}`;
  if (err instanceof Deno.errors.NotCapable || code === "EPERM" || code === "EACCES") {
    return new PermissionError(`Deno is not allowed to connect to ${where}`, {
      code: "PERMISSION_NET",
      hint: `Allow it with --allow-net=${hostPort(endpoint.host, endpoint.port)}.`,
      cause: err,
    });
  }
  if (stage === "dns") {
    if (code === "ENOTFOUND" || code === "EAI_NONAME" || code === "EAI_NODATA") {
      return new NetworkError(
        `The ${words.host} "${endpoint.host}" does not exist (DNS lookup failed)`,
        { code: "DNS_NOT_FOUND", stage: "dns", hint: words.notFoundHint, cause: err },
      );
    }
    return new NetworkError(
      `Could not look up the ${words.host} "${endpoint.host}" (${code ?? "DNS error"})`,
      {
        code: "DNS_FAILED",
        stage: "dns",
        hint: "Check the network connection and DNS servers, then try again.",
        cause: err,
      },
    );
  }
  if (code === "ECONNREFUSED") {
    return new NetworkError(`${where} refused the connection (nothing listens there)`, {
      code: "NETWORK_REFUSED",
      stage: "tcp",
      hint: words.refusedHint,
      cause: err,
    });
  }
  if (
    code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EHOSTDOWN" ||
    code === "ENETDOWN" || code === "EADDRNOTAVAIL"
  ) {
    return new NetworkError(`${where} is unreachable (${code})`, {
      code: "NETWORK_UNREACHABLE",
      stage: "tcp",
      hint: `Check the network connection and routing (or the proxy/VPN) to ${words.peer}.`,
      cause: err,
    });
  }
  if (code === "ETIMEDOUT") {
    return new NetworkError(`Connecting to ${where} timed out`, {
      code: "NETWORK_TIMEOUT",
      stage: "tcp",
      hint: "A firewall may drop traffic to this port; check that outgoing port " +
        `${endpoint.port} is open.`,
      cause: err,
    });
  }
  return new NetworkError(`Could not connect to ${where}: ${messageOf(err)}`, {
    code: "NETWORK_FAILED",
    stage: "tcp",
    hint: `Check the network connection to ${words.peer}.`,
    cause: err,
  });
}

const ALERT_NAMES: Record<string, string> = {
  UNKNOWN_CA: "unknown CA",
  BAD_CERTIFICATE: "bad certificate",
  CERTIFICATE_UNKNOWN: "certificate unknown",
  UNSUPPORTED_CERTIFICATE: "unsupported certificate",
  CERTIFICATE_EXPIRED: "certificate expired",
  CERTIFICATE_REVOKED: "certificate revoked",
  ACCESS_DENIED: "access denied",
  DECRYPT_ERROR: "decrypt error",
};
// rustls names the same alerts in CamelCase in messages ("received fatal alert: UnknownCA").

const ALERT_MESSAGE =
  /fatal alert: (UnknownCA|BadCertificate|CertificateUnknown|UnsupportedCertificate|CertificateExpired|CertificateRevoked|AccessDenied|DecryptError)\b/;

/** The name of an alert about the client's certificate, when `err` is one. */
export function clientCertAlert(err: unknown): string | undefined {
  const code = errorCode(err) ?? "";
  const m = /ALERT_([A-Z_]+)$/.exec(code);
  if (m && m[1] in ALERT_NAMES) return ALERT_NAMES[m[1]];
  const mm = ALERT_MESSAGE.exec(messageOf(err));
  if (mm) {
    return mm[1].replace(/([a-z])([A-Z])/g, "$1 $2").replace("CA", " CA").trim().toLowerCase();
  }
  return undefined;
}

/**
 * `TLS_NOT_TLS` for a peer that closed or reset the connection without answering the TLS
 * ClientHello with a single byte: what a plain MQTT broker (port 1883) does with the bytes of a
 * ClientHello it cannot parse as an MQTT packet.
 */
export function noTlsAnswer(broker: BrokerAddress, cause: unknown): TlsError {
  return new TlsError(
    `${broker.url} closed the connection without answering the TLS handshake (not a byte came ` +
      "back): the port may be plain MQTT (1883-style), which does not speak TLS",
    {
      code: "TLS_NOT_TLS",
      hint: `Check the port: Cumulocity's MQTT over TLS port is 8883 (1883 is plain MQTT, which ` +
        `certificates cannot use); a firewall that cuts TLS to port ${broker.port} does the same.`,
      cause,
    },
  );
}

/** Whether `err` is this machine's TLS library refusing its own setup (see localRejection). */
export function isLocalTlsError(err: unknown): boolean {
  return localRejection(err, "") !== undefined;
}

/**
 * The names a server certificate is valid for, as node:tls's `ERR_TLS_CERT_ALTNAME_INVALID`
 * tells them: its `cert.subjectaltname` (`DNS:a, IP Address:1.2.3.4`), else the end of its
 * reason (`... is not in the cert's altnames: DNS:a`, `... is not cert's CN: a`).
 */
export function certificateNames(err: unknown): string[] {
  const san = (err as { cert?: { subjectaltname?: unknown } } | null)?.cert?.subjectaltname;
  const text = typeof san === "string"
    ? san
    : /(?:altnames|cert's list|cert's CN): (.+)$/.exec(messageOf(err))?.[1] ?? "";
  return text.split(/,\s*/).map((n) => n.replace(/^(DNS|IP Address|IP):\s*/, "").trim())
    .filter((n) => n !== "");
}

/**
 * `TLS_HOSTNAME_MISMATCH`: the server certificate is not valid for the name connected to; the
 * message names the names it is valid for, when the error tells them.
 *
 * @param err The node:tls error.
 * @param url The URL connected to.
 * @param name The host name (or address) the certificate was checked against.
 */
export function hostnameMismatch(err: unknown, url: string, name: string): TlsError {
  const names = certificateNames(err);
  const validFor = names.length === 0
    ? ""
    : ` (it is valid for ${names.slice(0, 5).map((n) => `"${n}"`).join(", ")}${
      names.length > 5 ? `, and ${names.length - 5} more` : ""
    })`;
  return new TlsError(`The server certificate of ${url} is not valid for "${name}"${validFor}`, {
    code: "TLS_HOSTNAME_MISMATCH",
    hint: names.length === 0
      ? "Use the host name the server's certificate names (the tenant domain), not an alias or IP address."
      : "Connect with a name the server's certificate is valid for (the tenant domain), not an " +
        "alias or IP address; if that name is right, the server has the wrong certificate.",
    cause: err,
  });
}

/**
 * OpenSSL's reasons for refusing the device's own key or certificate when the TLS client is set
 * up (before a byte is sent): `SSL_CTX_use_certificate` and the chain checks of its security
 * level. The same words without the `SSL routines` library (`EE_KEY_TOO_SMALL` as a verify code)
 * are about the server's certificate.
 */
const LOCAL_REASON =
  /^ERR_OSSL_SSL_(EE_KEY_TOO_SMALL|CA_KEY_TOO_SMALL|KEY_TOO_SMALL|CA_MD_TOO_WEAK)$/;
const LOCAL_MESSAGE = /SSL routines:[^:]*:((?:ee |ca )?key too small|ca md too weak)/i;

/**
 * `TLS_LOCAL_CERT_REJECTED` when `err` is this machine's TLS library (OpenSSL under Deno's
 * node:tls) refusing to use the device's own key or certificate ("key too small", "ee key too
 * small", "ca md too weak"): the server never saw it. `undefined` for any other error.
 */
export function localRejection(err: unknown, url: string): TlsError | undefined {
  const code = errorCode(err) ?? "";
  const m = LOCAL_MESSAGE.exec(messageOf(err));
  if (!LOCAL_REASON.test(code) && m === null) return undefined;
  const reason = m?.[1].toLowerCase() ??
    code.replace(/^ERR_OSSL_SSL_/, "").replaceAll("_", " ").toLowerCase();
  return new TlsError(
    `This machine's TLS library refused the device's own key or certificate before connecting ` +
      `to ${url} (OpenSSL: ${reason})`,
    {
      code: "TLS_LOCAL_CERT_REJECTED",
      hint: /md too weak/.test(reason)
        ? "A certificate of the device chain is signed with a digest OpenSSL's security level " +
          "forbids (MD5 or SHA-1): issue the chain again with SHA-256 or better."
        : "OpenSSL's default security level needs RSA keys of at least 2048 bits: give the " +
          "device a new key (RSA 2048+ or EC P-256) and certificate.",
      cause: err,
    },
  );
}

/** Whether `err` is a TLS alert (by its code or, for rustls, its message). */
export function isTlsAlert(err: unknown): boolean {
  return /ALERT/.test(errorCode(err) ?? "") || /fatal alert/.test(messageOf(err));
}

const REFUSED_HINT =
  "Upload the CA that issued the device certificate (or its immediate issuer) to the tenant's " +
  "trusted certificates, and check that the keystore holds the full chain (`inspect`).";

/**
 * Whether `err` says the server's certificate does not chain to a trusted CA: OpenSSL's
 * verification codes, or rustls's "unknown issuer" and self-signed wording.
 */
export function isUntrustedServer(err: unknown): boolean {
  return UNTRUSTED_CODES.has(errorCode(err) ?? "") ||
    /UnknownIssuer|unknown issuer|self[- ]signed/i.test(messageOf(err));
}

const UNTRUSTED_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REJECTED",
  "INVALID_CA",
]);

/** An error of the TLS handshake: the server's certificate, an alert, a port without TLS. */
export function classifyTlsError(
  err: unknown,
  broker: BrokerAddress,
  options: TlsConnectOptions,
): C8yError {
  const code = errorCode(err) ?? "";
  const message = messageOf(err);
  if (err instanceof Deno.errors.NotCapable) return classifyNetworkError(err, "tcp", broker);
  const local = localRejection(err, broker.url);
  if (local !== undefined) return local;
  if (isUntrustedServer(err)) {
    return new TlsError(
      `The server certificate of ${broker.url} is not trusted (${code || message})`,
      {
        code: "TLS_SERVER_UNTRUSTED",
        hint: options.ca === undefined
          ? "The default root CAs do not trust it: give `trust` with the CA that signed the server's certificate."
          : "The truststore does not hold the CA that signed the server's certificate: add it, or leave `trust` out to use the default root CAs.",
        cause: err,
      },
    );
  }
  if (
    code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID" ||
    /Expired|NotValidYet/.test(message)
  ) {
    return new TlsError(
      `The server certificate of ${broker.url} is ${
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
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || /NotValidForName|altnames/.test(message)) {
    return hostnameMismatch(err, broker.url, options.servername ?? options.host);
  }
  if (/CERTIFICATE_REQUIRED/.test(code) || /CertificateRequired/.test(message)) {
    return new TlsError(`${broker.url} requires a client certificate, but none was sent`, {
      code: "TLS_CLIENT_CERT_REQUIRED",
      hint: "Give the device keystore with its private key and certificate.",
      cause: err,
    });
  }
  const alert = clientCertAlert(err);
  if (alert !== undefined) {
    return new TlsError(
      `${broker.url} refused the device certificate (TLS alert "${alert}")`,
      { code: "TLS_CLIENT_CERT_REFUSED", hint: REFUSED_HINT, cause: err },
    );
  }
  if (
    code === "ERR_SSL_WRONG_VERSION_NUMBER" ||
    /InvalidContentType|wrong version number|CorruptMessage/.test(message)
  ) {
    return new TlsError(`${broker.url} does not speak TLS`, {
      code: "TLS_NOT_TLS",
      hint:
        "Check the port: Cumulocity's MQTT over TLS port is 8883 (1883 is plain MQTT, which certificates cannot use).",
      cause: err,
    });
  }
  return new TlsError(`The TLS handshake with ${broker.url} failed: ${message}`, {
    code: "TLS_HANDSHAKE_FAILED",
    hint: "Check the URL and port; the server may also have refused the device certificate.",
    cause: err,
  });
}

/**
 * Classifies an error or close of the TLS stream after the handshake and before the CONNACK.
 * An alert names the reason. A bare close under TLS 1.3 is, most likely, the server refusing the
 * device certificate (it judges it after the client considers the handshake done). Under TLS 1.2
 * the server has accepted the certificate before the handshake ends, so a bare close there is
 * the MQTT side hanging up.
 */
export function lateRejection(
  broker: BrokerAddress,
  cause: Error | undefined,
  protocol: string | null,
): TlsError | MqttError {
  const alert = cause === undefined ? undefined : clientCertAlert(cause);
  if (cause !== undefined && /CERTIFICATE_REQUIRED/.test(errorCode(cause) ?? "")) {
    return new TlsError(`${broker.url} requires a client certificate, but none was sent`, {
      code: "TLS_CLIENT_CERT_REQUIRED",
      hint: "Give the device keystore with its private key and certificate.",
      cause,
    });
  }
  if (alert !== undefined || (cause !== undefined && isTlsAlert(cause))) {
    const how = alert !== undefined ? `TLS alert "${alert}"` : `a TLS alert (${messageOf(cause!)})`;
    return new TlsError(
      `${broker.url} did not accept the device certificate: it refused with ${how}`,
      {
        code: "TLS_CLIENT_CERT_REFUSED",
        hint: REFUSED_HINT,
        cause,
      },
    );
  }
  if (protocol === "TLSv1.2") {
    return new MqttError(
      `${broker.url} closed the connection after the TLS handshake, before answering MQTT CONNECT`,
      {
        code: "MQTT_CONNECTION_CLOSED",
        hint: "Under TLS 1.2 the server had accepted the device certificate: check that the URL " +
          "names Cumulocity's MQTT port (8883) and try again; the broker may be overloaded.",
        cause,
      },
    );
  }
  return new TlsError(
    `${broker.url} most likely did not accept the device certificate: it closed the connection ` +
      "right after the TLS 1.3 handshake, before answering MQTT CONNECT (how a server refuses a " +
      "client certificate under TLS 1.3)",
    { code: "TLS_CLIENT_CERT_REFUSED", hint: REFUSED_HINT, cause },
  );
}

/** The message of an error, or the value as text. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
