/**
 * Opens the TLS connection to the broker in stages this module runs itself: the DNS lookup and
 * TCP with `node:net`, then the TLS handshake with `node:tls` on that socket. Each stage is timed
 * and each failure classified (`classify.ts`); the ready TLS socket is what MQTT.js speaks on.
 *
 * **Why `node:tls` and not `Deno.connectTls`.** Measured with Deno 2.9.6: a `Deno.TlsConn` has no
 * `setNoDelay()`, and its first write after the handshake (the CONNECT) waits about 40 ms for the
 * server's delayed ACK (Nagle's algorithm), against mosquitto as against the emulator;
 * `Deno.startTls()` takes no client certificate, so TCP and TLS cannot be timed apart; and neither
 * tells the negotiated TLS version, which the late-rejection rule needs (see `classify.ts`).
 *
 * @module
 */

import { lapTimer } from "./lap.ts";
import * as net from "node:net";
import * as tls from "node:tls";
import type { BrokerAddress } from "./broker_url.ts";
import { TlsError } from "../errors.ts";
import type { C8yError, Stage } from "../errors.ts";
import {
  classifyNetworkError,
  classifyTlsError,
  isLocalTlsError,
  noTlsAnswer,
  timeoutError,
} from "./classify.ts";
import type { TlsConnectOptions } from "./tls_options.ts";

/**
 * Reports the time one stage of the connection took, in milliseconds, once it succeeded, with a
 * short detail of what it established (the address, the TLS version and server certificate, the
 * CONNACK), when there is one. `state` is `warning` for a stage that completed without what it
 * establishes being confirmed: a TLS 1.3 handshake after which MQTT failed before the server
 * answered (the server judges the device certificate after the client's end of the handshake).
 */
export type StageListener = (
  stage: Stage,
  ms: number,
  detail?: string,
  state?: "ok" | "warning",
) => void;

/** A TLS socket whose handshake completed, and what is known about it. */
export interface OpenedTls {
  /** The socket, ready for MQTT. */
  socket: tls.TLSSocket;
  /** The handshake's duration, in milliseconds (reported once the CONNACK proves it accepted). */
  tlsMs: number;
  /** The first error of the socket after the handshake, if any. */
  error?: Error;
  /** Whether the socket has closed. */
  closed: boolean;
  /** The negotiated protocol (`TLSv1.3`, `TLSv1.2`), read at the end of the handshake. */
  protocol: string | null;
}

/** Time allowed for a socket to close after `destroy()` before it is given up on. */
const CLOSE_GRACE_MS = 2000;

/**
 * DNS, TCP and TLS, each timed and each failure classified, within `timeoutMs` in all.
 *
 * @param broker Where to connect.
 * @param tlsOptions The device's TLS options.
 * @param timeoutMs Time allowed from the lookup to the end of the handshake.
 * @param onStage Receives the `dns` and `tcp` times (the `tls` time is in the result).
 * @returns The socket after its handshake.
 * @throws {C8yError} `NetworkError`, `TlsError` or `PermissionError` naming the stage.
 */
export function openTls(
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
    const lap = lapTimer();

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
      // A peer that hangs up before answering the ClientHello with a single byte is not a TLS
      // server (a TLS server that refuses says so with an alert, after its ServerHello).
      const silent = (): boolean => raw!.bytesRead === 0;
      const onError = (err: Error): void =>
        fail(
          silent() && !isLocalTlsError(err)
            ? noTlsAnswer(broker, err)
            : classifyTlsError(err, broker, tlsOptions),
        );
      const onClose = (): void =>
        fail(
          silent()
            ? noTlsAnswer(broker, undefined)
            : new TlsError(`${broker.url} closed the connection during the TLS handshake`, {
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
export function nodeTlsOptions(options: TlsConnectOptions): tls.ConnectionOptions {
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

/** Destroys a socket and resolves once it closed (or after a grace period). */
export function destroyed(socket: net.Socket | undefined): Promise<void> {
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
