/**
 * The emulator's MQTT endpoint: an `aedes` broker that admits a device only through the
 * {@linkcode DeviceAuthority}, routes nothing between devices, answers `s/uat` with a token on
 * `s/dat`, hands `s/us` to the {@linkcode Platform}, and sends operations on `s/ds`. Each TLS
 * connection reaches the broker through an {@linkcode MqttFeed}, which reads it without loss and
 * holds it to the size limits.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { EventEmitter } from "node:events";
import type { TLSSocket } from "node:tls";
import { hostPort } from "../connect/broker_url.ts";
import { loadAedes } from "../deps.ts";
import { UsageError } from "../errors.ts";
import { type DeviceAuthority, presentedChain } from "./device_auth.ts";
import { clip, type EmulatorEvent } from "./events.ts";
import { MqttFeed } from "./mqtt_feed.ts";
import type { Platform } from "./platform.ts";
import { MAX_CLIENT_ID_LENGTH } from "./settings.ts";

type AedesModule = Awaited<ReturnType<typeof loadAedes>>;
type Broker = InstanceType<AedesModule["Aedes"]>;
type Client = ReturnType<Broker["handle"]>;

/** What {@linkcode MqttEndpoint} needs. */
export interface MqttEndpointOptions {
  authority: DeviceAuthority;
  platform: Platform;
  emit: (event: Omit<EmulatorEvent, "time">) => void;
  connectTimeoutMs: number;
  maxPacketBytes: number;
  maxUnauthenticatedBytes: number;
}

/** What the emulator knows about a connection, set during CONNECT. */
interface ClientInfo {
  clientId?: string;
  commonName?: string;
  deviceId?: string;
  refusal?: string;
  remoteAddress?: string;
}

/** Whether an MQTT topic filter matches a topic. */
function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Whether a client has a subscription that matches `topic`. */
function subscribedTo(client: Client, topic: string): boolean {
  const subscriptions = (client as unknown as { subscriptions?: Record<string, unknown> })
    .subscriptions ?? {};
  return Object.keys(subscriptions).some((f) => filterMatches(f, topic));
}

function remoteOf(conn: unknown): string | undefined {
  const s = conn as { remoteAddress?: string; remotePort?: number };
  if (!s?.remoteAddress) return undefined;
  return hostPort(s.remoteAddress, s.remotePort ?? "");
}

/**
 * Makes a client's packet parser safe against re-entry. `aedes` reads the next bytes when a
 * packet is handled, and a packet handled synchronously (a QoS 0 PUBLISH) makes it read and
 * parse them while the parser is still emitting that packet: `mqtt-packet` then emits the same
 * packet again and loses its place in the stream ("Invalid header flag bits", "cannot parse
 * topic"); seen with a stream that hands out one buffered chunk per `read()`. The
 * {@linkcode MqttFeed} hands out everything at once, so its `read()` inside a parse finds
 * nothing; the guard keeps the parser safe whatever the stream does: bytes read during a parse
 * are parsed right after it, in order.
 */
function guardParser(client: Client): void {
  const parser = (client as unknown as { _parser?: { parse(buf: Uint8Array): number } })._parser;
  if (!parser) return;
  const parse = parser.parse.bind(parser);
  const pending: Uint8Array[] = [];
  let parsing = false;
  parser.parse = (buf: Uint8Array): number => {
    if (parsing) {
      pending.push(buf);
      return 0;
    }
    parsing = true;
    try {
      let left = parse(buf);
      for (let next = pending.shift(); next; next = pending.shift()) left = parse(next);
      return left;
    } finally {
      parsing = false;
      pending.length = 0;
    }
  };
}

/** The `aedes` broker set up as the platform's MQTT endpoint. */
export class MqttEndpoint {
  readonly #options: MqttEndpointOptions;
  readonly #info = new WeakMap<Client, ClientInfo>();
  /** Payloads the emulator itself sends: the only ones `authorizeForward` lets through. */
  readonly #ownPayloads = new WeakSet<Uint8Array>();
  #broker!: Broker;

  private constructor(options: MqttEndpointOptions) {
    this.#options = options;
  }

  /** Loads `aedes` and sets the broker up. */
  static async create(options: MqttEndpointOptions): Promise<MqttEndpoint> {
    const endpoint = new MqttEndpoint(options);
    await endpoint.#start();
    return endpoint;
  }

  /** Number of clients that passed CONNECT and are still connected. */
  get connectedClients(): number {
    return this.#broker.connectedClients;
  }

  /** Hands a TLS connection (after its handshake) to the broker, through an {@linkcode MqttFeed}. */
  handle(socket: TLSSocket): void {
    const { emit } = this.#options;
    const feed: MqttFeed = new MqttFeed(socket, {
      maxPacketBytes: this.#options.maxPacketBytes,
      maxUnauthenticatedBytes: this.#options.maxUnauthenticatedBytes,
      onLimit: (reason) => {
        // aedes sets `conn.client` when it takes the connection.
        const client = (feed as unknown as { client?: Client }).client;
        const ci = client ? this.#info.get(client) : undefined;
        emit({
          kind: ci?.deviceId === undefined ? "refused" : "error",
          via: "mqtt",
          clientId: clip(ci?.clientId),
          commonName: ci?.commonName,
          remoteAddress: remoteOf(socket),
          reason: `connection closed: ${reason}`,
        });
      },
    });
    feed.on("error", () => {});
    const client = this.#broker.handle(feed);
    guardParser(client);
    // aedes watches the connection with `finished()`, which builds an ERR_STREAM_PREMATURE_CLOSE
    // error (with its stack) for every connection that closes without ending its streams, that
    // is, nearly every one: about a tenth of the emulator's CPU per token. Closing the client
    // when the connection closes does the same without the error.
    const internals = client as unknown as { _eos?: () => void };
    if (typeof internals._eos === "function") {
      internals._eos();
      feed.once("close", () => client.close());
    }
  }

  /**
   * Publishes one line on `s/ds` to a connected device.
   * @throws {UsageError} `EMULATOR_DEVICE_NOT_CONNECTED` or `EMULATOR_DEVICE_NOT_SUBSCRIBED`.
   */
  async sendToDevice(clientId: string, line: string): Promise<void> {
    const client =
      (this.#broker as unknown as { clients: Record<string, Client> }).clients[clientId];
    const ci = client ? this.#info.get(client) : undefined;
    if (!client || !client.connected || client.closed || ci?.deviceId === undefined) {
      throw new UsageError(`No device is connected as "${clip(clientId, 64)}"`, {
        code: "EMULATOR_DEVICE_NOT_CONNECTED",
        hint: "Give the client id of a connected device, e.g. d:<certificate CN>.",
      });
    }
    if (!subscribedTo(client, "s/ds")) {
      throw new UsageError(`Device "${clip(clientId, 64)}" has no subscription to s/ds`, {
        code: "EMULATOR_DEVICE_NOT_SUBSCRIBED",
        hint: "The device must subscribe to s/ds to receive operations.",
      });
    }
    await new Promise<void>((resolve, reject) => {
      this.#publish(client, "s/ds", line, (err) => {
        if (err) return reject(err);
        this.#options.emit({
          kind: "operation",
          clientId: clip(clientId),
          commonName: ci.commonName,
          topic: "s/ds",
          line: clip(line),
        });
        resolve();
      });
    });
  }

  /** Drops every client and stops the broker. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => this.#broker.close(() => resolve()));
  }

  #publish(client: Client, topic: string, text: string, done: (err?: Error) => void): void {
    const payload = Buffer.from(text, "utf8");
    this.#ownPayloads.add(payload);
    client.publish({ cmd: "publish", topic, payload, qos: 0, retain: false, dup: false }, done);
  }

  async #issueToken(client: Client): Promise<void> {
    const { emit, platform } = this.#options;
    const ci = this.#info.get(client);
    const deviceId = ci?.deviceId;
    if (deviceId === undefined) return; // only clients that passed authenticate() publish
    if (!subscribedTo(client, "s/dat")) {
      emit({
        kind: "error",
        clientId: clip(client.id),
        commonName: ci?.commonName,
        reason: "token requested on s/uat without a subscription to s/dat: nothing sent",
      });
      return;
    }
    const issued = await platform.issueToken(deviceId, client.id);
    if (client.closed || !client.connected) return;
    this.#publish(client, "s/dat", `71,${issued.token}`, (err) => {
      if (err) {
        emit({
          kind: "error",
          clientId: clip(client.id),
          reason: `token not sent: ${err.message}`,
        });
        return;
      }
      emit({
        kind: "token",
        via: "mqtt",
        clientId: clip(client.id),
        commonName: ci?.commonName,
        tokenId: issued.tokenId,
        expiresAt: issued.expiresAt,
      });
    });
  }

  #onPublish(client: Client, topic: string, payload: Uint8Array | string): void {
    const { emit, platform } = this.#options;
    const ci = this.#info.get(client);
    if (ci?.deviceId === undefined) return;
    if (topic === "s/uat") {
      if (payload.length === 0) {
        this.#issueToken(client).catch((err) =>
          emit({ kind: "error", clientId: clip(client.id), reason: `token: ${err.message}` })
        );
      } else {
        emit({
          kind: "error",
          clientId: clip(client.id),
          reason: "publish on s/uat is not empty: no token sent",
        });
      }
    } else if (topic === "s/us") {
      platform.smartRest(
        { deviceId: ci.deviceId, clientId: client.id, commonName: ci.commonName ?? ci.deviceId },
        Buffer.from(payload).toString("utf8"),
      );
    }
  }

  #authenticate(client: Client): string | undefined {
    const ci = this.#info.get(client) ?? {};
    this.#info.set(client, ci);
    const feed = client.conn as unknown as MqttFeed;
    if (!(feed instanceof MqttFeed)) return "the connection is not TLS";
    const verdict = this.#options.authority.verifyMqtt(presentedChain(feed.socket), client.id);
    ci.commonName = clip(verdict.commonName);
    if (!verdict.ok) return verdict.reason;
    ci.deviceId = verdict.deviceId;
    feed.authenticated();
    return undefined;
  }

  async #start(): Promise<void> {
    const { emit } = this.#options;
    const { Aedes } = await loadAedes();
    const info = this.#info;
    const ownPayloads = this.#ownPayloads;
    const broker: Broker = await Aedes.createBroker({
      connectTimeout: this.#options.connectTimeoutMs,
      maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
      preConnect(client, packet, callback): void {
        const ci: ClientInfo = {
          remoteAddress: remoteOf(client.conn),
          clientId: clip(packet.clientId),
        };
        info.set(client, ci);
        if (packet.protocolVersion === 5) {
          ci.refusal = "MQTT 5 is not supported (MQTT 3.1.1 only)";
        } else if (packet.protocolVersion !== 3 && packet.protocolVersion !== 4) {
          ci.refusal = `MQTT protocol version ${packet.protocolVersion} is not supported`;
        }
        // aedes itself answers other versions than 3 and 4 with CONNACK 1.
        callback(null, true);
      },
      authenticate: (client, _username, _password, done): void => {
        let refusal: string | undefined;
        try {
          refusal = this.#authenticate(client);
        } catch (err) {
          refusal = `internal error while checking the certificate: ${(err as Error).message}`;
        }
        if (refusal === undefined) return done(null, true);
        (info.get(client) ?? {}).refusal = refusal;
        done(Object.assign(new Error(refusal), { returnCode: 5 as const }), false);
      },
      authorizePublish: (client, packet, callback): void => {
        // Nothing a client publishes is routed to other clients (see authorizeForward); the
        // emulator only reacts to the platform's topics.
        packet.retain = false;
        if (client && client.connected && !client.closed) {
          try {
            this.#onPublish(client, packet.topic, packet.payload ?? new Uint8Array());
          } catch (err) {
            emit({ kind: "error", clientId: clip(client.id), reason: (err as Error).message });
          }
        }
        callback(null);
      },
      authorizeForward(_client, packet): typeof packet | null {
        // Only the emulator's own replies (sent with client.publish) reach a client.
        return ownPayloads.has(packet.payload as Uint8Array) ? packet : null;
      },
    });
    this.#broker = broker;

    broker.on("connackSent", (packet, client) => {
      const ci = info.get(client) ?? {};
      const code = packet.returnCode ?? 0;
      if (code === 0) {
        emit({
          kind: "connect",
          clientId: clip(client.id),
          commonName: ci.commonName,
          remoteAddress: ci.remoteAddress,
          protocolVersion: client.version ?? undefined,
          cleanSession: client.clean,
        });
      } else {
        emit({
          kind: "refused",
          via: "mqtt",
          clientId: clip(client.id ?? ci.clientId),
          commonName: ci.commonName,
          remoteAddress: ci.remoteAddress,
          returnCode: code,
          reason: ci.refusal ?? `CONNACK ${code}`,
        });
      }
    });
    broker.on("clientDisconnect", (client) => {
      const ci = info.get(client) ?? {};
      emit({ kind: "disconnect", clientId: clip(client.id), commonName: ci.commonName });
    });
    const onClientError = (client: Client, err: Error): void => {
      // Refusals already produced a `refused` event when their CONNACK went out, limit
      // violations when the feed closed the connection.
      if ((err as Error & { errorCode?: number }).errorCode) return;
      if ((client?.conn as unknown as MqttFeed | undefined)?.refused) return;
      const ci = client ? info.get(client) : undefined;
      emit({
        kind: "error",
        clientId: clip(client?.id ?? undefined),
        commonName: ci?.commonName,
        remoteAddress: ci?.remoteAddress ?? remoteOf(client?.conn),
        reason: clip(err.message),
      });
    };
    broker.on("clientError", onClientError);
    broker.on("connectionError", onClientError);
    (broker as unknown as EventEmitter).on("error", (err: unknown) => {
      emit({ kind: "error", reason: `broker: ${(err as Error)?.message ?? String(err)}` });
    });
  }
}
