/**
 * The REST token client against real TLS peers on loopback: a scripted `node:https` server that
 * asks for the device certificate and answers what each test tells it (statuses, bodies, silence,
 * a hang-up), and `openssl s_server` verifying client certificates (which Deno's `node:tls` server
 * cannot), for a device certificate refused in the TLS handshake.
 */

import assert from "node:assert/strict";
import * as https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { requestRestToken } from "../../lib/token/rest_token.ts";
import { lateError } from "../../lib/token/rest_classify.ts";
import { fetchToken } from "../../lib/token/fetch_token.ts";
import { parseRestUrl, restUrlOf } from "../../lib/token/rest_url.ts";
import { parseBrokerUrl } from "../../lib/connect/broker_url.ts";
import { C8yError } from "../../lib/errors.ts";
import type { Stage } from "../../lib/errors.ts";
import {
  fixtureIdentity,
  FIXTURES,
  fixtureText,
  fixtureTrust,
  freePort,
} from "../support/mosquitto.ts";

const rsa = await fixtureIdentity("devices/rsa");
const ec256 = await fixtureIdentity("devices/ec256");
const unknownCa = await fixtureIdentity("bad/unknown-ca");
const serverCa = await fixtureTrust("ca/server-ca.pem");
const otherCa = await fixtureTrust("ca/unknown-ca.pem");

/** A compact JWT with the given claims (unsigned: the client does not check signatures). */
function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown): string =>
    btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "RS256" })}.${b64(claims)}.c2lnbmF0dXJlLW9mLXRoZS1wbGF0Zm9ybQ`;
}

const TOKEN = jwt({ sub: "device_device-rsa-001", ten: "t42", exp: 4102444800, iat: 1 });

/** What the scripted server saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  peerCn: string | undefined;
}

/** A scripted HTTPS peer on 127.0.0.1 with the fixture server certificate. */
interface ScriptedServer extends AsyncDisposable {
  url: string;
  seen: Seen[];
}

async function scriptedServer(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
  options: { maxVersion?: "TLSv1.2" | "TLSv1.3"; cert?: string; key?: string } = {},
): Promise<ScriptedServer> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server = https.createServer({
    key: await fixtureText(options.key ?? "server/server.key"),
    cert: await fixtureText(options.cert ?? "server/server.pem"),
    requestCert: true,
    rejectUnauthorized: false, // Deno's node:tls server cannot verify; the test reads the peer
    maxVersion: options.maxVersion,
  }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    seen.push({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      peerCn: typeof peer?.subject?.CN === "string" ? peer.subject.CN : undefined,
    });
    answer(req, res);
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://localhost:${port}`,
    seen,
    async [Symbol.asyncDispose](): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": type,
    "content-length": new TextEncoder().encode(text).length,
  });
  res.end(text);
}

/** Asserts the failure's code and stage, and that no token appears in what the user sees. */
async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  stage: Stage,
  message?: RegExp,
): Promise<C8yError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof C8yError, `expected a C8yError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.stage, stage, err.message);
    if (message) assert.match(err.message, message);
    for (const text of [err.message, err.hint]) {
      assert.ok(!text.includes(TOKEN), "no token in the message");
      assert.ok(!/eyJ[A-Za-z0-9_-]{10,}/.test(text), `nothing shaped like a JWT: ${text}`);
    }
    return err;
  }
  assert.fail(`expected ${code}`);
}

Deno.test("parseRestUrl() takes https:// and host[:port], port 443 by default; restUrlOf() keeps the broker's host", () => {
  assert.deepEqual(parseRestUrl("https://Tenant.example.com/"), {
    host: "tenant.example.com",
    port: 443,
    url: "https://tenant.example.com:443",
    hostIsIp: false,
  });
  assert.equal(parseRestUrl("tenant.example.com:8443").url, "https://tenant.example.com:8443");
  assert.equal(parseRestUrl("https://[::1]:9443").host, "::1");
  assert.equal(restUrlOf(parseBrokerUrl("ssl://[::1]:8883")).url, "https://[::1]:443");
  const cases: [string, string][] = [
    ["http://tenant.example.com", "URL_SCHEME_NO_TLS"],
    ["ftp://tenant.example.com", "URL_INVALID"],
    ["https://tenant.example.com/devicecontrol", "URL_INVALID"],
    ["https://user:secret@tenant.example.com", "URL_INVALID"],
    ["https://tenant.example.com:0", "URL_PORT"],
    ["tenant.example.com:99999", "URL_PORT"],
    ["https://", "URL_INVALID"],
  ];
  for (const [url, code] of cases) {
    assert.throws(() => parseRestUrl(url), (err: C8yError) => {
      assert.equal(err.code, code, url);
      assert.ok(!err.message.includes("secret"), "no password in the message");
      return true;
    });
  }
});

Deno.test("requestRestToken() POSTs with the device certificate and Accept: application/json, reporting every stage", async () => {
  await using server = await scriptedServer((_req, res) => json(res, 200, { accessToken: TOKEN }));
  for (const identity of [rsa, ec256]) {
    const stages: Stage[] = [];
    const token = await requestRestToken({
      restUrl: server.url,
      identity,
      trust: serverCa,
      onStage: (stage) => stages.push(stage),
    });
    assert.equal(token.token, TOKEN);
    assert.equal(token.tenant, "t42");
    assert.deepEqual(stages, ["dns", "tcp", "tls", "http", "token"]);
  }
  assert.equal(server.seen.length, 2);
  const [first, second] = server.seen;
  assert.equal(first.method, "POST");
  assert.equal(first.url, "/devicecontrol/deviceAccessToken");
  assert.equal(first.headers.accept, "application/json");
  assert.equal(first.headers["x-ssl-cert-chain"], undefined, "no chain header unless asked");
  assert.equal(first.peerCn, "device-rsa-001");
  assert.equal(second.peerCn, "device-ec256-001");
});

Deno.test("requestRestToken() with sendChain sends the chain as one-line PEM in X-Ssl-Cert-Chain", async () => {
  await using server = await scriptedServer((_req, res) => json(res, 200, { accessToken: TOKEN }));
  await requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa, sendChain: true });
  const header = server.seen[0].headers["x-ssl-cert-chain"];
  assert.equal(typeof header, "string");
  const blocks = [
    ...String(header).matchAll(/-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----/g),
  ];
  assert.equal(blocks.length, rsa.chain.length);
  // Each block is the certificate's DER, leaf first.
  blocks.forEach((m, i) => {
    const der = Uint8Array.fromBase64(m[1].replace(/\s+/g, ""));
    assert.deepEqual(der, rsa.chain[i].der);
  });
});

Deno.test("requestRestToken() names 401 and 403 as a device not registered for certificates, with the server's message", async () => {
  for (const [status, code] of [[401, "HTTP_UNAUTHORIZED"], [403, "HTTP_FORBIDDEN"]] as const) {
    await using server = await scriptedServer((_req, res) =>
      json(res, status, { error: "security/Unauthorized", message: "Certificate not trusted" })
    );
    const err = await rejectsWith(
      requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa }),
      code,
      "http",
      new RegExp(`HTTP ${status}.*"Certificate not trusted"`),
    );
    assert.equal(err.exitCode, 8);
    assert.match(err.hint, /registered for certificate authentication/);
  }
});

Deno.test("requestRestToken() names other statuses and their first bytes", async () => {
  const cases: [number, string, RegExp][] = [
    [404, "<html><body>Not found</body></html>", /HTTP 404 \("<html><body>Not found/],
    [500, "", /HTTP 500 \(an empty body\)/],
    [302, "moved", /HTTP 302/],
  ];
  for (const [status, body, message] of cases) {
    await using server = await scriptedServer((_req, res) => json(res, status, body, "text/html"));
    await rejectsWith(
      requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa }),
      "HTTP_STATUS",
      "http",
      message,
    );
  }
});

Deno.test("requestRestToken() refuses a 200 answer that is not JSON, has no accessToken, is too large, or holds no JWT", async () => {
  const cases: [(res: ServerResponse) => void, string, RegExp][] = [
    [
      (res) => json(res, 200, `<html>login ${TOKEN}</html>`, "text/html"),
      "TOKEN_NOT_JSON",
      /not JSON \(text\/html: "<html>login <...>/,
    ],
    [
      (res) => json(res, 200, { token: TOKEN, ok: true }),
      "TOKEN_NO_ACCESS_TOKEN",
      /keys "token", "ok"/,
    ],
    [(res) => json(res, 200, [TOKEN]), "TOKEN_NO_ACCESS_TOKEN", /JSON array/],
    [
      (res) => json(res, 200, { accessToken: TOKEN, padding: "x".repeat(70_000) }),
      "TOKEN_TOO_LARGE",
      /\d+ bytes \(application\/json\).*at most 65536 bytes/,
    ],
    [
      // Without Content-Length (chunked): the limit holds while reading.
      (res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(`{"accessToken":"${TOKEN}","padding":"`);
        for (let i = 0; i < 20; i++) res.write("y".repeat(8192));
        res.end('"}');
      },
      "TOKEN_TOO_LARGE",
      /more than 65536 bytes/,
    ],
    [(res) => json(res, 200, { accessToken: "not a jwt" }), "TOKEN_MALFORMED", /not a compact JWT/],
  ];
  for (const [answer, code, message] of cases) {
    await using server = await scriptedServer((_req, res) => answer(res));
    await rejectsWith(
      requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa }),
      code,
      "token",
      message,
    );
  }
});

Deno.test("requestRestToken() names silence and a hang-up before the answer", async () => {
  {
    await using server = await scriptedServer(() => {}); // never answers
    await rejectsWith(
      requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa, timeoutMs: 1500 }),
      "HTTP_TIMEOUT",
      "http",
      /did not answer the token request within 1.5 s/,
    );
  }
  {
    // Under TLS 1.2 the server accepted the certificate in the handshake: a hang-up is HTTP's.
    await using server = await scriptedServer((req) => req.socket.destroy(), {
      maxVersion: "TLSv1.2",
    });
    await rejectsWith(
      requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa }),
      "HTTP_CONNECTION_CLOSED",
      "http",
    );
  }
  {
    // Under TLS 1.3 a close right after the handshake is how a server refuses the certificate.
    await using server = await scriptedServer((req) => req.socket.destroy(), {
      maxVersion: "TLSv1.3",
    });
    await rejectsWith(
      requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa }),
      "TLS_CLIENT_CERT_REFUSED",
      "tls",
      /most likely it did not accept the device certificate/,
    );
  }
});

Deno.test("requestRestToken() classifies the server's certificate: untrusted, wrong host", async () => {
  await using server = await scriptedServer((_req, res) => json(res, 200, { accessToken: TOKEN }));
  const stages: Stage[] = [];
  await rejectsWith(
    requestRestToken({
      restUrl: server.url,
      identity: rsa,
      trust: otherCa,
      onStage: (s) => stages.push(s),
    }),
    "TLS_SERVER_UNTRUSTED",
    "tls",
  );
  assert.deepEqual(stages, ["dns", "tcp"], "no tls stage for a failed handshake");
  assert.equal(server.seen.length, 0, "nothing was sent to an untrusted server");
  await using wrong = await scriptedServer((_req, res) => json(res, 200, { accessToken: TOKEN }), {
    cert: "server/wrong-host.pem",
    key: "server/wrong-host.key",
  });
  await rejectsWith(
    requestRestToken({ restUrl: wrong.url, identity: rsa, trust: serverCa }),
    "TLS_HOSTNAME_MISMATCH",
    "tls",
  );
});

Deno.test("requestRestToken() classifies DNS and TCP failures", async () => {
  await rejectsWith(
    requestRestToken({ restUrl: "https://nothing-here.invalid", identity: rsa, trust: serverCa }),
    "DNS_NOT_FOUND",
    "dns",
    /nothing-here\.invalid/,
  );
  const port = freePort();
  await rejectsWith(
    requestRestToken({ restUrl: `https://127.0.0.1:${port}`, identity: rsa, trust: serverCa }),
    "NETWORK_REFUSED",
    "tcp",
    new RegExp(`127\\.0\\.0\\.1 port ${port}`),
  );
  // A plain TCP listener that never speaks: the handshake times out in stage tls.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    await rejectsWith(
      requestRestToken({
        restUrl: `https://127.0.0.1:${silent.addr.port}`,
        identity: rsa,
        trust: serverCa,
        timeoutMs: 1000,
      }),
      "TLS_TIMEOUT",
      "tls",
    );
  } finally {
    silent.close();
    for (const conn of held) conn.close();
    await accepting.catch(() => {});
  }
});

/** `openssl s_server` requiring a client certificate signed by the fixture device CAs. */
async function opensslServer(
  tlsVersion: "-tls1_2" | "-tls1_3",
): Promise<{ url: string } & AsyncDisposable> {
  const port = freePort();
  const dir = new URL(".", FIXTURES).pathname;
  const child = new Deno.Command("openssl", {
    args: [
      "s_server",
      "-accept",
      `127.0.0.1:${port}`,
      "-cert",
      `${dir}server/server.pem`,
      "-key",
      `${dir}server/server.key`,
      "-CAfile",
      `${dir}ca/device-ca-chain.pem`,
      "-Verify",
      "3",
      "-verify_return_error",
      tlsVersion,
      "-WWW",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Ready once it accepts TCP connections.
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url: `https://localhost:${port}`,
    async [Symbol.asyncDispose](): Promise<void> {
      child.kill();
      await child.stderr.cancel();
      await child.status;
    },
  };
}

Deno.test("requestRestToken() names a device certificate the server refuses in the TLS handshake (openssl s_server)", async () => {
  for (const version of ["-tls1_3", "-tls1_2"] as const) {
    await using server = await opensslServer(version);
    await rejectsWith(
      requestRestToken({ restUrl: server.url, identity: unknownCa, trust: serverCa }),
      "TLS_CLIENT_CERT_REFUSED",
      "tls",
      /refused the device certificate \(TLS alert "unknown CA"\)/,
    );
  }
});

Deno.test("fetchToken({ via: 'rest' }) takes the token over REST, from restUrl or the URL's host on 443", async () => {
  await using server = await scriptedServer((_req, res) => json(res, 200, { accessToken: TOKEN }));
  const stages: Stage[] = [];
  const token = await fetchToken({
    url: "ssl://localhost:8883", // no MQTT broker there: REST does not use it
    identity: rsa,
    trust: serverCa,
    via: "rest",
    restUrl: server.url,
    onStage: (stage) => stages.push(stage),
  });
  assert.equal(token.token, TOKEN);
  assert.equal(token.clientId, "d:device-rsa-001");
  assert.deepEqual(stages, ["dns", "tcp", "tls", "http", "token"]);
  // Without restUrl: the broker's host on 443 (nothing listens there on this machine).
  await rejectsWith(
    fetchToken({ url: "ssl://127.0.0.1:8883", identity: rsa, trust: serverCa, via: "rest" }),
    "NETWORK_REFUSED",
    "tcp",
    /127\.0\.0\.1 port 443/,
  );
});

Deno.test({
  name:
    "requestRestToken() needs no sys permission: without trust the default root CAs apply (and do not trust the fixture CA); with trust the token comes",
  permissions: { read: true, net: true, env: true, sys: false },
}, async () => {
  await using server = await scriptedServer((_req, res) => json(res, 200, { accessToken: TOKEN }));
  // Without trust: the server's certificate is checked against the default root CAs, which do
  // not hold the fixture server CA, so the TLS stage fails; no permission is asked for.
  await rejectsWith(
    requestRestToken({ restUrl: server.url, identity: rsa }),
    "TLS_SERVER_UNTRUSTED",
    "tls",
    /not trusted/,
  );
  const token = await requestRestToken({ restUrl: server.url, identity: rsa, trust: serverCa });
  assert.equal(token.token, TOKEN);
  assert.equal(server.seen.at(-1)?.peerCn, "device-rsa-001");
});

Deno.test("a bare close after a TLS 1.3 handshake at port 8883 or 1883 names the wrong endpoint first; at 443 the certificate", () => {
  for (const port of [8883, 1883]) {
    const err = lateError(undefined, parseRestUrl(`https://tenant.example.com:${port}`), "TLSv1.3");
    assert.equal(err.code, "TLS_CLOSED_AFTER_HANDSHAKE");
    assert.equal(err.stage, "tls");
    assert.match(
      err.message,
      new RegExp(`most likely this is not the REST endpoint \\(port ${port} is Cumulocity's MQTT`),
    );
    assert.match(err.hint, /not the MQTT broker's \(port 8883\)/);
  }
  const at443 = lateError(undefined, parseRestUrl("https://tenant.example.com"), "TLSv1.3", {
    host: "tenant.example.com",
    port: 8883,
  });
  assert.equal(at443.code, "TLS_CLIENT_CERT_REFUSED");
  assert.match(
    at443.message,
    /most likely it did not accept the device certificate.*else port 443 is not the REST endpoint/,
  );
});
