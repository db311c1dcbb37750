/**
 * `connect()`: one call from a device identity to a live MQTT connection that stays up, the
 * entry point a device program is written on.
 *
 * The connection is MQTT.js (`npm:mqtt`, MQTT 3.1.1, clean session) on a TLS socket this module
 * opens in stages (`open_tls.ts`: DNS, TCP, TLS, each timed and classified), so that a refused
 * port, an untrusted server, a refused device certificate and a refused CONNECT are told apart
 * (`classify.ts`), on the first connection as on every reconnect.
 *
 * @module
 */

import { parseBrokerUrl } from "./broker_url.ts";
import { clientId as buildClientId } from "./client_id.ts";
import { checkNumberOption } from "../check_option.ts";
import { diagnose } from "../diagnose/diagnose.ts";
import { EXPLAINED_CODES, explainRefusal } from "../diagnose/refusal.ts";
import { loadMqtt, type Mqtt } from "../deps.ts";
import { C8yError, MqttError, PermissionError, UsageError } from "../errors.ts";
import type { DeviceIdentity, Problem, TrustAnchors } from "../types.ts";
import { type ReconnectOptions, reconnectTiming } from "./backoff.ts";
import type { ConnectionCallbacks, DeviceConnection } from "./device_connection.ts";
import { Connection } from "./live_connection.ts";
import { handshake, MAX_TIMER_MS } from "./mqtt_client.ts";
import { destroyed, openTls, type StageListener } from "./open_tls.ts";
import { nameUntrustedServer, serverCertificateNames } from "./server_certificate.ts";
import { type TlsConnectOptions, tlsOptions } from "./tls_options.ts";

export type { StageListener } from "./open_tls.ts";
export type {
  ConnectionCallbacks,
  DeviceConnection,
  PublishOptions,
  SubscribeOptions,
} from "./device_connection.ts";
export { reconnectDelayMs } from "./backoff.ts";
export type { ReconnectOptions } from "./backoff.ts";

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** The broker URL: `ssl://host:port`, `mqtts://`, `tls://` or `host[:port]` (port 8883 by default). */
  url: string;
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
   * The offline findings (`diagnose()`) to explain a refused certificate with: the error of a
   * refusal names the most likely cause among them, and carries them as `findings`.
   * @default what `diagnose({ identity, clientId })` finds, worked out only on a refusal
   */
  findings?: readonly Problem[];
  /** MQTT keepalive in seconds (0: none). @default 60 */
  keepaliveSeconds?: number;
  /** Time allowed from the DNS lookup to the CONNACK, per attempt, in milliseconds. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Reconnect automatically after a lost connection: `true` for the default timing, or the
   * timing. Each attempt repeats DNS, TCP and TLS with the same options.
   * @default false
   */
  reconnect?: boolean | ReconnectOptions;
  /**
   * With `reconnect`: whether publishes made while offline wait for the next connection (MQTT.js
   * holds them in memory and sends them once connected; a QoS 1/2 publish's promise settles with
   * its acknowledgement). `false` refuses them at once with `MQTT_NOT_CONNECTED`. Without
   * `reconnect`, publishing while offline is always refused.
   * @default true
   */
  queueOffline?: boolean;
  /** Callbacks for connection events and messages. */
  callbacks?: ConnectionCallbacks;
  /**
   * Called with each stage's time (`dns`, `tcp`, `tls`, `mqtt`) of the first connection, wall
   * clock. MQTT.js loads while DNS, TCP and TLS are under way (once per process; tens of
   * milliseconds in a cold one): where the network is faster than that, the stage it overlaps
   * shows the rest of the load (on loopback, `tcp`).
   */
  onStage?: StageListener;
  /**
   * TLS options built by the caller (from `tlsOptions`), used instead of those `identity` and
   * `trust` give (the identity still gives the client id).
   */
  tls?: TlsConnectOptions;
}

/**
 * Connects a device to an MQTT broker with mutual TLS, in one call: the URL as `parseBrokerUrl`
 * takes it, the identity and trust anchors as `loadKeyStore` and `loadTrustStore` return them.
 * MQTT 3.1.1 (protocol level 4), clean session, client id `d:<CN>` unless given, TCP no-delay.
 *
 * **Staying connected.** With `reconnect`, a lost connection is retried after a delay that starts
 * at `initialDelayMs` (1 s) and doubles after every failed attempt up to `maxDelayMs` (60 s), with
 * jitter (see {@linkcode reconnectDelayMs}); each attempt repeats DNS, TCP and TLS and is
 * reported through `error` when it fails (with the same codes as below). After a reconnect the
 * subscriptions are renewed and `connectComplete(true, url)` is called. Publishes made while
 * offline are queued by MQTT.js and sent after the reconnect (`queueOffline: false` refuses them);
 * a QoS 1/2 publish in flight when the connection dropped is sent again. `close()` stops it all.
 *
 * Every failure of the first connection is a {@linkcode C8yError} whose `code` and `stage` say
 * what went wrong:
 * - `usage` ({@linkcode UsageError}): a bad URL, client id, `USAGE_KEEPALIVE` (outside 0 to
 *   65535 s), `OPTION_INVALID` (delays not positive, or the initial one above the maximum;
 *   `connectTimeoutMs` below 1);
 * - `dns`: `DNS_NOT_FOUND`, `DNS_FAILED`, `NETWORK_TIMEOUT` ({@linkcode NetworkError});
 * - `tcp`: `NETWORK_REFUSED`, `NETWORK_UNREACHABLE`, `NETWORK_TIMEOUT`, `NETWORK_FAILED`;
 * - `tls` (`TlsError`): `TLS_SERVER_UNTRUSTED` (naming the server certificate's subject and
 *   issuer, and the CA a truststore must hold), `TLS_SERVER_EXPIRED`, `TLS_HOSTNAME_MISMATCH`,
 *   `TLS_CLIENT_CERT_REFUSED` (an alert about the device certificate, or the TLS 1.3 late
 *   rejection: a close right after the handshake, before the CONNACK), `TLS_CLIENT_CERT_REQUIRED`,
 *   `TLS_NOT_TLS`, `TLS_TIMEOUT`, `TLS_HANDSHAKE_FAILED`;
 * - `mqtt` ({@linkcode MqttError}): CONNACK 1 to 5 as `MQTT_UNACCEPTABLE_PROTOCOL`,
 *   `MQTT_IDENTIFIER_REJECTED`, `MQTT_SERVER_UNAVAILABLE`, `MQTT_BAD_CREDENTIALS`,
 *   `MQTT_NOT_AUTHORIZED` (with `returnCode`), `MQTT_CONNACK_TIMEOUT`, `MQTT_PROTOCOL` (the
 *   broker does not speak MQTT), `MQTT_CONNECTION_CLOSED`;
 * - `permission` ({@linkcode PermissionError}): `PERMISSION_NET` (naming the host and port to
 *   allow), `PERMISSION_ENV` (MQTT.js's dependencies look up environment variables when they
 *   load: run Deno with `--ignore-env`, which makes those look-ups find nothing).
 *
 * A refused device certificate (`TLS_CLIENT_CERT_REFUSED`, `MQTT_NOT_AUTHORIZED`) is explained
 * from the offline findings (`findings`, or what `diagnose()` finds for the identity and client
 * id): the hint names the most likely cause and its code, and the error carries the findings.
 * When the handshake completed and MQTT failed, `onStage` still hears the `tls` stage (with
 * `warning` under TLS 1.3 when the broker never answered).
 *
 * @param options URL, identity, trust anchors, client id, timeouts, reconnect, callbacks.
 * @returns The connected {@linkcode DeviceConnection}.
 * @throws {C8yError} As listed above; also the `CertificateError` of `clientId` and the errors of
 * `tlsOptions`.
 *
 * @example A refused connection is classified
 * ```ts
 * import { C8yError, connect, type DeviceIdentity } from "../../mod.ts";
 * // A stand-in identity: TCP fails before its key and certificate are used.
 * const identity = {
 *   privateKeyPem: "",
 *   chain: [{ pem: "", summary: { commonName: "device-001" } }],
 * } as unknown as DeviceIdentity;
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const url = `ssl://127.0.0.1:${listener.addr.port}`;
 * listener.close();
 * try {
 *   await connect({ url, identity });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof C8yError) || err.code !== "NETWORK_REFUSED" || err.stage !== "tcp") {
 *     throw err;
 *   }
 * }
 * ```
 *
 * @example Staying connected: a complete device program (`deno run --ignore-env
 * --allow-read=device.p12,truststore.jks --allow-net=mytenant.cumulocity.com:8883 device.ts`)
 * ```ts ignore
 * import { connect, loadKeyStore, loadTrustStore } from "jsr:@c8y-mqtt-cert/c8y-mqtt-cert";
 *
 * const identity = await loadKeyStore(await Deno.readFile("device.p12"), { password: "changeit" });
 * const trust = await loadTrustStore(await Deno.readFile("truststore.jks"));
 * await using device = await connect({
 *   url: "ssl://mytenant.cumulocity.com:8883",
 *   identity,
 *   trust,
 *   reconnect: { initialDelayMs: 1000, maxDelayMs: 60_000 },
 *   callbacks: {
 *     connectComplete: (reconnect, url) => console.log(reconnect ? "reconnected to" : "connected to", url),
 *     connectionLost: (cause) => console.warn("connection lost:", cause.message),
 *     error: (err) => console.warn(`${err.code}: ${err.message}`), // e.g. MQTT_NOT_AUTHORIZED
 *     // Every message arrives here, also `71,<JWT>` on s/dat when a token is requested (as
 *     // `keepToken` does): log the operations on s/ds, never the token.
 *     messageArrived: (topic, payload) => {
 *       if (topic === "s/ds") console.log(topic, new TextDecoder().decode(payload));
 *     },
 *   },
 * });
 * await device.subscribe("s/ds", { qos: 1 }); // renewed after every reconnect
 * setInterval(() => {
 *   // Queued while offline and sent after the reconnect.
 *   device.publish("s/us", "211,25", { qos: 1 }).catch((err) => console.warn(err.message));
 * }, 60_000);
 * await new Promise(() => {}); // run until the program is stopped
 * ```
 */
export async function connect(options: ConnectOptions): Promise<DeviceConnection> {
  const keepaliveSeconds = options.keepaliveSeconds ?? 60;
  if (!Number.isInteger(keepaliveSeconds) || keepaliveSeconds < 0 || keepaliveSeconds > 0xffff) {
    throw new UsageError(`The keepalive must be 0 to 65535 seconds, not ${keepaliveSeconds}`, {
      code: "USAGE_KEEPALIVE",
      hint: "MQTT 3.1.1 carries the keepalive in two bytes; 60 s is usual.",
    });
  }
  const reconnect = reconnectTiming(options.reconnect);
  const broker = parseBrokerUrl(options.url);
  const clientId = options.checkClientId === false && options.clientId !== undefined
    ? options.clientId
    : buildClientId(options.identity, { explicit: options.clientId });
  const tls = options.tls ?? tlsOptions(options.identity, options.trust, broker);
  // Timers hold at most 2^31-1 ms (~24.8 days); a longer delay would fire at once.
  const timeoutMs = Math.min(
    checkNumberOption("connectTimeoutMs", options.connectTimeoutMs) ?? 10_000,
    MAX_TIMER_MS,
  );
  const deadline = performance.now() + timeoutMs;
  // A failure says what is known: the server certificate's names when it is not trusted, the
  // offline findings that explain a refused device certificate.
  const judged = async (error: unknown): Promise<unknown> => {
    if (!(error instanceof C8yError)) return error;
    const named = await nameUntrustedServer(error, broker, tls);
    if (!EXPLAINED_CODES.includes(named.code) && options.findings === undefined) return named;
    const findings = options.findings ??
      diagnose({ identity: options.identity, clientId: options.clientId });
    return explainRefusal(named, findings);
  };
  // MQTT.js loads while DNS, TCP and TLS are under way.
  const [opening, loading] = await Promise.allSettled([
    openTls(broker, tls, timeoutMs, options.onStage),
    loadMqttClient(),
  ]);
  if (loading.status === "rejected") {
    if (opening.status === "fulfilled") await destroyed(opening.value.socket);
    throw loading.reason;
  }
  if (opening.status === "rejected") throw await judged(opening.reason);
  const opened = opening.value;
  const server = serverCertificateNames(opened.socket);
  const tlsDetail = `${opened.protocol ?? "TLS"}, server certificate ${
    server ? `"${server.subject}" (issued by "${server.issuer}") ` : ""
  }trusted`;
  const connection = new Connection({
    mqtt: loading.value,
    broker,
    clientId,
    tls,
    keepaliveSeconds,
    timeoutMs,
    reconnect,
    queueOffline: options.queueOffline ?? true,
    callbacks: options.callbacks,
  });
  const mqttStart = performance.now();
  try {
    await connection.start(
      opened.socket,
      () => handshake(connection.client, opened, { broker, clientId, timeoutMs, deadline }),
    );
  } catch (error) {
    // The handshake completed and MQTT failed: the tls stage is reported, as passed when the
    // broker answered (a CONNACK proves the server took the device certificate) or under TLS 1.2
    // (the server judged the certificate within the handshake), as not confirmed otherwise.
    if (error instanceof C8yError && error.stage === "mqtt") {
      const answered = error instanceof MqttError && error.returnCode !== undefined;
      const confirmed = answered || opened.protocol !== "TLSv1.3";
      options.onStage?.(
        "tls",
        opened.tlsMs,
        confirmed ? tlsDetail : `${tlsDetail}; client certificate not yet confirmed`,
        confirmed ? "ok" : "warning",
      );
    }
    throw await judged(error);
  }
  options.onStage?.("tls", opened.tlsMs, tlsDetail);
  options.onStage?.(
    "mqtt",
    performance.now() - mqttStart,
    `CONNACK 0 (accepted) as ${clientId}`,
  );
  connection.announce(false);
  return connection;
}

/** Loads MQTT.js, turning a missing permission at load time into a {@linkcode PermissionError}. */
async function loadMqttClient(): Promise<Mqtt> {
  try {
    return await loadMqtt();
  } catch (cause) {
    if (cause instanceof Deno.errors.NotCapable || cause instanceof Deno.errors.PermissionDenied) {
      throw new PermissionError(
        "Cannot load the MQTT client (MQTT.js): its dependencies look up environment variables when they load, which Deno did not allow",
        {
          code: "PERMISSION_ENV",
          hint: "Run Deno with --ignore-env (the look-ups then find nothing) or with --allow-env.",
          cause,
        },
      );
    }
    throw cause;
  }
}
