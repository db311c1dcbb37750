/**
 * The MQTT behaviour of a live connection (`lib/connect/`, MQTT.js on our TLS socket) that
 * `connection_test.ts` leaves out: QoS 1 and 2 in both directions, granted and refused
 * subscriptions, keepalive, a broker breaking the protocol, topic and keepalive checks,
 * subscriptions renewed after a reconnect, time limits, and close().
 *
 * A fake broker (TLS on 127.0.0.1) reads what the client sends with mqtt-packet's parser and
 * answers with bytes written out here. The QoS 1 and 2 round trips also run against a real
 * mosquitto.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type Packet, parser } from "npm:mqtt-packet@9.0.2";
import {
  connect,
  type ConnectionCallbacks,
  type ConnectOptions,
  type DeviceConnection,
} from "../../lib/connect/connection.ts";
import { MqttError, NetworkError, UsageError } from "../../lib/errors.ts";
import {
  fixtureIdentity,
  fixtureText,
  fixtureTrust,
  mosquittoTest,
  startMosquitto,
} from "../support/mosquitto.ts";

const serverCa = await fixtureTrust("ca/server-ca.pem");
const rsa = await fixtureIdentity("devices/rsa");
const CLIENT_ID = "d:device-rsa-001";

// ---- Helpers -----------------------------------------------------------------------------

/**
 * The longest wait for any one event. It asserts nothing about time: it only turns a session
 * that never does what a test waits for into a failure instead of a hang.
 */
const GUARD_MS = 5000;

/** `promise`, or a rejection naming `what` when it has not settled after {@linkcode GUARD_MS}. */
async function guard<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}`)), GUARD_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise and whether it has settled yet (its rejection counts as handled). */
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  promise.then(() => {
    settled = true;
  }, () => {
    settled = true;
  });
  return { promise, settled: () => settled };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The size of the packet at the start of `bytes`, or `undefined` while its header is partial. */
function frameSize(bytes: Uint8Array): number | undefined {
  let length = 0;
  for (let i = 1; i < bytes.length && i <= 4; i++) {
    length += (bytes[i] & 0x7f) * 128 ** (i - 1);
    if ((bytes[i] & 0x80) === 0) return i + 1 + length;
  }
  if (bytes.length > 5) throw new Error(`a remaining length over four bytes: ${hex(bytes)}`);
  return undefined;
}

/** One whole packet read by mqtt-packet (MQTT 3.1.1). */
function parseOne(bytes: Uint8Array): Packet {
  const p = parser({ protocolVersion: 4 });
  const packets: Packet[] = [];
  const errors: Error[] = [];
  p.on("packet", (packet) => packets.push(packet));
  p.on("error", (err) => errors.push(err));
  p.parse(Buffer.from(bytes));
  if (errors.length > 0 || packets.length !== 1) {
    throw new Error(`mqtt-packet cannot read ${hex(bytes)}: ${errors[0]?.message ?? "no packet"}`);
  }
  return packets[0];
}

/** A packet the client sent: its bytes and mqtt-packet's reading of them. */
interface Sent<P extends Packet = Packet> {
  bytes: Uint8Array;
  packet: P;
}

type PacketOf<C extends Packet["cmd"]> = Extract<Packet, { cmd: C }>;

// Packets a broker sends, byte by byte (OASIS MQTT 3.1.1 section 3).
const CONNACK_ACCEPTED = [0x20, 0x02, 0x00, 0x00];
const PINGRESP = [0xd0, 0x00];
const PUBACK = 0x40;
const PUBREC = 0x50;
const PUBREL = 0x62; // the reserved flags of PUBREL are 0010
const PUBCOMP = 0x70;

function ack(first: number, packetId: number): number[] {
  return [first, 0x02, packetId >> 8, packetId & 0xff];
}

function suback(packetId: number, returnCode: number): number[] {
  return [0x90, 0x03, packetId >> 8, packetId & 0xff, returnCode];
}

function publishPacket(
  options: { topic: string; payload: string; qos: 0 | 1 | 2; packetId?: number; dup?: boolean },
): Uint8Array {
  const topic = new TextEncoder().encode(options.topic);
  const payload = new TextEncoder().encode(options.payload);
  const id = options.qos > 0 ? [options.packetId! >> 8, options.packetId! & 0xff] : [];
  const length = 2 + topic.length + id.length + payload.length;
  assert.ok(length < 128, "one length byte is enough here");
  return new Uint8Array([
    0x30 | (options.dup ? 0x08 : 0) | (options.qos << 1),
    length,
    topic.length >> 8,
    topic.length & 0xff,
    ...topic,
    ...id,
    ...payload,
  ]);
}

/** One client connection as the fake broker sees it. */
class Peer {
  readonly #conn: Deno.Conn;
  readonly #queue: Sent[] = [];
  #wake: (() => void) | undefined;
  /** Why no more packets will come, once that is so. */
  #end: string | undefined;
  #keepaliveTimer: ReturnType<typeof setTimeout> | undefined;
  #keepaliveSeconds = 0;
  /** Resolves when the connection has ended (the client closed it, or the broker did). */
  readonly ended: Promise<void>;
  /** Whether the broker closes its side when the client's ends, as brokers do. */
  closeWhenClientEnds = true;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.ended = this.#read();
  }

  async #read(): Promise<void> {
    let held: Uint8Array = new Uint8Array(0);
    try {
      for (;;) {
        const buffer = new Uint8Array(4096);
        const n = await this.#conn.read(buffer);
        if (n === null) {
          this.#end ??= "the client closed the connection";
          break;
        }
        held = concat(held, buffer.subarray(0, n));
        for (;;) {
          const size = frameSize(held);
          if (size === undefined || held.length < size) break;
          const bytes = held.slice(0, size);
          held = held.slice(size);
          this.#queue.push({ bytes, packet: parseOne(bytes) });
          this.#heard();
        }
      }
    } catch (err) {
      this.#end ??= `the connection failed: ${(err as Error).message}`;
    } finally {
      clearTimeout(this.#keepaliveTimer);
      this.#wake?.();
      if (this.closeWhenClientEnds) this.close();
    }
  }

  #heard(): void {
    if (this.#keepaliveSeconds > 0) this.enforceKeepalive(this.#keepaliveSeconds);
    this.#wake?.();
  }

  /** The next packet from the client, which must be a `cmd` packet. */
  async expect<C extends Packet["cmd"]>(cmd: C): Promise<Sent<PacketOf<C>>> {
    const what = `${cmd.toUpperCase()} from the client`;
    const sent = await guard(
      new Promise<Sent>((resolve, reject) => {
        const check = (): void => {
          this.#wake = undefined;
          const next = this.#queue.shift();
          if (next !== undefined) resolve(next);
          else if (this.#end !== undefined) reject(new Error(`expected ${what}, but ${this.#end}`));
          else this.#wake = check;
        };
        check();
      }),
      what,
    );
    assert.equal(sent.packet.cmd, cmd, `expected ${what}, got ${hex(sent.bytes)}`);
    return sent as Sent<PacketOf<C>>;
  }

  async write(bytes: Uint8Array | number[]): Promise<void> {
    let rest = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    while (rest.length > 0) rest = rest.subarray(await this.#conn.write(rest));
  }

  /**
   * Acts as MQTT 3.1.1 section 3.1.2.10 asks of a broker: closes the connection when nothing
   * came from the client for one and a half keepalive intervals (counted from now, then from each
   * packet).
   */
  enforceKeepalive(seconds: number): void {
    this.#keepaliveSeconds = seconds;
    clearTimeout(this.#keepaliveTimer);
    this.#keepaliveTimer = setTimeout(() => {
      this.#end ??= `the broker closed the connection: nothing came from the client for 1.5 ` +
        `times the keepalive of ${seconds} s`;
      this.close();
    }, seconds * 1500);
  }

  close(): void {
    clearTimeout(this.#keepaliveTimer);
    try {
      this.#conn.close();
    } catch {
      // closed
    }
  }
}

/** A TLS server on 127.0.0.1 whose connections the test drives one by one. */
interface FakeBroker {
  port: number;
  /** The next connection. */
  accept(): Promise<Peer>;
  stop(): Promise<void>;
}

async function startBroker(): Promise<FakeBroker> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: await fixtureText("server/server.pem"),
    key: await fixtureText("server/server.key"),
  });
  const peers: Peer[] = [];
  return {
    port: listener.addr.port,
    async accept(): Promise<Peer> {
      const peer = new Peer(await guard(listener.accept(), "a connection from the client"));
      peers.push(peer);
      return peer;
    },
    async stop(): Promise<void> {
      listener.close();
      for (const peer of peers) peer.close();
      await Promise.all(peers.map((peer) => peer.ended));
    },
  };
}

/** Reads the CONNECT and accepts it. */
async function answerConnect(peer: Peer): Promise<void> {
  const { packet } = await peer.expect("connect");
  assert.equal(packet.clientId, CLIENT_ID);
  await peer.write(CONNACK_ACCEPTED);
}

/** Connects a session to the fake broker, which accepts it. */
async function open(
  fake: FakeBroker,
  extra: Partial<ConnectOptions> = {},
): Promise<{ session: DeviceConnection; peer: Peer }> {
  const connecting = track(connect({
    url: `ssl://127.0.0.1:${fake.port}`,
    identity: rsa,
    trust: serverCa,
    connectTimeoutMs: GUARD_MS,
    ...extra,
  }));
  const peer = await fake.accept();
  await answerConnect(peer);
  return { session: await guard(connecting.promise, "connect()"), peer };
}

/** Messages on this topic only serve {@linkcode roundTrip}; the recorder leaves them out. */
const BARRIER_TOPIC = "test/barrier";

/**
 * A round trip through the client: a QoS 1 message it must acknowledge. When the PUBACK is back,
 * the client has handled everything the broker sent before (broker and client share this
 * process, so the client's reactions to those packets ran before the broker's read completed).
 */
async function roundTrip(peer: Peer, packetId = 0xfff0): Promise<void> {
  await peer.write(publishPacket({ topic: BARRIER_TOPIC, payload: "", qos: 1, packetId }));
  const { bytes } = await peer.expect("puback");
  assert.deepEqual([...bytes], ack(PUBACK, packetId));
}

/** Records the session's callbacks and lets a test wait for one. */
class Recorder {
  readonly completes: boolean[] = [];
  readonly lost: Error[] = [];
  readonly arrived: Array<[string, string]> = [];
  readonly delivered: string[] = [];
  readonly #waiters = new Set<() => void>();
  readonly callbacks: ConnectionCallbacks = {
    connectComplete: (reconnect) => this.#add(() => this.completes.push(reconnect)),
    connectionLost: (cause) => this.#add(() => this.lost.push(cause)),
    messageArrived: (topic, payload) => {
      if (topic === BARRIER_TOPIC) return;
      this.#add(() => this.arrived.push([topic, new TextDecoder().decode(payload)]));
    },
    deliveryComplete: (topic) => this.#add(() => this.delivered.push(topic)),
  };

  #add(record: () => void): void {
    record();
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves once `condition` holds. */
  until(what: string, condition: () => boolean): Promise<void> {
    return guard(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!condition()) return;
          this.#waiters.delete(check);
          resolve();
        };
        this.#waiters.add(check);
        check();
      }),
      what,
    );
  }
}

function isError(
  type: typeof MqttError | typeof NetworkError | typeof UsageError,
  code: string,
  stage?: string,
): (err: unknown) => boolean {
  return (err: unknown): boolean => {
    assert.ok(err instanceof type, `expected a ${type.name}, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (stage !== undefined) assert.equal(err.stage, stage, err.message);
    assert.ok(err.hint.length > 0, "a hint is given");
    return true;
  };
}

/**
 * Waits for the session's first connectionLost() and checks that it reports CONNECTION_LOST
 * caused by an error whose message matches `cause`.
 */
async function expectConnectionLost(recorder: Recorder, cause: RegExp): Promise<void> {
  await recorder.until("connectionLost()", () => recorder.lost.length > 0);
  const [lost] = recorder.lost;
  assert.ok(lost instanceof NetworkError, `expected a NetworkError, got ${lost}`);
  assert.equal(lost.code, "CONNECTION_LOST");
  assert.ok(lost.cause instanceof Error);
  assert.match(lost.cause.message, cause);
}

/** Publishes `payload` to s/us at QoS 1, has the broker acknowledge it and waits for publish(). */
async function publishAcked(session: DeviceConnection, peer: Peer, payload: string): Promise<void> {
  const publishing = session.publish("s/us", payload, { qos: 1 });
  const { packet } = await peer.expect("publish");
  await peer.write(ack(PUBACK, packet.messageId!));
  await guard(publishing, "publish()");
}

/** What a {@linkcode sessionTest} gets to work with. */
interface Connected {
  /** The fake broker, for the connections after the first. */
  fake: FakeBroker;
  session: DeviceConnection;
  /** The broker's side of the first connection. */
  peer: Peer;
  /** Records the session's callbacks, which it was given at connect(). */
  recorder: Recorder;
}

type ConnectedTest = (connected: Connected) => Promise<void>;

/**
 * A test of a session connected to a fake broker of its own, which accepted it. Pass or fail,
 * the session is closed and the broker stopped afterwards.
 *
 * `extra`, when given, holds connect options besides those of {@linkcode open} and the
 * recorder's callbacks.
 */
function sessionTest(
  name: string,
  ...args: [test: ConnectedTest] | [extra: Partial<ConnectOptions>, test: ConnectedTest]
): void {
  const [extra, test] = args.length === 1 ? [{}, args[0]] : args;
  Deno.test(name, async () => {
    const fake = await startBroker();
    const recorder = new Recorder();
    let session: DeviceConnection | undefined;
    try {
      const opened = await open(fake, { ...extra, callbacks: recorder.callbacks });
      session = opened.session;
      await test({ fake, session, peer: opened.peer, recorder });
    } finally {
      await session?.close();
      await fake.stop();
    }
  });
}

// ---- Publishing at QoS 1 and 2 -----------------------------------------------------------

sessionTest(
  "publish() at QoS 1 resolves only once the PUBACK arrives and reports the delivery once",
  async ({ session, peer, recorder }) => {
    const publishing = track(session.publish("s/us", "200,c8y_Temperature,T,25", { qos: 1 }));
    const { bytes, packet } = await peer.expect("publish");
    assert.equal(bytes[0], 0x32, "PUBLISH, QoS 1, neither DUP nor retain");
    assert.equal(packet.topic, "s/us");
    assert.equal(
      new TextDecoder().decode(packet.payload as Uint8Array),
      "200,c8y_Temperature,T,25",
    );
    const id = packet.messageId!;
    assert.ok(id >= 1 && id <= 0xffff);

    await roundTrip(peer);
    assert.equal(publishing.settled(), false, "publish() settled before the PUBACK");
    assert.deepEqual(recorder.delivered, []);

    await peer.write(ack(PUBACK, id));
    await guard(publishing.promise, "publish() after the PUBACK");
    assert.deepEqual(recorder.delivered, ["s/us"]);

    // The same PUBACK again answers nothing pending: no second delivery, no harm.
    await peer.write(ack(PUBACK, id));
    await roundTrip(peer);
    assert.deepEqual(recorder.delivered, ["s/us"]);
    assert.equal(session.connected, true);
    assert.deepEqual(recorder.lost, []);
  },
);

sessionTest(
  "publish() at QoS 2 answers PUBREC with PUBREL and resolves only after PUBCOMP",
  async ({ session, peer, recorder }) => {
    const publishing = track(session.publish("s/us", "400,c8y_Event,once", { qos: 2 }));
    const { bytes, packet } = await peer.expect("publish");
    assert.equal(bytes[0], 0x34, "PUBLISH, QoS 2, neither DUP nor retain");
    assert.equal(packet.qos, 2);
    const id = packet.messageId!;

    await peer.write(ack(PUBREC, id));
    const pubrel = await peer.expect("pubrel");
    assert.deepEqual([...pubrel.bytes], [0x62, 0x02, id >> 8, id & 0xff]);

    await roundTrip(peer);
    assert.equal(publishing.settled(), false, "publish() settled after PUBREC, before PUBCOMP");
    assert.deepEqual(recorder.delivered, []);

    await peer.write(ack(PUBCOMP, id));
    await guard(publishing.promise, "publish() after the PUBCOMP");
    assert.deepEqual(recorder.delivered, ["s/us"]);
    assert.equal(session.connected, true);
  },
);

// ---- Receiving at QoS 1 and 2 ------------------------------------------------------------

sessionTest(
  "an incoming QoS 1 message is acknowledged with its packet id and delivered",
  async ({ peer, recorder }) => {
    await peer.write(
      publishPacket({ topic: "s/ds", payload: "510,device-rsa-001", qos: 1, packetId: 0x0102 }),
    );
    const puback = await peer.expect("puback");
    assert.deepEqual([...puback.bytes], [0x40, 0x02, 0x01, 0x02]);
    assert.deepEqual(recorder.arrived, [["s/ds", "510,device-rsa-001"]]);
  },
);

sessionTest(
  "an incoming QoS 2 message is delivered once, at its PUBREL, even when resent before it",
  async ({ session, peer, recorder }) => {
    const id = 0x0a0b;
    const first = { topic: "s/ds", payload: "first", qos: 2, packetId: id } as const;
    await peer.write(publishPacket(first));
    assert.deepEqual([...(await peer.expect("pubrec")).bytes], [0x50, 0x02, 0x0a, 0x0b]);
    // MQTT.js delivers a QoS 2 message when the broker releases it (OASIS MQTT 3.1.1, 4.3.3,
    // method B): a resend before that is the same message.
    assert.deepEqual(recorder.arrived, []);

    // The broker resends it (DUP) before releasing it: acknowledged again, not delivered twice.
    await peer.write(publishPacket({ ...first, dup: true }));
    assert.deepEqual([...(await peer.expect("pubrec")).bytes], [0x50, 0x02, 0x0a, 0x0b]);

    await peer.write(ack(PUBREL, id));
    assert.deepEqual([...(await peer.expect("pubcomp")).bytes], [0x70, 0x02, 0x0a, 0x0b]);
    assert.deepEqual(recorder.arrived, [["s/ds", "first"]]);

    // Released, the identifier is free again: a message with it is a new message.
    await peer.write(publishPacket({ ...first, payload: "second" }));
    assert.deepEqual([...(await peer.expect("pubrec")).bytes], [0x50, 0x02, 0x0a, 0x0b]);
    await peer.write(ack(PUBREL, id));
    assert.deepEqual([...(await peer.expect("pubcomp")).bytes], [0x70, 0x02, 0x0a, 0x0b]);
    assert.deepEqual(recorder.arrived, [["s/ds", "first"], ["s/ds", "second"]]);
    assert.equal(session.connected, true);
  },
);

// ---- Subscribing -------------------------------------------------------------------------

sessionTest(
  "subscribe() resolves with the QoS the broker granted and rejects a SUBACK 0x80 as MQTT_SUBSCRIBE_REFUSED",
  async ({ session, peer }) => {
    const granting = session.subscribe("s/ds", { qos: 2 });
    const first = await peer.expect("subscribe");
    assert.equal(first.bytes[0], 0x82, "SUBSCRIBE with its reserved flags 0010");
    assert.deepEqual(first.packet.subscriptions, [{ topic: "s/ds", qos: 2 }]);
    await peer.write(suback(first.packet.messageId!, 1));
    assert.equal(await guard(granting, "subscribe()"), 1, "the QoS granted, not the one asked");

    const refusing = track(session.subscribe("s/forbidden", { qos: 1 }));
    const second = await peer.expect("subscribe");
    assert.deepEqual(second.packet.subscriptions, [{ topic: "s/forbidden", qos: 1 }]);
    assert.notEqual(second.packet.messageId, first.packet.messageId);
    await peer.write(suback(second.packet.messageId!, 0x80));
    await assert.rejects(
      guard(refusing.promise, "subscribe()"),
      isError(MqttError, "MQTT_SUBSCRIBE_REFUSED", "subscribe"),
    );
    assert.equal(session.connected, true, "a refused subscription leaves the connection up");
  },
);

// ---- Keepalive ---------------------------------------------------------------------------

sessionTest(
  "keepalive: a broker that never answers PINGREQ makes the session close the connection and report CONNECTION_LOST",
  { keepaliveSeconds: 1 },
  async ({ session, peer, recorder }) => {
    const ping = await peer.expect("pingreq");
    assert.deepEqual([...ping.bytes], [0xc0, 0x00]);
    // No PINGRESP.
    await expectConnectionLost(recorder, /PINGREQ|keepalive/);
    assert.equal(session.connected, false);
    await guard(peer.ended, "the client closing the connection");
    assert.equal(recorder.lost.length, 1);
  },
);

sessionTest(
  "keepalive: a broker that answers each PINGREQ keeps the session up across intervals",
  { keepaliveSeconds: 1 },
  async ({ session, peer, recorder }) => {
    // Each PINGREQ after the first shows the PINGRESP before it was taken as the answer: without
    // one, the session closes the connection instead of pinging again.
    for (let i = 0; i < 3; i++) {
      const ping = await peer.expect("pingreq");
      assert.deepEqual([...ping.bytes], [0xc0, 0x00]);
      await peer.write(PINGRESP);
    }
    await publishAcked(session, peer, "still here");
    assert.equal(session.connected, true);
    assert.deepEqual(recorder.lost, []);
  },
);

sessionTest(
  "keepalive: after a publish right after connecting, the next packet comes within the keepalive (a broker closes after 1.5 times it)",
  { keepaliveSeconds: 1 },
  async ({ session, peer, recorder }) => {
    // MQTT 3.1.1 section 3.1.2.10: the client keeps the interval between the packets it sends
    // within the keepalive; the broker closes the connection after 1.5 times it without a packet.
    peer.enforceKeepalive(1);
    await session.publish("s/us", "400,c8y_Event,just connected");
    await peer.expect("publish");
    for (let i = 0; i < 2; i++) {
      await peer.expect("pingreq");
      await peer.write(PINGRESP);
    }
    assert.equal(session.connected, true);
    assert.deepEqual(recorder.lost, []);
  },
);

// ---- A broker breaking the protocol ------------------------------------------------------

const violations: Array<[string, number[], RegExp]> = [
  // A remaining length of more than four bytes: no MQTT packet starts like this.
  ["bytes that are no MQTT packet", [0xf0, 0xff, 0xff, 0xff, 0xff, 0x01], /[Ii]nvalid|length/],
  ["a second CONNACK", CONNACK_ACCEPTED, /duplicate CONNACK/],
];
for (const [what, bytes, cause] of violations) {
  sessionTest(
    `${what} after the CONNACK close the connection and fail what is pending with CONNECTION_LOST`,
    async ({ session, peer, recorder }) => {
      const publishing = track(session.publish("s/us", "400,c8y_Event,pending", { qos: 1 }));
      const subscribing = track(session.subscribe("s/ds", { qos: 1 }));
      await peer.expect("publish");
      await peer.expect("subscribe");

      await peer.write(bytes);
      await expectConnectionLost(recorder, cause);

      await assert.rejects(publishing.promise, isError(NetworkError, "CONNECTION_LOST", "mqtt"));
      await assert.rejects(
        subscribing.promise,
        isError(NetworkError, "CONNECTION_LOST", "subscribe"),
      );
      // The message says why: what the broker sent.
      await assert.rejects(subscribing.promise, (err: Error) => cause.test(err.message));
      assert.equal(session.connected, false);
      await guard(peer.ended, "the client closing the connection");
      assert.deepEqual(recorder.delivered, []);
    },
  );
}

sessionTest(
  "a PUBACK for a packet id nothing waits for is ignored: the connection stays up",
  async ({ session, peer, recorder }) => {
    await peer.write(ack(PUBACK, 0x1234));
    await publishAcked(session, peer, "400,c8y_Event,after");
    assert.equal(session.connected, true);
    assert.deepEqual(recorder.lost, []);
    assert.deepEqual(recorder.delivered, ["s/us"]);
  },
);

// ---- Checks before anything is sent ------------------------------------------------------

sessionTest(
  "publish() to a topic filter or an empty topic rejects with MQTT_PUBLISH_FAILED and sends nothing",
  async ({ session, peer }) => {
    for (const topic of ["a/+", "", "a/#"]) {
      for (const qos of [0, 1, 2] as const) {
        await assert.rejects(
          session.publish(topic, "x", { qos }),
          isError(MqttError, "MQTT_PUBLISH_FAILED", "mqtt"),
        );
      }
    }
    // Nothing went out for them: the next packet the broker reads is this publish.
    await session.publish("s/us", "valid");
    const { packet } = await peer.expect("publish");
    assert.equal(packet.topic, "s/us");
    assert.equal(session.connected, true);
  },
);

sessionTest(
  "subscribe() to an empty filter or one with U+0000 rejects with MQTT_SUBSCRIBE_REFUSED and sends nothing",
  async ({ session, peer }) => {
    for (const topic of ["", "s/\0ds"]) {
      await assert.rejects(
        session.subscribe(topic, { qos: 1 }),
        isError(MqttError, "MQTT_SUBSCRIBE_REFUSED", "subscribe"),
      );
    }
    // Nothing went out for them: the next packet the broker reads is this publish.
    await session.publish("s/us", "valid");
    const { packet } = await peer.expect("publish");
    assert.equal(packet.topic, "s/us");
    assert.equal(session.connected, true);
  },
);

Deno.test({
  name:
    "connect() refuses a keepalive outside 0 to 65535 s with USAGE_KEEPALIVE before any network activity",
  // Without net permission, any lookup or connection attempt would fail with PERMISSION_NET.
  permissions: { net: false },
}, async () => {
  for (const keepaliveSeconds of [70000, -1, 65536, 1.5]) {
    const stages: string[] = [];
    await assert.rejects(
      connect({
        url: "ssl://127.0.0.1:8883",
        identity: rsa,
        trust: serverCa,
        keepaliveSeconds,
        onStage: (stage) => stages.push(stage),
      }),
      (err: unknown) => {
        isError(UsageError, "USAGE_KEEPALIVE", "usage")(err);
        assert.match((err as Error).message, new RegExp(`not ${keepaliveSeconds}`));
        return true;
      },
    );
    assert.deepEqual(stages, []);
  }
});

// ---- Reconnect ---------------------------------------------------------------------------

sessionTest(
  "reconnect: true renews each subscription with its QoS, and messages reach the same listeners",
  { reconnect: true },
  async ({ fake, session, peer: first, recorder }) => {
    const listened: string[] = [];
    session.listen({
      messageArrived: (topic, payload) => {
        if (topic !== BARRIER_TOPIC) listened.push(`${topic} ${new TextDecoder().decode(payload)}`);
      },
    });
    // Topic, QoS asked, the broker's answer (the last one refused).
    const asked: Array<[string, 0 | 1 | 2, number]> = [
      ["s/ds", 1, 1],
      ["s/dat", 2, 2],
      ["s/no", 0, 0x80],
    ];
    for (const [topic, qos, granted] of asked) {
      const subscribing = track(session.subscribe(topic, { qos }));
      const { packet } = await first.expect("subscribe");
      await first.write(suback(packet.messageId!, granted));
      if (granted === 0x80) {
        await assert.rejects(subscribing.promise, isError(MqttError, "MQTT_SUBSCRIBE_REFUSED"));
      } else {
        assert.equal(await guard(subscribing.promise, "subscribe()"), granted);
      }
    }

    first.close(); // the broker drops the connection
    await recorder.until("connectionLost()", () => recorder.lost.length === 1);
    const second = await fake.accept();
    await answerConnect(second);
    const renewed: Array<{ topic: string; qos: number }> = [];
    for (let i = 0; i < 2; i++) {
      const { packet } = await second.expect("subscribe");
      renewed.push(...packet.subscriptions.map(({ topic, qos }) => ({ topic, qos })));
      await second.write(suback(packet.messageId!, packet.subscriptions[0].qos));
    }
    renewed.sort((a, b) => a.topic.localeCompare(b.topic));
    assert.deepEqual(renewed, [{ topic: "s/dat", qos: 2 }, { topic: "s/ds", qos: 1 }]);
    await recorder.until("connectComplete(true)", () => recorder.completes.includes(true));
    // No third SUBSCRIBE (the refused one is not renewed): the next packet is this PUBACK.
    await roundTrip(second);

    await second.write(
      publishPacket({ topic: "s/ds", payload: "510,again", qos: 1, packetId: 7 }),
    );
    assert.deepEqual([...(await second.expect("puback")).bytes], ack(PUBACK, 7));
    assert.deepEqual(recorder.arrived, [["s/ds", "510,again"]]);
    assert.deepEqual(listened, ["s/ds 510,again"]);
    assert.deepEqual(recorder.completes, [false, true]);
    assert.equal(session.connected, true);
  },
);

// ---- close() -----------------------------------------------------------------------------

sessionTest(
  "close() sends DISCONNECT and resolves even when the broker keeps its side open; then publish() fails",
  async ({ session, peer, recorder }) => {
    peer.closeWhenClientEnds = false;
    const closing = track(session.close());
    const disconnect = await peer.expect("disconnect");
    assert.deepEqual([...disconnect.bytes], [0xe0, 0x00]);
    await guard(closing.promise, "close()");
    await guard(peer.ended, "the client closing the connection");
    assert.equal(session.connected, false);
    assert.deepEqual(recorder.lost, [], "no connectionLost() after close()");

    await assert.rejects(
      session.publish("s/us", "400,c8y_Event,late"),
      isError(MqttError, "MQTT_NOT_CONNECTED", "mqtt"),
    );
    await assert.rejects(
      session.subscribe("s/ds"),
      isError(MqttError, "MQTT_NOT_CONNECTED"),
    );
    await guard(session.close(), "a second close()");
  },
);

// ---- With mosquitto ----------------------------------------------------------------------

for (const qos of [1, 2] as const) {
  mosquittoTest(
    `a QoS ${qos} message to a topic subscribed at QoS ${qos} arrives exactly once through mosquitto`,
    async () => {
      await using mosquitto = await startMosquitto();
      const recorder = new Recorder();
      let session: DeviceConnection | undefined;
      const topic = `test/qos${qos}`;
      try {
        session = await connect({
          url: `ssl://localhost:${mosquitto.port}`,
          identity: rsa,
          trust: serverCa,
          connectTimeoutMs: GUARD_MS,
          callbacks: recorder.callbacks,
        });
        assert.equal(await guard(session.subscribe(topic, { qos }), "subscribe()"), qos);
        await guard(session.publish(topic, "once", { qos }), "publish()");
        assert.deepEqual(recorder.delivered, [topic]);
        // mosquitto keeps the order of one client's messages: once the next one is here, a
        // duplicate of the first would have come before it.
        await guard(session.publish(topic, "next", { qos }), "publish()");
        await recorder.until("the messages", () => recorder.arrived.length >= 2);
        assert.deepEqual(recorder.arrived, [[topic, "once"], [topic, "next"]]);
        assert.deepEqual(recorder.delivered, [topic, topic]);
        // A round trip after the last acknowledgement the broker asked for (at QoS 2 the PUBREL
        // for "next" follows the client's PUBREC): its answer comes after that PUBREL, so the
        // client's PUBCOMP is sent before the DISCONNECT.
        assert.equal(await guard(session.subscribe("test/other"), "subscribe()"), 0);
        await session.close();
        assert.deepEqual(recorder.lost, []);
        // The client acknowledged what it received, the way its QoS asks.
        const log = await mosquitto.log();
        const answer = qos === 1 ? "PUBACK" : "PUBCOMP";
        const answers = log.match(new RegExp(`Received ${answer} from ${CLIENT_ID}`, "g")) ?? [];
        assert.equal(answers.length, 2, log);
        if (qos === 2) assert.match(log, new RegExp(`Received PUBREL from ${CLIENT_ID}`));
      } finally {
        await session?.close();
      }
    },
  );
}

sessionTest(
  "while offline with reconnect, publish() waits for the next connection by default and sends it there",
  { reconnect: { initialDelayMs: 50, maxDelayMs: 50 } },
  async ({ fake, session, peer: first, recorder }) => {
    first.close();
    await recorder.until("connectionLost()", () => recorder.lost.length === 1);
    const publishing = track(session.publish("s/us", "211,25", { qos: 1 }));
    const second = await fake.accept();
    await answerConnect(second);
    const { packet } = await second.expect("publish");
    assert.equal(new TextDecoder().decode(packet.payload as Uint8Array), "211,25");
    assert.equal(publishing.settled(), false, "publish() settled before its PUBACK");
    await second.write(ack(PUBACK, packet.messageId!));
    await guard(publishing.promise, "publish() after the PUBACK");
    assert.deepEqual(recorder.delivered, ["s/us"]);
  },
);

sessionTest(
  "with queueOffline: false, publish() while offline rejects at once with MQTT_NOT_CONNECTED",
  { reconnect: { initialDelayMs: 60_000 }, queueOffline: false },
  async ({ session, peer, recorder }) => {
    peer.close();
    await recorder.until("connectionLost()", () => recorder.lost.length === 1);
    for (const qos of [0, 1, 2] as const) {
      await assert.rejects(
        session.publish("s/us", "211,25", { qos }),
        isError(MqttError, "MQTT_NOT_CONNECTED", "mqtt"),
      );
    }
    assert.equal(session.connected, false);
  },
);

// ---- Time limits -------------------------------------------------------------------------

sessionTest(
  "publish() and subscribe() with timeoutMs end with MQTT_PUBACK_TIMEOUT and MQTT_SUBACK_TIMEOUT when the broker stays silent",
  async ({ session, peer }) => {
    const publishing = track(session.publish("s/us", "211,25", { qos: 1, timeoutMs: 200 }));
    const subscribing = track(session.subscribe("s/ds", { qos: 1, timeoutMs: 200 }));
    await peer.expect("publish");
    await peer.expect("subscribe");
    await assert.rejects(
      guard(publishing.promise, "publish()"),
      (err: unknown) => {
        isError(MqttError, "MQTT_PUBACK_TIMEOUT", "mqtt")(err);
        assert.match((err as Error).message, /no PUBACK for the publish to "s\/us" within 0\.2 s/);
        return true;
      },
    );
    await assert.rejects(
      guard(subscribing.promise, "subscribe()"),
      (err: unknown) => {
        isError(MqttError, "MQTT_SUBACK_TIMEOUT", "subscribe")(err);
        assert.match((err as Error).message, /no SUBACK for the subscription to "s\/ds"/);
        return true;
      },
    );
    // The connection itself is still up.
    await publishAcked(session, peer, "211,26");
    assert.equal(session.connected, true);
  },
);
