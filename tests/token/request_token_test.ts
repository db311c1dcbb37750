import assert from "node:assert/strict";
import { decodeToken } from "../../lib/token/decode_token.ts";
import { requestToken } from "../../lib/token/request_token.ts";
import {
  connect,
  type ConnectionCallbacks,
  type DeviceConnection,
} from "../../lib/connect/connection.ts";
import type { TokenConnection } from "../../lib/token/request_token.ts";
import { loadJose } from "../../lib/deps.ts";
import { NetworkError, TokenError, UsageError } from "../../lib/errors.ts";
import type { Stage } from "../../lib/errors.ts";
import {
  fixtureIdentity,
  fixtureTrust,
  mosquittoTest,
  startMosquitto,
} from "../support/mosquitto.ts";

const jose = await loadJose();
const { privateKey } = await jose.generateKeyPair("RS256");

/** A JWT signed like the platform's (RS256, its claims). */
async function platformJwt(claims: Record<string, unknown> = {}): Promise<string> {
  return await new jose.SignJWT({ ten: "t12345", tci: "6b1c3f", xsrfToken: "x", ...claims })
    .setProtectedHeader({ alg: "RS256" })
    .setIssuer("t12345.example.com")
    .setAudience("t12345.example.com")
    .setSubject("device_device-rsa-001")
    .setIssuedAt(1_700_000_000)
    .setNotBefore(1_700_000_000)
    .setExpirationTime(1_700_003_600)
    .sign(privateKey);
}

Deno.test("decodeToken() decodes a platform-like RS256 JWT without checking its signature", async () => {
  const jwt = await platformJwt();
  const token = decodeToken(jwt);
  assert.equal(token.token, jwt);
  assert.equal(token.tenant, "t12345");
  assert.equal(token.issuer, "t12345.example.com");
  assert.equal(token.subject, "device_device-rsa-001");
  assert.equal(token.issuedAt, "2023-11-14T22:13:20.000Z");
  assert.equal(token.expiresAt, "2023-11-14T23:13:20.000Z");
  assert.equal(token.claims.tci, "6b1c3f");
  assert.equal(token.claims.aud, "t12345.example.com");
  // A tampered signature decodes the same: the device cannot and does not check it.
  const tampered = jwt.slice(0, jwt.lastIndexOf(".") + 1) + "AAAA";
  assert.equal(decodeToken(tampered).tenant, "t12345");
});

Deno.test("decodeToken() leaves absent or mistyped claims undefined", async () => {
  const token = decodeToken(await platformJwt({ ten: 42 }));
  assert.equal(token.tenant, undefined);
  const bare = await new jose.SignJWT({}).setProtectedHeader({ alg: "RS256" }).sign(privateKey);
  const decoded = decodeToken(bare);
  assert.equal(decoded.expiresAt, undefined);
  assert.equal(decoded.issuedAt, undefined);
  assert.equal(decoded.subject, undefined);
});

for (
  const bad of [
    "",
    "abc",
    "a.b",
    "a.b.c.d",
    "a b.c.d",
    "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig", // payload "not json"
    "eyJhbGciOiJIUzI1NiJ9.WzEsMl0.sig", // payload [1,2]: JSON, not an object
    "eyJhbGciOiJIUzI1NiJ9.bnVsbA.sig", // payload null
    "eyJhbGciOiJIUzI1NiJ9._-8.sig", // payload bytes ff ef: not UTF-8
    "eyJhbGciOiJIUzI1NiJ9.e30x.sig", // "{}" plus a stray base64url character
  ]
) {
  Deno.test(`decodeToken() refuses "${bad}" with TOKEN_MALFORMED, not repeating it`, () => {
    assert.throws(() => decodeToken(bad), (err: unknown) => {
      assert.ok(err instanceof TokenError);
      assert.equal(err.code, "TOKEN_MALFORMED");
      assert.equal(err.exitCode, 8);
      if (bad.length > 3) assert.ok(!err.message.includes(bad));
      return true;
    });
  });
}

// --- requestToken() with a stand-in session ---------------------------------------------------

interface Stub {
  session: TokenConnection;
  requests: Array<{ topic: string; payload: Uint8Array; qos: number | undefined }>;
  subscriptions: Array<{ topic: string; qos: number | undefined }>;
  deliver(topic: string, text: string): void;
  drop(): void;
  listeners: Set<ConnectionCallbacks>;
}

/** A session whose `publish` on s/uat calls `onRequest` with the request's number (1, 2, ...). */
function stubSession(onRequest: (n: number, stub: Stub) => void): Stub {
  const listeners = new Set<ConnectionCallbacks>();
  const stub: Stub = {
    requests: [],
    subscriptions: [],
    listeners,
    deliver(topic, text): void {
      for (const l of [...listeners]) l.messageArrived?.(topic, new TextEncoder().encode(text));
    },
    drop(): void {
      for (const l of [...listeners]) {
        l.connectionLost?.(new NetworkError("gone", { code: "CONNECTION_LOST" }));
      }
    },
    session: {
      url: "mqtts://stub:8883",
      subscribe(topic, options): Promise<number> {
        stub.subscriptions.push({ topic, qos: options?.qos });
        return Promise.resolve(0);
      },
      publish(topic, payload, options): Promise<void> {
        const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
        stub.requests.push({ topic, payload: bytes, qos: options?.qos });
        if (topic === "s/uat") onRequest(stub.requests.length, stub);
        return Promise.resolve();
      },
      listen(callbacks): () => void {
        listeners.add(callbacks);
        return () => listeners.delete(callbacks);
      },
    },
  };
  return stub;
}

Deno.test("requestToken() subscribes s/dat, publishes an empty QoS 0 message on s/uat, takes the 71 line", async () => {
  const jwt = await platformJwt();
  const stub = stubSession((_, s) => {
    setTimeout(() => s.deliver("s/dat", `42,not a token\n71,${jwt}`));
  });
  const stages: Stage[] = [];
  const token = await requestToken(stub.session, { onStage: (stage) => stages.push(stage) });
  assert.equal(token.token, jwt);
  assert.equal(token.tenant, "t12345");
  assert.deepEqual(stub.subscriptions, [{ topic: "s/dat", qos: 0 }]);
  assert.equal(stub.requests.length, 1);
  assert.deepEqual(stub.requests[0], { topic: "s/uat", payload: new Uint8Array(0), qos: 0 });
  assert.deepEqual(stages, ["subscribe", "token"]);
  assert.equal(stub.listeners.size, 0, "its listener is removed");
});

Deno.test("requestToken() ignores other topics and other s/dat lines", async () => {
  const jwt = await platformJwt();
  const stub = stubSession((_, s) => {
    setTimeout(() => {
      s.deliver("s/ds", `71,not-from-s-dat`);
      s.deliver("s/dat/x", `71,not-from-s-dat`);
      s.deliver("s/dat", "711,x\n7,1");
      s.deliver("s/dat", `71,${jwt}`);
    });
  });
  assert.equal((await requestToken(stub.session)).token, jwt);
});

Deno.test("requestToken() asks again after a timeout and takes a later reply", async () => {
  const jwt = await platformJwt();
  const stub = stubSession((n, s) => {
    if (n === 2) setTimeout(() => s.deliver("s/dat", `71,${jwt}`), 10);
  });
  const token = await requestToken(stub.session, { attempts: 3, attemptTimeoutMs: 100 });
  assert.equal(token.token, jwt);
  assert.equal(stub.requests.length, 2);
});

Deno.test("requestToken() gives up with TOKEN_TIMEOUT after the attempts", async () => {
  const stub = stubSession(() => {});
  const started = performance.now();
  await assert.rejects(
    requestToken(stub.session, { attempts: 3, attemptTimeoutMs: 50 }),
    (err: unknown) => {
      assert.ok(err instanceof TokenError);
      assert.equal(err.code, "TOKEN_TIMEOUT");
      assert.match(err.message, /after 3 requests/);
      assert.match(err.hint, /No error reply is documented/);
      assert.match(err.hint, /registered/);
      return true;
    },
  );
  assert.equal(stub.requests.length, 3);
  assert.ok(performance.now() - started >= 140);
});

Deno.test("requestToken() refuses a malformed 71 reply with TOKEN_MALFORMED at once", async () => {
  for (const line of ["71,not-a-jwt", "71,", "71"]) {
    const stub = stubSession((_, s) => setTimeout(() => s.deliver("s/dat", line)));
    await assert.rejects(
      requestToken(stub.session, { attempts: 3, attemptTimeoutMs: 2000 }),
      (err: unknown) => err instanceof TokenError && err.code === "TOKEN_MALFORMED",
    );
    assert.equal(stub.requests.length, 1, line);
  }
});

Deno.test("requestToken() stops with TOKEN_CONNECTION_LOST when the connection drops", async () => {
  const stub = stubSession((_, s) => setTimeout(() => s.drop()));
  await assert.rejects(
    requestToken(stub.session, { attempts: 3, attemptTimeoutMs: 5000 }),
    (err: unknown) =>
      err instanceof TokenError && err.code === "TOKEN_CONNECTION_LOST" &&
      err.cause instanceof NetworkError,
  );
  assert.equal(stub.requests.length, 1);
});

Deno.test("requestToken() refuses attempts below 1 with OPTION_INVALID", async () => {
  await assert.rejects(
    requestToken(stubSession(() => {}).session, { attempts: 0 }),
    (err: unknown) => err instanceof UsageError && err.code === "OPTION_INVALID",
  );
});

// --- requestToken() over a real broker --------------------------------------------------------

const serverCa = await fixtureTrust("ca/server-ca.pem");

async function connectAs(port: number, device: string): Promise<DeviceConnection> {
  const identity = await fixtureIdentity(`devices/${device}`);
  return await connect({ url: `ssl://localhost:${port}`, identity, trust: serverCa });
}

mosquittoTest(
  "requestToken() against mosquitto, which never answers s/uat, ends with TOKEN_TIMEOUT",
  async () => {
    await using mosquitto = await startMosquitto();
    let session: DeviceConnection | undefined;
    try {
      session = await connectAs(mosquitto.port, "rsa");
      await assert.rejects(
        requestToken(session, { attempts: 2, attemptTimeoutMs: 200 }),
        (err: unknown) => err instanceof TokenError && err.code === "TOKEN_TIMEOUT",
      );
      await session.close();
      // On the wire: two empty QoS 0 publishes on s/uat and an exact s/dat subscription.
      const log = await mosquitto.log();
      assert.match(log, /d:device-rsa-001 0 s\/dat/);
      const requests = log.match(
        /Received PUBLISH from d:device-rsa-001 \(d0, q0, r0, m0, 's\/uat', \.\.\. \(0 bytes\)\)/g,
      );
      assert.equal(requests?.length, 2, log);
    } finally {
      await session?.close();
    }
  },
);

mosquittoTest(
  "requestToken() over mosquitto takes the 71 line a responder publishes on s/dat",
  async () => {
    await using mosquitto = await startMosquitto();
    let device: DeviceConnection | undefined;
    let responder: DeviceConnection | undefined;
    try {
      const jwt = await platformJwt();
      responder = await connectAs(mosquitto.port, "ec256");
      const r = responder;
      let requests = 0;
      r.listen({
        messageArrived(topic, payload): void {
          if (topic !== "s/uat") return;
          requests++;
          assert.equal(payload.length, 0);
          r.publish("s/dat", `42,unrelated\n71,${jwt}`).catch(() => {});
        },
      });
      await r.subscribe("s/uat");
      device = await connectAs(mosquitto.port, "rsa");
      const token = await requestToken(device, { attempts: 2, attemptTimeoutMs: 2000 });
      assert.equal(token.token, jwt);
      assert.equal(token.subject, "device_device-rsa-001");
      assert.equal(requests, 1);
    } finally {
      await device?.close();
      await responder?.close();
    }
  },
);
