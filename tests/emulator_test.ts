import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { type EmulatorEvent, startEmulator, verifyDeviceChain } from "../lib/emulator.ts";
import { loadJose } from "../lib/deps.ts";

/** MQTT.js: an independent, widely used client to test the emulator with. */
function loadMqtt(): Promise<typeof import("npm:mqtt@5.16.0")> {
  return import("npm:mqtt@5.16.0");
}
import { UsageError } from "../lib/errors.ts";
import { pemBlocks } from "../lib/pem.ts";

const fixtures = new URL("../fixtures/", import.meta.url);
const read = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));
const ders = (path: string): Uint8Array[] =>
  pemBlocks(read(path)).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);

const permissions: Deno.PermissionOptions = {
  read: true,
  net: ["127.0.0.1", "localhost"],
  env: true,
  sys: true,
};

const SERVER = {
  serverCertPem: read("server/server.pem"),
  serverKeyPem: read("server/server.key"),
};
const ROOT = read("ca/device-root-ca.pem");
const INTERMEDIATE = read("ca/device-intermediate-ca.pem");

/** Starts an emulator on the fixtures and collects its events. */
async function withEmulator(
  options: { trusted?: string[]; handshakeTimeoutMs?: number; connectTimeoutMs?: number },
  body: (
    emulator: Awaited<ReturnType<typeof startEmulator>>,
    events: EmulatorEvent[],
    waitFor: (pred: (e: EmulatorEvent) => boolean, ms?: number) => Promise<EmulatorEvent>,
  ) => Promise<void>,
): Promise<void> {
  const events: EmulatorEvent[] = [];
  const waiters: { pred: (e: EmulatorEvent) => boolean; resolve: (e: EmulatorEvent) => void }[] =
    [];
  const emulator = await startEmulator({
    ...SERVER,
    trustedCaPems: options.trusted ?? [ROOT, INTERMEDIATE],
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    log: (event) => {
      events.push(event);
      for (const w of [...waiters]) {
        if (w.pred(event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    },
  });
  const waitFor = (pred: (e: EmulatorEvent) => boolean, ms = 5000): Promise<EmulatorEvent> => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching event in ${ms} ms; got ${JSON.stringify(events)}`));
      }, ms);
      const waiter = {
        pred,
        resolve: (e: EmulatorEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      waiters.push(waiter);
    });
  };
  try {
    await body(emulator, events, waitFor);
  } finally {
    await emulator.close();
  }
}

type MqttClient = import("npm:mqtt@5.16.0").MqttClient;

interface Attempt {
  client: MqttClient;
  /** CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5) as the client saw it. */
  code: number | undefined;
  error: Error | undefined;
}

/** Connects with MQTT.js and resolves on CONNACK, refusal or close. */
async function connectDevice(
  url: string,
  options: { cert: string; key: string; clientId: string; protocolVersion?: 4 | 5 },
): Promise<Attempt> {
  const { default: mqtt } = await loadMqtt();
  const client = mqtt.connect(url, {
    clientId: options.clientId,
    cert: read(options.cert),
    key: read(options.key),
    ca: read("ca/server-ca.pem"),
    servername: "localhost",
    protocolVersion: options.protocolVersion ?? 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  return await new Promise<Attempt>((resolve) => {
    client.once("connect", (connack) => {
      resolve({ client, code: connack.returnCode ?? connack.reasonCode ?? 0, error: undefined });
    });
    client.once("error", (error) => {
      const code = (error as Error & { code?: number }).code;
      resolve({ client, code: typeof code === "number" ? code : undefined, error });
    });
    client.once("close", () => resolve({ client, code: undefined, error: new Error("closed") }));
  });
}

async function end(client: MqttClient): Promise<void> {
  await client.endAsync(true);
}

/** Subscribes to s/dat, publishes an empty QoS 0 message on s/uat, returns every s/dat payload. */
async function requestToken(client: MqttClient, settleMs = 300): Promise<string[]> {
  const received: string[] = [];
  let first: (() => void) | undefined;
  const arrived = new Promise<void>((resolve) => (first = resolve));
  client.on("message", (topic, payload) => {
    if (topic === "s/dat") {
      received.push(new TextDecoder().decode(payload));
      first?.();
    }
  });
  await client.subscribeAsync("s/dat", { qos: 0 });
  await client.publishAsync("s/uat", "", { qos: 0 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    arrived,
    new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
  ]);
  clearTimeout(timer);
  // Give a wrong second delivery the chance to show up.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return received;
}

async function verifyToken(
  emulator: Awaited<ReturnType<typeof startEmulator>>,
  line: string,
): Promise<Record<string, unknown>> {
  assert.match(line, /^71,[\w-]+\.[\w-]+\.[\w-]+$/);
  const jose = await loadJose();
  const key = await jose.importJWK(emulator.publicKeyJwk as Parameters<typeof jose.importJWK>[0]);
  const { payload, protectedHeader } = await jose.jwtVerify(line.slice(3), key, {
    issuer: emulator.issuer,
    audience: emulator.issuer,
  });
  assert.equal(protectedHeader.alg, "RS256");
  return payload as Record<string, unknown>;
}

Deno.test({
  name: "startEmulator() accepts a device chain, answers s/uat with a signed 71 token on s/dat",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, events, waitFor) => {
    assert.match(emulator.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(events[0].kind, "listening");
    assert.equal(events[0].url, emulator.url);
    const attempt = await connectDevice(emulator.url, {
      cert: "devices/rsa.chain.pem",
      key: "devices/rsa.key",
      clientId: "d:device-rsa-001",
    });
    try {
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
      const connect = await waitFor((e) => e.kind === "connect");
      assert.equal(connect.clientId, "d:device-rsa-001");
      assert.equal(connect.commonName, "device-rsa-001");
      assert.equal(connect.protocolVersion, 4);
      const token = await waitFor((e) => e.kind === "token");
      assert.equal(token.tokenId, claims.tci);
      assert.equal(token.expiresAt, new Date((claims.exp as number) * 1000).toISOString());
    } finally {
      await end(attempt.client);
    }
    await waitFor((e) => e.kind === "disconnect" && e.clientId === "d:device-rsa-001");
  });
});

Deno.test({
  name: "startEmulator() gives two devices at once their own tokens only",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator) => {
    const rsa = await connectDevice(emulator.url, {
      cert: "devices/rsa.chain.pem",
      key: "devices/rsa.key",
      clientId: "d:device-rsa-001",
    });
    const ec = await connectDevice(emulator.url, {
      cert: "devices/ec256.chain.pem",
      key: "devices/ec256.key",
      clientId: "device-ec256-001",
    });
    try {
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
    } finally {
      await end(rsa.client);
      await end(ec.client);
    }
  });
});

Deno.test({
  name: "startEmulator() logs device creation from a 100 message on s/us",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, _events, waitFor) => {
    const a = await connectDevice(emulator.url, {
      cert: "devices/ec256.chain.pem",
      key: "devices/ec256.key",
      clientId: "d:device-ec256-001:myTemplate",
    });
    try {
      assert.equal(a.code, 0);
      await a.client.publishAsync("s/us", "100,My EC device,c8y_TestDevice", { qos: 0 });
      const created = await waitFor((e) => e.kind === "device-created");
      assert.equal(created.deviceName, "My EC device");
      assert.equal(created.deviceType, "c8y_TestDevice");
      assert.equal(created.commonName, "device-ec256-001");
    } finally {
      await end(a.client);
    }
  });
});

Deno.test({
  name: "startEmulator() refuses a device of an unknown CA with CONNACK 5 and logs why",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, _events, waitFor) => {
    const a = await connectDevice(emulator.url, {
      cert: "bad/unknown-ca.chain.pem",
      key: "bad/unknown-ca.key",
      clientId: "d:device-unknown",
    });
    try {
      assert.equal(a.code, 5);
      assert.match(a.error?.message ?? "", /Not authorized/i);
      const refused = await waitFor((e) => e.kind === "refused");
      assert.equal(refused.returnCode, 5);
      assert.equal(refused.commonName, "device-unknown");
      assert.match(refused.reason ?? "", /not issued by a trusted CA/);
    } finally {
      await end(a.client);
    }
  });
});

Deno.test({
  name: "startEmulator() refuses an expired device certificate and a non-CA intermediate",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, _events, waitFor) => {
    const expired = await connectDevice(emulator.url, {
      cert: "bad/expired.chain.pem",
      key: "bad/expired.key",
      clientId: "d:device-expired",
    });
    await end(expired.client);
    assert.equal(expired.code, 5);
    assert.match(
      (await waitFor((e) => e.kind === "refused" && e.clientId === "d:device-expired")).reason ??
        "",
      /expired/,
    );
    const noca = await connectDevice(emulator.url, {
      cert: "bad/noca.chain.pem",
      key: "bad/noca.key",
      clientId: "d:device-noca",
    });
    await end(noca.client);
    assert.equal(noca.code, 5);
    assert.match(
      (await waitFor((e) => e.kind === "refused" && e.clientId === "d:device-noca")).reason ?? "",
      /is not a CA/,
    );
  });
});

Deno.test({
  name: "startEmulator() refuses a client id that does not match the certificate's CN (CONNACK 5)",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, _events, waitFor) => {
    const a = await connectDevice(emulator.url, {
      cert: "devices/rsa.chain.pem",
      key: "devices/rsa.key",
      clientId: "d:device-ec256-001",
    });
    try {
      assert.equal(a.code, 5);
      const refused = await waitFor((e) => e.kind === "refused");
      assert.match(refused.reason ?? "", /is not the certificate's Common Name "device-rsa-001"/);
    } finally {
      await end(a.client);
    }
  });
});

Deno.test({
  name: "startEmulator() refuses other connection types and CNs with ':', accepts clean=false",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, _events, waitFor) => {
    const other = await connectDevice(emulator.url, {
      cert: "devices/rsa.chain.pem",
      key: "devices/rsa.key",
      clientId: "x:device-rsa-001",
    });
    await end(other.client);
    assert.equal(other.code, 5);
    assert.match(
      (await waitFor((e) => e.kind === "refused" && e.clientId === "x:device-rsa-001")).reason ??
        "",
      /is not of the form <id>, d:<id> or d:<id>:<template>/,
    );
    // "d:device:colon" reads as device "device" with template "colon": never the CN.
    const colon = await connectDevice(emulator.url, {
      cert: "bad/colon.chain.pem",
      key: "bad/colon.key",
      clientId: "d:device:colon",
    });
    await end(colon.client);
    assert.equal(colon.code, 5);
    const { default: mqtt } = await loadMqtt();
    const persistent = await mqtt.connectAsync(emulator.url, {
      clientId: "d:device-rsa-001",
      cert: read("devices/rsa.chain.pem"),
      key: read("devices/rsa.key"),
      ca: read("ca/server-ca.pem"),
      servername: "localhost",
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
    });
    try {
      const connect = await waitFor((e) => e.kind === "connect");
      assert.equal(connect.cleanSession, false);
      assert.equal((await requestToken(persistent, 0)).length, 1);
    } finally {
      await end(persistent);
    }
  });
});

Deno.test({
  name: "startEmulator() refuses MQTT 5 with CONNACK 1 (unacceptable protocol version)",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, _events, waitFor) => {
    const a = await connectDevice(emulator.url, {
      cert: "devices/rsa.chain.pem",
      key: "devices/rsa.key",
      clientId: "d:device-rsa-001",
      protocolVersion: 5,
    });
    try {
      // The emulator answers with an MQTT 3.1.1 CONNACK (return code 1), as a 3.1.1-only broker
      // does; MQTT.js (speaking MQTT 5) reads that byte as reason code 1.
      assert.equal(a.code, 1);
      const refused = await waitFor((e) => e.kind === "refused");
      assert.equal(refused.returnCode, 1);
      assert.equal(refused.clientId, "d:device-rsa-001");
      assert.match(refused.reason ?? "", /MQTT 5/);
    } finally {
      await end(a.client);
    }
  });
});

Deno.test({
  name: "startEmulator() accepts a leaf-only device when its immediate issuer is trusted",
  permissions,
}, async () => {
  await withEmulator({ trusted: [INTERMEDIATE] }, async (emulator) => {
    const a = await connectDevice(emulator.url, {
      cert: "devices/rsa.pem",
      key: "devices/rsa.key",
      clientId: "d:device-rsa-001",
    });
    try {
      assert.equal(a.code, 0);
      const lines = await requestToken(a.client, 0);
      assert.equal((await verifyToken(emulator, lines[0])).sub, "device_device-rsa-001");
    } finally {
      await end(a.client);
    }
  });
});

Deno.test({
  name: "startEmulator() refuses a leaf-only device when only the root is trusted",
  permissions,
}, async () => {
  await withEmulator({ trusted: [ROOT] }, async (emulator) => {
    const a = await connectDevice(emulator.url, {
      cert: "devices/rsa.pem",
      key: "devices/rsa.key",
      clientId: "d:device-rsa-001",
    });
    await end(a.client);
    assert.equal(a.code, 5);
  });
});

Deno.test({
  name: "startEmulator() sends no token to a client that did not subscribe to s/dat",
  permissions,
}, async () => {
  await withEmulator({}, async (emulator, _events, waitFor) => {
    const a = await connectDevice(emulator.url, {
      cert: "devices/rsa.chain.pem",
      key: "devices/rsa.key",
      clientId: "d:device-rsa-001",
    });
    try {
      await a.client.publishAsync("s/uat", "", { qos: 0 });
      const e = await waitFor((e) => e.kind === "error");
      assert.match(e.reason ?? "", /without a subscription to s\/dat/);
    } finally {
      await end(a.client);
    }
  });
});

Deno.test({
  name: "startEmulator() survives garbage, silent and vanishing connections",
  permissions,
}, async () => {
  await withEmulator({ handshakeTimeoutMs: 300, connectTimeoutMs: 300 }, async (emulator) => {
    const closed = (socket: net.Socket): Promise<void> =>
      new Promise((resolve) => socket.once("close", () => resolve()));

    // TLS, then garbage instead of MQTT.
    const garbage = tls.connect({
      host: "127.0.0.1",
      port: emulator.port,
      servername: "localhost",
      ca: read("ca/server-ca.pem"),
      cert: read("devices/rsa.chain.pem"),
      key: read("devices/rsa.key"),
    });
    garbage.on("error", () => {});
    garbage.on("data", () => {});
    garbage.once("secureConnect", () => garbage.write(new Uint8Array(64).fill(0xff)));
    await closed(garbage);

    // TCP, then garbage instead of a TLS handshake.
    const plain = net.connect(
      emulator.port,
      "127.0.0.1",
      () => plain.write("GET / HTTP/1.1\r\n\r\n"),
    );
    plain.on("error", () => {});
    plain.on("data", () => {});
    await closed(plain);

    // TCP that closes at once.
    const vanishing = net.connect(emulator.port, "127.0.0.1", () => vanishing.destroy());
    vanishing.on("error", () => {});
    await closed(vanishing);

    // TCP that never starts the handshake: dropped after handshakeTimeoutMs.
    const silent = net.connect(emulator.port, "127.0.0.1");
    silent.on("error", () => {});
    const t0 = Date.now();
    await closed(silent);
    assert.ok(Date.now() - t0 < 3000, "the silent TCP connection was not dropped");

    // TLS that never sends CONNECT: dropped after connectTimeoutMs.
    const mute = tls.connect({
      host: "127.0.0.1",
      port: emulator.port,
      servername: "localhost",
      ca: read("ca/server-ca.pem"),
    });
    mute.on("error", () => {});
    mute.on("data", () => {});
    const t1 = Date.now();
    await closed(mute);
    assert.ok(Date.now() - t1 < 3000, "the mute TLS connection was not dropped");

    // A device that connects and vanishes without DISCONNECT.
    const gone = await connectDevice(emulator.url, {
      cert: "devices/rsa.chain.pem",
      key: "devices/rsa.key",
      clientId: "d:device-rsa-001",
    });
    assert.equal(gone.code, 0);
    (gone.client.stream as net.Socket).destroy();
    await end(gone.client);

    // Still serving.
    const good = await connectDevice(emulator.url, {
      cert: "devices/ec256.chain.pem",
      key: "devices/ec256.key",
      clientId: "d:device-ec256-001",
    });
    try {
      assert.equal(good.code, 0);
      const lines = await requestToken(good.client, 0);
      assert.equal((await verifyToken(emulator, lines[0])).sub, "device_device-ec256-001");
    } finally {
      await end(good.client);
    }
  });
});

Deno.test({
  name:
    "startEmulator() refuses a token lifetime under 300 s, a non-CA trust anchor and a mismatched server key",
  permissions,
}, async () => {
  await assert.rejects(
    startEmulator({ ...SERVER, trustedCaPems: [ROOT], tokenLifetimeSeconds: 299 }),
    (err) => err instanceof UsageError && err.code === "EMULATOR_TOKEN_LIFETIME",
  );
  await assert.rejects(
    startEmulator({ ...SERVER, trustedCaPems: [read("devices/rsa.pem")] }),
    (err) =>
      err instanceof UsageError && err.code === "EMULATOR_TRUST" &&
      err.message.includes("device-rsa-001"),
  );
  await assert.rejects(
    startEmulator({
      ...SERVER,
      serverKeyPem: read("server/wrong-host.key"),
      trustedCaPems: [ROOT],
    }),
    (err) =>
      err instanceof UsageError && err.code === "EMULATOR_SERVER_CERT" &&
      /does not match/.test(err.message),
  );
  await assert.rejects(
    startEmulator({ ...SERVER, serverCertPem: "", trustedCaPems: [ROOT] }),
    (err) => err instanceof UsageError && err.code === "EMULATOR_SERVER_CERT",
  );
  await assert.rejects(
    startEmulator({ ...SERVER, trustedCaPems: [] }),
    (err) => err instanceof UsageError && err.code === "EMULATOR_TRUST",
  );
});

Deno.test({
  name: "startEmulator() puts the tenant and lifetime into the token",
  permissions,
}, async () => {
  const emulator = await startEmulator({
    ...SERVER,
    trustedCaPems: [ROOT],
    tenant: "t999",
    tokenLifetimeSeconds: 300,
  });
  try {
    assert.equal(emulator.issuer, "t999.emulator.local");
    const a = await connectDevice(emulator.url, {
      cert: "devices/ec384.chain.pem",
      key: "devices/ec384.key",
      clientId: "d:device-ec384-001",
    });
    try {
      const claims = await verifyToken(emulator, (await requestToken(a.client, 0))[0]);
      assert.equal(claims.ten, "t999");
      assert.equal((claims.exp as number) - (claims.iat as number), 300);
    } finally {
      await end(a.client);
    }
  } finally {
    await emulator.close();
  }
});

Deno.test("verifyDeviceChain() accepts the fixture chains and refuses the bad ones", () => {
  const trusted = [...ders("ca/device-root-ca.pem"), ...ders("ca/device-intermediate-ca.pem")];
  const rootOnly = ders("ca/device-root-ca.pem");
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

  const reason = (path: string, t = trusted): string => {
    const v = verifyDeviceChain(ders(path), { trusted: t });
    assert.equal(v.ok, false, path);
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
  assert.match(
    verifyDeviceChain(long, { trusted }).ok ? "" : (verifyDeviceChain(long, { trusted }) as {
      reason: string;
    }).reason,
    /11 certificates; at most 10/,
  );
  // Validity is judged at the given time.
  const later = verifyDeviceChain(ders("devices/rsa.chain.pem"), {
    trusted: rootOnly,
    now: new Date("2200-01-01T00:00:00Z"),
  });
  assert.equal(later.ok, false);
});
