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

import { Buffer } from "node:buffer";
import type { TLSSocket } from "node:tls";
import { type BrokerAddress, parseBrokerUrl } from "../broker_url.ts";
import { clientId as buildClientId } from "../client_id.ts";
import { loadMqtt, type Mqtt, type MqttClient } from "../deps.ts";
import {
  C8yError,
  MqttError,
  NetworkError,
  PermissionError,
  type Stage,
  UsageError,
} from "../errors.ts";
import type { DeviceIdentity, TrustAnchors } from "../types.ts";
import { ackTimeout, lostWhile, messageOf, notConnected, unsendable } from "./classify.ts";
import { createMqttClient, handshake, MAX_TIMER_MS } from "./mqtt_client.ts";
import { destroyed, openTls, type StageListener } from "./open_tls.ts";
import { type TlsConnectOptions, tlsOptions } from "./tls_options.ts";

export type { StageListener } from "./open_tls.ts";

/**
 * Callbacks mirroring Paho's `MqttCallbackExtended` (the Java example's interface), plus `error`.
 * Exceptions thrown by a callback are not caught.
 */
export interface ConnectionCallbacks {
  /** A connection was established (`reconnect` is true after an automatic reconnect). */
  connectComplete?(reconnect: boolean, url: string): void;
  /** An established connection was lost (not called after `close()`); `cause` says why. */
  connectionLost?(cause: Error): void;
  /** A message arrived on a subscribed topic. */
  messageArrived?(topic: string, payload: Uint8Array): void;
  /** A publish completed: QoS 0 written to the socket, QoS 1/2 acknowledged by the broker. */
  deliveryComplete?(topic: string): void;
  /**
   * A failure after the first connection: each failed or refused reconnect attempt (e.g.
   * `MQTT_NOT_AUTHORIZED`, `NETWORK_REFUSED`, `TLS_CLIENT_CERT_REFUSED`), a subscription refused
   * when it was renewed, or an error on the live connection (`CONNECTION_LOST`, `MQTT_PROTOCOL`).
   */
  error?(err: C8yError): void;
}

/** Timing of the automatic reconnect: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** The delay before the first attempt, in milliseconds; it doubles after each failure. @default 1000 */
  initialDelayMs?: number;
  /** The longest delay between two attempts, in milliseconds. @default 60000 */
  maxDelayMs?: number;
}

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
  /** Called with each stage's time (`dns`, `tcp`, `tls`, `mqtt`) of the first connection. */
  onStage?: StageListener;
  /**
   * TLS options built by the caller (from `tlsOptions`), used instead of those `identity` and
   * `trust` give (the identity still gives the client id).
   */
  tls?: TlsConnectOptions;
}

/** Options of {@linkcode DeviceConnection.publish}. */
export interface PublishOptions {
  /** Quality of service. @default 0 */
  qos?: 0 | 1 | 2;
  /** Retain flag. @default false */
  retain?: boolean;
  /**
   * Time allowed for the acknowledgement (PUBACK, PUBCOMP; for QoS 0 the write), in
   * milliseconds. When it runs out the promise rejects; MQTT.js keeps the message, so a broker
   * that answers late (or a reconnect that sends it again) may still deliver it.
   * @default no limit
   */
  timeoutMs?: number;
}

/** Options of {@linkcode DeviceConnection.subscribe}. */
export interface SubscribeOptions {
  /** Requested quality of service. @default 0 */
  qos?: 0 | 1 | 2;
  /** Time allowed for the SUBACK, in milliseconds. @default no limit */
  timeoutMs?: number;
}

/** A live MQTT connection of a device (MQTT 3.1.1, clean session), from {@linkcode connect}. */
export interface DeviceConnection extends AsyncDisposable {
  /** The MQTT.js client, for anything MQTT.js offers beyond this interface. */
  readonly client: MqttClient;
  /** The client id the connection uses, e.g. `d:device-001`. */
  readonly clientId: string;
  /** The broker, as `mqtts://host:port`. */
  readonly url: string;
  /** Whether the connection is currently up. */
  readonly connected: boolean;
  /**
   * Publishes a message; resolves when it is delivered (QoS 0: written; QoS 1: PUBACK; QoS 2:
   * PUBCOMP). While offline with `reconnect`, it waits for the next connection (see
   * `queueOffline`).
   * @throws {MqttError} `MQTT_NOT_CONNECTED`, `MQTT_PUBLISH_FAILED` (a topic with wildcards),
   * `MQTT_PUBACK_TIMEOUT` (no acknowledgement within `timeoutMs`).
   * @throws {NetworkError} `CONNECTION_LOST` when the connection closes meanwhile.
   */
  publish(topic: string, payload: string | Uint8Array, options?: PublishOptions): Promise<void>;
  /**
   * Subscribes to a topic filter and resolves with the granted QoS. The subscription is renewed
   * after every automatic reconnect (the session is clean, so the broker forgets it).
   * @throws {MqttError} `MQTT_SUBSCRIBE_REFUSED` (stage `subscribe`) when the broker refuses it,
   * `MQTT_SUBACK_TIMEOUT` when no SUBACK came within `timeoutMs`, `MQTT_NOT_CONNECTED`.
   * @throws {NetworkError} `CONNECTION_LOST` (stage `subscribe`) when the connection closes
   * before the broker answered.
   */
  subscribe(topic: string, options?: SubscribeOptions): Promise<number>;
  /** Unsubscribes (and stops renewing the subscription). */
  unsubscribe(topic: string): Promise<void>;
  /** Adds callbacks (besides those given to `connect`); returns a function that removes them. */
  listen(callbacks: ConnectionCallbacks): () => void;
  /** Sends DISCONNECT and closes the connection, stopping any reconnect; safe to call twice. */
  close(): Promise<void>;
}

/** Time allowed for the broker to close its side after DISCONNECT before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

/** The default reconnect timing. */
const DEFAULT_RECONNECT: Required<ReconnectOptions> = { initialDelayMs: 1000, maxDelayMs: 60_000 };

/**
 * The delay before reconnect attempt `attempt` (0 for the first): the initial delay doubled per
 * earlier failure, capped at the maximum, then a random point in its upper half ("equal jitter",
 * so that devices dropped together do not come back together).
 *
 * @param attempt How many attempts failed since the connection was lost.
 * @param timing The initial and maximum delays.
 * @param random A number in [0, 1). @default Math.random()
 * @returns The delay in milliseconds.
 *
 * @example
 * ```ts
 * import { reconnectDelayMs } from "../../mod.ts";
 * const timing = { initialDelayMs: 1000, maxDelayMs: 60_000 };
 * if (reconnectDelayMs(0, timing, 0) !== 500 || reconnectDelayMs(3, timing, 0.999) > 8000) {
 *   throw new Error("unexpected");
 * }
 * if (reconnectDelayMs(20, timing, 0) !== 30_000) throw new Error("capped at 60 s");
 * ```
 */
export function reconnectDelayMs(
  attempt: number,
  timing: Required<ReconnectOptions>,
  random: number = Math.random(),
): number {
  const full = Math.min(timing.maxDelayMs, timing.initialDelayMs * 2 ** Math.min(attempt, 40));
  return Math.round(full / 2 + random * (full / 2));
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
 *   65535 s), `OPTION_INVALID` (delays not positive, or the initial one above the maximum);
 * - `dns`: `DNS_NOT_FOUND`, `DNS_FAILED`, `NETWORK_TIMEOUT` ({@linkcode NetworkError});
 * - `tcp`: `NETWORK_REFUSED`, `NETWORK_UNREACHABLE`, `NETWORK_TIMEOUT`, `NETWORK_FAILED`;
 * - `tls` (`TlsError`): `TLS_SERVER_UNTRUSTED`, `TLS_SERVER_EXPIRED`, `TLS_HOSTNAME_MISMATCH`,
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
 *     messageArrived: (topic, payload) => console.log(topic, new TextDecoder().decode(payload)),
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
  const clientId = buildClientId(options.identity, { explicit: options.clientId });
  const tls = options.tls ?? tlsOptions(options.identity, options.trust, broker);
  // Timers hold at most 2^31-1 ms (~24.8 days); a longer delay would fire at once.
  const timeoutMs = Math.min(options.connectTimeoutMs ?? 10_000, MAX_TIMER_MS);
  const deadline = performance.now() + timeoutMs;
  // MQTT.js loads while DNS, TCP and TLS are under way.
  const [opening, loading] = await Promise.allSettled([
    openTls(broker, tls, timeoutMs, options.onStage),
    loadMqttClient(),
  ]);
  if (loading.status === "rejected") {
    if (opening.status === "fulfilled") await destroyed(opening.value.socket);
    throw loading.reason;
  }
  if (opening.status === "rejected") throw opening.reason;
  const opened = opening.value;
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
  await connection.start(
    opened.socket,
    () => handshake(connection.client, opened, { broker, clientId, timeoutMs, deadline }),
  );
  options.onStage?.("tls", opened.tlsMs, `${opened.protocol ?? "TLS"}, server certificate trusted`);
  options.onStage?.(
    "mqtt",
    performance.now() - mqttStart,
    `CONNACK 0 (accepted) as ${clientId}`,
  );
  connection.announce(false);
  return connection;
}

function reconnectTiming(
  option: boolean | ReconnectOptions | undefined,
): Required<ReconnectOptions> | undefined {
  if (option === undefined || option === false) return undefined;
  const timing = { ...DEFAULT_RECONNECT, ...(option === true ? {} : option) };
  const { initialDelayMs, maxDelayMs } = timing;
  if (
    !(Number.isFinite(initialDelayMs) && initialDelayMs > 0) ||
    !(Number.isFinite(maxDelayMs) && maxDelayMs >= initialDelayMs && maxDelayMs <= MAX_TIMER_MS)
  ) {
    throw new UsageError(
      `The reconnect delays must be positive with the initial one (${initialDelayMs} ms) at most the maximum (${maxDelayMs} ms)`,
      {
        code: "OPTION_INVALID",
        hint: "Leave them out for 1 s doubling up to 60 s.",
      },
    );
  }
  return timing;
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

interface ConnectionSetup {
  mqtt: Mqtt;
  broker: BrokerAddress;
  clientId: string;
  tls: TlsConnectOptions;
  keepaliveSeconds: number;
  timeoutMs: number;
  reconnect: Required<ReconnectOptions> | undefined;
  queueOffline: boolean;
  callbacks: ConnectionCallbacks | undefined;
}

/** A {@linkcode DeviceConnection}: one MQTT.js client over one TLS socket at a time. */
class Connection implements DeviceConnection {
  readonly client: MqttClient;
  readonly clientId: string;
  readonly url: string;
  readonly #setup: ConnectionSetup;
  readonly #listeners = new Set<ConnectionCallbacks>();
  /** Subscriptions made, renewed after an automatic reconnect (the session is clean). */
  readonly #subscriptions = new Map<string, 0 | 1 | 2>();
  /** The socket the next `client.connect()` speaks on. */
  #socket: TLSSocket | undefined;
  #connected = false;
  #closing: Promise<void> | undefined;
  /** Failed reconnect attempts since the connection was lost. */
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The socket of a reconnect attempt under way (destroyed by close()). */
  #attempt: Promise<unknown> | undefined;
  /** The first error MQTT.js reported on the live connection (the cause of its loss). */
  #lastError: C8yError | undefined;

  constructor(setup: ConnectionSetup) {
    this.#setup = setup;
    this.clientId = setup.clientId;
    this.url = setup.broker.url;
    if (setup.callbacks) this.#listeners.add(setup.callbacks);
    this.client = createMqttClient(setup.mqtt, {
      clientId: setup.clientId,
      keepaliveSeconds: setup.keepaliveSeconds,
      queueQoSZero: setup.queueOffline,
    }, () => {
      const socket = this.#socket;
      this.#socket = undefined;
      if (socket === undefined) throw new Error("no socket ready for MQTT.js");
      return socket;
    });
    this.client.on("error", (err: Error & { code?: unknown }) => {
      if (!this.#connected) return; // a failing attempt: its handshake classifies it
      const classified = liveError(this.#setup.broker, err);
      this.#lastError ??= classified;
      // MQTT.js reports a packet it cannot read but keeps the connection: nothing after it can
      // be trusted, so it is closed (the loss is reported, and a reconnect follows if enabled).
      if (classified.code === "MQTT_PROTOCOL") this.client.stream?.destroy();
      this.#emitError(classified);
    });
    this.client.on("close", () => this.#onClose());
    this.client.on("message", (topic: string, payload: Uint8Array) => {
      const bytes = new Uint8Array(payload); // a copy: MQTT.js's buffers may share memory
      this.#each((l) => l.messageArrived?.(topic, bytes));
    });
  }

  get connected(): boolean {
    return this.#connected && this.#closing === undefined;
  }

  /** Runs one CONNECT/CONNACK exchange on `socket` (the first connection or a reconnect). */
  async start(socket: TLSSocket, exchange: () => Promise<void>): Promise<void> {
    this.#socket = socket;
    try {
      await exchange();
    } finally {
      this.#socket = undefined;
    }
    this.#connected = true;
    this.#lastError = undefined;
    this.#failures = 0;
  }

  /** Reports a completed connection to the listeners. */
  announce(reconnect: boolean): void {
    this.#each((l) => l.connectComplete?.(reconnect, this.url));
  }

  publish(
    topic: string,
    payload: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<void> {
    const qos = options.qos ?? 0;
    const { broker } = this.#setup;
    if (topic.length === 0 || /[+#]/.test(topic) || topic.includes("\u0000")) {
      return Promise.reject(
        unsendable("publish", topic, new Error("a topic name is not empty and has no wildcards")),
      );
    }
    if (this.#closing !== undefined) return Promise.reject(notConnected(broker, "publish"));
    if (!this.#connected && !(this.#setup.reconnect && this.#setup.queueOffline)) {
      return Promise.reject(notConnected(broker, "publish"));
    }
    const data = typeof payload === "string"
      ? Buffer.from(payload, "utf8")
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return this.#bounded(
      options.timeoutMs,
      () => ackTimeout(broker, "publish", topic, qos, options.timeoutMs!),
      (settle) => {
        this.client.publish(topic, data, { qos, retain: options.retain ?? false }, (err) => {
          if (err) {
            settle(this.#requestError(err, "publish", topic));
            return;
          }
          this.#each((l) => l.deliveryComplete?.(topic));
          settle();
        });
      },
    );
  }

  subscribe(topic: string, options: SubscribeOptions = {}): Promise<number> {
    const qos = options.qos ?? 0;
    const { broker } = this.#setup;
    if (topic.length === 0 || topic.includes("\u0000")) {
      return Promise.reject(
        unsendable("subscribe", topic, new Error("a topic filter is not empty and has no U+0000")),
      );
    }
    if (!this.#connected || this.#closing !== undefined) {
      return Promise.reject(notConnected(broker, "subscribe"));
    }
    let granted = 0;
    return this.#bounded(
      options.timeoutMs,
      () => ackTimeout(broker, "subscribe", topic, qos, options.timeoutMs!),
      (settle) => {
        this.client.subscribe(topic, { qos }, (err, _grants, packet) => {
          const code = (packet as { granted?: number[] } | undefined)?.granted?.[0];
          if (code !== undefined && (code & 0x80) !== 0) {
            settle(refused(broker, topic, err ?? undefined));
          } else if (err) {
            settle(this.#requestError(err, "subscribe", topic));
          } else {
            granted = code ?? qos;
            this.#subscriptions.set(topic, qos);
            settle();
          }
        });
      },
    ).then(() => granted);
  }

  unsubscribe(topic: string): Promise<void> {
    this.#subscriptions.delete(topic);
    if (!this.#connected || this.#closing !== undefined) return Promise.resolve();
    return this.#bounded(undefined, () => new Error("unreachable"), (settle) => {
      this.client.unsubscribe(topic, (err?: Error) => {
        settle(err ? this.#requestError(err, "subscribe", topic) : undefined);
      });
    });
  }

  listen(callbacks: ConnectionCallbacks): () => void {
    this.#listeners.add(callbacks);
    return () => this.#listeners.delete(callbacks);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const stream = this.client.stream as unknown as TLSSocket | undefined;
    // DISCONNECT when nothing is in flight; otherwise (or while offline) the socket is destroyed,
    // which also ends a reconnect attempt waiting for its CONNACK.
    const force = !this.#connected || Object.keys(this.client.outgoing).length > 0;
    // Closing our end waits for the broker's: destroying the socket at "finish" (as soon as the
    // DISCONNECT is written, which would save a round trip) loses the DISCONNECT now and then
    // under Deno 2.9.6's node:tls (mosquitto then logs an unexpected EOF instead).
    const grace = setTimeout(() => stream?.destroy(), CLOSE_GRACE_MS);
    await new Promise<void>((resolve) => this.client.end(force, {}, () => resolve()));
    clearTimeout(grace);
    await this.#attempt;
    this.#connected = false;
    if (stream !== undefined) await destroyed(stream);
    this.#listeners.clear();
  }

  #each(f: (l: ConnectionCallbacks) => void): void {
    for (const l of [...this.#listeners]) f(l);
  }

  #emitError(err: C8yError): void {
    this.#each((l) => l.error?.(err));
  }

  /**
   * Runs a request whose callback settles it (with an error or without), bounded by `timeoutMs`
   * when given: then it rejects with `onTimeout()`, and a late answer is ignored.
   */
  #bounded(
    timeoutMs: number | undefined,
    onTimeout: () => Error,
    run: (settle: (err?: Error) => void) => void,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = timeoutMs === undefined
        ? undefined
        : setTimeout(() => settle(onTimeout()), Math.min(Math.max(0, timeoutMs), MAX_TIMER_MS));
      function settle(err?: Error): void {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      }
      run(settle);
    });
  }

  /** Classifies MQTT.js's answer to a publish or subscribe that did not complete. */
  #requestError(err: Error, kind: "publish" | "subscribe", topic: string): C8yError {
    const { broker } = this.#setup;
    const what = `${kind === "subscribe" ? "subscribing" : "publishing"} to "${topic}"`;
    if (/^Invalid topic/.test(err.message)) return unsendable(kind, topic, err);
    if (/client disconnecting|No connection to broker/.test(err.message)) {
      return notConnected(broker, kind);
    }
    if (/Connection closed|Message removed/.test(err.message)) {
      return lostWhile(broker, what, kind === "subscribe" ? "subscribe" : "mqtt", this.#lastError);
    }
    return new MqttError(`Cannot complete ${what} on ${broker.url}: ${err.message}`, {
      code: kind === "subscribe" ? "MQTT_SUBSCRIBE_REFUSED" : "MQTT_PUBLISH_FAILED",
      stage: kind === "subscribe" ? "subscribe" : "mqtt",
      hint: "Check the broker's log; connect again.",
      cause: err,
    });
  }

  #onClose(): void {
    if (!this.#connected) return; // a failed attempt's close: its handshake reported it
    this.#connected = false;
    if (this.#closing !== undefined) return;
    const reason = this.#lastError ?? new Error("the connection was closed");
    const lost = new NetworkError(`The connection to ${this.url} was lost: ${reason.message}`, {
      code: "CONNECTION_LOST",
      stage: "mqtt",
      hint: "The broker or the network closed the connection; connect again.",
      cause: reason,
    });
    if (!this.#setup.reconnect) {
      // Nothing will send them again: what waits for an acknowledgement fails now.
      for (const id of Object.keys(this.client.outgoing)) {
        this.client.removeOutgoingMessage(Number(id));
      }
    }
    this.#each((l) => l.connectionLost?.(lost));
    if (this.#setup.reconnect) this.#schedule();
  }

  #schedule(): void {
    if (this.#closing !== undefined) return;
    const delay = reconnectDelayMs(this.#failures, this.#setup.reconnect!);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#attempt = this.#reconnect().finally(() => this.#attempt = undefined);
    }, delay);
  }

  /** One reconnect attempt: DNS, TCP, TLS and CONNECT again; on failure `error` and the next. */
  async #reconnect(): Promise<void> {
    const { broker, clientId, tls, timeoutMs } = this.#setup;
    const deadline = performance.now() + timeoutMs;
    try {
      const opened = await openTls(broker, tls, timeoutMs, undefined);
      if (this.#closing !== undefined) {
        await destroyed(opened.socket);
        return;
      }
      await this.start(
        opened.socket,
        () => handshake(this.client, opened, { broker, clientId, timeoutMs, deadline }),
      );
    } catch (err) {
      if (this.#closing !== undefined) return;
      this.#failures++;
      this.#emitError(err instanceof C8yError ? err : liveError(broker, err));
      this.#schedule();
      return;
    }
    if (this.#closing !== undefined) return;
    for (const [topic, qos] of this.#subscriptions) {
      this.client.subscribe(topic, { qos }, (err, _grants, packet) => {
        const code = (packet as { granted?: number[] } | undefined)?.granted?.[0];
        if (code !== undefined && (code & 0x80) !== 0) {
          this.#subscriptions.delete(topic);
          this.#emitError(refused(broker, topic, err ?? undefined));
        } else if (err && !/Connection closed|client disconnecting/.test(err.message)) {
          this.#emitError(this.#requestError(err, "subscribe", topic));
        }
      });
    }
    this.announce(true);
  }
}

/** The broker refused a subscription (SUBACK 0x80). */
function refused(broker: BrokerAddress, topic: string, cause: Error | undefined): MqttError {
  return new MqttError(`${broker.url} refused the subscription to "${topic}"`, {
    code: "MQTT_SUBSCRIBE_REFUSED",
    stage: "subscribe",
    hint: "The broker does not allow this device to subscribe to the topic.",
    cause,
  });
}

/** An error MQTT.js reported on a live connection, as a {@linkcode C8yError}. */
function liveError(broker: BrokerAddress, err: unknown): C8yError {
  if (err instanceof C8yError) return err;
  const message = messageOf(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (message === "Keepalive timeout") {
    return new NetworkError(
      `${broker.url} did not answer PINGREQ within the keepalive interval; the connection is closed`,
      {
        code: "CONNECTION_LOST",
        stage: "mqtt",
        hint: "The network or the broker stopped answering; the connection is closed.",
        cause: err,
      },
    );
  }
  if (typeof code === "string") {
    return new NetworkError(`The connection to ${broker.url} failed: ${message}`, {
      code: "CONNECTION_LOST",
      stage: "mqtt",
      hint: "The broker or the network closed the connection.",
      cause: err,
    });
  }
  return new MqttError(`${broker.url} broke the MQTT protocol: ${message}`, {
    code: "MQTT_PROTOCOL",
    stage: "mqtt" satisfies Stage,
    hint: "Check that the URL names Cumulocity's MQTT over TLS port (8883).",
    cause: err,
  });
}
