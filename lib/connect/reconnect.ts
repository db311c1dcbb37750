/**
 * The reconnect loop of a `DeviceConnection` opened with `reconnect`: after a loss,
 * attempts spaced by the backoff of `backoff.ts`, each one DNS, TCP, TLS and CONNECT again
 * (staged by `open_tls.ts` and classified, as the first connection), until one succeeds or the
 * connection is closed. A failed attempt is reported and the next one scheduled.
 *
 * @module
 */

import type { TLSSocket } from "node:tls";
import type { BrokerAddress } from "./broker_url.ts";
import type { MqttClient } from "../deps.ts";
import { C8yError } from "../errors.ts";
import { reconnectDelayMs, type ReconnectOptions } from "./backoff.ts";
import { liveError } from "./classify_mqtt.ts";
import { handshake } from "./mqtt_client.ts";
import { destroyed, openTls } from "./open_tls.ts";
import type { TlsConnectOptions } from "./tls_options.ts";

/** What a {@linkcode ReconnectLoop} reconnects, and how it reports to its connection. */
export interface ReconnectSetup {
  /** The connection's MQTT.js client, which speaks CONNECT on each new socket. */
  client: MqttClient;
  broker: BrokerAddress;
  clientId: string;
  tls: TlsConnectOptions;
  /** Time allowed for one attempt (DNS to CONNACK), in milliseconds. */
  timeoutMs: number;
  /** The backoff. */
  reconnect: Required<ReconnectOptions>;
  /** Whether the connection is being closed: then no attempt starts or completes. */
  closing(): boolean;
  /** Runs the CONNECT/CONNACK exchange on the new socket (the connection's `start`). */
  start(socket: TLSSocket, exchange: () => Promise<void>): Promise<void>;
  /** An attempt failed (the next one is scheduled). */
  failed(err: C8yError): void;
  /** An attempt succeeded: the connection is up again. */
  reconnected(): void;
}

/** Attempts to connect again, spaced by the backoff, until one succeeds or the loop is cancelled. */
export class ReconnectLoop {
  readonly #setup: ReconnectSetup;
  /** Failed reconnect attempts since the connection was lost. */
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The reconnect attempt under way (its socket is destroyed by close()). */
  #attempt: Promise<unknown> | undefined;

  constructor(setup: ReconnectSetup) {
    this.#setup = setup;
  }

  /** The attempt under way, if any; it settles once it has given up or connected. */
  get pending(): Promise<unknown> | undefined {
    return this.#attempt;
  }

  /** A connection was established: the backoff starts again from its first delay. */
  succeeded(): void {
    this.#failures = 0;
  }

  /** Schedules the next attempt after the backoff delay (not while closing). */
  schedule(): void {
    if (this.#setup.closing()) return;
    const delay = reconnectDelayMs(this.#failures, this.#setup.reconnect);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#attempt = this.#reconnect().finally(() => this.#attempt = undefined);
    }, delay);
  }

  /** Cancels a scheduled attempt (one under way ends on its own: see {@linkcode pending}). */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One reconnect attempt: DNS, TCP, TLS and CONNECT again; on failure `failed` and the next. */
  async #reconnect(): Promise<void> {
    const { client, broker, clientId, tls, timeoutMs } = this.#setup;
    const deadline = performance.now() + timeoutMs;
    try {
      const opened = await openTls(broker, tls, timeoutMs, undefined);
      if (this.#setup.closing()) {
        await destroyed(opened.socket);
        return;
      }
      await this.#setup.start(
        opened.socket,
        () => handshake(client, opened, { broker, clientId, timeoutMs, deadline }),
      );
    } catch (err) {
      if (this.#setup.closing()) return;
      this.#failures++;
      this.#setup.failed(err instanceof C8yError ? err : liveError(broker, err));
      this.schedule();
      return;
    }
    if (this.#setup.closing()) return;
    this.#setup.reconnected();
  }
}
