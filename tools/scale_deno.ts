/**
 * The `scale` job of `deno task bench:cli` with this project's `connect()`: COUNT devices in one
 * process (`DIR/device-<i>.pem` and `.key`, client id `d:scale-<i>`), at most 50 under way at a
 * time (as in the Paho and MQTT.js scripts: mosquitto's listen backlog is 100, and a burst of
 * 200 connection attempts overflows it, costing the late ones a 1 s SYN retransmission), each
 * subscribing to `scale/<i>` at QoS 1, publishing one message there at QoS 1 and closing once it
 * received it.
 *
 * Usage: `deno run --ignore-env --allow-read=CA_PEM,DIR --allow-net=127.0.0.1:PORT
 * tools/scale_deno.ts PORT CA_PEM DIR COUNT`. Prints `{"devices": N, "ms": elapsed}` once all are
 * done; exits 1 when one fails.
 *
 * @module
 */

import { certificatesFromPem } from "../lib/x509/certificate.ts";
import { connect } from "../lib/connect/connection.ts";
import type { DeviceIdentity, TrustAnchors } from "../lib/types.ts";

const [port, caPath, dir, countText] = Deno.args;
const count = Number(countText);
if (!Number.isInteger(count) || count < 1) {
  console.error("usage: scale_deno.ts PORT CA_PEM DIR COUNT");
  Deno.exit(2);
}
const trust: TrustAnchors = {
  format: "pem",
  certificates: certificatesFromPem(Deno.readTextFileSync(caPath), { name: caPath })
    .map((c) => ({ ...c, alias: undefined })),
};
const identities: DeviceIdentity[] = Array.from({ length: count }, (_, i) => {
  const chain = certificatesFromPem(Deno.readTextFileSync(`${dir}/device-${i}.pem`), {
    name: `device-${i}.pem`,
  });
  return {
    format: "pem",
    alias: undefined,
    aliases: [],
    privateKeyPem: Deno.readTextFileSync(`${dir}/device-${i}.key`),
    keyType: chain[0].summary.keyType,
    chain,
  };
});

/** Devices under way at once. */
const CONCURRENCY = 50;

async function run(identity: DeviceIdentity, i: number): Promise<void> {
  const topic = `scale/${i}`;
  const received = Promise.withResolvers<void>();
  const device = await connect({
    url: `ssl://127.0.0.1:${port}`,
    identity,
    trust,
    connectTimeoutMs: 60_000,
    callbacks: { messageArrived: (t) => t === topic && received.resolve() },
  });
  try {
    await device.subscribe(topic, { qos: 1, timeoutMs: 60_000 });
    await device.publish(topic, `hello ${i}`, { qos: 1, timeoutMs: 60_000 });
    const timer = setTimeout(() => received.reject(new Error("no message within 60 s")), 60_000);
    await received.promise.finally(() => clearTimeout(timer));
  } finally {
    await device.close();
  }
}

const start = performance.now();
const failures: Error[] = [];
let next = 0;
await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, async () => {
  while (next < count) {
    const i = next++;
    await run(identities[i], i).catch((err) => failures.push(err));
  }
}));
const ms = performance.now() - start;
if (failures.length > 0) {
  console.error(`${count - failures.length} of ${count} devices done; ${failures[0].message}`);
  Deno.exit(1);
}
console.log(JSON.stringify({ devices: count, ms }));
