/**
 * An MQTT session over mutual TLS, with every failure classified into the stage it happened in.
 *
 * The connection is opened in steps this module runs itself (DNS lookup and TCP with
 * `node:net`, then the TLS handshake with `node:tls` on that socket), and MQTT 3.1.1 is spoken on
 * the ready TLS socket with the small codec of `mqtt_wire.ts`. Doing each step here is what makes
 * each stage's time measurable and each error attributable: a refused port, an untrusted server
 * and a refused device certificate look alike to a general MQTT client (an error on its stream),
 * but not from here.
 *
 * **Why `node:tls` and not `Deno.connectTls`.** Measured with Deno 2.9.6: a `Deno.TlsConn` has no
 * `setNoDelay()`, and its first write after the handshake (the CONNECT) waits about 40 ms for the
 * server's delayed ACK (Nagle's algorithm), against mosquitto as against the emulator;
 * `Deno.startTls()` takes no client certificate, so TCP and TLS cannot be timed apart; and neither
 * tells the negotiated TLS version, which the late-rejection rule below needs.
 *
 * **What the session does.** Clean session; QoS 0, 1 and 2 both ways (PUBACK, PUBREC/PUBREL/
 * PUBCOMP; a QoS 2 message is delivered once even when resent before its PUBREL); PINGREQ after a
 * keepalive interval without sending, and the connection closed when no PINGRESP came by the
 * next; an optional automatic reconnect every second that renews the subscriptions.
 *
 * **The late rejection.** Under TLS 1.3 the client's handshake is complete before the server has
 * judged the client certificate. A server that refuses the device certificate (Cumulocity,
 * mosquitto) then sends an alert or just closes the connection, which the client sees only on its
 * first read: after `secureConnect`, before the CONNACK. Such an error or close is reported as
 * `TLS_CLIENT_CERT_REFUSED` in stage `tls`, and the `tls` stage's time is reported to `onStage`
 * only once the CONNACK proves the server accepted the certificate.
 *
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import {
  encodeAck,
  encodeConnect,
  encodeDisconnect,
  encodePingreq,
  encodePublish,
  encodeSubscribe,
  MqttDecoder,
  type ServerPacket,
} from "./mqtt_wire.ts";
import { type BrokerAddress, hostPort } from "./broker_url.ts";
import {
  type C8yError,
  MqttError,
  NetworkError,
  PermissionError,
  type Stage,
  TlsError,
  UsageError,
} from "./errors.ts";
import type { TlsConnectOptions } from "./tls_options.ts";

/**
 * Callbacks mirroring Paho's `MqttCallbackExtended` (the Java example's interface).
 * Exceptions thrown by a callback are not caught.
 */
export interface SessionCallbacks {
  /** A connection was established (`reconnect` is true after an automatic reconnect). */
  connectComplete?(reconnect: boolean, url: string): void;
  /** An established connection was lost (not called after `close()`). */
  connectionLost?(cause: Error): void;
  /** A message arrived on a subscribed topic. */
  messageArrived?(topic: string, payload: Uint8Array): void;
  /** A publish completed: QoS 0 written to the socket, QoS 1/2 acknowledged by the broker. */
  deliveryComplete?(topic: string): void;
}

/**
 * Reports the time one stage of the connection took, in milliseconds, once it succeeded, with a
 * short detail of what it established (the address, the TLS version, the CONNACK), when there is
 * one.
 */
export type StageListener = (stage: Stage, ms: number, detail?: string) => void;

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** The broker (from `parseBrokerUrl`). */
  broker: BrokerAddress;
  /** The TLS options (from `tlsOptions`). */
  tls: TlsConnectOptions;
  /** The MQTT client id (from `clientId`), e.g. `d:device-001`. */
  clientId: string;
  /** MQTT keepalive in seconds. @default 60 */
  keepaliveSeconds?: number;
  /** Time allowed from the DNS lookup to the CONNACK, in milliseconds. @default 10000 */
  connectTimeoutMs?: number;
  /** Reconnect automatically after a lost connection (every second). @default false */
  reconnect?: boolean;
  /** Callbacks for connection events and messages. */
  callbacks?: SessionCallbacks;
  /** Called with each stage's time (`dns`, `tcp`, `tls`, `mqtt`) once it has succeeded. */
  onStage?: StageListener;
}

/** Options of {@linkcode Session.publish}. */
export interface PublishOptions {
  /** Quality of service. @default 0 */
  qos?: 0 | 1 | 2;
  /** Retain flag. @default false */
  retain?: boolean;
}

/** Options of {@linkcode Session.subscribe}. */
export interface SubscribeOptions {
  /** Requested quality of service. @default 0 */
  qos?: 0 | 1 | 2;
}

/** A connected MQTT session (MQTT 3.1.1, clean session). */
export interface Session {
  /** The client id the session connected with. */
  readonly clientId: string;
  /** The broker, as `mqtts://host:port`. */
  readonly url: string;
  /** Whether the connection is currently up. */
  readonly connected: boolean;
  /**
   * Publishes a message.
   * @throws {MqttError} `MQTT_NOT_CONNECTED` when the connection is down, `MQTT_PUBLISH_FAILED`.
   * @throws {NetworkError} `CONNECTION_LOST` (stage `mqtt`) when the connection closes meanwhile.
   */
  publish(topic: string, payload: string | Uint8Array, options?: PublishOptions): Promise<void>;
  /**
   * Subscribes to a topic and resolves with the granted QoS.
   * @throws {MqttError} `MQTT_SUBSCRIBE_REFUSED` (stage `subscribe`) when the broker refuses it.
   * @throws {NetworkError} `CONNECTION_LOST` (stage `subscribe`) when the connection closes before
   * the broker answered.
   */
  subscribe(topic: string, options?: SubscribeOptions): Promise<number>;
  /** Adds callbacks (besides those given to `connect`); returns a function that removes them. */
  listen(callbacks: SessionCallbacks): () => void;
  /** Sends DISCONNECT and closes the connection; safe to call twice. */
  close(): Promise<void>;
}

/** The longest delay `setTimeout` honours (2^31-1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Time allowed for the broker to close its side after DISCONNECT before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * Connects to an MQTT broker with mutual TLS: MQTT 3.1.1 (protocol level 4), clean session, no
 * automatic reconnect unless `reconnect` is set, TCP no-delay.
 *
 * Every failure is a {@linkcode C8yError} whose `code` and `stage` say what went wrong:
 * - `dns`: `DNS_NOT_FOUND`, `DNS_FAILED`, `NETWORK_TIMEOUT` ({@linkcode NetworkError});
 * - `tcp`: `NETWORK_REFUSED`, `NETWORK_UNREACHABLE`, `NETWORK_TIMEOUT`, `NETWORK_FAILED`;
 * - `tls` ({@linkcode TlsError}): `TLS_SERVER_UNTRUSTED`, `TLS_SERVER_EXPIRED`,
 *   `TLS_HOSTNAME_MISMATCH`, `TLS_CLIENT_CERT_REFUSED` (an alert about the device certificate, or
 *   the TLS 1.3 late rejection), `TLS_CLIENT_CERT_REQUIRED`, `TLS_NOT_TLS`, `TLS_TIMEOUT`,
 *   `TLS_HANDSHAKE_FAILED`;
 * - `mqtt` ({@linkcode MqttError}): CONNACK 1 to 5 as `MQTT_UNACCEPTABLE_PROTOCOL`,
 *   `MQTT_IDENTIFIER_REJECTED`, `MQTT_SERVER_UNAVAILABLE`, `MQTT_BAD_CREDENTIALS`,
 *   `MQTT_NOT_AUTHORIZED` (with `returnCode`), `MQTT_CONNACK_TIMEOUT`, `MQTT_PROTOCOL`;
 * - `permission` ({@linkcode PermissionError}): `PERMISSION_NET`, naming the `--allow-net` flag.
 *   Nothing here reads the environment.
 * - `usage` ({@linkcode UsageError}): `USAGE_KEEPALIVE` for a keepalive outside 0 to 65535 s.
 *
 * @param options Broker, TLS options, client id, timeouts, callbacks and a stage listener.
 * @returns The connected session.
 * @throws {C8yError} As listed above.
 *
 * @example A refused connection is classified
 * ```ts
 * import { connect } from "./session.ts";
 * import { parseBrokerUrl } from "./broker_url.ts";
 * import { C8yError } from "./errors.ts";
 * // A port nothing listens on: TCP fails before the (here empty) key and certificate are used.
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const broker = parseBrokerUrl(`ssl://127.0.0.1:${listener.addr.port}`);
 * listener.close();
 * const tls = {
 *   host: broker.host, port: broker.port, key: "", cert: "",
 *   minVersion: "TLSv1.2", rejectUnauthorized: true,
 * } as const;
 * try {
 *   await connect({ broker, tls, clientId: "d:device-001" });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof C8yError) || err.code !== "NETWORK_REFUSED" || err.stage !== "tcp") {
 *     throw err;
 *   }
 * }
 * ```
 *
 * @example Publishing and receiving (needs a broker and a device identity, so not run here)
 * ```ts ignore
 * const session = await connect({
 *   broker, tls: tlsOptions(identity, trust, broker), clientId: clientId(identity),
 *   callbacks: { messageArrived: (topic, payload) => console.log(topic, payload.length) },
 * });
 * try {
 *   await session.subscribe("s/ds");
 *   await session.publish("s/us", "100,My device,c8y_MQTTDevice");
 * } finally {
 *   await session.close();
 * }
 * ```
 */
export async function connect(options: ConnectOptions): Promise<Session> {
  const { broker, clientId } = options;
  const keepaliveSeconds = options.keepaliveSeconds ?? 60;
  if (!Number.isInteger(keepaliveSeconds) || keepaliveSeconds < 0 || keepaliveSeconds > 0xffff) {
    throw new UsageError(`The keepalive must be 0 to 65535 seconds, not ${keepaliveSeconds}`, {
      code: "USAGE_KEEPALIVE",
      hint: "MQTT 3.1.1 carries the keepalive in two bytes; 60 s is usual.",
    });
  }
  // Timers hold at most 2^31-1 ms (~24.8 days); a longer delay would fire at once.
  const timeoutMs = Math.min(options.connectTimeoutMs ?? 10_000, MAX_TIMER_MS);
  const connectPacket = encodeConnect({ clientId, keepaliveSeconds, clean: true });
  // One time limit from the DNS lookup to the CONNACK, for the first connection and for each
  // automatic reconnect.
  const handshake = async (onStage?: StageListener): Promise<[OpenedTls, Link, number]> => {
    const deadline = performance.now() + timeoutMs;
    const opened = await openTls(broker, options.tls, timeoutMs, onStage);
    const mqttStart = performance.now();
    const link = await startMqtt(opened, {
      connectPacket,
      broker,
      clientId,
      timeoutMs,
      deadline,
      keepaliveSeconds,
    });
    return [opened, link, performance.now() - mqttStart];
  };
  const [opened, first, mqttMs] = await handshake(options.onStage);
  options.onStage?.("tls", opened.tlsMs, `${opened.protocol ?? "TLS"}, server certificate trusted`);
  options.onStage?.("mqtt", mqttMs, `CONNACK 0 (accepted) as ${clientId}`);
  const reconnect = options.reconnect
    ? async (): Promise<Link> => (await handshake())[1]
    : undefined;
  return new MqttSession(broker, clientId, first, reconnect, options.callbacks);
}

/** A {@linkcode Session} over one {@linkcode Link} at a time (a new one after a reconnect). */
class MqttSession implements Session {
  readonly clientId: string;
  readonly url: string;
  readonly #broker: BrokerAddress;
  /** Opens a new link for an automatic reconnect; `undefined`: no reconnect. */
  readonly #reconnect: (() => Promise<Link>) | undefined;
  readonly #listeners = new Set<SessionCallbacks>();
  #link: Link | undefined;
  #closed = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #nextId = 0;
  /** Requests waiting for the broker's answer, by packet identifier. */
  readonly #pending = new Map<number, PendingRequest>();
  /** Subscriptions made, renewed after an automatic reconnect (the session is clean). */
  readonly #subscriptions = new Map<string, 0 | 1 | 2>();

  constructor(
    broker: BrokerAddress,
    clientId: string,
    first: Link,
    reconnect: (() => Promise<Link>) | undefined,
    callbacks: SessionCallbacks | undefined,
  ) {
    this.clientId = clientId;
    this.url = broker.url;
    this.#broker = broker;
    this.#reconnect = reconnect;
    if (callbacks) this.#listeners.add(callbacks);
    this.#attach(first);
    this.#each((l) => l.connectComplete?.(false, broker.url));
  }

  get connected(): boolean {
    return this.#link !== undefined && !this.#closed;
  }

  async publish(
    topic: string,
    payload: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<void> {
    const qos = options.qos ?? 0;
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    await this.#request("publish", topic, qos, (packetId) =>
      encodePublish({
        topic,
        payload: bytes,
        qos,
        retain: options.retain ?? false,
        packetId: qos === 0 ? undefined : packetId,
      }));
    this.#each((l) => l.deliveryComplete?.(topic));
  }

  async subscribe(topic: string, options: SubscribeOptions = {}): Promise<number> {
    const qos = options.qos ?? 0;
    const granted = await this.#request(
      "subscribe",
      topic,
      qos,
      (packetId) => encodeSubscribe(packetId, topic, qos),
    );
    if (granted >= 0x80) {
      throw new MqttError(`${this.url} refused the subscription to "${topic}"`, {
        code: "MQTT_SUBSCRIBE_REFUSED",
        stage: "subscribe",
        hint: "The broker does not allow this device to subscribe to the topic.",
      });
    }
    this.#subscriptions.set(topic, qos);
    return granted;
  }

  listen(callbacks: SessionCallbacks): () => void {
    this.#listeners.add(callbacks);
    return () => this.#listeners.delete(callbacks);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    await this.#link?.close();
    this.#listeners.clear();
  }

  #each(f: (l: SessionCallbacks) => void): void {
    for (const l of [...this.#listeners]) f(l);
  }

  #allocateId(): number {
    for (let tries = 0; tries < 0xffff; tries++) {
      this.#nextId = this.#nextId % 0xffff + 1;
      if (!this.#pending.has(this.#nextId)) return this.#nextId;
    }
    throw new MqttError(`Cannot send to ${this.url}: 65,535 requests await an answer`, {
      code: "MQTT_PUBLISH_FAILED",
      hint: "Wait for the pending publishes and subscriptions to complete.",
    });
  }

  /** Sends a request that waits for an answer, remembering it by its packet identifier. */
  #track(
    link: Link,
    packetId: number,
    bytes: Uint8Array,
    request: Omit<PendingRequest, "link" | "released">,
  ): void {
    this.#pending.set(packetId, { ...request, link, released: false });
    link.send(bytes);
  }

  #attach(link: Link): void {
    this.#link = link;
    link.attach({
      packet: (p) => this.#onPacket(link, p),
      lost: (cause) => this.#onLost(link, cause),
    });
  }

  #onPacket(link: Link, p: SessionPacket): void {
    switch (p.type) {
      case "publish": {
        if (p.qos === 1) link.send(encodeAck("puback", p.packetId!));
        if (p.qos === 2) {
          link.send(encodeAck("pubrec", p.packetId!));
          // Exactly once: a resend of a message not yet released is not delivered again.
          if (link.unreleased.has(p.packetId!)) return;
          link.unreleased.add(p.packetId!);
        }
        this.#each((l) => l.messageArrived?.(p.topic, p.payload));
        return;
      }
      case "pubrel":
        link.unreleased.delete(p.packetId);
        link.send(encodeAck("pubcomp", p.packetId));
        return;
      case "unsuback":
        return;
      case "connack":
        link.fail(new Error("the broker sent a second CONNACK"));
        return;
    }
    const request = this.#pending.get(p.packetId);
    if (request === undefined || request.link !== link) return; // an answer to nothing pending
    if (p.type === "suback" && request.kind === "subscribe") {
      this.#pending.delete(p.packetId);
      request.settle(p.granted[0]);
    } else if (p.type === "pubrec" && request.kind === "publish" && request.qos === 2) {
      request.released = true;
      link.send(encodeAck("pubrel", p.packetId));
    } else if (
      (p.type === "puback" && request.kind === "publish" && request.qos === 1) ||
      (p.type === "pubcomp" && request.kind === "publish" && request.released)
    ) {
      this.#pending.delete(p.packetId);
      request.settle(0);
    } else {
      link.fail(
        new Error(`the broker sent an unexpected ${p.type.toUpperCase()} for packet ${p.packetId}`),
      );
    }
  }

  #onLost(link: Link, cause: Error | undefined): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    for (const [id, request] of this.#pending) {
      if (request.link !== link) continue;
      this.#pending.delete(id);
      const stage = request.kind === "subscribe" ? "subscribe" : "mqtt";
      request.fail(lostWhile(this.#broker, request.what, stage, cause));
    }
    if (this.#closed) return;
    const reason = cause ?? new Error("the connection was closed");
    this.#each((l) =>
      l.connectionLost?.(
        new NetworkError(`The connection to ${this.url} was lost: ${reason.message}`, {
          code: "CONNECTION_LOST",
          stage: "mqtt",
          hint: "The broker or the network closed the connection; connect again.",
          cause: reason,
        }),
      )
    );
    if (this.#reconnect) this.#scheduleReconnect(this.#reconnect);
  }

  #scheduleReconnect(reconnect: () => Promise<Link>): void {
    this.#reconnectTimer = setTimeout(async () => {
      this.#reconnectTimer = undefined;
      if (this.#closed) return;
      try {
        const next = await reconnect();
        if (this.#closed) {
          await next.close();
          return;
        }
        this.#attach(next);
        for (const [topic, qos] of this.#subscriptions) {
          // Renewed without waiting: a refusal now was an acceptance before; it is not reported.
          const packetId = this.#allocateId();
          this.#track(next, packetId, encodeSubscribe(packetId, topic, qos), {
            kind: "subscribe",
            what: `subscribing to "${topic}" again`,
            qos,
            settle: () => {},
            fail: () => {},
          });
        }
        this.#each((l) => l.connectComplete?.(true, this.url));
      } catch {
        if (!this.#closed) this.#scheduleReconnect(reconnect);
      }
    }, RECONNECT_DELAY_MS);
  }

  /**
   * Sends a PUBLISH or SUBSCRIBE and waits for its answer (or for the write, for QoS 0). A topic
   * the packet cannot carry is refused before anything is sent, also when disconnected.
   */
  #request(
    kind: PendingRequest["kind"],
    topic: string,
    qos: 0 | 1 | 2,
    encode: (packetId: number) => Uint8Array,
  ): Promise<number> {
    const what = `${kind === "subscribe" ? "subscribing" : "publishing"} to "${topic}"`;
    let packetId: number;
    let bytes: Uint8Array;
    try {
      packetId = kind === "publish" && qos === 0 ? 0 : this.#allocateId();
      bytes = encode(packetId); // a topic the packet cannot carry fails here, before any send
    } catch (cause) {
      return Promise.reject(cause instanceof MqttError ? cause : unsendable(kind, topic, cause));
    }
    const link = this.#link;
    if (link === undefined || this.#closed) return Promise.reject(notConnected(this.#broker, kind));
    return new Promise((resolve, reject) => {
      if (packetId === 0) {
        link.send(
          bytes,
          (err) => err ? reject(lostWhile(this.#broker, what, "mqtt", err)) : resolve(0),
        );
        return;
      }
      this.#track(link, packetId, bytes, { kind, what, qos, settle: resolve, fail: reject });
    });
  }
}

/** The delay before an automatic reconnect, and between attempts. */
const RECONNECT_DELAY_MS = 1000;

/** A SUBSCRIBE or a QoS 1/2 PUBLISH waiting for the broker's answer. */
interface PendingRequest {
  kind: "subscribe" | "publish";
  /** For messages: `subscribing to "s/dat"`. */
  what: string;
  qos: 0 | 1 | 2;
  /** The connection it was sent on (answers on another one do not count). */
  link: Link;
  /** QoS 2: PUBREC arrived and PUBREL was sent; PUBCOMP completes it. */
  released: boolean;
  settle(value: number): void;
  fail(err: Error): void;
}

/** The packets a link hands to the session: all but PINGRESP, which the link keeps for itself. */
type SessionPacket = Exclude<ServerPacket, { type: "pingresp" }>;

/** Where a link delivers what happens on it once the session owns it. */
interface LinkSink {
  packet(p: SessionPacket): void;
  /** The connection closed or failed (`cause` says why, when known). Called once. */
  lost(cause: Error | undefined): void;
}

/**
 * One MQTT connection on a TLS socket after its CONNACK: reads packets, sends packets, keeps the
 * connection alive. MQTT 3.1.1 section 3.1.2.10: the time between two packets the client sends
 * must not exceed the keepalive, so a PINGREQ goes out one keepalive after the last packet sent;
 * when its PINGRESP has not come one keepalive later, the connection is closed.
 */
class Link {
  readonly socket: tls.TLSSocket;
  /** QoS 2 messages received and not yet released (PUBREL), by packet identifier. */
  readonly unreleased = new Set<number>();
  #pingOutstanding = false;
  #decoder: MqttDecoder;
  #sink: LinkSink | undefined;
  #backlog: SessionPacket[] = [];
  #cause: Error | undefined;
  #gone = false;
  readonly #keepaliveMs: number;
  /** When the last packet was written (`performance.now()`), the CONNECT at first. */
  #lastSent: number;
  #pingSentAt = 0;
  #keepalive: ReturnType<typeof setTimeout> | undefined;
  readonly #closed: Promise<void>;

  constructor(
    socket: tls.TLSSocket,
    decoder: MqttDecoder,
    /** Packets that arrived with the CONNACK. */
    early: ServerPacket[],
    keepaliveSeconds: number,
    connectSentAt: number,
  ) {
    this.socket = socket;
    this.#keepaliveMs = keepaliveSeconds * 1000;
    this.#lastSent = connectSentAt;
    this.#decoder = decoder;
    for (const p of early) this.#deliver(p);
    this.#closed = new Promise((resolve) => {
      if (socket.closed) resolve();
      else socket.once("close", () => resolve());
    });
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#gone) return;
      let packets: ServerPacket[];
      try {
        packets = this.#decoder.push(chunk);
      } catch (err) {
        // e.g. "the broker sent a PUBLISH packet with QoS 3"
        this.fail(new Error(`the broker sent ${(err as Error).message}`, { cause: err }));
        return;
      }
      for (const p of packets) this.#deliver(p);
    });
    socket.on("error", (err: Error) => this.#cause ??= err);
    socket.once("close", () => this.#lost());
    this.#schedule();
  }

  /** Hands packets and the end of the connection to the session (packets held so far first). */
  attach(sink: LinkSink): void {
    this.#sink = sink;
    const backlog = this.#backlog;
    this.#backlog = [];
    for (const p of backlog) sink.packet(p);
    if (this.#gone) sink.lost(this.#cause);
  }

  /** Writes a packet; `done` is called when it was written (or failed). */
  send(bytes: Uint8Array, done?: (err: Error | undefined) => void): void {
    this.#lastSent = performance.now();
    if (this.#gone || this.socket.destroyed) {
      done?.(this.#cause ?? new Error("the connection was closed"));
      return;
    }
    this.socket.write(bytes, (err?: Error | null) => done?.(err ?? undefined));
  }

  /** Closes the connection because the broker broke the protocol or stopped answering. */
  fail(cause: Error): void {
    this.#cause ??= cause;
    this.socket.destroy();
  }

  /** Sends DISCONNECT and closes; waits until the socket has closed (destroyed after a grace). */
  async close(): Promise<void> {
    clearTimeout(this.#keepalive);
    if (!this.#gone && !this.socket.destroyed) {
      this.socket.write(encodeDisconnect());
      this.socket.end();
    }
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    await this.#closed;
    clearTimeout(timer);
  }

  #deliver(p: ServerPacket): void {
    if (p.type === "pingresp") {
      this.#pingOutstanding = false; // the keepalive is the link's own business
      return;
    }
    if (this.#sink === undefined) this.#backlog.push(p);
    else this.#sink.packet(p);
  }

  /** Sets the keepalive timer for the next moment something may be due. */
  #schedule(): void {
    if (this.#keepaliveMs === 0 || this.#gone) return;
    let due = this.#lastSent + this.#keepaliveMs;
    if (this.#pingOutstanding) due = Math.min(due, this.#pingSentAt + this.#keepaliveMs);
    const delay = Math.max(1, due - performance.now());
    this.#keepalive = setTimeout(() => this.#tick(), Math.min(delay, MAX_TIMER_MS));
  }

  #tick(): void {
    const now = performance.now();
    if (this.#pingOutstanding && now - this.#pingSentAt >= this.#keepaliveMs) {
      this.fail(new Error("the broker did not answer PINGREQ within the keepalive interval"));
      return;
    }
    if (!this.#pingOutstanding && now - this.#lastSent >= this.#keepaliveMs) {
      this.#pingOutstanding = true;
      this.#pingSentAt = now;
      this.send(encodePingreq());
    }
    this.#schedule();
  }

  #lost(): void {
    if (this.#gone) return;
    this.#gone = true;
    clearTimeout(this.#keepalive);
    this.#sink?.lost(this.#cause);
  }
}

/**
 * Sends CONNECT on a fresh TLS socket and waits for the CONNACK, classifying whatever else
 * happens: a close or alert (the server refusing the certificate), another CONNACK code, bytes
 * that are not MQTT, silence.
 */
function startMqtt(
  opened: OpenedTls,
  { connectPacket, broker, clientId, timeoutMs, deadline, keepaliveSeconds }: {
    connectPacket: Uint8Array;
    broker: BrokerAddress;
    clientId: string;
    /** The whole time limit (for the message). */
    timeoutMs: number;
    /** When it runs out (`performance.now()` time). */
    deadline: number;
    keepaliveSeconds: number;
  },
): Promise<Link> {
  const { socket } = opened;
  const decoder = new MqttDecoder();
  return new Promise<Link>((resolve, reject) => {
    let streamError: Error | undefined = opened.error;
    let connectSentAt = 0;
    let firstChunk = true;
    let settled = false;
    const timer = setTimeout(
      () => fail(connackTimeout(broker, timeoutMs)),
      Math.max(0, deadline - performance.now()),
    );
    const cleanUp = (): void => {
      settled = true;
      clearTimeout(timer);
      socket.removeListener("data", onData);
      socket.removeListener("error", onError);
      socket.removeListener("close", onClose);
    };
    const fail = (err: C8yError): void => {
      if (settled) return;
      cleanUp();
      socket.on("error", () => {}); // the rest of a refusal must not become uncaught
      destroyed(socket).then(() => reject(err));
    };
    const onData = (chunk: Uint8Array): void => {
      if (settled || chunk.length === 0) return;
      // The first bytes of a broker's answer are a CONNACK (0x20 0x02). Anything else (an HTTP
      // reply, random bytes) is not MQTT, even when it never forms a whole packet.
      if (firstChunk) {
        firstChunk = false;
        if (chunk[0] !== 0x20 || (chunk.length > 1 && chunk[1] !== 0x02)) {
          fail(notMqtt(broker, chunk));
          return;
        }
      }
      let packets: ServerPacket[];
      try {
        packets = decoder.push(chunk);
      } catch (err) {
        fail(notMqtt(broker, chunk, err));
        return;
      }
      if (packets.length === 0) return;
      const [connack, ...rest] = packets;
      if (connack.type !== "connack") {
        fail(notMqtt(broker, chunk));
        return;
      }
      if (connack.returnCode !== 0) {
        fail(connackError(connack.returnCode, broker, clientId));
        return;
      }
      cleanUp();
      resolve(new Link(socket, decoder, rest, keepaliveSeconds, connectSentAt));
    };
    const onError = (err: Error & { code?: unknown }): void => {
      // An alert or a reset means the server refused the device certificate; anything else is
      // settled by the close that follows.
      streamError ??= err;
      if (isTlsAlert(err) || err.code === "ECONNRESET" || err.code === "EPIPE") {
        fail(lateRejection(broker, err, opened.protocol));
      }
    };
    const onClose = (): void => fail(lateRejection(broker, streamError, opened.protocol));
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    if (opened.error !== undefined || opened.closed || socket.destroyed) {
      fail(lateRejection(broker, opened.error, opened.protocol));
      return;
    }
    connectSentAt = performance.now();
    socket.write(connectPacket);
  });
}

interface OpenedTls {
  socket: tls.TLSSocket;
  tlsMs: number;
  /** The first error of the socket after the handshake, if any. */
  error?: Error;
  /** Whether the socket has closed. */
  closed: boolean;
  /** The negotiated protocol (`TLSv1.3`, `TLSv1.2`), read at the end of the handshake. */
  protocol: string | null;
}

/** DNS, TCP and TLS, each timed and each failure classified. */
function openTls(
  broker: BrokerAddress,
  tlsOptions: TlsConnectOptions,
  timeoutMs: number,
  onStage: StageListener | undefined,
): Promise<OpenedTls> {
  return new Promise((resolve, reject) => {
    let stage: Stage = broker.hostIsIp ? "tcp" : "dns";
    let settled = false;
    let raw: net.Socket | undefined;
    let secure: tls.TLSSocket | undefined;
    let mark = performance.now();
    const lap = (): number => {
      const now = performance.now();
      const ms = now - mark;
      mark = now;
      return ms;
    };

    const fail = (err: C8yError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      Promise.all([destroyed(secure), destroyed(raw)]).then(() => reject(err));
    };
    const timer = setTimeout(() => {
      fail(timeoutError(stage, broker, timeoutMs));
    }, timeoutMs);

    try {
      raw = net.connect({ host: broker.host, port: broker.port });
    } catch (cause) {
      fail(classifyNetworkError(cause, stage, broker));
      return;
    }
    raw.setNoDelay(true);
    if (broker.hostIsIp) onStage?.("dns", 0, `${broker.host} (an IP address)`);
    raw.on("lookup", (err: Error | null, address: string) => {
      if (err || settled) return; // the error event follows
      onStage?.("dns", lap(), `${broker.host} -> ${address}`);
      stage = "tcp";
    });
    raw.on("error", (err: Error) => {
      if (stage === "tls") fail(classifyTlsError(err, broker, tlsOptions));
      else fail(classifyNetworkError(err, stage, broker));
    });
    raw.on("connect", () => {
      if (settled) return;
      onStage?.("tcp", lap(), `connected to ${raw!.remoteAddress}:${raw!.remotePort}`);
      stage = "tls";
      try {
        secure = tls.connect({ ...nodeTlsOptions(tlsOptions), socket: raw });
      } catch (cause) {
        fail(classifyTlsError(cause, broker, tlsOptions));
        return;
      }
      const onError = (err: Error): void => fail(classifyTlsError(err, broker, tlsOptions));
      const onClose = (): void =>
        fail(
          new TlsError(`${broker.url} closed the connection during the TLS handshake`, {
            code: "TLS_HANDSHAKE_FAILED",
            hint:
              "Check that the URL names the broker's MQTT over TLS port (8883); the server may also have refused the device certificate.",
          }),
        );
      secure.on("error", onError);
      secure.on("close", onClose);
      secure.once("secureConnect", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        secure!.removeListener("error", onError);
        secure!.removeListener("close", onClose);
        raw!.removeAllListeners("error");
        // startMqtt() takes the socket from here. Under TLS 1.3 a refusal can arrive in the same
        // turn as the handshake's end, before it listens: remember it for startMqtt().
        const opened: OpenedTls = {
          socket: secure!,
          tlsMs: lap(),
          closed: false,
          protocol: secure!.getProtocol(),
        };
        raw!.on("error", (err: Error) => opened.error ??= err);
        secure!.on("error", (err: Error) => opened.error ??= err);
        secure!.once("close", () => opened.closed = true);
        resolve(opened);
      });
    });
  });
}

/** The options for `tls.connect()` (a fresh object: `node:tls` may modify what it is given). */
function nodeTlsOptions(options: TlsConnectOptions): tls.ConnectionOptions {
  const result: tls.ConnectionOptions = {
    host: options.host,
    port: options.port,
    key: options.key,
    cert: options.cert,
    minVersion: options.minVersion,
    rejectUnauthorized: options.rejectUnauthorized,
  };
  if (options.ca !== undefined) result.ca = [...options.ca];
  if (options.servername !== undefined) result.servername = options.servername;
  return result;
}

function destroyed(socket: net.Socket | undefined): Promise<void> {
  if (socket === undefined || socket.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, CLOSE_GRACE_MS);
    function done(): void {
      clearTimeout(timer);
      resolve();
    }
    socket.once("close", done);
    socket.destroy();
  });
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function timeoutError(stage: Stage, broker: BrokerAddress, timeoutMs: number): C8yError {
  const within = `within ${seconds(timeoutMs)}`;
  if (stage === "dns") {
    return new NetworkError(`Looking up "${broker.host}" did not finish ${within}`, {
      code: "NETWORK_TIMEOUT",
      stage: "dns",
      hint: "Check the DNS configuration and the network connection.",
    });
  }
  if (stage === "tcp") {
    return new NetworkError(
      `Could not connect to ${broker.host} port ${broker.port} ${within} (no answer)`,
      {
        code: "NETWORK_TIMEOUT",
        stage: "tcp",
        hint: "A firewall or proxy may drop traffic to this port; check that outgoing port " +
          `${broker.port} is open, or try a longer --timeout.`,
      },
    );
  }
  return new TlsError(`The TLS handshake with ${broker.url} did not finish ${within}`, {
    code: "TLS_TIMEOUT",
    hint:
      "Check that the URL names the broker's MQTT over TLS port (8883), not a plain MQTT port (1883).",
  });
}

function classifyNetworkError(err: unknown, stage: Stage, broker: BrokerAddress): C8yError {
  const code = errorCode(err);
  const where = `${broker.host} port ${broker.port}`;
  if (err instanceof Deno.errors.NotCapable || code === "EPERM" || code === "EACCES") {
    return new PermissionError(`Deno is not allowed to connect to ${where}`, {
      code: "PERMISSION_NET",
      hint: `Allow it with --allow-net=${hostPort(broker.host, broker.port)}.`,
      cause: err,
    });
  }
  if (stage === "dns") {
    if (code === "ENOTFOUND" || code === "EAI_NONAME" || code === "EAI_NODATA") {
      return new NetworkError(
        `The broker host "${broker.host}" does not exist (DNS lookup failed)`,
        {
          code: "DNS_NOT_FOUND",
          stage: "dns",
          hint:
            "Check the spelling of the tenant domain in the URL, e.g. ssl://<tenant>.cumulocity.com:8883.",
          cause: err,
        },
      );
    }
    return new NetworkError(
      `Could not look up the broker host "${broker.host}" (${code ?? "DNS error"})`,
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
      hint: "Check the port (Cumulocity uses 8883) and that the broker is running.",
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
      hint: "Check the network connection and routing (or the proxy/VPN) to the broker.",
      cause: err,
    });
  }
  if (code === "ETIMEDOUT") {
    return new NetworkError(`Connecting to ${where} timed out`, {
      code: "NETWORK_TIMEOUT",
      stage: "tcp",
      hint: "A firewall may drop traffic to this port; check that outgoing port " +
        `${broker.port} is open.`,
      cause: err,
    });
  }
  return new NetworkError(`Could not connect to ${where}: ${messageOf(err)}`, {
    code: "NETWORK_FAILED",
    stage: "tcp",
    hint: "Check the network connection to the broker.",
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
function clientCertAlert(err: unknown): string | undefined {
  const code = errorCode(err) ?? "";
  const m = /ALERT_([A-Z_]+)$/.exec(code);
  if (m && m[1] in ALERT_NAMES) return ALERT_NAMES[m[1]];
  const mm = ALERT_MESSAGE.exec(messageOf(err));
  if (mm) {
    return mm[1].replace(/([a-z])([A-Z])/g, "$1 $2").replace("CA", " CA").trim().toLowerCase();
  }
  return undefined;
}

function isTlsAlert(err: unknown): boolean {
  return /ALERT/.test(errorCode(err) ?? "") || /fatal alert/.test(messageOf(err));
}

const REFUSED_HINT =
  "Upload the CA that issued the device certificate (or its immediate issuer) to the tenant's " +
  "trusted certificates, and check that the keystore holds the full chain (`inspect`).";

function classifyTlsError(
  err: unknown,
  broker: BrokerAddress,
  options: TlsConnectOptions,
): C8yError {
  const code = errorCode(err) ?? "";
  const message = messageOf(err);
  if (err instanceof Deno.errors.NotCapable) return classifyNetworkError(err, "tcp", broker);
  if (
    [
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_GET_ISSUER_CERT",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
      "SELF_SIGNED_CERT_IN_CHAIN",
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "CERT_UNTRUSTED",
      "CERT_SIGNATURE_FAILURE",
      "CERT_REJECTED",
      "INVALID_CA",
    ].includes(code) || /UnknownIssuer|unknown issuer|self[- ]signed/i.test(message)
  ) {
    return new TlsError(
      `The server certificate of ${broker.url} is not trusted (${code || message})`,
      {
        code: "TLS_SERVER_UNTRUSTED",
        hint: options.ca === undefined
          ? "The default root CAs do not trust it: give --truststore with the CA that signed the server's certificate."
          : "The truststore does not hold the CA that signed the server's certificate: add it, or leave --truststore out to use the default root CAs.",
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
    const name = options.servername ?? options.host;
    return new TlsError(
      `The server certificate of ${broker.url} is not valid for "${name}"`,
      {
        code: "TLS_HOSTNAME_MISMATCH",
        hint:
          "Use the host name the server's certificate names (the tenant domain), not an alias or IP address.",
        cause: err,
      },
    );
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

/** A close, reset or alert after the client's handshake and before the CONNACK. */
/**
 * Classifies an error or close of the TLS stream after the handshake and before the CONNACK.
 * An alert names the reason. A bare close under TLS 1.3 is, most likely, the server refusing the
 * device certificate (it judges it after the client considers the handshake done). Under TLS 1.2
 * the server has accepted the certificate before the handshake ends, so a bare close there is
 * the MQTT side hanging up.
 */
function lateRejection(
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

const CONNACK: Record<number, { code: string; meaning: string; hint: string }> = {
  1: {
    code: "MQTT_UNACCEPTABLE_PROTOCOL",
    meaning: "unacceptable protocol version",
    hint:
      "Cumulocity supports MQTT 3.1 and 3.1.1 (this tool sends 3.1.1; is the URL really Cumulocity?).",
  },
  2: {
    code: "MQTT_IDENTIFIER_REJECTED",
    meaning: "identifier rejected",
    hint: "The client id is not accepted: use d:<certificate CN> (leave --client-id out).",
  },
  3: {
    code: "MQTT_SERVER_UNAVAILABLE",
    meaning: "server unavailable",
    hint: "The MQTT service is temporarily unavailable; try again later.",
  },
  4: {
    code: "MQTT_BAD_CREDENTIALS",
    meaning: "bad user name or password",
    hint:
      "Cumulocity does not send this for certificate authentication: check that the URL is the right broker.",
  },
  5: {
    code: "MQTT_NOT_AUTHORIZED",
    meaning: "not authorized",
    hint:
      "The platform refused the certificate identity: the client id must be d:<CN>; auto-registration may have failed, or a device with this CN belongs to another tenant. It can be transient: retry a few times.",
  },
};

function connackError(
  returnCode: number,
  broker: BrokerAddress,
  clientId: string,
): MqttError {
  const known = CONNACK[returnCode];
  if (known === undefined) {
    return new MqttError(
      `${broker.url} refused the MQTT connection with CONNACK ${returnCode}, which MQTT 3.1.1 does not define`,
      {
        code: "MQTT_PROTOCOL",
        hint: "Check that the URL names Cumulocity's MQTT over TLS port (8883).",
        returnCode,
      },
    );
  }
  return new MqttError(
    `${broker.url} refused the MQTT connection of "${clientId}": CONNACK ${returnCode}, ${known.meaning}`,
    { code: known.code, hint: known.hint, returnCode },
  );
}

/** The broker answered CONNECT with bytes that are not a CONNACK. */
function notMqtt(broker: BrokerAddress, chunk: Uint8Array, cause?: unknown): MqttError {
  const head = chunk.subarray(0, 8);
  const hex = Array.from(head, (b) => b.toString(16).padStart(2, "0")).join(" ");
  // An HTTP or other text reply is shown as text (its first line, shortened); other bytes in hex.
  const line = new TextDecoder().decode(chunk.subarray(0, 64)).split(/\r?\n/)[0] ?? "";
  const textual = line.length >= 4 && /^[\x20-\x7e]+$/.test(line);
  const shown = cause !== undefined
    ? messageOf(cause)
    : textual
    ? `"${line.slice(0, 40)}"`
    : `bytes ${hex}${chunk.length > 8 ? " ..." : ""}`;
  return new MqttError(
    `${broker.url} answered MQTT CONNECT with something that is not MQTT (${shown})`,
    {
      code: "MQTT_PROTOCOL",
      hint:
        "Check that the URL names Cumulocity's MQTT over TLS port (8883), not an HTTPS or other TLS service.",
      cause,
    },
  );
}

function connackTimeout(broker: BrokerAddress, timeoutMs: number): MqttError {
  return new MqttError(
    `${broker.url} accepted the TLS connection but sent no CONNACK within ${seconds(timeoutMs)}`,
    {
      code: "MQTT_CONNACK_TIMEOUT",
      hint:
        "Check that the port is the broker's MQTT over TLS port (8883) and that the broker is healthy; try a longer --timeout.",
    },
  );
}

function lostWhile(
  broker: BrokerAddress,
  what: string,
  stage: Stage,
  cause: Error | undefined,
): NetworkError {
  const reason = cause === undefined ? "" : ` (${cause.message})`;
  return new NetworkError(`The connection to ${broker.url} was lost while ${what}${reason}`, {
    code: "CONNECTION_LOST",
    stage,
    hint: "The broker closed the connection; check the broker's log, then connect again.",
    cause,
  });
}

/** A topic that MQTT cannot carry in the packet (`cause`: the codec's RangeError). */
function unsendable(kind: "publish" | "subscribe", topic: string, cause: unknown): MqttError {
  return kind === "publish"
    ? new MqttError(`Cannot publish to "${topic}": ${messageOf(cause)}`, {
      code: "MQTT_PUBLISH_FAILED",
      hint: "Publish to a topic name without wildcards (+, #), e.g. s/us.",
      cause,
    })
    : new MqttError(`Cannot subscribe to "${topic}": ${messageOf(cause)}`, {
      code: "MQTT_SUBSCRIBE_REFUSED",
      stage: "subscribe",
      hint: "Give a topic filter, e.g. s/ds.",
      cause,
    });
}

function notConnected(broker: BrokerAddress, what: "publish" | "subscribe"): MqttError {
  return new MqttError(`Cannot ${what}: the session with ${broker.url} is not connected`, {
    code: "MQTT_NOT_CONNECTED",
    stage: what === "subscribe" ? "subscribe" : "mqtt",
    hint: "Connect again.",
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
