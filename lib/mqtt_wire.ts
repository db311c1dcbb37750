/**
 * The MQTT 3.1.1 wire format, client side: encoding the packets a device sends and decoding, from
 * a byte stream, the packets a broker sends (OASIS MQTT 3.1.1, sections 2 and 3).
 *
 * **Why by hand.** The project first used MQTT.js (`npm:mqtt`). In a cold `deno run` its import
 * alone cost about 100 ms of a 300 ms `token` run and about 15 MiB (measured with Deno 2.9.6 on
 * the project's 2-core machines: `import "npm:mqtt@5.16.0"` after the `node:` modules took
 * 97 -> 194 ms), because it loads Node streams, `debug`, `ws` and their CommonJS graph. The tool
 * needs nine packet types of MQTT 3.1.1 over a socket it already opens itself. The one
 * dependency-free ESM codec found on npm (`u8-mqtt-packet` 0.4.1) ships no types, was last
 * published in 2024 and buffers any announced length without a bound. So the codec is written
 * here: about 300 lines, strict about what a broker may send (reserved flags, lengths, QoS 3,
 * packet types only a client sends), with a bound on the packet size, and tested against
 * mosquitto, the aedes-based emulator and a fuzzer (`tests/mqtt_wire_test.ts`).
 *
 * @module
 */

/** A packet a broker sends to a client (MQTT 3.1.1). */
export type ServerPacket =
  | ConnackPacket
  | PublishPacket
  | { readonly type: "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback"; packetId: number }
  | SubackPacket
  | { readonly type: "pingresp" };

/** CONNACK: the broker's answer to CONNECT. */
export interface ConnackPacket {
  /** The packet type. */
  readonly type: "connack";
  /** Whether the broker kept a session for this client id (always false for a clean session). */
  sessionPresent: boolean;
  /** 0 accepted; 1 to 5 refused (protocol, identifier, unavailable, credentials, not authorized). */
  returnCode: number;
}

/** PUBLISH: an application message. */
export interface PublishPacket {
  /** The packet type. */
  readonly type: "publish";
  /** The topic name. */
  topic: string;
  /** The payload (a copy, owned by the receiver). */
  payload: Uint8Array;
  /** Quality of service. */
  qos: 0 | 1 | 2;
  /** Retain flag. */
  retain: boolean;
  /** Duplicate delivery flag. */
  dup: boolean;
  /** The packet identifier (QoS 1 and 2 only). */
  packetId?: number;
}

/** SUBACK: the broker's answer to SUBSCRIBE. */
export interface SubackPacket {
  /** The packet type. */
  readonly type: "suback";
  /** The identifier of the SUBSCRIBE it answers. */
  packetId: number;
  /** One entry per topic filter: the granted QoS (0, 1, 2) or 0x80 for a refusal. */
  granted: number[];
}

/** What a broker sent that is not valid MQTT 3.1.1 from a broker. */
export class MqttWireError extends Error {
  /**
   * @param message What is wrong, naming the packet.
   */
  constructor(message: string) {
    super(message);
    this.name = "MqttWireError";
  }
}

/** The largest remaining length MQTT 3.1.1 can express (four length bytes). */
export const MAX_REMAINING_LENGTH = 268_435_455;

/** The default bound on a packet from the broker: 1 MiB (a token reply is about 1 KiB). */
export const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;

const encoder = new TextEncoder();
// `ignoreBOM`: a leading U+FEFF is part of a topic name and must not be stripped (MQTT-1.5.3-3).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The UTF-8 bytes of an MQTT string, checked against the 65,535-byte limit. */
function utf8(text: string, what: string): Uint8Array {
  // A lone surrogate would silently become U+FFFD; U+0000 is forbidden (MQTT-1.5.3-1, -2).
  if (!text.isWellFormed()) throw new RangeError(`${what} is not well-formed UTF-16`);
  if (text.includes("\0")) throw new RangeError(`${what} contains the character U+0000`);
  const bytes = encoder.encode(text);
  if (bytes.length > 0xffff) {
    throw new RangeError(`${what} is ${bytes.length} bytes in UTF-8; MQTT allows 65,535`);
  }
  return bytes;
}

/** A topic name (not a filter): not empty, no wildcards, no NUL character. */
function isTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes("#") && !topic.includes("+") &&
    !topic.includes("\0");
}

function checkPacketId(packetId: number): void {
  if (!Number.isInteger(packetId) || packetId < 1 || packetId > 0xffff) {
    throw new RangeError(`packet identifier ${packetId} is not in 1..65535`);
  }
}

/** Assembles a packet from its first byte and the parts of its remaining length. */
function packet(first: number, parts: readonly (Uint8Array | number[])[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  if (length > MAX_REMAINING_LENGTH) {
    throw new RangeError(`the packet is ${length} bytes; MQTT allows ${MAX_REMAINING_LENGTH}`);
  }
  const header = [first];
  let n = length;
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 0x80;
    header.push(digit);
  } while (n > 0);
  const out = new Uint8Array(header.length + length);
  out.set(header, 0);
  let at = header.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

function str(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + bytes.length);
  out[0] = bytes.length >> 8;
  out[1] = bytes.length & 0xff;
  out.set(bytes, 2);
  return out;
}

/** Options of {@linkcode encodeConnect}. */
export interface ConnectPacketOptions {
  /** The client identifier. */
  clientId: string;
  /** Keepalive in seconds, 0 to 65535 (0 turns it off). */
  keepaliveSeconds: number;
  /** Clean session. @default true */
  clean?: boolean;
}

/**
 * CONNECT with protocol name `MQTT`, level 4 (3.1.1), no will, user name or password: a device
 * authenticated by its certificate sends none.
 *
 * @example
 * ```ts
 * import { encodeConnect } from "./mqtt_wire.ts";
 * const bytes = encodeConnect({ clientId: "d:dev", keepaliveSeconds: 60 });
 * if (bytes[0] !== 0x10 || bytes[9] !== 0x02) throw new Error("not a clean-session CONNECT");
 * ```
 */
export function encodeConnect(options: ConnectPacketOptions): Uint8Array {
  const { keepaliveSeconds } = options;
  if (!Number.isInteger(keepaliveSeconds) || keepaliveSeconds < 0 || keepaliveSeconds > 0xffff) {
    throw new RangeError(`keepalive ${keepaliveSeconds} s is not in 0..65535`);
  }
  const flags = options.clean === false ? 0 : 0x02;
  return packet(0x10, [
    [0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, ...u16(keepaliveSeconds)],
    str(utf8(options.clientId, "the client id")),
  ]);
}

/** Options of {@linkcode encodePublish}. */
export interface PublishPacketOptions {
  /** The topic name (no wildcards). */
  topic: string;
  /** The payload. */
  payload: Uint8Array;
  /** Quality of service. @default 0 */
  qos?: 0 | 1 | 2;
  /** Retain flag. @default false */
  retain?: boolean;
  /** Duplicate flag (a resend of a QoS 1/2 message). @default false */
  dup?: boolean;
  /** The packet identifier; required for QoS 1 and 2. */
  packetId?: number;
}

/** PUBLISH. */
export function encodePublish(options: PublishPacketOptions): Uint8Array {
  const qos = options.qos ?? 0;
  if (!isTopicName(options.topic)) {
    throw new RangeError(`"${options.topic}" is not a topic name one can publish to`);
  }
  const first = 0x30 | (options.dup ? 0x08 : 0) | (qos << 1) | (options.retain ? 0x01 : 0);
  const parts: (Uint8Array | number[])[] = [str(utf8(options.topic, "the topic"))];
  if (qos > 0) {
    checkPacketId(options.packetId ?? 0);
    parts.push(u16(options.packetId!));
  }
  parts.push(options.payload);
  return packet(first, parts);
}

/** SUBSCRIBE for one topic filter. */
export function encodeSubscribe(packetId: number, topicFilter: string, qos: 0 | 1 | 2): Uint8Array {
  checkPacketId(packetId);
  if (topicFilter.length === 0) throw new RangeError("an empty topic filter");
  return packet(0x82, [u16(packetId), str(utf8(topicFilter, "the topic filter")), [qos]]);
}

/** PUBACK (QoS 1 received), PUBREC (QoS 2 received), PUBREL (QoS 2 release), PUBCOMP. */
export function encodeAck(
  type: "puback" | "pubrec" | "pubrel" | "pubcomp",
  packetId: number,
): Uint8Array {
  checkPacketId(packetId);
  const first = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 }[type];
  return new Uint8Array([first, 2, ...u16(packetId)]);
}

/** PINGREQ. */
export function encodePingreq(): Uint8Array {
  return new Uint8Array([0xc0, 0]);
}

/** DISCONNECT. */
export function encodeDisconnect(): Uint8Array {
  return new Uint8Array([0xe0, 0]);
}

const ACK_TYPES = {
  4: "puback",
  5: "pubrec",
  6: "pubrel",
  7: "pubcomp",
  11: "unsuback",
} as const;

/** Names of the packet types, for messages about a packet a broker must not send. */
const TYPE_NAMES = [
  "reserved type 0",
  "CONNECT",
  "CONNACK",
  "PUBLISH",
  "PUBACK",
  "PUBREC",
  "PUBREL",
  "PUBCOMP",
  "SUBSCRIBE",
  "SUBACK",
  "UNSUBSCRIBE",
  "UNSUBACK",
  "PINGREQ",
  "PINGRESP",
  "DISCONNECT",
  "reserved type 15",
];

/**
 * Splits the byte stream from a broker into packets. Feed it each chunk as it arrives; it keeps
 * an incomplete packet until the rest comes. Throws {@linkcode MqttWireError} on the first byte
 * sequence that is not a valid packet from a broker, after which it must not be used again.
 *
 * @example
 * ```ts
 * import { MqttDecoder } from "./mqtt_wire.ts";
 * const decoder = new MqttDecoder();
 * const first = decoder.push(new Uint8Array([0x20, 0x02, 0x00]));
 * const second = decoder.push(new Uint8Array([0x00, 0xd0, 0x00]));
 * if (first.length !== 0 || second.length !== 2 || second[0].type !== "connack") {
 *   throw new Error("a CONNACK split in two, then a PINGRESP");
 * }
 * ```
 */
export class MqttDecoder {
  #buffer: Uint8Array = new Uint8Array(0);
  readonly #maxPacketBytes: number;

  /**
   * @param maxPacketBytes The largest packet accepted (header included); a larger announced
   * length is an error before its bytes are buffered. @default DEFAULT_MAX_PACKET_BYTES
   */
  constructor(maxPacketBytes: number = DEFAULT_MAX_PACKET_BYTES) {
    if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 2) {
      throw new RangeError(
        `maxPacketBytes must be an integer of at least 2, not ${maxPacketBytes}`,
      );
    }
    this.#maxPacketBytes = maxPacketBytes;
  }

  /** The number of bytes held back as the start of an incomplete packet. */
  get pending(): number {
    return this.#buffer.length;
  }

  /**
   * Adds a chunk of the stream and returns the packets it completes, in order.
   * @throws {MqttWireError} When the stream holds something that is not a packet from a broker.
   */
  push(chunk: Uint8Array): ServerPacket[] {
    let buffer = chunk;
    if (this.#buffer.length > 0) {
      buffer = new Uint8Array(this.#buffer.length + chunk.length);
      buffer.set(this.#buffer, 0);
      buffer.set(chunk, this.#buffer.length);
    }
    const packets: ServerPacket[] = [];
    let at = 0;
    while (at < buffer.length) {
      // The remaining length: 1 to 4 bytes, 7 bits each, least significant first.
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      for (let n = 0; n < 4 && i < buffer.length; n++, i++) {
        const digit = buffer[i];
        length += (digit & 0x7f) * multiplier;
        multiplier *= 128;
        if ((digit & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
        if (n === 3) {
          throw new MqttWireError(
            `a ${
              TYPE_NAMES[buffer[at] >> 4]
            } packet whose remaining length is longer than four bytes`,
          );
        }
      }
      if (!complete) {
        // The length bytes are not all here yet; a packet is at least as long as what is held.
        if (buffer.length - at > this.#maxPacketBytes) {
          throw new MqttWireError(
            `a ${
              TYPE_NAMES[buffer[at] >> 4]
            } packet over the limit of ${this.#maxPacketBytes} bytes`,
          );
        }
        break;
      }
      const total = i - at + length;
      if (total > this.#maxPacketBytes) {
        throw new MqttWireError(
          `a ${
            TYPE_NAMES[buffer[at] >> 4]
          } packet of ${total} bytes (the limit is ${this.#maxPacketBytes})`,
        );
      }
      if (buffer.length - i < length) break; // the body is not all here yet
      packets.push(decodePacket(buffer[at], buffer.subarray(i, i + length)));
      at = i + length;
    }
    // Keep a copy of the rest: the chunk belongs to the caller. (Not `slice()`: on a Node Buffer,
    // which a `node:tls` socket delivers, it returns a view rather than a copy.)
    this.#buffer = at === buffer.length ? new Uint8Array(0) : new Uint8Array(buffer.subarray(at));
    return packets;
  }
}

function decodePacket(first: number, body: Uint8Array): ServerPacket {
  const type = first >> 4;
  const flags = first & 0x0f;
  const name = TYPE_NAMES[type];
  const expectFlags = (wanted: number): void => {
    if (flags !== wanted) {
      throw new MqttWireError(`a ${name} packet with reserved flags ${flags.toString(2)}`);
    }
  };
  const expectLength = (wanted: number): void => {
    if (body.length !== wanted) {
      throw new MqttWireError(`a ${name} packet of ${body.length} bytes (must be ${wanted})`);
    }
  };
  switch (type) {
    case 2: {
      expectFlags(0);
      expectLength(2);
      if (body[0] > 1) throw new MqttWireError(`a CONNACK with reserved flags ${body[0]}`);
      return { type: "connack", sessionPresent: body[0] === 1, returnCode: body[1] };
    }
    case 3: {
      const qos = (flags >> 1) & 0x03;
      if (qos === 3) throw new MqttWireError("a PUBLISH packet with QoS 3");
      if (body.length < 2) throw new MqttWireError("a PUBLISH packet without a topic");
      const topicLength = (body[0] << 8) | body[1];
      let at = 2 + topicLength;
      if (at > body.length) throw new MqttWireError("a PUBLISH packet shorter than its topic");
      let topic: string;
      try {
        topic = decoder.decode(body.subarray(2, at));
      } catch {
        throw new MqttWireError("a PUBLISH packet whose topic is not UTF-8");
      }
      if (!isTopicName(topic)) {
        throw new MqttWireError(`a PUBLISH packet to an invalid topic name "${topic}"`);
      }
      const result: PublishPacket = {
        type: "publish",
        topic,
        payload: new Uint8Array(0),
        qos: qos as 0 | 1 | 2,
        retain: (flags & 0x01) !== 0,
        dup: (flags & 0x08) !== 0,
      };
      if (qos > 0) {
        if (at + 2 > body.length) throw new MqttWireError("a PUBLISH packet without its id");
        result.packetId = (body[at] << 8) | body[at + 1];
        if (result.packetId === 0) throw new MqttWireError("a PUBLISH packet with id 0");
        at += 2;
      }
      result.payload = new Uint8Array(body.subarray(at)); // a copy, also of a Node Buffer
      return result;
    }
    case 4:
    case 5:
    case 6:
    case 7:
    case 11: {
      expectFlags(type === 6 ? 0x02 : 0);
      expectLength(2);
      return { type: ACK_TYPES[type], packetId: (body[0] << 8) | body[1] };
    }
    case 9: {
      expectFlags(0);
      if (body.length < 3) throw new MqttWireError("a SUBACK packet without return codes");
      const granted = Array.from(body.subarray(2));
      for (const code of granted) {
        if (code > 2 && code !== 0x80) {
          throw new MqttWireError(`a SUBACK with the invalid return code ${code}`);
        }
      }
      return { type: "suback", packetId: (body[0] << 8) | body[1], granted };
    }
    case 13: {
      expectFlags(0);
      expectLength(0);
      return { type: "pingresp" };
    }
    default:
      throw new MqttWireError(`a ${name} packet, which a broker does not send`);
  }
}
