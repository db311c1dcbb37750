/**
 * The emulator reads every valid stream and bounds what a client may send: large and
 * back-to-back packets in both directions (MQTT.js on `node:tls` as the device), the packet-size
 * and pre-authentication limits against hostile raw TLS clients made here, and log lines that a
 * client cannot break or inflate. Bounds are asserted through the emulator's limit events and
 * connection count, never through durations.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { type EmulatorEvent, formatEvent, MAX_FIELD_CHARS } from "../../lib/emulator/mod.ts";
import { emulatorTest, read } from "./support.ts";

const KB100 = 100_000;

/** A raw TLS client without a client certificate (or with the RSA device's), for hostile input. */
function rawTls(port: number, withCert = false): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: read("ca/server-ca.pem"),
      cert: withCert ? read("devices/rsa.chain.pem") : undefined,
      key: withCert ? read("devices/rsa.key") : undefined,
    }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Writes `chunk` repeatedly until the peer closes the connection; returns the bytes written. */
async function writeUntilClosed(socket: tls.TLSSocket, first: Uint8Array): Promise<number> {
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => {});
  let written = 0;
  let open = true;
  closed.then(() => (open = false));
  const filler = new Uint8Array(16_384).fill(0x41);
  socket.write(first);
  written += first.length;
  // At most 64 MiB: the emulator must close long before (the test fails if it does not).
  while (open && written < 64 * 1024 * 1024) {
    if (!socket.write(filler)) {
      await Promise.race([closed, new Promise((r) => socket.once("drain", r))]);
    }
    written += filler.length;
  }
  await closed;
  return written;
}

/** An MQTT 3.1.1 CONNECT packet with this client id (clean session, keepalive 60 s). */
function connectPacket(clientId: string): Uint8Array {
  const id = Buffer.from(clientId, "utf8");
  const variable = [0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60];
  const body = Buffer.concat([
    Buffer.from(variable),
    Buffer.from([id.length >> 8, id.length & 0xff]),
    id,
  ]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

function remainingLength(n: number): Uint8Array {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Uint8Array.from(out);
}

/** Waits until `check` holds, polling the event list (bounded by the count of rounds). */
async function until(check: () => boolean, what: string, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(check(), `not reached: ${what}`);
}

const messages = (events: EmulatorEvent[]): EmulatorEvent[] =>
  events.filter((e) => e.kind === "message");

emulatorTest(
  "a 100 KB PUBLISH is read whole, and the stream goes on after it",
  { maxPacketBytes: 200_000 },
  async ({ connect, waitFor, events }) => {
    const device = await connect("devices/rsa", "d:device-rsa-001");
    assert.equal(device.code, 0);
    await device.client.publishAsync("s/us", `200,${"x".repeat(KB100 - 4)}`, { qos: 0 });
    await device.client.publishAsync("s/us", "400,after", { qos: 0 });
    await waitFor((e) => e.kind === "message" && e.line === "400,after");
    const [big] = messages(events);
    assert.equal(
      big.line,
      `200,${"x".repeat(MAX_FIELD_CHARS - 4)}…(+${KB100 - MAX_FIELD_CHARS} chars)`,
    );
    assert.deepEqual(events.filter((e) => e.kind === "error"), []);
  },
);

emulatorTest(
  "5,000 back-to-back QoS 0 publishes all arrive, in order, without a parse error",
  {},
  async ({ connect, events }) => {
    const device = await connect("devices/ec256", "d:device-ec256-001");
    assert.equal(device.code, 0);
    for (let i = 0; i < 5000; i++) device.client.publish("s/us", `200,${i}`, { qos: 0 });
    await until(() => messages(events).length >= 5000, "5,000 message events", 800);
    assert.deepEqual(
      messages(events).map((e) => e.line),
      Array.from({ length: 5000 }, (_, i) => `200,${i}`),
    );
    assert.deepEqual(events.filter((e) => e.kind === "error"), []);
  },
);

emulatorTest(
  "sendToDevice: a 100 KB line and 5,000 back-to-back lines reach the device whole (MQTT.js)",
  {},
  async ({ emulator, connect, waitFor }) => {
    const device = await connect("devices/rsa", "d:device-rsa-001");
    const received: string[] = [];
    device.client.on("message", (topic, payload) => {
      if (topic === "s/ds") received.push(new TextDecoder().decode(payload));
    });
    await device.client.subscribeAsync("s/ds", { qos: 0 });
    const big = `511,device-rsa-001,${"y".repeat(KB100)}`;
    await emulator.sendToDevice("d:device-rsa-001", big);
    const lines = Array.from({ length: 5000 }, (_, i) => `510,device-rsa-001,${i}`);
    await Promise.all(lines.map((line) => emulator.sendToDevice("d:device-rsa-001", line)));
    await until(() => received.length >= 5001, "5,001 lines at the device", 800);
    assert.equal(received[0], big);
    assert.deepEqual(received.slice(1), lines);
    const sent = await waitFor((e) => e.kind === "operation");
    assert.equal(sent.topic, "s/ds");
    assert.equal(sent.clientId, "d:device-rsa-001");
  },
);

emulatorTest(
  "sendToDevice refuses a device that is not connected or not subscribed to s/ds",
  {},
  async ({ emulator, connect }) => {
    await assert.rejects(
      emulator.sendToDevice("d:device-rsa-001", "510,x"),
      (err: Error & { code?: string }) => err.code === "EMULATOR_DEVICE_NOT_CONNECTED",
    );
    const device = await connect("devices/rsa", "d:device-rsa-001");
    assert.equal(device.code, 0);
    await assert.rejects(
      emulator.sendToDevice("d:device-rsa-001", "510,x"),
      (err: Error & { code?: string }) => err.code === "EMULATOR_DEVICE_NOT_SUBSCRIBED",
    );
  },
);

emulatorTest(
  "a CONNECT header announcing 256 MiB is refused at its header; 8 such clients leave nothing open",
  {},
  async ({ emulator, events }) => {
    const header = Uint8Array.from([0x10, 0xff, 0xff, 0xff, 0x7f]);
    const written = await Promise.all(
      Array.from({ length: 8 }, async () => writeUntilClosed(await rawTls(emulator.port), header)),
    );
    for (const bytes of written) assert.ok(bytes < 64 * 1024 * 1024, `closed after ${bytes} bytes`);
    await until(
      () => events.filter((e) => e.kind === "refused").length === 8,
      "8 refused events",
    );
    for (const refused of events.filter((e) => e.kind === "refused")) {
      assert.match(
        refused.reason ?? "",
        /MQTT packet of 268435460 bytes announced \(type 1\); at most 16184 are accepted/,
      );
    }
    await until(() => emulator.connections === 0, "no connection left open");
  },
);

emulatorTest(
  "bytes before authentication are capped: a 2,000-byte CONNECT against a 1,024-byte cap",
  { maxUnauthenticatedBytes: 1024 },
  async ({ emulator, waitFor }) => {
    const socket = await rawTls(emulator.port, true);
    await writeUntilClosed(socket, connectPacket(`d:${"z".repeat(2000)}`));
    const refused = await waitFor((e) => e.kind === "refused");
    assert.match(refused.reason ?? "", /more than 1024 bytes sent before the CONNECT was accepted/);
    await until(() => emulator.connections === 0, "no connection left open");
  },
);

emulatorTest(
  "a 64 KiB client id is read whole under a larger packet cap, and logged cut short",
  { maxPacketBytes: 100_000, maxUnauthenticatedBytes: 100_000 },
  async ({ emulator, waitFor }) => {
    const id = `d:${"q".repeat(65_533)}`; // 65,535 bytes, the most a CONNECT can carry
    const socket = await rawTls(emulator.port, true);
    const connack = new Promise<Uint8Array>((resolve) => socket.once("data", resolve));
    socket.write(connectPacket(id));
    assert.deepEqual([...await connack], [0x20, 2, 0, 5], "CONNACK 5: the id is not the CN");
    socket.destroy();
    const refused = await waitFor((e) => e.kind === "refused");
    assert.equal(
      refused.clientId,
      `d:${"q".repeat(MAX_FIELD_CHARS - 2)}…(+${65_535 - MAX_FIELD_CHARS} chars)`,
    );
    assert.ok(formatEvent(refused).length < 1500, "the log line stays short");
  },
);

emulatorTest(
  "the default packet cap refuses a 64 KiB client id CONNECT at its header",
  {},
  async ({ emulator, waitFor }) => {
    const socket = await rawTls(emulator.port, true);
    await writeUntilClosed(socket, connectPacket(`d:${"q".repeat(65_533)}`));
    const refused = await waitFor((e) => e.kind === "refused");
    assert.match(refused.reason ?? "", /MQTT packet of 65551 bytes announced/);
  },
);

emulatorTest(
  "a newline in a client id cannot forge a log line",
  {},
  async ({ connectOnce, waitFor }) => {
    const forged = "x\n2026-01-01T00:00:00Z emulator: token clientId=d:victim";
    const attempt = await connectOnce("devices/rsa", forged);
    assert.equal(attempt.code, 5);
    const refused = await waitFor((e) => e.kind === "refused");
    const line = formatEvent(refused);
    assert.ok(!line.includes("\n"), line);
    assert.ok(line.includes(String.raw`clientId="x\n2026-01-01T00:00:00Z emulator: token`), line);
    assert.match(refused.reason ?? "", /client id "x\\n2026/);
    assert.ok(!formatEvent({ kind: "error", time: "", reason: "a\u2028b\rc" }).match(/[\r\u2028]/));
  },
);
