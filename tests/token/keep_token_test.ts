/**
 * keepToken() against the emulator (6 s tokens, a restart on the same port), and on a real broker
 * (mosquitto, mutual TLS) with a second device playing the platform's token service: it answers
 * each empty publish on `s/uat` with `71,<JWT>` of a 6 s lifetime, and can be told to stay silent.
 */

import assert from "node:assert/strict";
import { keepToken } from "../../lib/token/keep_token.ts";
import { connect, type DeviceConnection } from "../../lib/connect/connection.ts";
import { loadJose } from "../../lib/deps.ts";
import type { C8yError } from "../../lib/errors.ts";
import type { DeviceToken } from "../../lib/token/decode_token.ts";
import type { DeviceIdentity } from "../../lib/types.ts";
import {
  fixtureIdentity,
  fixtureTrust,
  mosquittoTest,
  startMosquitto,
} from "../support/mosquitto.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const rsa = await fixtureIdentity("devices/rsa");
const ec256 = await fixtureIdentity("devices/ec256");
const serverCa = await fixtureTrust("ca/server-ca.pem");

function session(port: number, identity: DeviceIdentity): Promise<DeviceConnection> {
  return connect({ url: `ssl://localhost:${port}`, identity, trust: serverCa });
}

/** A token service on the broker: answers `s/uat` with a fresh 6 s token unless `silent`. */
async function tokenService(port: number): Promise<{
  session: DeviceConnection;
  silent: boolean;
  /** When each request arrived (`Date.now()`), and whether it was answered. */
  requests: { at: number; answered: boolean }[];
}> {
  const jose = await loadJose();
  const { privateKey } = await jose.generateKeyPair("RS256");
  const responder = await session(port, ec256);
  const service = {
    session: responder,
    silent: false,
    requests: [] as { at: number; answered: boolean }[],
  };
  let serial = 0;
  responder.listen({
    messageArrived(topic): void {
      if (topic !== "s/uat") return;
      service.requests.push({ at: Date.now(), answered: !service.silent });
      if (service.silent) return;
      const iat = Math.floor(Date.now() / 1000);
      new jose.SignJWT({ ten: "t999", n: ++serial }).setProtectedHeader({ alg: "RS256" })
        .setSubject("device_device-rsa-001").setIssuedAt(iat).setExpirationTime(iat + 6)
        .sign(privateKey)
        .then((jwt) => responder.publish("s/dat", `71,${jwt}`))
        .catch(() => {});
    },
  });
  await responder.subscribe("s/uat");
  return service;
}

function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 50);
    };
    tick();
  });
}

mosquittoTest(
  "keepToken() renews a 6 s token once half its lifetime has passed, and exposes the newest",
  async () => {
    await using mosquitto = await startMosquitto();
    const service = await tokenService(mosquitto.port);
    const device = await session(mosquitto.port, rsa);
    try {
      const renewed: DeviceToken[] = [];
      const errors: C8yError[] = [];
      await using keeper = await keepToken(device, {
        tokenRenewed: (token) => renewed.push(token),
        error: (err) => errors.push(err),
      });
      assert.equal(renewed.length, 1, "the first token is announced too");
      assert.equal(keeper.token.claims.n, 1);
      await waitFor(() => renewed.length >= 3, 15_000, "two renewals");
      assert.deepEqual(renewed.map((t) => t.claims.n), [1, 2, 3]);
      assert.equal(keeper.token.token, renewed[2].token, "the keeper holds the newest token");
      assert.deepEqual(errors, []);
      // Each renewal was asked for no earlier than half of the 6 s lifetime after the token before.
      const [a, b, c] = service.requests;
      assert.ok(b.at - a.at >= 2900, `second request ${b.at - a.at} ms after the first`);
      assert.ok(c.at - b.at >= 2900, `third request ${c.at - b.at} ms after the second`);
      assert.ok(Date.parse(keeper.renewsAt!) > Date.now() - 100);
      keeper.stop();
      const count = service.requests.length;
      await new Promise((r) => setTimeout(r, 3500));
      assert.equal(service.requests.length, count, "no request after stop()");
    } finally {
      await device.close();
      await service.session.close();
    }
  },
);

mosquittoTest(
  "keepToken() reports a failed renewal through error, keeps the connection and retries with backoff",
  async () => {
    await using mosquitto = await startMosquitto();
    const service = await tokenService(mosquitto.port);
    const device = await session(mosquitto.port, rsa);
    try {
      const renewed: DeviceToken[] = [];
      const errors: C8yError[] = [];
      await using keeper = await keepToken(device, {
        tokenRenewed: (token) => renewed.push(token),
        error: (err) => errors.push(err),
        retryDelayMs: 500,
        request: { attempts: 1, attemptTimeoutMs: 400 },
      });
      service.silent = true;
      await waitFor(() => errors.length >= 2, 10_000, "two failed renewals");
      assert.ok(errors.every((e) => e.code === "TOKEN_TIMEOUT"), errors.map((e) => e.code).join());
      assert.ok(device.connected, "a failed renewal leaves the connection up");
      assert.equal(keeper.token.claims.n, 1, "the last good token stays");
      // Backoff: the pause before the third request is longer than before the second.
      await waitFor(() => service.requests.length >= 4, 10_000, "three renewal attempts");
      const [, r1, r2, r3] = service.requests.map((r) => r.at);
      assert.ok(r3 - r2 > r2 - r1, `pauses ${r2 - r1} ms then ${r3 - r2} ms`);
      service.silent = false;
      await waitFor(() => renewed.length >= 2, 10_000, "a renewal after the failures");
      assert.equal(keeper.token.token, renewed.at(-1)!.token);
      for (const err of errors) assert.ok(!err.message.includes(renewed[0].token));
    } finally {
      await device.close();
      await service.session.close();
    }
  },
);

mosquittoTest(
  "keepToken() rejects when the first token does not come, and leaves nothing running",
  async () => {
    await using mosquitto = await startMosquitto();
    const service = await tokenService(mosquitto.port);
    service.silent = true;
    const device = await session(mosquitto.port, rsa);
    try {
      await assert.rejects(
        keepToken(device, { request: { attempts: 1, attemptTimeoutMs: 300 } }),
        (err: C8yError) => err.code === "TOKEN_TIMEOUT",
      );
      service.silent = false;
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(service.requests.length, 1, "no further request");
      assert.ok(device.connected);
    } finally {
      await device.close();
      await service.session.close();
    }
  },
);

Deno.test("keepToken() against the emulator: renews a 6 s token, and right after a reconnect once it has expired", async () => {
  let emulator = await startFixtureEmulator({ tokenLifetimeSeconds: 6 });
  const port = emulator.port;
  const device = await connect({
    url: emulator.url,
    identity: rsa,
    trust: serverCa,
    reconnect: { initialDelayMs: 200, maxDelayMs: 400 },
  });
  let reconnectedAt = 0;
  device.listen({ connectComplete: (reconnect) => reconnect && (reconnectedAt = Date.now()) });
  try {
    const renewed: { token: DeviceToken; at: number }[] = [];
    const errors: C8yError[] = [];
    await using keeper = await keepToken(device, {
      tokenRenewed: (token) => renewed.push({ token, at: Date.now() }),
      error: (err) => errors.push(err),
    });
    await waitFor(() => renewed.length >= 2, 10_000, "a renewal of the 6 s token");
    assert.notEqual(renewed[1].token.token, renewed[0].token.token);
    assert.equal(renewed[1].token.subject, "device_device-rsa-001");

    // Down until the newest token has expired, then back on the same port.
    await emulator[Symbol.asyncDispose]();
    const expiry = Date.parse(keeper.token.expiresAt!);
    await new Promise((r) => setTimeout(r, Math.max(0, expiry - Date.now()) + 500));
    const before = renewed.length;
    emulator = await startFixtureEmulator({ port, tokenLifetimeSeconds: 6 });
    await waitFor(() => renewed.length > before, 10_000, "a token after the reconnect");
    assert.ok(reconnectedAt > 0, "connectComplete(true) was heard");
    const fresh = renewed[before];
    assert.ok(fresh.at >= reconnectedAt, "the new token came after the reconnect");
    assert.ok(Date.parse(fresh.token.expiresAt!) > Date.now(), "and is valid");
    assert.equal(keeper.token.token, renewed.at(-1)!.token.token);
    assert.ok(device.connected);
  } finally {
    await device.close();
    await emulator[Symbol.asyncDispose]();
  }
});
