/**
 * The {@linkcode DeviceConnection} `connect()` returns: one MQTT.js client that speaks on one TLS
 * socket at a time, with promises for publish and subscribe, Paho-style callbacks, and the
 * reconnect loop (each attempt staged through `open_tls.ts` and classified).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { TLSSocket } from "node:tls";
import type { BrokerAddress } from "./broker_url.ts";
import type { Mqtt, MqttClient } from "../deps.ts";
import { C8yError, MqttError, NetworkError, type Stage } from "../errors.ts";
import { messageOf } from "./classify.ts";
import { ackTimeout, lostWhile, notConnected, unsendable } from "./classify_mqtt.ts";
import { reconnectDelayMs, type ReconnectOptions } from "./backoff.ts";
import { createMqttClient, handshake, MAX_TIMER_MS } from "./mqtt_client.ts";
import { destroyed, openTls } from "./open_tls.ts";
import type { TlsConnectOptions } from "./tls_options.ts";

/**
 * Callbacks mirroring Paho's `MqttCallbackExtended` (the Java example's interface), plus `error`.
 * Exceptions thrown by a callback are not caught.
 */
export interface ConnectionCallbacks {
  /** A connection was established (`reconnect` is true after an automatic reconnect). */
  connectComplete?(reconnect: boolean, url: string): void;
  /** An established connection was lost (not called after `close()`); `cause` says why. */
  connectionLost?(cause: Error): void;
  /**
   * A message arrived on a subscribed topic (a QoS 2 message once, when the broker releases it
   * with PUBREL, as MQTT.js delivers it).
   */
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

/** Options of `DeviceConnection.publish`. */
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

/** Options of `DeviceConnection.subscribe`. */
export interface SubscribeOptions {
  /** Requested quality of service. @default 0 */
  qos?: 0 | 1 | 2;
  /** Time allowed for the SUBACK, in milliseconds. @default no limit */
  timeoutMs?: number;
}

/** A live MQTT connection of a device (MQTT 3.1.1, clean session), from `connect()`. */
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

/** What a {@linkcode Connection} is built from. */
export interface ConnectionSetup {
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
export class Connection implements DeviceConnection {
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
    const { timeoutMs } = options;
    return this.#bounded(
      timeoutMs === undefined ? undefined : {
        timeoutMs,
        onTimeout: () => ackTimeout(broker, "publish", topic, qos, timeoutMs),
      },
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
    const { timeoutMs } = options;
    return this.#bounded(
      timeoutMs === undefined ? undefined : {
        timeoutMs,
        onTimeout: () => ackTimeout(broker, "subscribe", topic, qos, timeoutMs),
      },
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
    return this.#bounded(undefined, (settle) => {
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
   * Runs a request whose callback settles it (with an error or without), bounded by
   * `limit.timeoutMs` when given: then it rejects with `limit.onTimeout()`, and a late answer is
   * ignored.
   */
  #bounded(
    limit: { timeoutMs: number; onTimeout: () => Error } | undefined,
    run: (settle: (err?: Error) => void) => void,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = limit === undefined ? undefined : setTimeout(
        () => settle(limit.onTimeout()),
        Math.min(Math.max(0, limit.timeoutMs), MAX_TIMER_MS),
      );
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
