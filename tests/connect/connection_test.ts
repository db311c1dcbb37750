import assert from "node:assert/strict";
import tls from "node:tls";
import {
  connect,
  type ConnectOptions,
  type DeviceConnection,
} from "../../lib/connect/connection.ts";
import { parseBrokerUrl } from "../../lib/connect/broker_url.ts";
import { type TlsConnectOptions, tlsOptions } from "../../lib/connect/tls_options.ts";
import { classifyTlsError } from "../../lib/connect/classify.ts";
import { C8yError, MqttError, NetworkError, PermissionError, TlsError } from "../../lib/errors.ts";
import type { Stage } from "../../lib/errors.ts";
import type { DeviceIdentity, TrustAnchors } from "../../lib/types.ts";
import {
  fixtureIdentity,
  fixtureText,
  fixtureTrust,
  freePort,
  mosquittoTest,
  startMosquitto,
} from "../support/mosquitto.ts";

const serverCa = await fixtureTrust("ca/server-ca.pem");
const rsa = await fixtureIdentity("devices/rsa");

/** Connects and records the stages reported. */
async function tryConnect(
  url: string,
  identity: DeviceIdentity,
  trust: TrustAnchors | undefined,
  extra: Partial<ConnectOptions> = {},
): Promise<{ session?: DeviceConnection; error?: C8yError; stages: Stage[] }> {
  const stages: Stage[] = [];
  try {
    const session = await connect({
      url,
      identity,
      trust,
      connectTimeoutMs: 5000,
      onStage: (stage, ms) => {
        assert.ok(ms >= 0 && ms < 5000, `${stage} took ${ms} ms`);
        stages.push(stage);
      },
      ...extra,
    });
    return { session, stages };
  } catch (err) {
    if (!(err instanceof C8yError)) throw err;
    return { error: err, stages };
  }
}

function expectError(
  result: { session?: DeviceConnection; error?: C8yError },
  type: typeof C8yError,
  code: string,
  stage: Stage,
): C8yError {
  assert.equal(result.session, undefined, "expected the connection to fail");
  const err = result.error!;
  assert.ok(err instanceof type, `expected ${type.name}, got ${err.name}: ${err.message}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.stage, stage);
  assert.ok(err.hint.length > 0, "a hint is given");
  return err;
}

for (const device of ["rsa", "ec256"]) {
  mosquittoTest(
    `connect() as the ${device} device gets CONNACK 0 from mosquitto, subscribes, publishes and receives`,
    async () => {
      await using mosquitto = await startMosquitto();
      const events: string[] = [];
      const received: Array<[string, string]> = [];
      let session: DeviceConnection | undefined;
      try {
        const identity = await fixtureIdentity(`devices/${device}`);
        const result = await tryConnect(`ssl://localhost:${mosquitto.port}`, identity, serverCa, {
          callbacks: {
            connectComplete: (reconnect, url) => events.push(`complete ${reconnect} ${url}`),
            connectionLost: (cause) => events.push(`lost ${cause.message}`),
            messageArrived: (topic, payload) =>
              received.push([topic, new TextDecoder().decode(payload)]),
            deliveryComplete: (topic) => events.push(`delivered ${topic}`),
          },
        });
        assert.equal(result.error, undefined, result.error?.message ?? "");
        session = result.session!;
        assert.deepEqual(result.stages, ["dns", "tcp", "tls", "mqtt"]);
        assert.equal(session.clientId, `d:device-${device}-001`);
        assert.equal(session.url, `mqtts://localhost:${mosquitto.port}`);
        assert.equal(session.connected, true);
        assert.deepEqual(events, [`complete false mqtts://localhost:${mosquitto.port}`]);

        assert.equal(await session.subscribe("s/ds", { qos: 1 }), 1);
        assert.equal(await session.subscribe("s/dat"), 0);
        const arrived = new Promise<void>((resolve) => {
          session!.listen({ messageArrived: (topic) => topic === "s/ds" && resolve() });
        });
        await session.publish("s/ds", "510,hello", { qos: 1 });
        await arrived;
        assert.deepEqual(received, [["s/ds", "510,hello"]]);
        assert.deepEqual(events.slice(1), ["delivered s/ds"]);
        const log = await mosquitto.log();
        assert.match(log, new RegExp(`New client connected .* as d:device-${device}-001`));
      } finally {
        await session?.close();
        // Stopped now rather than at the end of the scope: with the broker gone, a connection
        // that close() left open would end in the connectionLost() checked for below.
        await mosquitto.stop();
      }
      assert.equal(session.connected, false);
      assert.ok(!events.some((e) => e.startsWith("lost")), "no connectionLost after close()");
    },
  );
}

mosquittoTest(
  "connect() reports a device from an unknown CA as TLS_CLIENT_CERT_REFUSED in stage tls (TLS 1.3 late rejection)",
  async () => {
    await using mosquitto = await startMosquitto();
    const identity = await fixtureIdentity("bad/unknown-ca");
    const result = await tryConnect(`ssl://localhost:${mosquitto.port}`, identity, serverCa);
    const err = expectError(result, TlsError, "TLS_CLIENT_CERT_REFUSED", "tls");
    assert.match(err.message, /did not accept the device certificate/);
    assert.match(err.message, /unknown CA/);
    assert.match(err.hint, /trusted certificates/);
    // DNS and TCP worked; TLS is not reported as done: the server refused the certificate.
    assert.deepEqual(result.stages, ["dns", "tcp"]);
  },
);

mosquittoTest(
  "connect() reports a device from an unknown CA under TLS 1.2 as TLS_CLIENT_CERT_REFUSED",
  async () => {
    await using mosquitto = await startMosquitto({ tlsVersion: "tlsv1.2" });
    const identity = await fixtureIdentity("bad/unknown-ca");
    const result = await tryConnect(`ssl://localhost:${mosquitto.port}`, identity, serverCa);
    const err = expectError(result, TlsError, "TLS_CLIENT_CERT_REFUSED", "tls");
    // Deno 2.9.6 reports the handshake as done before this alert even under TLS 1.2, so the
    // message may be the late-rejection one; the code and stage are the same either way.
    assert.match(err.message, /TLS alert "unknown CA"/);
    assert.deepEqual(result.stages, ["dns", "tcp"]);
    // And a good device still connects over TLS 1.2.
    const good = await tryConnect(`ssl://localhost:${mosquitto.port}`, rsa, serverCa);
    assert.equal(good.error, undefined, good.error?.message ?? "");
    await good.session!.close();
  },
);

mosquittoTest(
  "connect() reports a device without a certificate as TLS_CLIENT_CERT_REQUIRED in stage tls",
  async () => {
    await using mosquitto = await startMosquitto();
    const url = `ssl://localhost:${mosquitto.port}`;
    const { key: _key, cert: _cert, ...noCertificate } = tlsOptions(
      rsa,
      serverCa,
      parseBrokerUrl(url),
    );
    const stages: Stage[] = [];
    const error = await connect({
      url,
      identity: rsa,
      // deno-lint-ignore no-explicit-any
      tls: noCertificate as any,
      onStage: (stage) => stages.push(stage),
    }).then(() => undefined, (err) => err);
    expectError({ error }, TlsError, "TLS_CLIENT_CERT_REQUIRED", "tls");
    assert.deepEqual(stages, ["dns", "tcp"]);
  },
);

mosquittoTest(
  "connect() reports a server signed by another CA as TLS_SERVER_UNTRUSTED",
  async () => {
    await using mosquitto = await startMosquitto();
    const wrongCa = await fixtureTrust("ca/unknown-ca.pem");
    const result = await tryConnect(`ssl://localhost:${mosquitto.port}`, rsa, wrongCa);
    const err = expectError(result, TlsError, "TLS_SERVER_UNTRUSTED", "tls");
    // Named: what the server presented, and the CA the truststore must hold.
    assert.match(
      err.message,
      /\("CN=localhost", issued by "CN=c8y-mqtt-cert Test Server CA"\) is not trusted/,
    );
    assert.match(
      err.hint,
      /^The truststore does not hold "CN=c8y-mqtt-cert Test Server CA", the CA the server's certificate chains to/,
    );
    assert.deepEqual(result.stages, ["dns", "tcp"]);
  },
);

mosquittoTest(
  "connect() reports a server certificate for another host as TLS_HOSTNAME_MISMATCH, by name and by IP",
  async () => {
    await using mosquitto = await startMosquitto({
      certfile: "server/wrong-host.pem",
      keyfile: "server/wrong-host.key",
    });
    for (const host of ["localhost", "127.0.0.1"]) {
      const result = await tryConnect(`ssl://${host}:${mosquitto.port}`, rsa, serverCa);
      const err = expectError(result, TlsError, "TLS_HOSTNAME_MISMATCH", "tls");
      assert.match(err.message, new RegExp(`not valid for "${host}"`));
    }
  },
);

mosquittoTest(
  "connect() by IP address verifies the server certificate's IP SAN and sends no SNI",
  async () => {
    await using mosquitto = await startMosquitto();
    let session: DeviceConnection | undefined;
    try {
      const result = await tryConnect(`ssl://127.0.0.1:${mosquitto.port}`, rsa, serverCa);
      assert.equal(result.error, undefined, result.error?.message ?? "");
      session = result.session!;
      assert.deepEqual(result.stages, ["dns", "tcp", "tls", "mqtt"]);
    } finally {
      await session?.close();
    }
  },
);

Deno.test("connect() reports a closed port as NETWORK_REFUSED in stage tcp", async () => {
  const result = await tryConnect(`ssl://127.0.0.1:${freePort()}`, rsa, serverCa);
  const err = expectError(result, NetworkError, "NETWORK_REFUSED", "tcp");
  assert.equal(err.exitCode, 5);
  assert.deepEqual(result.stages, ["dns"]);
});

Deno.test("connect() reports an unresolvable host as DNS_NOT_FOUND in stage dns", async () => {
  // .invalid is reserved (RFC 6761) and never resolves.
  const result = await tryConnect("ssl://nonexistent.invalid:8883", rsa, serverCa);
  const err = expectError(result, NetworkError, "DNS_NOT_FOUND", "dns");
  assert.match(err.message, /nonexistent\.invalid/);
  assert.deepEqual(result.stages, []);
});

// --- Fake brokers: a TLS server (Deno.listenTls) that behaves in one scripted way. -------------

/** A fake broker; disposing of it closes the listener and its connections. */
interface FakeBroker extends AsyncDisposable {
  port: number;
}

async function startFake(
  handle: (conn: Deno.Conn, index: number) => Promise<void>,
  options: { tls?: boolean } = {},
): Promise<FakeBroker> {
  const listener = options.tls === false
    ? Deno.listen({ hostname: "127.0.0.1", port: 0 })
    : Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: await fixtureText("server/server.pem"),
      key: await fixtureText("server/server.key"),
    });
  const conns = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];
  const loop = (async () => {
    let index = 0;
    for await (const conn of listener) {
      conns.add(conn);
      handlers.push(
        handle(conn, index++).catch(() => {}).finally(() => {
          if (conns.delete(conn)) {
            try {
              conn.close();
            } catch {
              // closed
            }
          }
        }),
      );
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose](): Promise<void> {
      listener.close();
      await loop.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
      conns.clear();
      await Promise.all(handlers);
    },
  };
}

async function readSome(conn: Deno.Conn): Promise<Uint8Array | null> {
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  return n === null ? null : buffer.subarray(0, n);
}

/** Waits until the peer closes (read returns null or fails). */
async function drain(conn: Deno.Conn): Promise<void> {
  try {
    while ((await readSome(conn)) !== null) {
      // discard
    }
  } catch {
    // reset
  }
}

Deno.test(
  "connect() reports a server that closes right after the TLS handshake as TLS_CLIENT_CERT_REFUSED",
  async () => {
    await using fake = await startFake(async (conn) => {
      await readSome(conn); // the CONNECT: the handshake is done, now refuse like Cumulocity
      conn.close();
    });
    const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa);
    const err = expectError(result, TlsError, "TLS_CLIENT_CERT_REFUSED", "tls");
    assert.match(err.message, /did not accept the device certificate/);
    assert.deepEqual(result.stages, ["dns", "tcp"]);
  },
);

Deno.test(
  "connect() reports a close after a TLS 1.2 handshake as the MQTT side hanging up, not as a refused certificate",
  async () => {
    // Under TLS 1.2 a server judges the client certificate inside the handshake, so a close
    // after it is not a certificate refusal.
    const server = tls.createServer({
      key: await fixtureText("server/server.key"),
      cert: await fixtureText("server/server.pem"),
      maxVersion: "TLSv1.2",
    }, (socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.end()); // the CONNECT, answered by a close
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    try {
      const port = (server.address() as { port: number }).port;
      const result = await tryConnect(`ssl://localhost:${port}`, rsa, serverCa);
      const err = expectError(result, MqttError, "MQTT_CONNECTION_CLOSED", "mqtt");
      assert.match(err.message, /closed the connection after the TLS handshake/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  },
);

const connackCases: Array<[number, string, RegExp]> = [
  [1, "MQTT_UNACCEPTABLE_PROTOCOL", /3\.1\.1/],
  [2, "MQTT_IDENTIFIER_REJECTED", /client id/],
  [3, "MQTT_SERVER_UNAVAILABLE", /try again/],
  [4, "MQTT_BAD_CREDENTIALS", /never|does not send/],
  // The offline findings of the identity explain it: the tenant must trust the chain's CA.
  [5, "MQTT_NOT_AUTHORIZED", /^Most likely the tenant does not trust .*\(CHAIN_ANCHOR\)/],
];
for (const [returnCode, code, hint] of connackCases) {
  Deno.test(`connect() reports CONNACK ${returnCode} as ${code} with its meaning`, async () => {
    await using fake = await startFake(async (conn) => {
      const connect = await readSome(conn);
      assert.equal(connect?.[0], 0x10, "a CONNECT packet");
      await conn.write(new Uint8Array([0x20, 0x02, 0x00, returnCode]));
      await drain(conn);
    });
    const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa);
    const err = expectError(result, MqttError, code, "mqtt");
    assert.equal((err as MqttError).returnCode, returnCode);
    assert.match(err.message, new RegExp(`CONNACK ${returnCode}`));
    assert.match(err.hint, hint);
    assert.equal(err.exitCode, 7);
    // The handshake completed and the broker answered: the tls stage is reported as passed.
    assert.deepEqual(result.stages, ["dns", "tcp", "tls"]);
  });
}

Deno.test("connect() leaves CONNACK 5's retry hint when the caller's findings explain nothing, and attaches them", async () => {
  await using fake = await startFake(async (conn) => {
    await readSome(conn);
    await conn.write(new Uint8Array([0x20, 0x02, 0x00, 5]));
    await drain(conn);
  });
  const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa, {
    findings: [],
  });
  const err = expectError(result, MqttError, "MQTT_NOT_AUTHORIZED", "mqtt");
  assert.match(err.hint, /transient: retry a few times/);
  assert.deepEqual(err.findings, []);
});

Deno.test("connect() reports the tls stage as not confirmed when MQTT fails before any answer under TLS 1.3", async () => {
  await using fake = await startFake(async (conn) => {
    await readSome(conn);
    await drain(conn); // never answers the CONNECT
  });
  const details: [Stage, string | undefined, string | undefined][] = [];
  const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa, {
    connectTimeoutMs: 1000,
    onStage: (stage, _ms, detail, state) => details.push([stage, detail, state]),
  });
  expectError(result, MqttError, "MQTT_CONNACK_TIMEOUT", "mqtt");
  const tls = details.find(([stage]) => stage === "tls");
  assert.ok(tls, JSON.stringify(details));
  assert.equal(tls[2], "warning");
  assert.match(
    tls[1]!,
    /^TLSv1\.3, server certificate "CN=localhost" \(issued by "CN=c8y-mqtt-cert Test Server CA"\) trusted; client certificate not yet confirmed$/,
  );
});

Deno.test("connect() sends MQTT 3.1.1 with a clean session and the keepalive", async () => {
  let packet: Uint8Array | null = null;
  await using fake = await startFake(async (conn) => {
    packet = await readSome(conn);
    await conn.write(new Uint8Array([0x20, 0x02, 0x00, 0x00]));
    await drain(conn);
  });
  const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa, {
    keepaliveSeconds: 30,
  });
  assert.equal(result.error, undefined, result.error?.message ?? "");
  await result.session!.close();
  const p = packet! as Uint8Array;
  // fixed header, remaining length, "MQTT", level 4, flags, keepalive, client id
  assert.deepEqual([...p.subarray(2, 8)], [0, 4, 0x4d, 0x51, 0x54, 0x54]);
  assert.equal(p[8], 4, "protocol level 4 (MQTT 3.1.1)");
  assert.equal(p[9], 0x02, "clean session, no user name, password or will");
  assert.equal((p[10] << 8) | p[11], 30);
  assert.equal(new TextDecoder().decode(p.subarray(14)), "d:device-rsa-001");
});

Deno.test("connect() reports a server that never sends CONNACK as MQTT_CONNACK_TIMEOUT", async () => {
  await using fake = await startFake(drain);
  const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa, {
    connectTimeoutMs: 400,
  });
  expectError(result, MqttError, "MQTT_CONNACK_TIMEOUT", "mqtt");
});

Deno.test("connect() reports a port that does not speak TLS as TLS_NOT_TLS", async () => {
  await using fake = await startFake(async (conn) => {
    await readSome(conn);
    await conn.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
  }, { tls: false });
  const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa);
  expectError(result, TlsError, "TLS_NOT_TLS", "tls");
});

Deno.test("connect() reports a silent server during the handshake as TLS_TIMEOUT", async () => {
  await using fake = await startFake(drain, { tls: false });
  const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa, {
    connectTimeoutMs: 300,
  });
  const err = expectError(result, TlsError, "TLS_TIMEOUT", "tls");
  assert.match(err.message, /0\.3 s/);
});

Deno.test(
  "connectionLost() is called when the broker drops the connection, and publish() then fails",
  async () => {
    await using fake = await startFake(async (conn) => {
      await readSome(conn);
      await conn.write(new Uint8Array([0x20, 0x02, 0x00, 0x00]));
      await new Promise((r) => setTimeout(r, 50));
      conn.close();
    });
    let session: DeviceConnection | undefined;
    try {
      const lost = Promise.withResolvers<Error>();
      const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa, {
        callbacks: { connectionLost: (cause) => lost.resolve(cause) },
      });
      session = result.session!;
      const cause = await lost.promise;
      assert.ok(cause instanceof NetworkError);
      assert.equal((cause as NetworkError).code, "CONNECTION_LOST");
      assert.equal(session.connected, false);
      await assert.rejects(
        session.publish("s/us", "400,c8y_Test,x"),
        (err: unknown) => err instanceof MqttError && err.code === "MQTT_NOT_CONNECTED",
      );
    } finally {
      await session?.close();
    }
  },
);

Deno.test("connect() with reconnect: true reconnects and says so in connectComplete()", async () => {
  await using fake = await startFake(async (conn, index) => {
    await readSome(conn);
    await conn.write(new Uint8Array([0x20, 0x02, 0x00, 0x00]));
    if (index === 0) {
      await new Promise((r) => setTimeout(r, 50));
      conn.close();
    } else {
      await drain(conn);
    }
  });
  let session: DeviceConnection | undefined;
  try {
    const events: string[] = [];
    const reconnected = Promise.withResolvers<void>();
    const result = await tryConnect(`ssl://localhost:${fake.port}`, rsa, serverCa, {
      reconnect: true,
      callbacks: {
        connectComplete: (reconnect) => {
          events.push(`complete ${reconnect}`);
          if (reconnect) reconnected.resolve();
        },
        connectionLost: () => events.push("lost"),
      },
    });
    session = result.session!;
    await reconnected.promise;
    assert.deepEqual(events, ["complete false", "lost", "complete true"]);
    assert.equal(session.connected, true);
  } finally {
    await session?.close();
  }
});

Deno.test({
  name: "connect() without net permission fails with PERMISSION_NET naming the --allow-net flag",
  permissions: { net: false, env: true, read: false },
}, async () => {
  for (const [url, flag] of [["ssl://localhost:9", "localhost:9"], ["[::1]:9", "[::1]:9"]]) {
    const result = await tryConnect(url, rsa, serverCa);
    const err = expectError(result, PermissionError, "PERMISSION_NET", "permission");
    assert.match(err.hint, new RegExp(`--allow-net=${flag.replace(/[[\]]/g, "\\$&")}`));
    assert.equal(err.exitCode, 9);
  }
});

Deno.test("connect() without env access fails with PERMISSION_ENV naming --ignore-env; with --ignore-env a closed port is NETWORK_REFUSED", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/connect.ts`;
    const connection = new URL("../../lib/connect/connection.ts", import.meta.url).href;
    const port = freePort();
    await Deno.writeTextFile(
      script,
      `import { connect } from "${connection}";
const identity = { privateKeyPem: "", chain: [{ pem: "", summary: { commonName: "x" } }] };
try {
  await connect({ url: "ssl://127.0.0.1:${port}", identity });
} catch (err) {
  console.log(JSON.stringify({ name: err.name, code: err.code, hint: err.hint }));
}
`,
    );
    const run = async (flags: string[]): Promise<{ name: string; code: string; hint: string }> => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          "--no-check",
          `--allow-net=127.0.0.1:${port}`,
          `--allow-read=${dir}`,
          ...flags,
          script,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      return JSON.parse(new TextDecoder().decode(output.stdout));
    };
    // MQTT.js's dependencies look up environment variables when they load.
    const denied = await run([]);
    assert.equal(denied.name, "PermissionError");
    assert.equal(denied.code, "PERMISSION_ENV");
    assert.match(denied.hint, /--ignore-env/);
    // --ignore-env makes those look-ups find nothing: the failure is the network's.
    const ignored = await run(["--ignore-env"]);
    assert.equal(ignored.name, "NetworkError");
    assert.equal(ignored.code, "NETWORK_REFUSED");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("classifyTlsError() tells OpenSSL refusing the device's own key from a server problem", () => {
  const broker = parseBrokerUrl("mqtts://127.0.0.1:8883");
  const options = { host: "127.0.0.1", port: 8883 } as TlsConnectOptions;
  for (
    const [code, message, reason] of [
      ["ERR_OSSL_SSL_KEY_TOO_SMALL", "error:0A00018A:SSL routines::key too small", "key too small"],
      [
        "ERR_OSSL_SSL_EE_KEY_TOO_SMALL",
        "error:0A00018F:SSL routines::ee key too small",
        "ee key too small",
      ],
      [
        "ERR_OSSL_SSL_CA_MD_TOO_WEAK",
        "error:0A00018E:SSL routines::ca md too weak",
        "ca md too weak",
      ],
    ]
  ) {
    const err = Object.assign(new Error(message), { code });
    const classified = classifyTlsError(err, broker, options);
    assert.equal(classified.code, "TLS_LOCAL_CERT_REJECTED", message);
    assert.ok(classified.message.includes(`(OpenSSL: ${reason})`), classified.message);
    assert.doesNotMatch(classified.hint, /URL and port/);
    assert.match(classified.hint, reason.includes("md") ? /SHA-256/ : /2048/);
  }
  // The same words as a verify code are about the server's certificate, not ours.
  const server = Object.assign(new Error("EE certificate key too weak"), {
    code: "EE_KEY_TOO_SMALL",
  });
  assert.notEqual(classifyTlsError(server, broker, options).code, "TLS_LOCAL_CERT_REJECTED");
});
