/**
 * The REST token end to end: `requestRestToken` and `fetchToken({ via: "rest" })` against the
 * emulator's REST endpoint.
 */

import assert from "node:assert/strict";
import { requestRestToken } from "../../lib/token/rest_token.ts";
import { fetchToken } from "../../lib/token/fetch_token.ts";
import { loadJose } from "../../lib/deps.ts";
import type { C8yError } from "../../lib/errors.ts";
import type { Stage } from "../../lib/errors.ts";
import { fixtureIdentity, fixtureTrust } from "../support/mosquitto.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const rsa = await fixtureIdentity("devices/rsa");
const unknownCa = await fixtureIdentity("bad/unknown-ca");
const serverCa = await fixtureTrust("ca/server-ca.pem");

Deno.test("requestRestToken() gets the emulator's token over REST; an untrusted device CA gets HTTP 401", async () => {
  await using emulator = await startFixtureEmulator({ restPort: 0 });
  const restUrl = emulator.restUrl!;
  for (const sendChain of [false, true]) {
    const stages: Stage[] = [];
    const token = await requestRestToken({
      restUrl,
      identity: rsa,
      trust: serverCa,
      sendChain,
      onStage: (stage) => stages.push(stage),
    });
    assert.deepEqual(stages, ["dns", "tcp", "tls", "http", "token"]);
    const jose = await loadJose();
    const key = await jose.importJWK(emulator.publicKeyJwk, "RS256");
    const { payload } = await jose.jwtVerify(token.token, key, { issuer: emulator.issuer });
    assert.equal(payload.sub, "device_device-rsa-001");
  }
  await assert.rejects(
    requestRestToken({ restUrl, identity: unknownCa, trust: serverCa }),
    (err: C8yError) => {
      assert.equal(err.code, "HTTP_UNAUTHORIZED", err.message);
      assert.equal(err.stage, "http");
      assert.match(err.message, /HTTP 401 Unauthorized: "/);
      return true;
    },
  );
});

Deno.test("fetchToken({ via: 'rest' }) against the emulator gives the same subject as over MQTT", async () => {
  await using emulator = await startFixtureEmulator({ restPort: 0 });
  const overMqtt = await fetchToken({ url: emulator.url, identity: rsa, trust: serverCa });
  const overRest = await fetchToken({
    url: emulator.url,
    identity: rsa,
    trust: serverCa,
    via: "rest",
    restUrl: emulator.restUrl,
  });
  assert.equal(overRest.subject, overMqtt.subject);
  assert.equal(overRest.tenant, overMqtt.tenant);
  assert.equal(overRest.clientId, "d:device-rsa-001");
});
