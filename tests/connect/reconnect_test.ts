/**
 * A device program written as a new user would (load the stores, `connect` in one call, publish
 * `211,25` on `s/us` with QoS 1, subscribe `s/ds`) living through emulator restarts: it
 * reconnects with backoff, renews its subscriptions, sends what it published while offline, and
 * hears through `error` why an attempt failed, down to `MQTT_NOT_AUTHORIZED` when the restarted
 * emulator no longer trusts its CA.
 */

import assert from "node:assert/strict";
import {
  C8yError,
  connect,
  type DeviceConnection,
  loadKeyStore,
  loadTrustStore,
  reconnectDelayMs,
} from "../../mod.ts";
import type { Emulator } from "../../lib/emulator/mod.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const fixture = (path: string): URL => new URL(`../../fixtures/${path}`, import.meta.url);

/** The longest wait for one event; it asserts nothing about time, it only ends a hang. */
const GUARD_MS = 15_000;

/** Resolves once `condition()` holds, checking after every event the test records. */
class Events {
  readonly log: string[] = [];
  readonly errors: C8yError[] = [];
  /** When each error arrived (`performance.now()`). */
  readonly errorTimes: number[] = [];
  readonly #waiters = new Set<() => void>();

  add(entry: string, error?: C8yError): void {
    this.log.push(entry);
    if (error) {
      this.errors.push(error);
      this.errorTimes.push(performance.now());
    }
    for (const wake of [...this.#waiters]) wake();
  }

  until(what: string, condition: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`gave up waiting for ${what}; events: ${this.log.join(" | ")}`));
      }, GUARD_MS);
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }
}

Deno.test(
  "a device program survives emulator restarts with backoff, renews s/ds and s/dat, sends what it published offline, and hears MQTT_NOT_AUTHORIZED when its CA is no longer trusted",
  async () => {
    let emulator: Emulator | undefined = await startFixtureEmulator();
    const port = emulator.port;
    const url = emulator.url;
    const events = new Events();
    let device: DeviceConnection | undefined;
    try {
      // The device program.
      const identity = await loadKeyStore(await Deno.readFile(fixture("devices/rsa.jdk.p12")), {
        password: "changeit",
      });
      const trust = await loadTrustStore(
        await Deno.readFile(fixture("server/server-truststore.jks")),
        { password: "changeit" },
      );
      device = await connect({
        url,
        identity,
        trust,
        reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
        callbacks: {
          connectComplete: (reconnect, at) => events.add(`complete ${reconnect} ${at}`),
          connectionLost: (cause) => events.add(`lost ${(cause as C8yError).code}`),
          error: (err) => events.add(`error ${err.code}`, err),
          messageArrived: (topic, payload) =>
            events.add(`message ${topic} ${new TextDecoder().decode(payload).slice(0, 3)}`),
        },
      });
      const d = device;
      await d.subscribe("s/ds", { qos: 1 });
      await d.subscribe("s/dat");
      await d.publish("s/us", "211,25", { qos: 1 });
      assert.deepEqual(events.log, [`complete false ${url}`]);

      // The emulator goes away: the loss is reported, attempts fail and are reported.
      await emulator.close();
      emulator = undefined;
      await events.until("connectionLost()", () => events.log.includes("lost CONNECTION_LOST"));
      await events.until("three failed attempts", () => events.errors.length >= 3);
      for (const err of events.errors) {
        assert.ok(err instanceof C8yError);
        assert.equal(err.code, "NETWORK_REFUSED", err.message);
        assert.equal(err.stage, "tcp");
      }
      // Backoff: after the k-th failure the next attempt waits at least half of 50 ms * 2^k
      // (a slow machine only lengthens the gaps, so this holds anywhere).
      for (let k = 1; k < 3; k++) {
        const gap = events.errorTimes[k] - events.errorTimes[k - 1];
        const least = reconnectDelayMs(k, { initialDelayMs: 50, maxDelayMs: 400 }, 0);
        assert.ok(gap >= least, `attempt ${k + 1} came ${gap} ms after the last, before ${least}`);
      }
      // Published while offline: queued by MQTT.js, settled by the PUBACK after the reconnect.
      const offline = d.publish("s/us", "211,26", { qos: 1 });

      // Back on the same port: the device reconnects by itself.
      emulator = await startFixtureEmulator({ port });
      await events.until(
        "connectComplete(true)",
        () => events.log.includes(`complete true ${url}`),
      );
      await offline;
      // s/dat was renewed: a token request is answered there.
      const before = events.log.length;
      await d.publish("s/uat", "");
      await events.until(
        "the 71 reply on the renewed s/dat",
        () => events.log.slice(before).includes("message s/dat 71,"),
      );
      // s/ds was renewed too (its SUBSCRIBE went before that request): an operation arrives.
      await emulator.sendToDevice(d.clientId, "510,device-rsa-001");
      await events.until(
        "the operation on the renewed s/ds",
        () => events.log.slice(before).includes("message s/ds 510"),
      );

      // Restarted with another tenant CA: every attempt is refused with CONNACK 5.
      await emulator.close();
      const untrusted = Deno.readTextFileSync(fixture("ca/unknown-ca.pem"));
      emulator = await startFixtureEmulator({ port, trustedCaPems: [untrusted] });
      const refusedFrom = events.errors.length;
      await events.until(
        "an attempt refused with MQTT_NOT_AUTHORIZED",
        () => events.errors.slice(refusedFrom).some((e) => e.code === "MQTT_NOT_AUTHORIZED"),
      );
      const refused = events.errors.find((e) => e.code === "MQTT_NOT_AUTHORIZED")!;
      assert.equal(refused.stage, "mqtt");
      assert.match(refused.message, /CONNACK 5, not authorized/);
      assert.equal(d.connected, false);
      assert.equal(events.log.filter((e) => e.startsWith("complete")).length, 2);
    } finally {
      await device?.close();
      await emulator?.close();
    }
    // After close(): no more attempts.
    const settled = events.log.length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(events.log.length, settled, events.log.slice(settled).join(" | "));
  },
);

Deno.test("reconnectDelayMs() doubles from the initial delay up to the maximum, with jitter in the upper half", () => {
  const timing = { initialDelayMs: 1000, maxDelayMs: 60_000 };
  const full = [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000];
  for (const [attempt, delay] of full.entries()) {
    assert.equal(reconnectDelayMs(attempt, timing, 0), delay / 2);
    assert.equal(reconnectDelayMs(attempt, timing, 0.5), delay * 0.75);
    const top = reconnectDelayMs(attempt, timing, 0.999999);
    assert.ok(top <= delay && top >= delay * 0.99, `${top} for ${delay}`);
  }
  assert.equal(reconnectDelayMs(10_000, timing, 0), 30_000, "no overflow after many failures");
  for (let i = 0; i < 100; i++) {
    const delay = reconnectDelayMs(2, timing);
    assert.ok(delay >= 2000 && delay <= 4000, `${delay}`);
  }
});

Deno.test("connect() refuses reconnect delays that are not positive or not ordered with OPTION_INVALID", async () => {
  const identity = await loadKeyStore(await Deno.readFile(fixture("devices/rsa.jdk.p12")), {
    password: "changeit",
  });
  for (
    const reconnect of [
      { initialDelayMs: 0 },
      { initialDelayMs: -5 },
      { initialDelayMs: 5000, maxDelayMs: 1000 },
      { maxDelayMs: Number.NaN },
    ]
  ) {
    await assert.rejects(
      connect({ url: "ssl://127.0.0.1:9", identity, reconnect }),
      (err: unknown) =>
        err instanceof C8yError && err.code === "OPTION_INVALID" && err.stage === "usage",
    );
  }
});
