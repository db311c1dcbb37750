/**
 * The stream the emulator's broker reads a device from: the TLS socket's bytes, taken from its
 * `'data'` events, counted against the emulator's limits, and handed on whole.
 *
 * Why not give the broker the TLS socket itself: `aedes` calls `read()` once per `'readable'`
 * event and expects everything buffered (as Node.js returns for `read(null)` on a paused stream).
 * Deno 2.9.6's streams return one buffered chunk and announce the rest only to a caller that reads
 * until `null`: of 200,000 bytes a client writes, 49,152 reach the broker, and one large PUBLISH,
 * or many small ones back to back, leave it waiting for bytes received but never handed on (a
 * plain `Duplex` of our own behaves the same). This stream takes the socket's bytes from its
 * `'data'` events, queues them, and gives the broker everything queued on each `read()`; it
 * announces new bytes with one `'readable'` per tick, pauses the socket while more than 64 KiB
 * wait, and hands on bytes that arrived before the peer closed before it reports the close.
 *
 * The limits: while passing bytes on, the stream reads each MQTT fixed header (packet type and
 * remaining length, MQTT 3.1.1 §2.2) and refuses a packet larger than `maxPacketBytes` as soon
 * as its header announces it, before its body arrives; and it refuses more than
 * `maxUnauthenticatedBytes` before the connection is authenticated. A refusal calls `onLimit`
 * once with the reason and destroys the connection, so no connection holds more than about
 * `maxPacketBytes` of unread input.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import process from "node:process";
import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

/** Above this many unread bytes the socket pauses until the broker reads. */
const QUEUE_HIGH_WATER_BYTES = 65_536;

/** Options of {@linkcode MqttFeed}. */
export interface MqttFeedOptions {
  /** The largest MQTT packet accepted, in bytes, fixed header included. */
  maxPacketBytes: number;
  /** The bytes accepted before {@linkcode MqttFeed.authenticated} is called. */
  maxUnauthenticatedBytes: number;
  /** Called once, with the reason, when a limit is exceeded (the connection is then closed). */
  onLimit: (reason: string) => void;
}

/**
 * A TLS connection as a `Duplex` the broker reads without loss; writes go to the socket.
 * The peer's address and the socket stay reachable for the authentication.
 */
export class MqttFeed extends Duplex {
  /** The TLS socket underneath. */
  readonly socket: TLSSocket;
  /** The peer's address (as `net.Socket.remoteAddress`). */
  readonly remoteAddress: string | undefined;
  /** The peer's port. */
  readonly remotePort: number | undefined;
  readonly #options: MqttFeedOptions;
  #unauthenticated = true;
  #received = 0;
  /** Bytes of the current fixed header (type and remaining length) read so far. */
  #header: number[] = [];
  /** Bytes of the current packet's body still to come. */
  #bodyLeft = 0;
  #refused = false;
  /** Bytes received and not yet read by the broker. */
  #queue: Buffer[] = [];
  #queued = 0;
  #announced = false;
  #peerClosed = false;

  /**
   * @param socket The connection, after its TLS handshake.
   * @param options The limits and what to call when one is exceeded.
   */
  constructor(socket: TLSSocket, options: MqttFeedOptions) {
    super({ allowHalfOpen: false });
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.#options = options;
    socket.on("data", (chunk: Uint8Array) => this.#receive(chunk));
    socket.once("close", () => {
      this.#peerClosed = true;
      if (this.#queued === 0) this.destroy();
    });
    socket.on("error", (err: Error) => this.destroy(err));
  }

  /** Lifts the limit on bytes before authentication (call it once the CONNECT is accepted). */
  authenticated(): void {
    this.#unauthenticated = false;
  }

  /** Whether this connection was closed for exceeding a limit. */
  get refused(): boolean {
    return this.#refused;
  }

  #receive(chunk: Uint8Array): void {
    if (this.#refused) return;
    const problem = this.#frame(chunk);
    if (problem) return this.#refuse(problem);
    this.#received += chunk.length;
    if (this.#unauthenticated && this.#received > this.#options.maxUnauthenticatedBytes) {
      return this.#refuse(
        `more than ${this.#options.maxUnauthenticatedBytes} bytes sent before the CONNECT ` +
          `was accepted`,
      );
    }
    this.#queue.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    this.#queued += chunk.length;
    if (this.#queued > QUEUE_HIGH_WATER_BYTES) this.socket.pause();
    this.#announce();
  }

  /** One `'readable'` event per tick while bytes wait. */
  #announce(): void {
    if (this.#announced) return;
    this.#announced = true;
    process.nextTick(() => {
      this.#announced = false;
      if (this.#queued > 0 && !this.destroyed) this.emit("readable");
    });
  }

  /**
   * Everything received and not yet read, or `null`. `read(0)` (which streams use to start
   * reading) returns `null` and takes nothing; other sizes are ignored: the broker asks for all.
   */
  override read(size?: number): Buffer | null {
    if (this.#queued === 0 || size === 0) return null;
    const out = this.#queue.length === 1 ? this.#queue[0] : Buffer.concat(this.#queue);
    this.#queue = [];
    this.#queued = 0;
    if (this.#peerClosed) {
      process.nextTick(() => this.destroy());
    } else if (this.socket.isPaused()) {
      this.socket.resume();
    }
    return out;
  }

  /** Follows the packet boundaries through `chunk`; returns a problem, or undefined. */
  #frame(chunk: Uint8Array): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, chunk.length - i);
        this.#bodyLeft -= take;
        i += take;
        continue;
      }
      const byte = chunk[i++];
      this.#header.push(byte);
      if (this.#header.length === 1) continue; // packet type and flags
      if (byte & 0x80) {
        if (this.#header.length === 5) {
          return "malformed MQTT packet: remaining length longer than 4 bytes";
        }
        continue;
      }
      let remaining = 0;
      for (let k = this.#header.length - 1; k >= 1; k--) {
        remaining = remaining * 128 + (this.#header[k] & 0x7f);
      }
      const size = this.#header.length + remaining;
      if (size > this.#options.maxPacketBytes) {
        return `MQTT packet of ${size} bytes announced (type ${this.#header[0] >> 4}); ` +
          `at most ${this.#options.maxPacketBytes} are accepted`;
      }
      this.#header = [];
      this.#bodyLeft = remaining;
    }
    return undefined;
  }

  #refuse(reason: string): void {
    this.#refused = true;
    try {
      this.#options.onLimit(reason);
    } finally {
      this.socket.destroy();
      this.destroy();
    }
  }

  override _read(): void {
    // Bytes reach the broker through read(), never through the stream's own buffer.
  }

  override _write(
    chunk: Uint8Array,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    if (this.socket.destroyed) return callback(new Error("connection closed"));
    if (this.socket.write(chunk)) return callback();
    this.socket.once("drain", () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#queue = [];
    this.#queued = 0;
    if (!this.socket.destroyed) this.socket.destroy();
    callback(error);
  }

  /** As `net.Socket.setNoDelay` (passed to the socket). */
  setNoDelay(noDelay?: boolean): this {
    (this.socket as unknown as Socket).setNoDelay(noDelay);
    return this;
  }
}
