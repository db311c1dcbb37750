import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { type EmulatorOptions, verifyDeviceChain } from "../../lib/emulator/mod.ts";
import { UsageError } from "../../lib/errors.ts";
import {
  connectDevice,
  ders,
  emulatorTest,
  INTERMEDIATE,
  permissions,
  read,
  requestToken,
  ROOT,
  verifyToken,
} from "./support.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

emulatorTest(
  "startEmulator() accepts a device chain, answers s/uat with a signed 71 token on s/dat",
  {},
  async ({ emulator, events, waitFor, connect, end }) => {
    assert.match(emulator.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(events[0].kind, "listening");
    assert.equal(events[0].url, emulator.url);
    const attempt = await connect("devices/rsa", "d:device-rsa-001");
    assert.equal(attempt.error, undefined);
    assert.equal(attempt.code, 0);
    const before = Math.floor(Date.now() / 1000);
    const lines = await requestToken(attempt.client);
    assert.equal(lines.length, 1);
    const claims = await verifyToken(emulator, lines[0]);
    assert.equal(claims.sub, "device_device-rsa-001");
    assert.equal(claims.ten, "t12345");
    assert.equal(claims.iss, "t12345.emulator.local");
    assert.equal(claims.aud, "t12345.emulator.local");
    assert.ok(Math.abs((claims.iat as number) - before) <= 2);
    assert.equal(claims.nbf, claims.iat);
    assert.equal(claims.exp, (claims.iat as number) + 3600);
    assert.match(claims.tci as string, /^[0-9a-f-]{36}$/);
    assert.equal(typeof claims.xsrfToken, "string");
    const connected = await waitFor((e) => e.kind === "connect");
    assert.equal(connected.clientId, "d:device-rsa-001");
    assert.equal(connected.commonName, "device-rsa-001");
    assert.equal(connected.protocolVersion, 4);
    const token = await waitFor((e) => e.kind === "token");
    assert.equal(token.tokenId, claims.tci);
    assert.equal(token.expiresAt, new Date((claims.exp as number) * 1000).toISOString());
    await end(attempt);
    await waitFor((e) => e.kind === "disconnect" && e.clientId === "d:device-rsa-001");
  },
);

emulatorTest(
  "startEmulator() gives two devices at once their own tokens only",
  {},
  async ({ emulator, connect }) => {
    const rsa = await connect("devices/rsa", "d:device-rsa-001");
    const ec = await connect("devices/ec256", "device-ec256-001");
    assert.equal(rsa.code, 0);
    assert.equal(ec.code, 0);
    // The EC device also listens on every topic: nothing of the RSA device may reach it.
    const ecAll: string[] = [];
    ec.client.on("message", (topic) => ecAll.push(topic));
    await ec.client.subscribeAsync("#", { qos: 0 });
    await rsa.client.publishAsync("s/us", "100,RSA device,c8y_Test", { qos: 1 });
    await rsa.client.publishAsync("other/topic", "hello", { qos: 0, retain: true });
    const [rsaLines, ecLines] = await Promise.all([
      requestToken(rsa.client),
      requestToken(ec.client),
    ]);
    assert.equal(rsaLines.length, 1);
    assert.equal(ecLines.length, 1);
    assert.notEqual(rsaLines[0], ecLines[0]);
    assert.equal((await verifyToken(emulator, rsaLines[0])).sub, "device_device-rsa-001");
    assert.equal((await verifyToken(emulator, ecLines[0])).sub, "device_device-ec256-001");
    // The EC device has "s/dat" and "#": its own token arrives, nothing else.
    assert.deepEqual(ecAll.filter((t) => t !== "s/dat"), []);
  },
);

emulatorTest(
  "startEmulator() logs device creation from a 100 message on s/us",
  {},
  async ({ waitFor, connect }) => {
    const a = await connect("devices/ec256", "d:device-ec256-001:myTemplate");
    assert.equal(a.code, 0);
    await a.client.publishAsync("s/us", "100,My EC device,c8y_TestDevice", { qos: 0 });
    const created = await waitFor((e) => e.kind === "device-created");
    assert.equal(created.deviceName, "My EC device");
    assert.equal(created.deviceType, "c8y_TestDevice");
    assert.equal(created.commonName, "device-ec256-001");
  },
);

emulatorTest(
  "startEmulator() refuses a device of an unknown CA with CONNACK 5 and logs why",
  {},
  async ({ waitFor, connect }) => {
    const a = await connect("bad/unknown-ca", "d:device-unknown");
    assert.equal(a.code, 5);
    assert.match(a.error?.message ?? "", /Not authorized/i);
    const refused = await waitFor((e) => e.kind === "refused");
    assert.equal(refused.returnCode, 5);
    assert.equal(refused.commonName, "device-unknown");
    assert.match(refused.reason ?? "", /not issued by a trusted CA/);
  },
);

emulatorTest(
  "startEmulator() refuses an expired device certificate and a non-CA intermediate",
  {},
  async ({ refusalReason, connectOnce }) => {
    assert.equal((await connectOnce("bad/expired", "d:device-expired")).code, 5);
    assert.match(await refusalReason("d:device-expired"), /expired/);
    assert.equal((await connectOnce("bad/noca", "d:device-noca")).code, 5);
    assert.match(await refusalReason("d:device-noca"), /is not a CA/);
  },
);

emulatorTest(
  "startEmulator() refuses a client id that does not match the certificate's CN (CONNACK 5)",
  {},
  async ({ waitFor, connect }) => {
    const a = await connect("devices/rsa", "d:device-ec256-001");
    assert.equal(a.code, 5);
    const refused = await waitFor((e) => e.kind === "refused");
    assert.match(refused.reason ?? "", /is not the certificate's Common Name "device-rsa-001"/);
  },
);

emulatorTest(
  "startEmulator() refuses other connection types and CNs with ':', accepts clean=false",
  {},
  async ({ waitFor, refusalReason, connect, connectOnce }) => {
    assert.equal((await connectOnce("devices/rsa", "x:device-rsa-001")).code, 5);
    assert.match(
      await refusalReason("x:device-rsa-001"),
      /is not of the form <id>, d:<id> or d:<id>:<template>/,
    );
    // "d:device:colon" reads as device "device" with template "colon": never the CN.
    assert.equal((await connectOnce("bad/colon", "d:device:colon")).code, 5);
    const persistent = await connect("devices/rsa", "d:device-rsa-001", { clean: false });
    assert.equal(persistent.code, 0);
    const connected = await waitFor((e) => e.kind === "connect");
    assert.equal(connected.cleanSession, false);
    assert.equal((await requestToken(persistent.client, 0)).length, 1);
  },
);

emulatorTest(
  "startEmulator() refuses MQTT 5 with CONNACK 1 (unacceptable protocol version)",
  {},
  async ({ waitFor, connect }) => {
    const a = await connect("devices/rsa", "d:device-rsa-001", { protocolVersion: 5 });
    // The emulator answers with an MQTT 3.1.1 CONNACK (return code 1), as a 3.1.1-only broker
    // does; MQTT.js (speaking MQTT 5) reads that byte as reason code 1.
    assert.equal(a.code, 1);
    const refused = await waitFor((e) => e.kind === "refused");
    assert.equal(refused.returnCode, 1);
    assert.equal(refused.clientId, "d:device-rsa-001");
    assert.match(refused.reason ?? "", /MQTT 5/);
  },
);

emulatorTest("startEmulator() accepts a leaf-only device when its immediate issuer is trusted", {
  trusted: [INTERMEDIATE],
}, async ({ connect, tokenClaims }) => {
  const a = await connect("devices/rsa", "d:device-rsa-001", { leafOnly: true });
  assert.equal(a.code, 0);
  assert.equal((await tokenClaims(a)).sub, "device_device-rsa-001");
});

emulatorTest("startEmulator() refuses a leaf-only device when only the root is trusted", {
  trusted: [ROOT],
}, async ({ connectOnce }) => {
  const a = await connectOnce("devices/rsa", "d:device-rsa-001", { leafOnly: true });
  assert.equal(a.code, 5);
});

emulatorTest(
  "startEmulator() sends no token to a client that did not subscribe to s/dat",
  {},
  async ({ waitFor, connect }) => {
    const a = await connect("devices/rsa", "d:device-rsa-001");
    await a.client.publishAsync("s/uat", "", { qos: 0 });
    const e = await waitFor((e) => e.kind === "error");
    assert.match(e.reason ?? "", /without a subscription to s\/dat/);
  },
);

emulatorTest("startEmulator() survives garbage, silent and vanishing connections", {
  handshakeTimeoutMs: 300,
  connectTimeoutMs: 300,
}, async ({ emulator, connect, end, tokenClaims, waitFor }) => {
  /** Swallows the socket's errors and data, resolves when it is closed. */
  const closed = (socket: net.Socket): Promise<void> => {
    socket.on("error", () => {});
    socket.on("data", () => {});
    return new Promise((resolve) => socket.once("close", () => resolve()));
  };
  /** A TLS connection that trusts the server's CA, with `extra` options. */
  const tlsConnect = (extra: tls.ConnectionOptions = {}): tls.TLSSocket =>
    tls.connect({
      host: "127.0.0.1",
      port: emulator.port,
      servername: "localhost",
      ca: read("ca/server-ca.pem"),
      ...extra,
    });

  // TLS, then garbage instead of MQTT.
  const garbage = tlsConnect({
    cert: read("devices/rsa.chain.pem"),
    key: read("devices/rsa.key"),
  });
  garbage.once("secureConnect", () => garbage.write(new Uint8Array(64).fill(0xff)));
  await closed(garbage);

  // TCP, then garbage instead of a TLS handshake.
  const plain = net.connect(
    emulator.port,
    "127.0.0.1",
    () => plain.write("GET / HTTP/1.1\r\n\r\n"),
  );
  await closed(plain);

  // TCP that closes at once.
  const vanishing = net.connect(emulator.port, "127.0.0.1", () => vanishing.destroy());
  await closed(vanishing);

  // TCP that never starts the handshake: dropped by the handshake timeout (its event says so).
  const silent = net.connect(emulator.port, "127.0.0.1");
  await closed(silent);
  await waitFor((e) => e.kind === "error" && /TLS handshake timeout/.test(e.reason ?? ""));

  // TLS that never sends CONNECT: dropped by the CONNECT timeout.
  const mute = tlsConnect();
  await closed(mute);
  await waitFor((e) => e.kind === "error" && /connect did not arrive in time/.test(e.reason ?? ""));

  // A device that connects and vanishes without DISCONNECT.
  const gone = await connect("devices/rsa", "d:device-rsa-001");
  assert.equal(gone.code, 0);
  (gone.client.stream as net.Socket).destroy();
  await end(gone);

  // Still serving.
  const good = await connect("devices/ec256", "d:device-ec256-001");
  assert.equal(good.code, 0);
  assert.equal((await tokenClaims(good)).sub, "device_device-ec256-001");
});

Deno.test({
  name:
    "startEmulator() refuses a token lifetime under 1 s, a non-CA trust anchor and a mismatched server key",
  permissions,
}, async () => {
  /** Asserts that the emulator does not start with these options (over the fixtures, root trusted). */
  const refusesToStart = (
    options: Partial<EmulatorOptions>,
    code: string,
    message?: RegExp,
  ): Promise<void> =>
    assert.rejects(
      startFixtureEmulator(options),
      (err) =>
        err instanceof UsageError && err.code === code && (message?.test(err.message) ?? true),
    );
  await refusesToStart({ tokenLifetimeSeconds: 0 }, "EMULATOR_TOKEN_LIFETIME");
  await refusesToStart({ tokenLifetimeSeconds: 1.5 }, "EMULATOR_TOKEN_LIFETIME");
  await refusesToStart({ port: 8883, restPort: 8883 }, "EMULATOR_PORT");
  await refusesToStart({ maxPacketBytes: 10 }, "EMULATOR_LIMIT");
  await refusesToStart(
    { trustedCaPems: [read("devices/rsa.pem")] },
    "EMULATOR_TRUST",
    /device-rsa-001/,
  );
  await refusesToStart(
    { serverKeyPem: read("server/wrong-host.key") },
    "EMULATOR_SERVER_CERT",
    /does not match/,
  );
  await refusesToStart({ serverCertPem: "" }, "EMULATOR_SERVER_CERT");
  await refusesToStart({ trustedCaPems: [] }, "EMULATOR_TRUST");
});

emulatorTest("startEmulator() puts the tenant and lifetime (also under the platform's 300 s)", {
  trusted: [ROOT],
  tenant: "t999",
  tokenLifetimeSeconds: 6,
}, async ({ emulator, connect, tokenClaims }) => {
  assert.equal(emulator.issuer, "t999.emulator.local");
  const claims = await tokenClaims(await connect("devices/ec384", "d:device-ec384-001"));
  assert.equal(claims.ten, "t999");
  assert.equal((claims.exp as number) - (claims.iat as number), 6);
});

emulatorTest("startEmulator() signs ES256 tokens on request (tokenAlgorithm)", {
  tokenAlgorithm: "ES256",
}, async ({ emulator, connect }) => {
  assert.equal(emulator.publicKeyJwk.kty, "EC");
  assert.equal(emulator.publicKeyJwk.alg, "ES256");
  const device = await connect("devices/ec256", "d:device-ec256-001");
  const [line] = await requestToken(device.client, 0);
  const claims = await verifyToken(emulator, line, "ES256");
  assert.equal(claims.sub, "device_device-ec256-001");
});

for (
  const [hostname, shown] of [
    ["::1", "[::1]"],
    ["[::1]", "[::1]"],
    ["localhost", "127.0.0.1"],
  ] as const
) {
  Deno.test({
    name: `startEmulator({ hostname: "${hostname}" }) serves a device on mqtts://${shown}`,
    permissions: { ...(permissions as Deno.PermissionOptionsObject), net: ["127.0.0.1", "[::1]"] },
  }, async () => {
    await using emulator = await startFixtureEmulator({ hostname });
    assert.match(emulator.url, new RegExp(`^mqtts://${shown.replace(/[[\].]/g, "\\$&")}:\\d+$`));
    const device = await connectDevice(emulator.url, "devices/rsa", "d:device-rsa-001");
    try {
      assert.equal(device.code, 0, String(device.error));
      assert.equal(
        (await verifyToken(emulator, (await requestToken(device.client, 0))[0])).sub,
        "device_device-rsa-001",
      );
    } finally {
      await device.client.endAsync(true);
    }
  });
}

Deno.test("verifyDeviceChain() accepts the fixture chains and refuses the bad ones", () => {
  const rootOnly = ders("ca/device-root-ca.pem");
  const trusted = [...rootOnly, ...ders("ca/device-intermediate-ca.pem")];
  const ok = verifyDeviceChain(ders("devices/rsa.chain.pem"), { trusted: rootOnly });
  assert.deepEqual(ok, {
    ok: true,
    commonName: "device-rsa-001",
    trustedBy: "c8y-mqtt-cert Test Device Root CA",
  });
  // The full chain (with the root itself) is fine too.
  assert.equal(
    verifyDeviceChain(ders("devices/ec256.fullchain.pem"), { trusted: rootOnly }).ok,
    true,
  );

  /** The reason a chain (a fixture path or DER certificates) is refused for. */
  const reason = (chain: string | Uint8Array[], t = trusted): string => {
    const v = verifyDeviceChain(typeof chain === "string" ? ders(chain) : chain, { trusted: t });
    assert.equal(v.ok, false, typeof chain === "string" ? chain : `${chain.length} certificates`);
    return v.ok ? "" : v.reason;
  };
  assert.match(reason("bad/expired.chain.pem"), /"device-expired" expired on 2001-01-01/);
  assert.match(
    reason("bad/notyetvalid.chain.pem"),
    /"device-notyetvalid" is not valid before 2120/,
  );
  assert.match(reason("bad/noca.chain.pem"), /Non-CA Intermediate" signs "device-noca" but is not/);
  assert.match(reason("bad/unknown-ca.chain.pem"), /not issued by a trusted CA/);
  assert.match(reason("devices/rsa.pem", rootOnly), /"device-rsa-001".*not issued by a trusted CA/);

  // The platform takes the first certificate as the device's: a misordered chain names the CA.
  const misordered = verifyDeviceChain(ders("bad/misordered.chain.pem"), { trusted });
  assert.equal(misordered.commonName, "c8y-mqtt-cert Test Device Intermediate CA");

  const long = [...ders("devices/rsa.chain.pem"), ...Array(9).fill(ders("ca/unknown-ca.pem")[0])];
  assert.match(reason(long), /11 certificates; at most 10/);
  // Validity is judged at the given time.
  const later = verifyDeviceChain(ders("devices/rsa.chain.pem"), {
    trusted: rootOnly,
    now: new Date("2200-01-01T00:00:00Z"),
  });
  assert.equal(later.ok, false);
});
