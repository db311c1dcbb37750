/**
 * MQTT.js on the TLS socket that `open_tls.ts` opened: the client is built with a stream builder
 * that hands MQTT.js our socket, and each CONNECT/CONNACK exchange is watched so that whatever
 * ends it (a CONNACK code, an alert, a bare close, bytes that are not MQTT, silence) becomes a
 * classified error.
 *
 * MQTT.js is configured for a device: MQTT 3.1.1, clean session, no reconnect of its own (the
 * connection reconnects through `open_tls.ts`, so that every attempt is staged and classified),
 * no debug log, and no number cache (its default pre-builds 65,536 two-byte buffers on the first write: about
 * 40 ms and several MiB in a cold process, measured with Deno 2.9.6, for a session of a few
 * packets).
 *
 * @module
 */

import type { TLSSocket } from "node:tls";
import type { BrokerAddress } from "./broker_url.ts";
import type { C8yError } from "../errors.ts";
import type { Mqtt, MqttClient } from "../deps.ts";
import { isTlsAlert, lateRejection } from "./classify.ts";
import { connackError, connackTimeout, notMqtt } from "./classify_mqtt.ts";
import { destroyed, type OpenedTls } from "./open_tls.ts";

/** The longest delay `setTimeout` honours (2^31-1 ms); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options of {@linkcode createMqttClient}. */
export interface MqttClientOptions {
  /** The MQTT client id. */
  clientId: string;
  /** MQTT keepalive in seconds (0: none). */
  keepaliveSeconds: number;
  /** Whether QoS 0 publishes made while offline wait for the next connection. */
  queueQoSZero: boolean;
}

/**
 * Builds an MQTT.js client that connects only when told to (`client.connect()`), each time on the
 * socket `nextSocket()` returns.
 *
 * @param mqtt The MQTT.js module (from `loadMqtt`).
 * @param options Client id, keepalive, offline queueing of QoS 0.
 * @param nextSocket Returns the ready TLS socket for the connection being made.
 * @returns The client, not yet connected.
 */
export function createMqttClient(
  mqtt: Mqtt,
  options: MqttClientOptions,
  nextSocket: () => TLSSocket,
): MqttClient {
  const client = new mqtt.MqttClient(() => nextSocket(), {
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    clientId: options.clientId,
    keepalive: options.keepaliveSeconds,
    reconnectPeriod: 0,
    manualConnect: true,
    resubscribe: false,
    queueQoSZero: options.queueQoSZero,
    writeCache: false,
    // MQTT.js logs through `debug` on every packet; even switched off, those calls showed in a
    // profile of 200 devices in one process (Deno 2.9.6). No log at all costs nothing.
    log: () => {},
  });
  // MQTT.js emits `error` for refusals and stream errors; an emitter without a listener would
  // throw them. The connection's own listeners classify them.
  client.on("error", () => {});
  return client;
}

/** What {@linkcode handshake} needs besides the client and the socket. */
export interface HandshakeOptions {
  broker: BrokerAddress;
  clientId: string;
  /** The whole time limit from the DNS lookup (for the message). */
  timeoutMs: number;
  /** When it runs out (`performance.now()` time). */
  deadline: number;
}

/**
 * Sends CONNECT through MQTT.js on a fresh TLS socket and waits for the CONNACK, classifying
 * whatever else happens: a close or alert (the server refusing the certificate), another CONNACK
 * code, bytes that are not MQTT, silence until the deadline. On failure the socket is destroyed
 * before the promise rejects.
 *
 * @param client The MQTT.js client (from {@linkcode createMqttClient}), disconnected.
 * @param opened The socket after its TLS handshake.
 * @param options Broker, client id, time limit.
 * @throws {C8yError} `TlsError` (late rejection) or `MqttError` (`MQTT_NOT_AUTHORIZED` and the
 * other CONNACK codes, `MQTT_PROTOCOL`, `MQTT_CONNACK_TIMEOUT`, `MQTT_CONNECTION_CLOSED`).
 */
export function handshake(
  client: MqttClient,
  opened: OpenedTls,
  { broker, clientId, timeoutMs, deadline }: HandshakeOptions,
): Promise<void> {
  const { socket } = opened;
  return new Promise<void>((resolve, reject) => {
    let streamError: Error | undefined = opened.error;
    let firstChunk = true;
    let settled = false;
    const timer = setTimeout(
      () => finish(connackTimeout(broker, timeoutMs)),
      Math.max(0, deadline - performance.now()),
    );
    const finish = (err?: C8yError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.removeListener("connect", onConnect);
      client.removeListener("error", onError);
      client.removeListener("close", onClose);
      socket.removeListener("data", onData);
      if (err === undefined) {
        resolve();
        return;
      }
      socket.on("error", () => {}); // the rest of a refusal must not become uncaught
      destroyed(socket).then(() => reject(err));
    };
    const onConnect = (): void => finish();
    const onError = (err: Error & { code?: unknown }): void => {
      if (typeof err.code === "number") {
        finish(connackError(err.code, broker, clientId));
      } else if (typeof err.code === "string") {
        // An error of the TLS stream after the handshake: an alert or a reset means the server
        // refused the device certificate; anything else is settled by the close that follows.
        streamError ??= err;
        if (isTlsAlert(err) || err.code === "ECONNRESET" || err.code === "EPIPE") {
          finish(lateRejection(broker, err, opened.protocol));
        }
      } else {
        // MQTT.js's parser: a packet it cannot read.
        finish(notMqtt(broker, new Uint8Array(0), err));
      }
    };
    const onClose = (): void => finish(lateRejection(broker, streamError, opened.protocol));
    // The first bytes of a broker's answer are a CONNACK (0x20 0x02). Anything else (an HTTP
    // reply, random bytes) is not MQTT, even when it never forms a whole packet for MQTT.js. It
    // listens before MQTT.js so that the message shows what arrived, not the parser's complaint.
    const onData = (chunk: Uint8Array): void => {
      if (!firstChunk || chunk.length === 0) return;
      firstChunk = false;
      if (chunk[0] !== 0x20 || (chunk.length > 1 && chunk[1] !== 0x02)) {
        finish(notMqtt(broker, chunk));
      }
    };
    if (opened.error !== undefined || opened.closed || socket.destroyed) {
      finish(lateRejection(broker, opened.error, opened.protocol));
      return;
    }
    client.on("connect", onConnect);
    client.on("error", onError);
    client.on("close", onClose);
    // MQTT.js's own CONNACK timer is a backstop behind ours.
    client.options.connectTimeout = Math.min(
      Math.max(1, Math.ceil(deadline - performance.now())) + 1000,
      MAX_TIMER_MS,
    );
    client.connect(); // builds the stream (our socket), pipes it and writes CONNECT
    // MQTT.js waits for "drain" once per packet written while the socket's buffer is full, and
    // caps the socket at 1,000 listeners: a program that publishes faster than the network takes
    // it would get Node's leak warning. Each listener is a publish in flight, which the program
    // holds a promise for.
    socket.setMaxListeners(0);
    socket.prependListener("data", onData);
  });
}
