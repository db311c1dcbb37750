/**
 * The MQTT 3.1.1 codec (`lib/mqtt_wire.ts`): the encoders byte for byte against OASIS MQTT 3.1.1
 * sections 2 and 3, the streaming decoder on every packet a broker sends and on everything it must
 * refuse, interop in both directions with `mqtt-packet` (the codec of MQTT.js and aedes), and a
 * seeded fuzzer over random bytes and mutated server packets fed in random chunks.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generate, type Packet, parser } from "npm:mqtt-packet@9.0.2";
import {
  DEFAULT_MAX_PACKET_BYTES,
  encodeAck,
  encodeConnect,
  encodeDisconnect,
  encodePingreq,
  encodePublish,
  encodeSubscribe,
  MAX_REMAINING_LENGTH,
  MqttDecoder,
  MqttWireError,
  type ServerPacket,
} from "../lib/mqtt_wire.ts";

// ---- Helpers -----------------------------------------------------------------------------

const utf8 = new TextEncoder();

/** The UTF-8 bytes of a string, as numbers (for building expected packets). */
function text(s: string): number[] {
  return [...utf8.encode(s)];
}

/** An MQTT string: two length bytes, big-endian, then the UTF-8 bytes (section 1.5.3). */
function mqttString(s: string): number[] {
  const bytes = text(s);
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

/** The remaining-length bytes of section 2.2.3, written out independently of the module. */
function remainingLength(value: number): number[] {
  const out: number[] = [];
  let x = value;
  for (;;) {
    const digit = x % 128;
    x = Math.floor(x / 128);
    if (x === 0) {
      out.push(digit);
      return out;
    }
    out.push(digit | 0x80);
  }
}

/** A whole packet: first byte, remaining length, body. */
function frame(first: number, body: ArrayLike<number>): Uint8Array {
  return new Uint8Array([first, ...remainingLength(body.length), ...Array.from(body)]);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Decodes a stream in one push, checking nothing is left over. */
function decodeAll(bytes: Uint8Array, maxPacketBytes?: number): ServerPacket[] {
  const decoder = new MqttDecoder(maxPacketBytes);
  const packets = decoder.push(bytes);
  assert.equal(decoder.pending, 0, `bytes left over after ${hex(bytes)}`);
  return packets;
}

/** Asserts that `fn` throws an MqttWireError whose message matches `message`. */
function throwsWire(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MqttWireError, `expected an MqttWireError, got ${err}`);
    assert.equal(err.name, "MqttWireError");
    assert.match(err.message, message);
    return true;
  });
}

/** Parses bytes with mqtt-packet's parser (MQTT 3.1.1) and returns its packets. */
function parseWithMqttPacket(bytes: Uint8Array): Packet[] {
  const p = parser({ protocolVersion: 4 });
  const packets: Packet[] = [];
  const errors: unknown[] = [];
  p.on("packet", (packet) => packets.push(packet));
  p.on("error", (err) => errors.push(err));
  const left = p.parse(Buffer.from(bytes));
  assert.deepEqual(errors, [], `mqtt-packet refused ${hex(bytes)}`);
  assert.equal(left, 0, `mqtt-packet left bytes of ${hex(bytes)}`);
  return packets;
}

function parseOneWithMqttPacket(bytes: Uint8Array): Packet {
  const packets = parseWithMqttPacket(bytes);
  assert.equal(packets.length, 1);
  return packets[0];
}

/** mqtt-packet's `generate()` as a plain Uint8Array (see the Buffer tests for why plain). */
function generated(packet: Packet): Uint8Array {
  return new Uint8Array(generate(packet));
}

// ---- encodeConnect -----------------------------------------------------------------------

Deno.test("encodeConnect() writes protocol MQTT level 4, the clean flag, the keepalive and the client id", () => {
  assert.deepEqual(
    encodeConnect({ clientId: "d:dev", keepaliveSeconds: 60 }),
    new Uint8Array([
      0x10, // CONNECT, flags 0
      17, // remaining length: 10 bytes of variable header, 7 of payload
      0x00,
      0x04,
      0x4d,
      0x51,
      0x54,
      0x54, // "MQTT"
      0x04, // protocol level 4 (3.1.1)
      0x02, // connect flags: clean session only
      0x00,
      0x3c, // keepalive 60, big-endian
      0x00,
      0x05,
      0x64,
      0x3a,
      0x64,
      0x65,
      0x76, // "d:dev"
    ]),
  );
});

Deno.test("encodeConnect() clears the clean flag with clean: false and sets it with clean: true", () => {
  assert.equal(encodeConnect({ clientId: "x", keepaliveSeconds: 0, clean: false })[9], 0x00);
  assert.equal(encodeConnect({ clientId: "x", keepaliveSeconds: 0, clean: true })[9], 0x02);
});

Deno.test("encodeConnect() writes the keepalive big-endian over its whole range", () => {
  for (const [seconds, hi, lo] of [[0, 0, 0], [255, 0, 0xff], [256, 1, 0], [0x1234, 0x12, 0x34]]) {
    const bytes = encodeConnect({ clientId: "x", keepaliveSeconds: seconds });
    assert.deepEqual([bytes[10], bytes[11]], [hi, lo], `keepalive ${seconds}`);
  }
  const max = encodeConnect({ clientId: "x", keepaliveSeconds: 65535 });
  assert.deepEqual([max[10], max[11]], [0xff, 0xff]);
});

Deno.test("encodeConnect() counts the client id in UTF-8 bytes, not UTF-16 code units", () => {
  // é is 2 bytes, € 3, 😀 4 (and two UTF-16 code units): 9 bytes for a JS length of 4.
  const clientId = "é€😀";
  assert.equal(clientId.length, 4);
  const bytes = encodeConnect({ clientId, keepaliveSeconds: 30 });
  assert.deepEqual(
    bytes,
    new Uint8Array([
      0x10,
      10 + 2 + 9,
      ...[0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x1e],
      ...[0x00, 0x09, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80],
    ]),
  );
});

Deno.test("encodeConnect() writes one length byte up to 127 and two from 128 (section 2.2.3)", () => {
  // The remaining length is 10 + 2 + the client id length.
  const at127 = encodeConnect({ clientId: "a".repeat(115), keepaliveSeconds: 60 });
  assert.equal(at127.length, 2 + 127);
  assert.deepEqual([...at127.subarray(0, 3)], [0x10, 0x7f, 0x00]);

  const at128 = encodeConnect({ clientId: "a".repeat(116), keepaliveSeconds: 60 });
  assert.equal(at128.length, 3 + 128);
  assert.deepEqual([...at128.subarray(0, 4)], [0x10, 0x80, 0x01, 0x00]);

  // 200 = 0x48 + 1 * 128: 0xc8 0x01, then the variable header starts at offset 3.
  const at200 = encodeConnect({ clientId: "b".repeat(188), keepaliveSeconds: 60 });
  assert.equal(at200.length, 3 + 200);
  assert.deepEqual(
    [...at200.subarray(0, 5)],
    [0x10, 0xc8, 0x01, 0x00, 0x04],
  );
  assert.deepEqual([...at200.subarray(13, 15)], [0x00, 188]);
});

Deno.test("encodeConnect() accepts a client id of 65,535 UTF-8 bytes (three length bytes)", () => {
  const bytes = encodeConnect({ clientId: "a".repeat(65535), keepaliveSeconds: 60 });
  // 10 + 2 + 65535 = 65547 = 11 + 0 * 128 + 4 * 16384: 0x8b 0x80 0x04.
  assert.deepEqual([...bytes.subarray(0, 4)], [0x10, 0x8b, 0x80, 0x04]);
  assert.equal(bytes.length, 4 + 65547);
  assert.deepEqual([...bytes.subarray(14, 16)], [0xff, 0xff]);
});

Deno.test("encodeConnect() refuses a keepalive outside 0..65535 or not an integer", () => {
  for (const keepaliveSeconds of [-1, 65536, 1.5, Number.NaN, Infinity]) {
    assert.throws(
      () => encodeConnect({ clientId: "x", keepaliveSeconds }),
      RangeError,
      `keepalive ${keepaliveSeconds}`,
    );
  }
});

Deno.test("encodeConnect() refuses a client id over 65,535 UTF-8 bytes, counted in bytes", () => {
  assert.throws(
    () => encodeConnect({ clientId: "a".repeat(65536), keepaliveSeconds: 60 }),
    (err: unknown) => err instanceof RangeError && /65536 bytes/.test(err.message),
  );
  // 32,768 characters but 65,536 bytes.
  assert.throws(
    () => encodeConnect({ clientId: "é".repeat(32768), keepaliveSeconds: 60 }),
    RangeError,
  );
});

// ---- encodePublish -----------------------------------------------------------------------

const HI = [0x68, 0x69]; // "hi"

Deno.test("encodePublish() at QoS 0 writes no packet identifier", () => {
  assert.deepEqual(
    encodePublish({ topic: "a/b", payload: new Uint8Array(HI) }),
    new Uint8Array([0x30, 7, 0x00, 0x03, 0x61, 0x2f, 0x62, ...HI]),
  );
  // A packet identifier given at QoS 0 is not written either (section 2.3.1).
  assert.deepEqual(
    encodePublish({ topic: "a/b", payload: new Uint8Array(HI), qos: 0, packetId: 7 }),
    new Uint8Array([0x30, 7, 0x00, 0x03, 0x61, 0x2f, 0x62, ...HI]),
  );
});

Deno.test("encodePublish() at QoS 1 and 2 writes the QoS bits and the packet identifier", () => {
  assert.deepEqual(
    encodePublish({ topic: "a/b", payload: new Uint8Array(HI), qos: 1, packetId: 0x1234 }),
    new Uint8Array([0x32, 9, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x12, 0x34, ...HI]),
  );
  assert.deepEqual(
    encodePublish({ topic: "a/b", payload: new Uint8Array(HI), qos: 2, packetId: 0xfffe }),
    new Uint8Array([0x34, 9, 0x00, 0x03, 0x61, 0x2f, 0x62, 0xff, 0xfe, ...HI]),
  );
});

Deno.test("encodePublish() sets the retain bit (0x01) and the dup bit (0x08)", () => {
  const payload = new Uint8Array(HI);
  assert.equal(encodePublish({ topic: "t", payload, retain: true })[0], 0x31);
  assert.equal(encodePublish({ topic: "t", payload, qos: 1, packetId: 1, dup: true })[0], 0x3a);
  assert.equal(
    encodePublish({ topic: "t", payload, qos: 2, packetId: 1, dup: true, retain: true })[0],
    0x3d,
  );
  assert.equal(encodePublish({ topic: "t", payload, retain: false, dup: false })[0], 0x30);
});

Deno.test("encodePublish() writes an empty payload as nothing after the topic", () => {
  assert.deepEqual(
    encodePublish({ topic: "a/b", payload: new Uint8Array(0) }),
    new Uint8Array([0x30, 5, 0x00, 0x03, 0x61, 0x2f, 0x62]),
  );
  assert.deepEqual(
    encodePublish({ topic: "a/b", payload: new Uint8Array(0), qos: 1, packetId: 1 }),
    new Uint8Array([0x32, 7, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, 0x01]),
  );
});

Deno.test("encodePublish() writes a 200-byte payload with a two-byte remaining length", () => {
  const payload = Uint8Array.from({ length: 200 }, (_, i) => i);
  const bytes = encodePublish({ topic: "t", payload });
  // 3 + 200 = 203 = 75 + 1 * 128: 0xcb 0x01.
  assert.deepEqual([...bytes.subarray(0, 6)], [0x30, 0xcb, 0x01, 0x00, 0x01, 0x74]);
  assert.equal(bytes.length, 3 + 203);
  assert.deepEqual(bytes.subarray(6), payload);
});

Deno.test("encodePublish() switches from two to three length bytes at 16,384", () => {
  // 3 + 16380 = 16383, the largest two-byte length: 0xff 0x7f.
  const two = encodePublish({ topic: "t", payload: new Uint8Array(16380) });
  assert.deepEqual([...two.subarray(0, 4)], [0x30, 0xff, 0x7f, 0x00]);
  assert.equal(two.length, 3 + 16383);
  // 3 + 16384 = 16387 = 3 + 0 * 128 + 1 * 16384: 0x83 0x80 0x01.
  const payload = new Uint8Array(16384).fill(0xa5);
  const three = encodePublish({ topic: "t", payload, qos: 1, packetId: 2 });
  // With the packet identifier: 16389 = 5 + 0 * 128 + 1 * 16384.
  assert.deepEqual(
    [...three.subarray(0, 9)],
    [0x32, 0x85, 0x80, 0x01, 0x00, 0x01, 0x74, 0x00, 0x02],
  );
  assert.equal(three.length, 4 + 16389);
  assert.deepEqual(three.subarray(9), payload);
});

Deno.test("encodePublish() refuses wildcard, empty and NUL topic names", () => {
  for (const topic of ["a/+", "+", "a/#", "#", "", "a\0b"]) {
    assert.throws(
      () => encodePublish({ topic, payload: new Uint8Array(0) }),
      RangeError,
      JSON.stringify(topic),
    );
  }
});

Deno.test("encodePublish() refuses QoS 1 and 2 without a packet identifier in 1..65535", () => {
  const payload = new Uint8Array(0);
  for (const qos of [1, 2] as const) {
    assert.throws(() => encodePublish({ topic: "t", payload, qos }), RangeError);
    for (const packetId of [0, 65536, -1, 1.5]) {
      assert.throws(
        () => encodePublish({ topic: "t", payload, qos, packetId }),
        RangeError,
        `QoS ${qos}, packet id ${packetId}`,
      );
    }
  }
  assert.equal(encodePublish({ topic: "t", payload, qos: 1, packetId: 65535 })[5], 0xff);
});

// ---- encodeSubscribe, encodeAck, encodePingreq, encodeDisconnect -------------------------

Deno.test("encodeSubscribe() writes 0x82, the packet identifier, the filter and the requested QoS", () => {
  assert.deepEqual(
    encodeSubscribe(10, "c8y/s/ds", 1),
    new Uint8Array([0x82, 13, 0x00, 0x0a, ...mqttString("c8y/s/ds"), 0x01]),
  );
  assert.deepEqual(
    encodeSubscribe(0x0102, "s/dat/#", 0),
    new Uint8Array([0x82, 12, 0x01, 0x02, ...mqttString("s/dat/#"), 0x00]),
  );
  assert.deepEqual(
    encodeSubscribe(65535, "+/x", 2),
    new Uint8Array([0x82, 8, 0xff, 0xff, ...mqttString("+/x"), 0x02]),
  );
});

Deno.test("encodeSubscribe() refuses packet identifier 0 or 65536 and an empty filter", () => {
  assert.throws(() => encodeSubscribe(0, "a", 0), RangeError);
  assert.throws(() => encodeSubscribe(65536, "a", 0), RangeError);
  assert.throws(() => encodeSubscribe(1, "", 0), RangeError);
});

Deno.test("encodeAck() writes PUBACK 0x40, PUBREC 0x50, PUBREL 0x62 and PUBCOMP 0x70", () => {
  assert.deepEqual(encodeAck("puback", 0x0102), new Uint8Array([0x40, 0x02, 0x01, 0x02]));
  assert.deepEqual(encodeAck("pubrec", 0x0102), new Uint8Array([0x50, 0x02, 0x01, 0x02]));
  // PUBREL's reserved flags are 0010 (section 3.6.1).
  assert.deepEqual(encodeAck("pubrel", 0x0102), new Uint8Array([0x62, 0x02, 0x01, 0x02]));
  assert.deepEqual(encodeAck("pubcomp", 0x0102), new Uint8Array([0x70, 0x02, 0x01, 0x02]));
  assert.deepEqual(encodeAck("puback", 65535), new Uint8Array([0x40, 0x02, 0xff, 0xff]));
  assert.deepEqual(encodeAck("pubrel", 1), new Uint8Array([0x62, 0x02, 0x00, 0x01]));
});

Deno.test("encodeAck() refuses packet identifiers outside 1..65535", () => {
  for (const id of [0, 65536, -1, 2.5]) {
    assert.throws(() => encodeAck("puback", id), RangeError, `packet id ${id}`);
  }
});

Deno.test("encodePingreq() is 0xc0 0x00 and encodeDisconnect() is 0xe0 0x00", () => {
  assert.deepEqual(encodePingreq(), new Uint8Array([0xc0, 0x00]));
  assert.deepEqual(encodeDisconnect(), new Uint8Array([0xe0, 0x00]));
});

// ---- MqttDecoder: every packet a broker sends --------------------------------------------

Deno.test("MqttDecoder reads CONNACK with and without session present, and its return code", () => {
  assert.deepEqual(decodeAll(new Uint8Array([0x20, 0x02, 0x00, 0x00])), [
    { type: "connack", sessionPresent: false, returnCode: 0 },
  ]);
  assert.deepEqual(decodeAll(new Uint8Array([0x20, 0x02, 0x01, 0x00])), [
    { type: "connack", sessionPresent: true, returnCode: 0 },
  ]);
  assert.deepEqual(decodeAll(new Uint8Array([0x20, 0x02, 0x00, 0x05])), [
    { type: "connack", sessionPresent: false, returnCode: 5 },
  ]);
});

Deno.test("MqttDecoder reads PUBLISH at QoS 0, 1 and 2 with the retain and dup flags", () => {
  const body = [...mqttString("s/ds"), 0x35, 0x31, 0x30];
  assert.deepEqual(decodeAll(frame(0x30, body)), [
    {
      type: "publish",
      topic: "s/ds",
      payload: new Uint8Array([0x35, 0x31, 0x30]),
      qos: 0,
      retain: false,
      dup: false,
    },
  ]);
  assert.deepEqual(decodeAll(frame(0x31, body)), [
    {
      type: "publish",
      topic: "s/ds",
      payload: new Uint8Array([0x35, 0x31, 0x30]),
      qos: 0,
      retain: true,
      dup: false,
    },
  ]);
  const withId = [...mqttString("s/ds"), 0xab, 0xcd, 0x00, 0xff];
  assert.deepEqual(decodeAll(frame(0x32, withId)), [
    {
      type: "publish",
      topic: "s/ds",
      payload: new Uint8Array([0x00, 0xff]),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 0xabcd,
    },
  ]);
  assert.deepEqual(decodeAll(frame(0x3b, withId)), [
    {
      type: "publish",
      topic: "s/ds",
      payload: new Uint8Array([0x00, 0xff]),
      qos: 1,
      retain: true,
      dup: true,
      packetId: 0xabcd,
    },
  ]);
  assert.deepEqual(decodeAll(frame(0x3c, withId)), [
    {
      type: "publish",
      topic: "s/ds",
      payload: new Uint8Array([0x00, 0xff]),
      qos: 2,
      retain: false,
      dup: true,
      packetId: 0xabcd,
    },
  ]);
});

Deno.test("MqttDecoder reads a PUBLISH with an empty payload, a UTF-8 topic and a long body", () => {
  assert.deepEqual(decodeAll(frame(0x30, mqttString("ä/€/😀"))), [
    {
      type: "publish",
      topic: "ä/€/😀",
      payload: new Uint8Array(0),
      qos: 0,
      retain: false,
      dup: false,
    },
  ]);
  const payload = Uint8Array.from({ length: 20000 }, (_, i) => (i * 7) & 0xff);
  const packets = decodeAll(frame(0x34, [...mqttString("big"), 0x00, 0x09, ...payload]));
  assert.deepEqual(packets, [
    { type: "publish", topic: "big", payload, qos: 2, retain: false, dup: false, packetId: 9 },
  ]);
});

Deno.test("MqttDecoder reads PUBACK, PUBREC, PUBREL (flags 0010), PUBCOMP and UNSUBACK", () => {
  const stream = new Uint8Array([
    ...[0x40, 0x02, 0x00, 0x01],
    ...[0x50, 0x02, 0x01, 0x00],
    ...[0x62, 0x02, 0xff, 0xff],
    ...[0x70, 0x02, 0x12, 0x34],
    ...[0xb0, 0x02, 0x00, 0x07],
  ]);
  assert.deepEqual(decodeAll(stream), [
    { type: "puback", packetId: 1 },
    { type: "pubrec", packetId: 256 },
    { type: "pubrel", packetId: 65535 },
    { type: "pubcomp", packetId: 0x1234 },
    { type: "unsuback", packetId: 7 },
  ]);
});

Deno.test("MqttDecoder reads SUBACK with granted QoS 0, 1, 2 and the failure code 0x80", () => {
  assert.deepEqual(decodeAll(new Uint8Array([0x90, 0x03, 0x00, 0x0a, 0x01])), [
    { type: "suback", packetId: 10, granted: [1] },
  ]);
  assert.deepEqual(
    decodeAll(new Uint8Array([0x90, 0x07, 0x01, 0x02, 0x00, 0x01, 0x02, 0x80, 0x00])),
    [{ type: "suback", packetId: 0x0102, granted: [0, 1, 2, 0x80, 0] }],
  );
});

Deno.test("MqttDecoder reads PINGRESP", () => {
  assert.deepEqual(decodeAll(new Uint8Array([0xd0, 0x00])), [{ type: "pingresp" }]);
});

/** One of each server packet, back to back, and what they decode to. */
const STREAM = concat(
  new Uint8Array([0x20, 0x02, 0x01, 0x00]),
  frame(0x3b, [...mqttString("s/ds"), 0x00, 0x05, 0x61, 0x62, 0x63]),
  new Uint8Array([0x90, 0x04, 0x00, 0x02, 0x01, 0x80]),
  new Uint8Array([0x40, 0x02, 0x00, 0x03]),
  new Uint8Array([0x50, 0x02, 0x00, 0x04]),
  new Uint8Array([0x62, 0x02, 0x00, 0x04]),
  new Uint8Array([0x70, 0x02, 0x00, 0x04]),
  frame(0x30, mqttString("t")),
  new Uint8Array([0xb0, 0x02, 0x00, 0x06]),
  new Uint8Array([0xd0, 0x00]),
);
const STREAM_PACKETS: ServerPacket[] = [
  { type: "connack", sessionPresent: true, returnCode: 0 },
  {
    type: "publish",
    topic: "s/ds",
    payload: new Uint8Array([0x61, 0x62, 0x63]),
    qos: 1,
    retain: true,
    dup: true,
    packetId: 5,
  },
  { type: "suback", packetId: 2, granted: [1, 0x80] },
  { type: "puback", packetId: 3 },
  { type: "pubrec", packetId: 4 },
  { type: "pubrel", packetId: 4 },
  { type: "pubcomp", packetId: 4 },
  { type: "publish", topic: "t", payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
  { type: "unsuback", packetId: 6 },
  { type: "pingresp" },
];

Deno.test("MqttDecoder returns every packet of a chunk holding several, in order", () => {
  assert.deepEqual(decodeAll(STREAM), STREAM_PACKETS);
});

Deno.test("MqttDecoder gives the same packets when fed one byte at a time", () => {
  const decoder = new MqttDecoder();
  const packets: ServerPacket[] = [];
  for (const byte of STREAM) packets.push(...decoder.push(new Uint8Array([byte])));
  assert.deepEqual(packets, STREAM_PACKETS);
  assert.equal(decoder.pending, 0);
});

Deno.test("MqttDecoder gives the same packets for every split of the stream in two and in three", () => {
  for (let i = 0; i <= STREAM.length; i++) {
    for (let j = i; j <= STREAM.length; j++) {
      const decoder = new MqttDecoder();
      const packets = [
        ...decoder.push(STREAM.subarray(0, i)),
        ...decoder.push(STREAM.subarray(i, j)),
        ...decoder.push(STREAM.subarray(j)),
      ];
      assert.deepEqual(packets, STREAM_PACKETS, `split at ${i} and ${j}`);
      assert.equal(decoder.pending, 0);
    }
  }
});

Deno.test("MqttDecoder returns a payload that is a copy of the chunk it came in", () => {
  const chunk = frame(0x30, [...mqttString("t"), 0x01, 0x02, 0x03]);
  const [packet] = new MqttDecoder().push(chunk);
  chunk.fill(0xee);
  assert.equal(packet.type, "publish");
  assert.deepEqual(packet.type === "publish" && packet.payload, new Uint8Array([1, 2, 3]));
});

Deno.test("MqttDecoder keeps its own copy of a partial packet, not a view of the caller's chunk", () => {
  const whole = frame(0x30, [...mqttString("t"), 0x01, 0x02, 0x03]);
  const decoder = new MqttDecoder();
  const first = whole.slice(0, 5);
  assert.deepEqual(decoder.push(first), []);
  first.fill(0xee); // the caller reuses its read buffer
  const [packet] = decoder.push(whole.slice(5));
  assert.deepEqual(packet, {
    type: "publish",
    topic: "t",
    payload: new Uint8Array([1, 2, 3]),
    qos: 0,
    retain: false,
    dup: false,
  });
});

// `lib/session.ts` feeds the decoder the chunks of a `node:tls` socket, which are Node Buffers,
// whose `slice()` is a view rather than a copy.
Deno.test("MqttDecoder returns a payload that is a copy when the chunk is a Node Buffer", () => {
  const chunk = Buffer.from(frame(0x30, [...mqttString("t"), 0x01, 0x02, 0x03]));
  const [packet] = new MqttDecoder().push(chunk);
  assert.ok(packet.type === "publish");
  const payload = packet.payload;
  chunk.fill(0xee);
  assert.deepEqual([...payload], [1, 2, 3]);
});

Deno.test("MqttDecoder keeps a copy of a partial packet when the chunk is a Node Buffer", () => {
  const whole = frame(0x30, [...mqttString("t"), 0x01, 0x02, 0x03]);
  const decoder = new MqttDecoder();
  const first = Buffer.from(whole.subarray(0, 6));
  assert.deepEqual(decoder.push(first), []);
  first.fill(0xee);
  const [packet] = decoder.push(Buffer.from(whole.subarray(6)));
  assert.ok(packet.type === "publish");
  assert.equal(packet.topic, "t");
  assert.deepEqual([...packet.payload], [1, 2, 3]);
});

Deno.test("MqttDecoder reports in pending the bytes it holds back", () => {
  const decoder = new MqttDecoder();
  assert.equal(decoder.pending, 0);
  assert.deepEqual(decoder.push(new Uint8Array(0)), []);
  assert.equal(decoder.pending, 0);
  assert.deepEqual(decoder.push(new Uint8Array([0x30])), []); // the first byte alone
  assert.equal(decoder.pending, 1);
  assert.deepEqual(decoder.push(new Uint8Array([0x04, 0x00])), []); // length, half a topic length
  assert.equal(decoder.pending, 3);
  assert.deepEqual(decoder.push(new Uint8Array([0x01, 0x61, 0x7a])), [
    {
      type: "publish",
      topic: "a",
      payload: new Uint8Array([0x7a]),
      qos: 0,
      retain: false,
      dup: false,
    },
  ]);
  assert.equal(decoder.pending, 0);
  // A whole PINGRESP and two bytes of a PUBACK.
  assert.deepEqual(decoder.push(new Uint8Array([0xd0, 0x00, 0x40, 0x02])), [{ type: "pingresp" }]);
  assert.equal(decoder.pending, 2);
  assert.deepEqual(decoder.push(new Uint8Array([0x00])), []);
  assert.equal(decoder.pending, 3);
  assert.deepEqual(decoder.push(new Uint8Array([0x09])), [{ type: "puback", packetId: 9 }]);
  assert.equal(decoder.pending, 0);
  // An incomplete multi-byte remaining length is held back too.
  assert.deepEqual(decoder.push(new Uint8Array([0x30, 0x80, 0x80])), []);
  assert.equal(decoder.pending, 3);
});

// ---- MqttDecoder: what it refuses --------------------------------------------------------

Deno.test("MqttDecoder refuses a remaining length of five bytes as soon as the fifth arrives", () => {
  throwsWire(
    () => new MqttDecoder().push(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])),
    /a PUBLISH packet whose remaining length is longer than four bytes/,
  );
  const decoder = new MqttDecoder();
  assert.deepEqual(decoder.push(new Uint8Array([0xd0, 0x80, 0x80, 0x80])), []);
  assert.equal(decoder.pending, 4);
  throwsWire(
    () => decoder.push(new Uint8Array([0x80])),
    /a PINGRESP packet whose remaining length is longer than four bytes/,
  );
});

Deno.test("MqttDecoder refuses a packet over maxPacketBytes from its header, before the body", () => {
  // Remaining length 64 behind a two-byte header: 66 bytes in all.
  throwsWire(
    () => new MqttDecoder(64).push(new Uint8Array([0x30, 0x40])),
    /^a PUBLISH packet of 66 bytes \(the limit is 64\)$/,
  );
  // 62 + 2 = 64 is accepted.
  const decoder = new MqttDecoder(64);
  const exact = frame(0x30, [...mqttString("t"), ...new Uint8Array(59)]);
  assert.equal(exact.length, 64);
  assert.equal(decoder.push(exact).length, 1);
  // The default bound of 1 MiB: a header of 1 + 3 bytes announcing 1,048,572 is exactly 1 MiB.
  assert.equal(DEFAULT_MAX_PACKET_BYTES, 1048576);
  const atLimit = new MqttDecoder();
  assert.deepEqual(atLimit.push(new Uint8Array([0x30, ...remainingLength(1048572)])), []);
  assert.equal(atLimit.pending, 4);
  throwsWire(
    () => new MqttDecoder().push(new Uint8Array([0x30, ...remainingLength(1048573)])),
    /a PUBLISH packet of 1048577 bytes \(the limit is 1048576\)/,
  );
  throwsWire(
    () => new MqttDecoder().push(new Uint8Array([0x90, ...remainingLength(MAX_REMAINING_LENGTH)])),
    /a SUBACK packet of 268435460 bytes/,
  );
});

Deno.test("MqttDecoder refuses a CONNACK of the wrong length or with reserved flags set", () => {
  throwsWire(
    () => decodeAll(new Uint8Array([0x20, 0x03, 0x00, 0x00, 0x00])),
    /CONNACK packet of 3 bytes \(must be 2\)/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x20, 0x01, 0x00])),
    /CONNACK packet of 1 bytes \(must be 2\)/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x21, 0x02, 0x00, 0x00])),
    /CONNACK packet with reserved flags 1/,
  );
  // Bits 7-1 of the acknowledge flags are reserved (section 3.2.2.1).
  throwsWire(
    () => decodeAll(new Uint8Array([0x20, 0x02, 0x02, 0x00])),
    /CONNACK with reserved flags 2/,
  );
});

Deno.test("MqttDecoder refuses a PUBLISH with QoS 3", () => {
  throwsWire(
    () => decodeAll(frame(0x36, [...mqttString("t"), 0x00, 0x01])),
    /PUBLISH packet with QoS 3/,
  );
});

Deno.test("MqttDecoder refuses a PUBLISH whose topic length runs past its body", () => {
  throwsWire(
    () => decodeAll(new Uint8Array([0x30, 0x04, 0x00, 0x05, 0x61, 0x62])),
    /PUBLISH packet shorter than its topic/,
  );
  throwsWire(() => decodeAll(new Uint8Array([0x30, 0x01, 0x00])), /PUBLISH packet without a topic/);
  throwsWire(() => decodeAll(new Uint8Array([0x30, 0x00])), /PUBLISH packet without a topic/);
});

Deno.test("MqttDecoder refuses a PUBLISH whose topic is not well-formed UTF-8", () => {
  for (
    const topic of [
      [0xc3, 0x28], // a lead byte without its continuation
      [0xff],
      [0xc0, 0xaf], // an overlong "/"
      [0xed, 0xa0, 0x80], // an encoded surrogate, U+D800 (section 1.5.3)
    ]
  ) {
    throwsWire(
      () => decodeAll(frame(0x30, [0x00, topic.length, ...topic])),
      /PUBLISH packet whose topic is not UTF-8/,
    );
  }
});

Deno.test("MqttDecoder refuses a PUBLISH to a wildcard, empty or NUL topic name", () => {
  for (const topic of ["a/+", "#", "a/#/b", "", "a\0"]) {
    throwsWire(
      () => decodeAll(frame(0x30, mqttString(topic))),
      /PUBLISH packet to an invalid topic name/,
    );
  }
});

Deno.test("MqttDecoder refuses a QoS 1 or 2 PUBLISH with packet identifier 0 or without one", () => {
  throwsWire(
    () => decodeAll(frame(0x32, [...mqttString("t"), 0x00, 0x00])),
    /PUBLISH packet with id 0/,
  );
  throwsWire(
    () => decodeAll(frame(0x34, [...mqttString("t"), 0x00, 0x00, 0x61])),
    /PUBLISH packet with id 0/,
  );
  throwsWire(() => decodeAll(frame(0x32, mqttString("t"))), /PUBLISH packet without its id/);
  throwsWire(
    () => decodeAll(frame(0x34, [...mqttString("t"), 0x01])),
    /PUBLISH packet without its id/,
  );
});

Deno.test("MqttDecoder refuses a SUBACK with return code 3 or 0x81, without codes or with flags", () => {
  throwsWire(
    () => decodeAll(new Uint8Array([0x90, 0x03, 0x00, 0x01, 0x03])),
    /SUBACK with the invalid return code 3/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x90, 0x04, 0x00, 0x01, 0x00, 0x81])),
    /SUBACK with the invalid return code 129/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x90, 0x02, 0x00, 0x01])),
    /SUBACK packet without return codes/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x92, 0x03, 0x00, 0x01, 0x00])),
    /SUBACK packet with reserved flags 10/,
  );
});

Deno.test("MqttDecoder refuses a PUBREL without flags 0010 and acks with flags or a wrong length", () => {
  throwsWire(
    () => decodeAll(new Uint8Array([0x60, 0x02, 0x00, 0x01])),
    /PUBREL packet with reserved flags 0/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x42, 0x02, 0x00, 0x01])),
    /PUBACK packet with reserved flags 10/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x72, 0x02, 0x00, 0x01])),
    /PUBCOMP packet with reserved flags 10/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0xb1, 0x02, 0x00, 0x01])),
    /UNSUBACK packet with reserved flags 1/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x50, 0x03, 0x00, 0x01, 0x00])),
    /PUBREC packet of 3 bytes \(must be 2\)/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0x62, 0x01, 0x00])),
    /PUBREL packet of 1 bytes \(must be 2\)/,
  );
});

Deno.test("MqttDecoder refuses a PINGRESP with a body or with flags", () => {
  throwsWire(
    () => decodeAll(new Uint8Array([0xd0, 0x01, 0x00])),
    /PINGRESP packet of 1 bytes \(must be 0\)/,
  );
  throwsWire(
    () => decodeAll(new Uint8Array([0xd8, 0x00])),
    /PINGRESP packet with reserved flags 1000/,
  );
});

Deno.test("MqttDecoder refuses the packet types a broker does not send", () => {
  const cases: [number[], RegExp][] = [
    [[0x10, 0x00], /a CONNECT packet, which a broker does not send/],
    [[0x82, 0x02, 0x00, 0x01], /a SUBSCRIBE packet, which a broker does not send/],
    [[0xa2, 0x02, 0x00, 0x01], /a UNSUBSCRIBE packet, which a broker does not send/],
    [[0xc0, 0x00], /a PINGREQ packet, which a broker does not send/],
    [[0xe0, 0x00], /a DISCONNECT packet, which a broker does not send/],
    [[0x00, 0x00], /a reserved type 0 packet, which a broker does not send/],
    [[0xf0, 0x00], /a reserved type 15 packet, which a broker does not send/],
  ];
  for (const [bytes, message] of cases) throwsWire(() => decodeAll(new Uint8Array(bytes)), message);
});

Deno.test("MqttDecoder refuses a bad packet after good ones in the same stream", () => {
  const decoder = new MqttDecoder();
  assert.deepEqual(decoder.push(new Uint8Array([0xd0, 0x00, 0x40, 0x02, 0x00])), [
    { type: "pingresp" },
  ]);
  throwsWire(
    () => decoder.push(new Uint8Array([0x01, 0xc0, 0x00])),
    /PINGREQ packet, which a broker does not send/,
  );
});

// MQTT-1.5.3-3: "A UTF-8 encoded sequence 0xEF 0xBB 0xBF is always to be interpreted to mean
// U+FEFF ("ZERO WIDTH NO-BREAK SPACE") wherever it appears in a string and MUST NOT be skipped
// over or stripped off by a packet receiver."
Deno.test("MqttDecoder keeps a U+FEFF at the start of a topic (MQTT-1.5.3-3)", () => {
  const bom = frame(0x30, [0x00, 0x04, 0xef, 0xbb, 0xbf, 0x61]);
  // mqtt-packet reads the same bytes as the four-byte topic "\uFEFFa".
  const reference = parseOneWithMqttPacket(bom);
  assert.ok(reference.cmd === "publish");
  assert.equal(reference.topic, "\ufeffa");
  assert.deepEqual(decodeAll(bom), [
    {
      type: "publish",
      topic: "\ufeffa",
      payload: new Uint8Array(0),
      qos: 0,
      retain: false,
      dup: false,
    },
  ]);
  // What encodePublish() writes comes back as the same topic.
  const encoded = encodePublish({ topic: "\ufeff", payload: new Uint8Array([1]) });
  assert.deepEqual(decodeAll(encoded), [
    {
      type: "publish",
      topic: "\ufeff",
      payload: new Uint8Array([1]),
      qos: 0,
      retain: false,
      dup: false,
    },
  ]);
});

// ---- Interop with mqtt-packet: our encoders, its parser ----------------------------------

Deno.test("mqtt-packet parses encodeConnect() output into the same fields", () => {
  for (
    const options of [
      { clientId: "d:dev", keepaliveSeconds: 60 },
      { clientId: "é€😀-device", keepaliveSeconds: 0, clean: true },
      { clientId: "persistent", keepaliveSeconds: 65535, clean: false },
      { clientId: "x".repeat(300), keepaliveSeconds: 1 },
    ]
  ) {
    const p = parseOneWithMqttPacket(encodeConnect(options));
    if (p.cmd !== "connect") assert.fail(`a ${p.cmd} packet`);
    assert.equal(p.protocolId, "MQTT");
    assert.equal(p.protocolVersion, 4);
    assert.equal(p.clientId, options.clientId);
    assert.equal(p.keepalive, options.keepaliveSeconds);
    assert.equal(p.clean, options.clean ?? true);
    assert.equal(p.username, undefined);
    assert.equal(p.password, undefined);
    assert.equal(p.will, undefined);
  }
});

Deno.test("mqtt-packet parses encodePublish() output at QoS 0, 1 and 2 into the same fields", () => {
  const cases = [
    { topic: "s/us", payload: utf8.encode("200,c8y_Temperature,T,25") },
    { topic: "ä/€", payload: new Uint8Array(0), retain: true },
    { topic: "a/b", payload: new Uint8Array([0, 255, 1]), qos: 1 as const, packetId: 1 },
    {
      topic: "a/b",
      payload: new Uint8Array(200).fill(7),
      qos: 1 as const,
      packetId: 65535,
      dup: true,
    },
    { topic: "q2", payload: new Uint8Array(16384).fill(9), qos: 2 as const, packetId: 0x1234 },
    {
      topic: "q2",
      payload: new Uint8Array([5]),
      qos: 2 as const,
      packetId: 2,
      dup: true,
      retain: true,
    },
  ];
  for (const options of cases) {
    const p = parseOneWithMqttPacket(encodePublish(options));
    if (p.cmd !== "publish") assert.fail(`a ${p.cmd} packet`);
    assert.equal(p.topic, options.topic);
    assert.deepEqual(new Uint8Array(p.payload as Buffer), options.payload);
    assert.equal(p.qos, options.qos ?? 0);
    assert.equal(p.retain, options.retain ?? false);
    assert.equal(p.dup, options.dup ?? false);
    assert.equal(p.messageId, options.packetId);
  }
});

Deno.test("mqtt-packet parses encodeSubscribe() output into the same filter, QoS and id", () => {
  for (
    const [id, filter, qos] of [[1, "c8y/s/ds", 1], [65535, "s/e/#", 0], [77, "+/ü/€", 2]] as const
  ) {
    const p = parseOneWithMqttPacket(encodeSubscribe(id, filter, qos));
    if (p.cmd !== "subscribe") assert.fail(`a ${p.cmd} packet`);
    assert.equal(p.messageId, id);
    assert.equal(p.subscriptions.length, 1);
    assert.equal(p.subscriptions[0].topic, filter);
    assert.equal(p.subscriptions[0].qos, qos);
  }
});

Deno.test("mqtt-packet parses encodeAck(), encodePingreq() and encodeDisconnect() output", () => {
  for (const type of ["puback", "pubrec", "pubrel", "pubcomp"] as const) {
    for (const id of [1, 0x0102, 65535]) {
      const p = parseOneWithMqttPacket(encodeAck(type, id));
      assert.equal(p.cmd, type);
      assert.equal(p.messageId, id);
    }
  }
  assert.equal(parseOneWithMqttPacket(encodePingreq()).cmd, "pingreq");
  assert.equal(parseOneWithMqttPacket(encodeDisconnect()).cmd, "disconnect");
  // All of them in one stream.
  const all = parseWithMqttPacket(
    concat(
      encodeConnect({ clientId: "c", keepaliveSeconds: 5 }),
      encodeSubscribe(3, "t", 1),
      encodePublish({ topic: "t", payload: new Uint8Array([1]), qos: 2, packetId: 4 }),
      encodeAck("pubrel", 4),
      encodePingreq(),
      encodeDisconnect(),
    ),
  );
  assert.deepEqual(all.map((p) => p.cmd), [
    "connect",
    "subscribe",
    "publish",
    "pubrel",
    "pingreq",
    "disconnect",
  ]);
});

// ---- Interop with mqtt-packet: its generate(), our decoder -------------------------------

Deno.test("MqttDecoder reads what mqtt-packet generates for every server packet", () => {
  const cases: [Packet, ServerPacket][] = [
    [
      { cmd: "connack", returnCode: 0, sessionPresent: true },
      { type: "connack", sessionPresent: true, returnCode: 0 },
    ],
    [
      { cmd: "connack", returnCode: 5, sessionPresent: false },
      { type: "connack", sessionPresent: false, returnCode: 5 },
    ],
    [
      {
        cmd: "publish",
        topic: "s/ds",
        payload: Buffer.from("510,serial"),
        qos: 0,
        retain: false,
        dup: false,
      },
      {
        type: "publish",
        topic: "s/ds",
        payload: utf8.encode("510,serial"),
        qos: 0,
        retain: false,
        dup: false,
      },
    ],
    [
      {
        cmd: "publish",
        topic: "ä/€/😀",
        payload: Buffer.alloc(300, 0xab),
        qos: 1,
        messageId: 65535,
        retain: true,
        dup: true,
      },
      {
        type: "publish",
        topic: "ä/€/😀",
        payload: new Uint8Array(300).fill(0xab),
        qos: 1,
        retain: true,
        dup: true,
        packetId: 65535,
      },
    ],
    [
      {
        cmd: "publish",
        topic: "q/2",
        payload: Buffer.alloc(0),
        qos: 2,
        messageId: 1,
        retain: false,
        dup: false,
      },
      {
        type: "publish",
        topic: "q/2",
        payload: new Uint8Array(0),
        qos: 2,
        retain: false,
        dup: false,
        packetId: 1,
      },
    ],
    [
      { cmd: "suback", messageId: 42, granted: [0, 1, 2, 128] },
      { type: "suback", packetId: 42, granted: [0, 1, 2, 0x80] },
    ],
    [{ cmd: "puback", messageId: 1 }, { type: "puback", packetId: 1 }],
    [{ cmd: "pubrec", messageId: 0x0102 }, { type: "pubrec", packetId: 0x0102 }],
    [{ cmd: "pubrel", messageId: 300 }, { type: "pubrel", packetId: 300 }],
    [{ cmd: "pubcomp", messageId: 65535 }, { type: "pubcomp", packetId: 65535 }],
    [{ cmd: "unsuback", messageId: 9, granted: [] }, { type: "unsuback", packetId: 9 }],
    [{ cmd: "pingresp" }, { type: "pingresp" }],
  ];
  for (const [packet, expected] of cases) {
    assert.deepEqual(decodeAll(generated(packet)), [expected], packet.cmd);
  }
  // The whole lot as one stream, fed one byte at a time.
  const stream = concat(...cases.map(([packet]) => generated(packet)));
  const decoder = new MqttDecoder();
  const packets: ServerPacket[] = [];
  for (let i = 0; i < stream.length; i++) packets.push(...decoder.push(stream.subarray(i, i + 1)));
  assert.deepEqual(packets, cases.map(([, expected]) => expected));
});

// ---- Seeded randomness -------------------------------------------------------------------

/** The fixed seed of the randomized tests. */
const SEED = 0x4d_51_54_54;

/** A small deterministic PRNG (a 32-bit counter through an integer hash); floats in [0, 1). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return ((z ^ (z >>> 15)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

function below(random: Random, n: number): number {
  return Math.floor(random() * n);
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[below(random, items.length)];
}

function randomBytes(random: Random, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => below(random, 256));
}

const TOPIC_PARTS = ["s", "ds", "c8y", "é", "€", "😀", "dev-1", "x y", "$SYS", "a.b", ""];

function randomTopic(random: Random): string {
  const parts = Array.from({ length: 1 + below(random, 4) }, () => pick(random, TOPIC_PARTS));
  const topic = parts.join("/");
  return topic.length === 0 ? "t" : topic;
}

/** A random valid server packet, as bytes built here, and what it decodes to. */
function randomServerPacket(random: Random): [Uint8Array, ServerPacket] {
  const id = (): number => 1 + below(random, 65535);
  switch (below(random, 7)) {
    case 0: {
      const sessionPresent = random() < 0.5;
      const returnCode = below(random, 6);
      return [
        new Uint8Array([0x20, 0x02, sessionPresent ? 1 : 0, returnCode]),
        { type: "connack", sessionPresent, returnCode },
      ];
    }
    case 1:
    case 2: {
      const qos = below(random, 3) as 0 | 1 | 2;
      const retain = random() < 0.3;
      const dup = qos > 0 && random() < 0.3;
      const topic = randomTopic(random);
      const payload = randomBytes(
        random,
        below(random, 3) === 0 ? below(random, 300) : below(random, 20),
      );
      const packetId = qos > 0 ? id() : undefined;
      const body = [
        ...mqttString(topic),
        ...(packetId === undefined ? [] : [packetId >> 8, packetId & 0xff]),
        ...payload,
      ];
      const first = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
      const expected: ServerPacket = { type: "publish", topic, payload, qos, retain, dup };
      if (packetId !== undefined) expected.packetId = packetId;
      return [frame(first, body), expected];
    }
    case 3: {
      const type = pick(random, ["puback", "pubrec", "pubrel", "pubcomp", "unsuback"] as const);
      const first =
        { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70, unsuback: 0xb0 }[type];
      const packetId = below(random, 65536);
      return [new Uint8Array([first, 0x02, packetId >> 8, packetId & 0xff]), { type, packetId }];
    }
    case 4: {
      const packetId = id();
      const granted = Array.from(
        { length: 1 + below(random, 5) },
        () => pick(random, [0, 1, 2, 0x80]),
      );
      return [
        frame(0x90, [packetId >> 8, packetId & 0xff, ...granted]),
        { type: "suback", packetId, granted },
      ];
    }
    default:
      return [new Uint8Array([0xd0, 0x00]), { type: "pingresp" }];
  }
}

/** Random chunk boundaries for a stream of `length` bytes. */
function randomChunks(random: Random, length: number): number[] {
  const sizes: number[] = [];
  let left = length;
  while (left > 0) {
    const size = Math.min(left, 1 + below(random, random() < 0.5 ? 4 : 40));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

Deno.test("MqttDecoder reads random streams of valid server packets in random chunks", () => {
  const random = seeded(SEED);
  for (let n = 0; n < 500; n++) {
    const made = Array.from({ length: 1 + below(random, 6) }, () => randomServerPacket(random));
    const stream = concat(...made.map(([bytes]) => bytes));
    const decoder = new MqttDecoder();
    const packets: ServerPacket[] = [];
    let at = 0;
    for (const size of randomChunks(random, stream.length)) {
      packets.push(...decoder.push(stream.slice(at, at + size)));
      at += size;
    }
    assert.deepEqual(packets, made.map(([, expected]) => expected), `stream ${n}: ${hex(stream)}`);
    assert.equal(decoder.pending, 0);
  }
});

Deno.test("mqtt-packet and our codec agree on random PUBLISH packets in both directions", () => {
  const random = seeded(SEED ^ 0x5a5a);
  for (let n = 0; n < 300; n++) {
    const qos = below(random, 3) as 0 | 1 | 2;
    const topic = randomTopic(random);
    const payload = randomBytes(random, below(random, 400));
    const retain = random() < 0.5;
    const dup = qos > 0 && random() < 0.5;
    const packetId = qos > 0 ? 1 + below(random, 65535) : undefined;

    const ours = encodePublish({ topic, payload, qos, retain, dup, packetId });
    const theirs = generated({
      cmd: "publish",
      topic,
      payload: Buffer.from(payload),
      qos,
      retain,
      dup,
      messageId: packetId,
    });
    assert.deepEqual(ours, theirs, `publish ${n}`);

    const parsed = parseOneWithMqttPacket(ours);
    if (parsed.cmd !== "publish") assert.fail(`a ${parsed.cmd} packet`);
    assert.equal(parsed.topic, topic);
    assert.deepEqual(new Uint8Array(parsed.payload as Buffer), payload);
    assert.equal(parsed.messageId, packetId);

    const [decoded] = decodeAll(theirs);
    const expected: ServerPacket = { type: "publish", topic, payload, qos, retain, dup };
    if (packetId !== undefined) expected.packetId = packetId;
    assert.deepEqual(decoded, expected, `publish ${n}`);
  }
});

// ---- Fuzzing -----------------------------------------------------------------------------

/** What feeding one input produced: the packets returned, then possibly the error. */
interface Outcome {
  packets: ServerPacket[];
  error?: string;
  pending: number;
}

/** Checks the shape of a packet the decoder returned. */
function checkPacket(p: ServerPacket, where: string): void {
  const id = (packetId: number | undefined, min: number): void => {
    assert.ok(
      Number.isInteger(packetId) && packetId! >= min && packetId! <= 0xffff,
      `${where}: packet id ${packetId}`,
    );
  };
  switch (p.type) {
    case "connack":
      assert.ok(p.returnCode >= 0 && p.returnCode <= 255, where);
      assert.equal(typeof p.sessionPresent, "boolean", where);
      break;
    case "publish":
      assert.ok(p.topic.length > 0 && !/[+#\0]/.test(p.topic), `${where}: topic ${p.topic}`);
      assert.ok(p.payload instanceof Uint8Array, where);
      assert.ok(p.qos === 0 || p.qos === 1 || p.qos === 2, where);
      if (p.qos > 0) id(p.packetId, 1);
      else assert.equal(p.packetId, undefined, where);
      break;
    case "suback":
      id(p.packetId, 0);
      assert.ok(p.granted.length > 0, where);
      for (const code of p.granted) assert.ok([0, 1, 2, 0x80].includes(code), `${where}: ${code}`);
      break;
    case "pingresp":
      break;
    default:
      assert.ok(["puback", "pubrec", "pubrel", "pubcomp", "unsuback"].includes(p.type), where);
      id(p.packetId, 0);
  }
}

/**
 * Feeds `input` to a fresh decoder in chunks of `sizes`, checking after every push that only
 * packets or an MqttWireError came out and that `pending` stays within the bound.
 */
function feed(input: Uint8Array, sizes: number[], maxPacketBytes: number, where: string): Outcome {
  const decoder = new MqttDecoder(maxPacketBytes);
  const packets: ServerPacket[] = [];
  let at = 0;
  for (const size of sizes) {
    let got: ServerPacket[];
    try {
      got = decoder.push(input.slice(at, at + size));
    } catch (err) {
      if (!(err instanceof MqttWireError)) {
        throw new Error(`${where}: ${hex(input)} threw ${err}, not an MqttWireError`, {
          cause: err,
        });
      }
      assert.ok(err.message.length > 0, where);
      return { packets, error: err.message, pending: -1 };
    }
    assert.ok(Array.isArray(got), where);
    for (const p of got) checkPacket(p, where);
    packets.push(...got);
    assert.ok(
      decoder.pending <= maxPacketBytes,
      `${where}: pending ${decoder.pending} over the bound ${maxPacketBytes}`,
    );
    at += size;
  }
  return { packets, pending: decoder.pending };
}

/** One mutation of a valid stream. */
function mutate(random: Random, original: Uint8Array): Uint8Array {
  const bytes = Array.from(original);
  const at = (): number => below(random, Math.max(bytes.length, 1));
  const rounds = 1 + below(random, 3);
  for (let r = 0; r < rounds; r++) {
    switch (below(random, 8)) {
      case 0: // flip a bit
        if (bytes.length > 0) bytes[at()] ^= 1 << below(random, 8);
        break;
      case 1: // overwrite a byte
        if (bytes.length > 0) bytes[at()] = below(random, 256);
        break;
      case 2: // cut the stream short
        bytes.length = at();
        break;
      case 3: // insert bytes
        bytes.splice(at(), 0, ...randomBytes(random, 1 + below(random, 4)));
        break;
      case 4: // delete bytes
        bytes.splice(at(), 1 + below(random, 4));
        break;
      case 5: // a large or overlong remaining length after some byte
        bytes.splice(
          at() + 1,
          0,
          ...pick(random, [[0xff, 0xff, 0xff, 0x7f], [0xff, 0xff, 0xff, 0xff, 0x01], [
            0x80,
            0x80,
            0x01,
          ], [
            0xff,
            0x7f,
          ]]),
        );
        break;
      case 6: // another first byte: any packet type, any flags
        if (bytes.length > 0) bytes[0] = below(random, 256);
        break;
      default: // a length byte one off
        if (bytes.length > 1) bytes[1] = (bytes[1] + pick(random, [1, 255])) & 0xff;
    }
  }
  return new Uint8Array(bytes);
}

const FIRST_BYTES = [0x20, 0x30, 0x32, 0x34, 0x3b, 0x40, 0x50, 0x62, 0x70, 0x90, 0xb0, 0xd0];
const BOUNDS = [4, 16, 64, 300, DEFAULT_MAX_PACKET_BYTES];

Deno.test("MqttDecoder only returns packets or throws MqttWireError on random and mutated streams", () => {
  const random = seeded(SEED ^ 0xf022);
  let errors = 0;
  let decoded = 0;
  for (let n = 0; n < 8000; n++) {
    let input: Uint8Array;
    if (n % 2 === 0) {
      // Random bytes, half of them starting like a server packet.
      input = randomBytes(random, below(random, 64));
      if (input.length > 0 && random() < 0.5) input[0] = pick(random, FIRST_BYTES);
    } else {
      const made = Array.from(
        { length: 1 + below(random, 4) },
        () => randomServerPacket(random)[0],
      );
      input = mutate(random, concat(...made));
    }
    const bound = pick(random, BOUNDS);
    const where = `input ${n} (bound ${bound})`;
    // Byte by byte is the reference: each packet comes out as soon as its last byte arrives.
    const reference = feed(input, Array(input.length).fill(1), bound, where);
    const chunked = feed(input, randomChunks(random, input.length), bound, `${where}, chunked`);
    // Any chunking throws the same error, or none, after a prefix of the same packets (those
    // in the chunk that holds the bad packet are not returned).
    assert.equal(chunked.error, reference.error, `${where}: ${hex(input)}`);
    assert.deepEqual(
      chunked.packets,
      reference.packets.slice(0, chunked.packets.length),
      `${where}: ${hex(input)}`,
    );
    if (reference.error === undefined) {
      assert.equal(chunked.packets.length, reference.packets.length, where);
      assert.equal(chunked.pending, reference.pending, where);
    }
    // The same bytes in one push.
    const whole = feed(input, input.length === 0 ? [] : [input.length], bound, `${where}, whole`);
    assert.equal(whole.error, reference.error, `${where}: ${hex(input)}`);
    if (reference.error === undefined) assert.deepEqual(whole.packets, reference.packets, where);
    if (reference.error !== undefined) errors++;
    decoded += reference.packets.length;
  }
  // Both outcomes were exercised, many times.
  assert.ok(errors > 1000, `only ${errors} inputs were refused`);
  assert.ok(decoded > 1000, `only ${decoded} packets were decoded`);
});
