/**
 * The one call another Deno script needs: a device identity in, a JWT session token out.
 *
 * @module
 */

import { connect, type StageListener } from "../connect/connection.ts";
import { checkNumberOption } from "../check_option.ts";
import { diagnose } from "../diagnose/diagnose.ts";
import { EXPLAINED_CODES, explainRefusal } from "../diagnose/refusal.ts";
import { C8yError, UsageError } from "../errors.ts";
import type { DeviceIdentity, Problem, TrustAnchors } from "../types.ts";
import type { DeviceToken } from "./decode_token.ts";
import { requestToken } from "./request_token.ts";
import { parseBrokerUrl } from "../connect/broker_url.ts";
import { clientId as buildClientId } from "../connect/client_id.ts";
import { requestRestToken } from "./rest_token.ts";
import { parseRestUrl, restUrlOf } from "./rest_url.ts";

/** Options of {@linkcode fetchToken}. */
export interface FetchTokenOptions {
  /**
   * The broker URL: `ssl://host:port`, `mqtts://`, `tls://` or `host[:port]`. Required, except
   * with `via: "rest"` and `restUrl` (then only the REST address is contacted).
   */
  url?: string;
  /** The device's key and chain (from `loadKeyStore`). */
  identity: DeviceIdentity;
  /** The CAs that may sign the server's certificate (from `loadTrustStore`). @default the default root CAs */
  trust?: TrustAnchors;
  /** An explicit client id, checked against the certificate's CN. @default `d:<CN>` */
  clientId?: string;
  /**
   * Whether an explicit `clientId` must name the certificate's CN. `false` sends it as given,
   * to see what the broker answers to another id. @default true
   */
  checkClientId?: boolean;
  /**
   * The offline findings (`diagnose()`) a refused certificate is explained with; the error
   * carries them as `findings`. @default what `diagnose({ identity, clientId })` finds
   */
  findings?: readonly Problem[];
  /**
   * Bounds every wait, in milliseconds: connecting (DNS to CONNACK), the SUBACK of `s/dat`, and
   * each token request.
   * @default 10000 for connecting, 20000 for the SUBACK and for each token request
   */
  timeoutMs?: number;
  /** How many token requests to send before giving up. @default 3 */
  attempts?: number;
  /**
   * Called with each stage's time: `dns`, `tcp`, `tls`, `mqtt`, `subscribe`, `token` over MQTT;
   * `dns`, `tcp`, `tls`, `http`, `token` over REST.
   */
  onStage?: StageListener;
  /**
   * How to get the token: `"mqtt"` (`s/uat` -> `71,<JWT>` on `s/dat`) or `"rest"`
   * (`POST /devicecontrol/deviceAccessToken` over mutual TLS, see `requestRestToken`).
   * @default "mqtt"
   */
  via?: "mqtt" | "rest";
  /** With `via: "rest"`: the HTTPS address. @default the host of `url` on port 443 */
  restUrl?: string;
  /** With `via: "rest"`: send the device's chain in `X-Ssl-Cert-Chain`. @default false */
  sendChain?: boolean;
}

/**
 * Connects as the device, requests a JWT session token and disconnects (also on failure); with
 * `via: "rest"`, requests it over HTTPS with the device certificate instead (no MQTT connection;
 * the client id is still worked out, which checks the certificate's CN).
 *
 * @param options The URL, identity, trust anchors, client id, timeout, attempts, stage listener.
 * @returns The decoded token (signature not checked: see `decodeToken`) and the client id used.
 * @throws {C8yError} `UsageError` for a bad URL or client id (`OPTION_INVALID` for `attempts`
 * or `timeoutMs` below 1, before connecting), `CertificateError` for a CN that cannot work, and the `NetworkError`, `TlsError`, `MqttError`, `TokenError` of `connect` and
 * `requestToken` (e.g. `MQTT_SUBACK_TIMEOUT` when the broker accepts the connection but never
 * answers the subscription).
 *
 * @example Failures are classified (here: nothing listens on the port)
 * ```ts
 * import { C8yError, type DeviceIdentity, fetchToken } from "../../mod.ts";
 * // A stand-in identity: the connection fails before its key and certificate are used.
 * const identity = {
 *   privateKeyPem: "",
 *   chain: [{ pem: "", summary: { commonName: "device-001" } }],
 * } as unknown as DeviceIdentity;
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const url = `ssl://127.0.0.1:${listener.addr.port}`;
 * listener.close();
 * try {
 *   await fetchToken({ url, identity, timeoutMs: 2000 });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof C8yError) || err.code !== "NETWORK_REFUSED") throw err;
 * }
 * ```
 */
export async function fetchToken(
  options: FetchTokenOptions,
): Promise<DeviceToken & { clientId: string }> {
  // Checked before connecting: a value that cannot work fails here, not as a timeout later.
  checkNumberOption("attempts", options.attempts);
  checkNumberOption("timeoutMs", options.timeoutMs);
  if (options.via === "rest") {
    const restUrl = options.restUrl === undefined
      ? restUrlOf(parseBrokerUrl(brokerUrl(options)))
      : parseRestUrl(options.restUrl);
    const id = options.checkClientId === false && options.clientId !== undefined
      ? options.clientId
      : buildClientId(options.identity, { explicit: options.clientId });
    try {
      const token = await requestRestToken({
        restUrl,
        identity: options.identity,
        trust: options.trust,
        sendChain: options.sendChain,
        timeoutMs: options.timeoutMs,
        onStage: options.onStage,
        brokerUrl: options.url || undefined,
      });
      return { ...token, clientId: id };
    } catch (error) {
      // A 401/403 is explained from the offline findings, as a refusal over MQTT is.
      if (!(error instanceof C8yError)) throw error;
      if (!EXPLAINED_CODES.includes(error.code) && options.findings === undefined) throw error;
      throw explainRefusal(error, options.findings ?? diagnose({ identity: options.identity }));
    }
  }
  const connection = await connect({
    url: brokerUrl(options),
    identity: options.identity,
    trust: options.trust,
    clientId: options.clientId,
    checkClientId: options.checkClientId,
    findings: options.findings,
    connectTimeoutMs: options.timeoutMs,
    onStage: options.onStage,
  });
  try {
    const token = await requestToken(connection, {
      attempts: options.attempts,
      attemptTimeoutMs: options.timeoutMs,
      onStage: options.onStage,
    });
    return { ...token, clientId: connection.clientId };
  } finally {
    await connection.close();
  }
}

/** The broker URL `fetchToken` needs (over MQTT, or over REST without `restUrl`). */
function brokerUrl(options: FetchTokenOptions): string {
  if (options.url !== undefined && options.url !== "") return options.url;
  throw new UsageError(
    options.via === "rest"
      ? 'fetchToken() with via "rest" needs restUrl or url (the REST host is then url\'s on port 443)'
      : "fetchToken() needs url, the MQTT broker",
    {
      code: "URL_INVALID",
      hint: "Give the broker as url: ssl://<tenant domain>:8883.",
    },
  );
}
