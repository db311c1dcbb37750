/**
 * The class behind a {@linkcode DeviceConnection}: one MQTT.js client that speaks on one TLS
 * socket at a time, turning its callbacks into promises (bounded by `timeoutMs`), its events into
 * the {@linkcode ConnectionCallbacks}, and a lost connection into a report and, with `reconnect`,
 * into the reconnect loop of `reconnect.ts` (subscriptions are renewed after each reconnect).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { TLSSocket } from "node:tls";
import type { BrokerAddress } from "./broker_url.ts";
import type { Mqtt, MqttClient } from "../deps.ts";
import { type C8yError, MqttError, NetworkError } from "../errors.ts";
import {
  ackTimeout,
  liveError,
  lostWhile,
  notConnected,
  subscribeRefused,
  unsendable,
} from "./classify_mqtt.ts";
import type { ReconnectOptions } from "./backoff.ts";
import type {
  ConnectionCallbacks,
  DeviceConnection,
  PublishOptions,
  SubscribeOptions,
} from "./device_connection.ts";
import { createMqttClient, MAX_TIMER_MS } from "./mqtt_client.ts";
import { destroyed } from "./open_tls.ts";
import { ReconnectLoop } from "./reconnect.ts";
import type { TlsConnectOptions } from "./tls_options.ts";

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
  /** The reconnect loop, with `reconnect` only. */
  readonly #loop: ReconnectLoop | undefined;
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
    this.#loop = setup.reconnect && new ReconnectLoop({
      client: this.client,
      broker: setup.broker,
      clientId: setup.clientId,
      tls: setup.tls,
      timeoutMs: setup.timeoutMs,
      reconnect: setup.reconnect,
      closing: () => this.#closing !== undefined,
      start: (socket, exchange) => this.start(socket, exchange),
      failed: (err) => this.#emitError(err),
      reconnected: () => this.#reconnected(),
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
    this.#loop?.succeeded();
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
            settle(subscribeRefused(broker, topic, err ?? undefined));
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
    this.#loop?.cancel();
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
    await this.#loop?.pending;
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
    this.#loop?.schedule();
  }

  /** After a successful reconnect: renews the subscriptions, then reports the connection. */
  #reconnected(): void {
    const { broker } = this.#setup;
    for (const [topic, qos] of this.#subscriptions) {
      this.client.subscribe(topic, { qos }, (err, _grants, packet) => {
        const code = (packet as { granted?: number[] } | undefined)?.granted?.[0];
        if (code !== undefined && (code & 0x80) !== 0) {
          this.#subscriptions.delete(topic);
          this.#emitError(subscribeRefused(broker, topic, err ?? undefined));
        } else if (err && !/Connection closed|client disconnecting/.test(err.message)) {
          this.#emitError(this.#requestError(err, "subscribe", topic));
        }
      });
    }
    this.announce(true);
  }
}
