/**
 * The JWT session token over REST: `POST /devicecontrol/deviceAccessToken` over mutual TLS with
 * the device certificate, as Cumulocity documents it (the REST replacement of the MQTT token
 * endpoint, since 10.20.237), with every failure classified into the stage it happened in.
 *
 * **Why `node:https`.** Deno's own `fetch` takes a client certificate
 * (`Deno.createHttpClient({ cert, key, caCerts })`), but measured with Deno 2.9.6 it reports
 * every failure as one `TypeError: fetch failed` whose cause is a message string ("received
 * fatal alert: UnknownCA"), with no error code and no event between DNS, TCP and TLS. The
 * `node:https` request's socket emits `lookup`, `connect` and `secureConnect`, and its errors
 * carry OpenSSL's codes (`ECONNREFUSED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
 * `ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`), so each stage is timed and each failure named, as for MQTT.
 * The request opens its own socket (its `lookup` event times DNS): handed a TLS socket this
 * project opened (`createConnection`), Deno 2.9.6's HTTP client read the TCP bytes underneath it
 * and its parser failed on TLS records. The TLS connection is opened by a one-request agent
 * whose `createConnection` is `node:tls`'s `connect` with the request's own options: Deno 2.9.6's
 * `node:https` agent asks for sys access "ca" (a bare `--allow-sys`) to read the default root CAs
 * on every connection, even with `ca` given, whereas `node:tls` applies its bundled root CAs
 * without any permission, as for MQTT. So the REST request needs only `--allow-net`.
 *
 * **The late rejection.** As over MQTT, under TLS 1.3 a server that refuses the device
 * certificate does so after the client considers the handshake done: the alert (or a bare close)
 * arrives instead of the HTTP answer. It is reported as `TLS_CLIENT_CERT_REFUSED`, and the `tls`
 * stage's time only once an HTTP answer proves the certificate was accepted. A bare close is also
 * what an MQTT broker does with an HTTP request: at port 8883 or 1883, or at the broker's own
 * address, it is `TLS_CLOSED_AFTER_HANDSHAKE` (most likely not the REST endpoint), and elsewhere
 * the message names that possibility second.
 *
 * @module
 */

import { lapTimer } from "../connect/lap.ts";
import * as https from "node:https";
import type { IncomingMessage } from "node:http";
import { connect as connectTls, type TLSSocket } from "node:tls";
import type { C8yError, Stage } from "../errors.ts";
import type { StageListener } from "../connect/connection.ts";
import { tlsOptions } from "../connect/tls_options.ts";
import { parseBrokerUrl } from "../connect/broker_url.ts";
import type { DeviceToken } from "./decode_token.ts";
import type { DeviceIdentity, TrustAnchors } from "../types.ts";
import { parseRestUrl, type RestAddress } from "./rest_url.ts";
import {
  type Answer,
  lateError,
  networkError,
  requestRefused,
  statusError,
  timeoutError,
  tlsError,
  tokenOf,
  tooLarge,
} from "./rest_classify.ts";

/**
 * An agent for one request whose TLS connection is `node:tls`'s `connect` with the request's
 * options (host, port, key, cert, ca, servername, lookup ...). Deno 2.9.6's own `https.Agent`
 * reads the default root CAs through sys access "ca" for every connection; `tls.connect` applies
 * them without a permission. No keep-alive: the socket closes with the request.
 */
class TlsAgent extends https.Agent {
  /** @param opened Called with the new socket before any of its events can fire. */
  constructor(private readonly opened: (socket: TLSSocket) => void) {
    super({ keepAlive: false });
  }
  // deno-lint-ignore no-explicit-any
  override createConnection(options: any): TLSSocket {
    const socket = connectTls(options);
    this.opened(socket);
    return socket;
  }
}

/** The path of the platform's REST token call. */
export const REST_TOKEN_PATH = "/devicecontrol/deviceAccessToken";

/** The largest token answer read, in bytes (64 KiB); a larger one is `TOKEN_TOO_LARGE`. */
export const MAX_REST_ANSWER_BYTES = 65_536;

/** Options of {@linkcode requestRestToken}. */
export interface RestTokenOptions {
  /** The REST address: `https://host[:port]` or `host[:port]` (port 443), or a parsed one. */
  restUrl: string | RestAddress;
  /** The device's key and chain (from `loadKeyStore`). */
  identity: DeviceIdentity;
  /** The CAs that may sign the server's certificate. @default the default root CAs */
  trust?: TrustAnchors;
  /**
   * Send the device's chain (leaf first, PEM on one line) in the `X-Ssl-Cert-Chain` header, for
   * a tenant that trusts a CA above the device certificate's immediate issuer.
   * @default false
   */
  sendChain?: boolean;
  /** Time allowed from the DNS lookup to the whole answer, in milliseconds. @default 20000 */
  timeoutMs?: number;
  /** Called with each stage's time (`dns`, `tcp`, `tls`, `http`, `token`) once it succeeded. */
  onStage?: StageListener;
  /**
   * The device's MQTT broker (`ssl://host:port`), when known: a REST address that is the
   * broker's and closes without answering is named as the wrong endpoint
   * (`TLS_CLOSED_AFTER_HANDSHAKE`), as one at port 8883 or 1883 is.
   */
  brokerUrl?: string;
}

/** The longest delay `setTimeout` honours (2^31-1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Requests a JWT session token over REST with the device certificate:
 * `POST https://<host>:<port>/devicecontrol/deviceAccessToken`, `Accept: application/json`,
 * optionally `X-Ssl-Cert-Chain`, and reads `{"accessToken": "<JWT>"}` from the answer.
 *
 * Every failure is a {@linkcode C8yError} whose `code` and `stage` say what went wrong:
 * - `dns`, `tcp` ({@linkcode NetworkError}): `DNS_NOT_FOUND`, `DNS_FAILED`, `NETWORK_REFUSED`,
 *   `NETWORK_UNREACHABLE`, `NETWORK_TIMEOUT`, `NETWORK_FAILED`;
 * - `tls` ({@linkcode TlsError}): `TLS_SERVER_UNTRUSTED`, `TLS_SERVER_EXPIRED`,
 *   `TLS_HOSTNAME_MISMATCH`, `TLS_CLIENT_CERT_REFUSED` (an alert about the device certificate,
 *   or a close right after a TLS 1.3 handshake), `TLS_CLOSED_AFTER_HANDSHAKE` (such a close at
 *   port 8883 or 1883 or the `brokerUrl`: most likely not the REST endpoint),
 *   `TLS_CLIENT_CERT_REQUIRED`, `TLS_NOT_TLS`,
 *   `TLS_TIMEOUT`, `TLS_HANDSHAKE_FAILED`;
 * - `http` ({@linkcode TokenError}): `HTTP_UNAUTHORIZED` (401) and `HTTP_FORBIDDEN` (403): the
 *   device is not registered for certificate authentication or its CA is not trusted;
 *   `HTTP_STATUS` for any other status, `HTTP_TIMEOUT`, `HTTP_CONNECTION_CLOSED`;
 * - `token` ({@linkcode TokenError}): `TOKEN_TOO_LARGE` (over 64 KiB), `TOKEN_NOT_JSON`,
 *   `TOKEN_NO_ACCESS_TOKEN`, `TOKEN_MALFORMED`; the message names what came back (its first
 *   bytes, with anything shaped like a JWT left out, or the JSON keys), never a token;
 * - `permission` ({@linkcode PermissionError}): `PERMISSION_NET`, naming the `--allow-net` value
 *   (no sys access is needed, with or without `trust`).
 *
 * @param options The REST address, identity, trust anchors, chain header, timeout, stage listener.
 * @returns The decoded token (signature not checked: see `decodeToken`).
 * @throws {C8yError} As listed above; `UsageError` for a bad REST URL, `CertificateError`
 * `CHAIN_EMPTY` for an identity without certificate.
 *
 * @example A port nothing listens on is classified
 * ```ts
 * import { C8yError, requestRestToken } from "@c8y-mqtt-cert/c8y-mqtt-cert";
 * import type { DeviceIdentity } from "@c8y-mqtt-cert/c8y-mqtt-cert";
 * // A stand-in identity: the connection fails before its key and certificate are used.
 * const identity = {
 *   privateKeyPem: "",
 *   chain: [{ pem: "", summary: { commonName: "device-001" } }],
 * } as unknown as DeviceIdentity;
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const restUrl = `https://127.0.0.1:${listener.addr.port}`;
 * listener.close();
 * try {
 *   await requestRestToken({ restUrl, identity, timeoutMs: 2000 });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof C8yError) || err.code !== "NETWORK_REFUSED") throw err;
 * }
 * ```
 */
export function requestRestToken(options: RestTokenOptions): Promise<DeviceToken> {
  const address = typeof options.restUrl === "string"
    ? parseRestUrl(options.restUrl)
    : options.restUrl;
  const tls = tlsOptions(options.identity, options.trust, address);
  const timeoutMs = Math.min(options.timeoutMs ?? 20_000, MAX_TIMER_MS);
  const headers: Record<string, string> = { "Accept": "application/json", "Content-Length": "0" };
  if (options.sendChain) headers["X-Ssl-Cert-Chain"] = chainHeader(options.identity);
  const onStage = options.onStage;
  const broker = options.brokerUrl === undefined ? undefined : parseBrokerUrl(options.brokerUrl);

  return new Promise<DeviceToken>((resolve, reject) => {
    let stage: Stage = address.hostIsIp ? "tcp" : "dns";
    let settled = false;
    /** An answer arrived: from here its own events tell how reading it ends. */
    let answered = false;
    let protocol: string | null = null;
    let tlsMs = 0;
    const lap = lapTimer();
    const fail = (err: C8yError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(timeoutError(stage, address, timeoutMs)), timeoutMs);

    let request: ReturnType<typeof https.request>;
    try {
      request = https.request({
        host: address.host,
        port: address.port,
        method: "POST",
        path: REST_TOKEN_PATH,
        headers,
        // The socket's own `lookup` event times DNS; it is watched from the moment the agent
        // creates the socket. A lookup function of our own would not do: under Deno 2.9.6 an
        // explicit `dns.lookup()` needs `--allow-net=<host>` without a port and fails with EPERM
        // under the `--allow-net=<host>:<port>` this command asks for.
        agent: new TlsAgent((socket) => {
          socket.on("lookup", (err: Error | null, ip: string) => {
            if (err || settled || stage !== "dns") return; // the error event follows
            onStage?.("dns", lap(), `${address.host} -> ${ip}`);
            stage = "tcp";
          });
        }),
        key: tls.key,
        cert: tls.cert,
        ca: tls.ca,
        servername: tls.servername,
        minVersion: tls.minVersion,
        rejectUnauthorized: true,
      });
    } catch (err) {
      // Thrown at once: a permission (or anything else the request refuses before connecting).
      clearTimeout(timer);
      settled = true;
      reject(requestRefused(err, address));
      return;
    }
    if (address.hostIsIp) onStage?.("dns", 0, `${address.host} (an IP address)`);
    request.on("socket", (socket: TLSSocket) => {
      socket.on("connect", () => {
        if (settled) return;
        onStage?.("tcp", lap(), `connected to ${socket.remoteAddress}:${socket.remotePort}`);
        stage = "tls";
      });
      socket.on("secureConnect", () => {
        if (settled) return;
        tlsMs = lap();
        protocol = socket.getProtocol();
        stage = "http";
      });
    });
    request.on("error", (err: Error) => {
      if (answered) return;
      if (stage === "dns" || stage === "tcp") fail(networkError(err, stage, address));
      else if (stage === "tls") fail(tlsError(err, address, tls.ca !== undefined));
      else fail(lateError(err, address, protocol, broker));
    });
    request.on("close", () => {
      if (!answered && stage === "http") {
        fail(lateError(undefined, address, protocol, broker));
      }
    });
    request.on("response", (response: IncomingMessage) => {
      if (settled) return;
      answered = true;
      // An answer proves the server accepted the device certificate.
      onStage?.("tls", tlsMs, `${protocol ?? "TLS"}, server certificate trusted`);
      readAnswer(response, address).then((answer) => {
        if (settled) return;
        const status = response.statusCode ?? 0;
        if (status < 200 || status > 299) {
          fail(statusError(status, answer, address));
          return;
        }
        onStage?.("http", lap(), `${status}, ${answer.bytes.length} bytes`);
        stage = "token";
        let token: DeviceToken;
        try {
          token = tokenOf(answer, address);
        } catch (err) {
          fail(err as C8yError);
          return;
        }
        settled = true;
        clearTimeout(timer);
        onStage?.(
          "token",
          lap(),
          `accessToken, ${token.subject ?? "no subject"}, expires ${token.expiresAt}`,
        );
        resolve(token);
      }, (err: C8yError) => fail(err));
    });
    request.end();
  });
}

/**
 * The `X-Ssl-Cert-Chain` header value: the device's chain, leaf first, as PEM with its line
 * breaks replaced by spaces (a header value cannot carry line breaks; the platform's documentation
 * shows the PEM on one line this way).
 */
function chainHeader(identity: DeviceIdentity): string {
  return identity.chain.map((c) => c.pem.trim().split(/\r?\n/).join(" ")).join(" ");
}

function readAnswer(response: IncomingMessage, address: RestAddress): Promise<Answer> {
  const contentType = String(response.headers["content-type"] ?? "no content type");
  return new Promise((resolve, reject) => {
    const declared = Number(response.headers["content-length"]);
    if (declared > MAX_REST_ANSWER_BYTES) {
      response.destroy();
      reject(tooLarge(address, `${declared} bytes`, contentType, MAX_REST_ANSWER_BYTES));
      return;
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    response.on("data", (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > MAX_REST_ANSWER_BYTES) {
        response.destroy();
        reject(
          tooLarge(
            address,
            `more than ${MAX_REST_ANSWER_BYTES} bytes`,
            contentType,
            MAX_REST_ANSWER_BYTES,
          ),
        );
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    response.on("close", () => {
      if (!ended) reject(lateError(undefined, address, "TLSv1.2"));
    });
    response.on("end", () => {
      ended = true;
      const bytes = new Uint8Array(size);
      let offset = 0;
      for (const c of chunks) {
        bytes.set(c, offset);
        offset += c.length;
      }
      resolve({ bytes, contentType });
    });
    response.on("error", (err: Error) => reject(lateError(err, address, null)));
  });
}
