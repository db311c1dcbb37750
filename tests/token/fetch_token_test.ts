import assert from "node:assert/strict";
import { fetchToken } from "../../lib/token/fetch_token.ts";
import { connect, type DeviceConnection } from "../../lib/connect/connection.ts";
import { loadJose } from "../../lib/deps.ts";
import { CertificateError, MqttError, TlsError, TokenError, UsageError } from "../../lib/errors.ts";
import type { Stage } from "../../lib/errors.ts";
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

Deno.test("fetchToken() gets a verifiable token from the emulator, reporting every stage", async () => {
  await using emulator = await startFixtureEmulator();
  for (const identity of [rsa, ec256]) {
    const stages: Stage[] = [];
    const token = await fetchToken({
      url: `ssl://localhost:${emulator.port}`,
      identity,
      trust: serverCa,
      timeoutMs: 5000,
      onStage: (stage) => stages.push(stage),
    });
    const cn = identity.chain[0].summary.commonName;
    assert.equal(token.clientId, `d:${cn}`);
    assert.equal(token.subject, `device_${cn}`);
    assert.equal(token.tenant, emulator.tenant);
    assert.deepEqual(stages, ["dns", "tcp", "tls", "mqtt", "subscribe", "token"]);
    // The token really is the emulator's: its signature verifies with the emulator's key.
    const jose = await loadJose();
    const key = await jose.importJWK(emulator.publicKeyJwk, "RS256");
    const { payload } = await jose.jwtVerify(token.token, key, { issuer: emulator.issuer });
    assert.equal(payload.sub, `device_${cn}`);
    assert.ok(Date.parse(token.expiresAt!) > Date.now());
  }
});

mosquittoTest("fetchToken() takes the token from s/dat and disconnects cleanly", async () => {
  await using mosquitto = await startMosquitto();
  let responder: DeviceConnection | undefined;
  try {
    const jose = await loadJose();
    const { privateKey } = await jose.generateKeyPair("RS256");
    const jwt = await new jose.SignJWT({ ten: "t999" }).setProtectedHeader({ alg: "RS256" })
      .setSubject("device_device-rsa-001").setExpirationTime("1h").sign(privateKey);
    responder = await connect({
      url: `ssl://localhost:${mosquitto.port}`,
      identity: ec256,
      trust: serverCa,
    });
    const r = responder;
    r.listen({
      messageArrived(topic): void {
        if (topic === "s/uat") r.publish("s/dat", `71,${jwt}`).catch(() => {});
      },
    });
    await r.subscribe("s/uat");
    const token = await fetchToken({
      url: `localhost:${mosquitto.port}`,
      identity: rsa,
      trust: serverCa,
      clientId: "device-rsa-001",
    });
    assert.equal(token.token, jwt);
    assert.equal(token.clientId, "d:device-rsa-001");
    assert.equal(token.tenant, "t999");
    assert.match(await mosquitto.log(), /Received DISCONNECT from d:device-rsa-001/);
  } finally {
    await responder?.close();
  }
});

mosquittoTest("fetchToken() disconnects also when no token arrives (TOKEN_TIMEOUT)", async () => {
  await using mosquitto = await startMosquitto();
  await assert.rejects(
    fetchToken({
      url: `ssl://localhost:${mosquitto.port}`,
      identity: rsa,
      trust: serverCa,
      timeoutMs: 300,
      attempts: 1,
    }),
    (err: unknown) => err instanceof TokenError && err.code === "TOKEN_TIMEOUT",
  );
  assert.match(await mosquitto.log(), /Received DISCONNECT from d:device-rsa-001/);
});

mosquittoTest(
  "fetchToken() passes on a refused device certificate as TLS_CLIENT_CERT_REFUSED",
  async () => {
    await using mosquitto = await startMosquitto();
    await assert.rejects(
      fetchToken({
        url: `ssl://localhost:${mosquitto.port}`,
        identity: await fixtureIdentity("bad/unknown-ca"),
        trust: serverCa,
      }),
      (err: unknown) => err instanceof TlsError && err.code === "TLS_CLIENT_CERT_REFUSED",
    );
  },
);

Deno.test("fetchToken() refuses a WebSocket URL and a client id for another CN before connecting", async () => {
  await assert.rejects(
    fetchToken({ url: "wss://example.com/mqtt", identity: rsa }),
    (err: unknown) => err instanceof UsageError && err.code === "URL_WEBSOCKET",
  );
  await assert.rejects(
    fetchToken({ url: "ssl://example.com:8883", identity: rsa, clientId: "d:someone-else" }),
    (err: unknown) => err instanceof CertificateError && err.code === "CLIENT_ID_MISMATCH",
  );
});

Deno.test("fetchToken() against a broker that accepts the connection and never answers SUBSCRIBE ends with MQTT_SUBACK_TIMEOUT naming the SUBACK", async () => {
  // A broker that sends CONNACK 0 and then reads and ignores everything (issue: `token
  // --timeout 2` used to wait for the keepalive, 90 s or more).
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(new URL("../../fixtures/server/server.pem", import.meta.url)),
    key: Deno.readTextFileSync(new URL("../../fixtures/server/server.key", import.meta.url)),
  });
  const served = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(4096);
    let packets = 0;
    try {
      await conn.read(buffer); // CONNECT
      await conn.write(new Uint8Array([0x20, 0x02, 0x00, 0x00]));
      while ((await conn.read(buffer)) !== null) packets++;
    } catch {
      // the client reset the connection
    } finally {
      conn.close();
    }
    return packets;
  })();
  try {
    await assert.rejects(
      fetchToken({
        url: `ssl://localhost:${listener.addr.port}`,
        identity: rsa,
        trust: serverCa,
        timeoutMs: 500,
      }),
      (err: unknown) => {
        assert.ok(err instanceof MqttError, `${err}`);
        assert.equal(err.code, "MQTT_SUBACK_TIMEOUT");
        assert.equal(err.stage, "subscribe");
        assert.match(err.message, /no SUBACK .*"s\/dat" within 0\.5 s/);
        return true;
      },
    );
    // The client sent its SUBSCRIBE and then a DISCONNECT-or-close: it gave up by itself.
    assert.ok((await served) >= 1);
  } finally {
    listener.close();
  }
});
