/**
 * The one call another Deno script needs: a device identity in, a JWT session token out.
 *
 * @module
 */

import { connect, type StageListener } from "../connect/connection.ts";
import type { DeviceIdentity, TrustAnchors } from "../types.ts";
import type { DeviceToken } from "./decode_token.ts";
import { requestToken } from "./request_token.ts";

/** Options of {@linkcode fetchToken}. */
export interface FetchTokenOptions {
  /** The broker URL: `ssl://host:port`, `mqtts://`, `tls://` or `host[:port]`. */
  url: string;
  /** The device's key and chain (from `loadKeyStore`). */
  identity: DeviceIdentity;
  /** The CAs that may sign the server's certificate (from `loadTrustStore`). @default the default root CAs */
  trust?: TrustAnchors;
  /** An explicit client id, checked against the certificate's CN. @default `d:<CN>` */
  clientId?: string;
  /**
   * Bounds every wait, in milliseconds: connecting (DNS to CONNACK), the SUBACK of `s/dat`, and
   * each token request.
   * @default 10000 for connecting, 20000 for the SUBACK and for each token request
   */
  timeoutMs?: number;
  /** How many token requests to send before giving up. @default 3 */
  attempts?: number;
  /** Called with each stage's time (`dns`, `tcp`, `tls`, `mqtt`, `subscribe`, `token`). */
  onStage?: StageListener;
}

/**
 * Connects as the device, requests a JWT session token and disconnects (also on failure).
 *
 * @param options The URL, identity, trust anchors, client id, timeout, attempts, stage listener.
 * @returns The decoded token (signature not checked: see `decodeToken`) and the client id used.
 * @throws {C8yError} `UsageError` for a bad URL or client id, `CertificateError` for a CN that
 * cannot work, and the `NetworkError`, `TlsError`, `MqttError`, `TokenError` of `connect` and
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
  const connection = await connect({
    url: options.url,
    identity: options.identity,
    trust: options.trust,
    clientId: options.clientId,
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
