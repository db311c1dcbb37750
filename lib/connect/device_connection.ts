/**
 * The {@linkcode DeviceConnection} `connect()` returns, as its users see it: publish and
 * subscribe as promises, Paho-style {@linkcode ConnectionCallbacks}, and their options. (The
 * class behind it is `live_connection.ts`, its reconnect loop `reconnect.ts`.)
 *
 * @module
 */

import type { MqttClient } from "../deps.ts";
import type { C8yError } from "../errors.ts";

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
