/**
 * Streams MQTT.js reads whole on Deno's `node:tls`: a 100 KB message and 5,000 back-to-back
 * messages go out through our connection and come back through mosquitto unchanged and in order.
 * (Under Deno's `node:tls`, a socket read with `read()` on each `'readable'` event was seen to
 * deliver 49,152 of 200,000 bytes; MQTT.js pipes the socket, which must not be hit by that.)
 */

import assert from "node:assert/strict";
import { connect, type DeviceConnection } from "../../lib/connect/connection.ts";
import {
  fixtureIdentity,
  fixtureTrust,
  mosquittoTest,
  startMosquitto,
} from "../support/mosquitto.ts";

const serverCa = await fixtureTrust("ca/server-ca.pem");
const rsa = await fixtureIdentity("devices/rsa");

/** The longest wait for all messages; it asserts nothing about time, it only ends a hang. */
const GUARD_MS = 60_000;

async function withDevice(
  test: (device: DeviceConnection, arrived: Array<[string, Uint8Array]>) => Promise<void>,
): Promise<void> {
  // No per-client queue limit: mosquitto would otherwise drop what exceeds 1,000 queued messages.
  await using mosquitto = await startMosquitto({ extraConfig: ["max_queued_messages 0"] });
  const arrived: Array<[string, Uint8Array]> = [];
  const device = await connect({
    url: `ssl://localhost:${mosquitto.port}`,
    identity: rsa,
    trust: serverCa,
    callbacks: { messageArrived: (topic, payload) => arrived.push([topic, payload]) },
  });
  try {
    await test(device, arrived);
  } finally {
    await device.close();
  }
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > GUARD_MS) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const qos of [0, 1] as const) {
  mosquittoTest(`a 100 KB message at QoS ${qos} goes out and comes back whole`, async () => {
    await withDevice(async (device, arrived) => {
      await device.subscribe("test/big", { qos });
      const payload = Uint8Array.from({ length: 100 * 1024 }, (_, i) => (i * 31) % 251);
      await device.publish("test/big", payload, { qos });
      await until("the 100 KB message", () => arrived.length >= 1);
      assert.equal(arrived.length, 1);
      assert.equal(arrived[0][1].length, payload.length);
      assert.deepEqual(arrived[0][1], payload);
      // The connection still reads what comes after it.
      await device.publish("test/big", "after", { qos });
      await until("the message after it", () => arrived.length >= 2);
      assert.equal(new TextDecoder().decode(arrived[1][1]), "after");
    });
  });

  mosquittoTest(
    `5,000 back-to-back messages at QoS ${qos} go out and come back whole and in order`,
    async () => {
      await withDevice(async (device, arrived) => {
        await device.subscribe("test/bulk", { qos });
        const count = 5000;
        const text = (i: number): string => `${i},${"x".repeat(i % 200)}`;
        // All at once, none awaited before the next: the socket gets them back to back.
        const sent = Array.from(
          { length: count },
          (_, i) => device.publish("test/bulk", text(i), { qos }),
        );
        await Promise.all(sent);
        await until(`${count} messages`, () => arrived.length >= count);
        assert.equal(arrived.length, count);
        const decoder = new TextDecoder();
        for (let i = 0; i < count; i++) {
          assert.equal(arrived[i][0], "test/bulk");
          assert.equal(decoder.decode(arrived[i][1]), text(i), `message ${i}`);
        }
      });
    },
  );
}
