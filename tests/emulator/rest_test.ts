/**
 * The emulator's REST endpoint (`restPort`) over real mutual TLS with `node:https` as the client:
 * the device token call judged like MQTT, `X-Ssl-Cert-Chain`, logout, and what else gets asked.
 */
import assert from "node:assert/strict";
import https from "node:https";
import { requestRestToken } from "../../lib/token/rest_token.ts";
import type { C8yError } from "../../lib/errors.ts";
import { fixtureIdentity, fixtureTrust } from "../support/mosquitto.ts";
import { emulatorTest, read, ROOT, verifyToken } from "./support.ts";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface RequestOptions {
  method?: string;
  path: string;
  /** Fixture files of the device (`<files>.pem` or `.chain.pem`, `<files>.key`); none: no cert. */
  device?: { cert: string; key: string };
  headers?: Record<string, string>;
}

/** One HTTPS request to the emulator's REST endpoint, trusting the fixture server CA. */
function request(restUrl: string, options: RequestOptions): Promise<Answer> {
  const url = new URL(restUrl);
  return new Promise<Answer>((resolve, reject) => {
    const req = https.request({
      host: url.hostname,
      port: Number(url.port),
      method: options.method ?? "POST",
      path: options.path,
      servername: "localhost",
      ca: read("ca/server-ca.pem"),
      cert: options.device ? read(options.device.cert) : undefined,
      key: options.device ? read(options.device.key) : undefined,
      headers: { accept: "application/json", ...options.headers },
      agent: false,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const TOKEN_PATH = "/devicecontrol/deviceAccessToken";
const RSA_CHAIN = { cert: "devices/rsa.chain.pem", key: "devices/rsa.key" };
const RSA_LEAF = { cert: "devices/rsa.pem", key: "devices/rsa.key" };

emulatorTest(
  "REST: a trusted device gets {accessToken} (the device is created), logout ends the token once",
  { restPort: 0 },
  async ({ emulator, waitFor }) => {
    assert.match(emulator.restUrl ?? "", /^https:\/\/127\.0\.0\.1:\d+$/);
    const answer = await request(emulator.restUrl!, { path: TOKEN_PATH, device: RSA_CHAIN });
    assert.equal(answer.status, 200, answer.body);
    assert.match(String(answer.headers["content-type"]), /^application\/json/);
    const { accessToken } = JSON.parse(answer.body);
    const claims = await verifyToken(emulator, `71,${accessToken}`);
    assert.equal(claims.sub, "device_device-rsa-001");
    const issued = await waitFor((e) => e.kind === "token" && e.via === "rest");
    assert.equal(issued.commonName, "device-rsa-001");
    assert.equal(issued.tokenId, claims.tci);
    assert.deepEqual(emulator.devices().map((d) => [d.id, d.name]), [
      ["device-rsa-001", "MQTT Device device-rsa-001"],
    ]);

    const logout = (token: string): Promise<Answer> =>
      request(emulator.restUrl!, {
        path: "/user/logout",
        headers: { authorization: `Bearer ${token}` },
      });
    assert.equal((await logout(accessToken)).status, 204);
    assert.equal((await waitFor((e) => e.kind === "logout")).tokenId, claims.tci);
    const again = await logout(accessToken);
    assert.equal(again.status, 401);
    assert.match(JSON.parse(again.body).message, /already ended/);
    const forged = await logout(`${accessToken.slice(0, -4)}AAAA`);
    assert.equal(forged.status, 401);
    const none = await request(emulator.restUrl!, { path: "/user/logout" });
    assert.equal(none.status, 401);
    assert.match(JSON.parse(none.body).message, /Bearer/);
  },
);

emulatorTest(
  "REST: an untrusted device CA and a missing client certificate get 401 with a JSON reason",
  { restPort: 0 },
  async ({ emulator, waitFor }) => {
    const unknown = await request(emulator.restUrl!, {
      path: TOKEN_PATH,
      device: { cert: "bad/unknown-ca.chain.pem", key: "bad/unknown-ca.key" },
    });
    assert.equal(unknown.status, 401);
    const body = JSON.parse(unknown.body);
    assert.equal(body.error, "security/Unauthorized");
    assert.match(body.message, /not issued by a trusted CA/);
    assert.equal(body.accessToken, undefined);
    const refused = await waitFor((e) => e.kind === "refused" && e.via === "rest");
    assert.equal(refused.commonName, "device-unknown");
    assert.equal(refused.returnCode, 401);

    const anonymous = await request(emulator.restUrl!, { path: TOKEN_PATH });
    assert.equal(anonymous.status, 401);
    assert.match(JSON.parse(anonymous.body).message, /no client certificate/);
    assert.deepEqual(emulator.devices(), []);
  },
);

emulatorTest(
  "REST: X-Ssl-Cert-Chain supplies the intermediate of a leaf-only TLS certificate",
  { restPort: 0, trusted: [ROOT] },
  async ({ emulator }) => {
    const post = (headers?: Record<string, string>): Promise<Answer> =>
      request(emulator.restUrl!, { path: TOKEN_PATH, device: RSA_LEAF, headers });
    const bare = await post();
    assert.equal(bare.status, 401, "only the root is trusted: the leaf alone does not reach it");
    const chain = read("devices/rsa.chain.pem");
    const oneLine = await post({ "x-ssl-cert-chain": chain.replace(/\r?\n/g, " ").trim() });
    assert.equal(oneLine.status, 200, oneLine.body);
    const encoded = await post({ "x-ssl-cert-chain": encodeURIComponent(chain) });
    assert.equal(encoded.status, 200, encoded.body);
    const line = `${chain.replace(/\r?\n/g, " ")} `;
    const huge = await post({ "x-ssl-cert-chain": line.repeat(Math.ceil(34_000 / line.length)) });
    assert.equal(huge.status, 401);
    assert.match(JSON.parse(huge.body).message, /X-Ssl-Cert-Chain is longer than 32768 characters/);
    const garbage = await post({ "x-ssl-cert-chain": "not a certificate" });
    assert.equal(garbage.status, 401);
    assert.match(JSON.parse(garbage.body).message, /X-Ssl-Cert-Chain/);
  },
);

emulatorTest(
  "REST: other paths get 404, other methods 405, both as JSON",
  { restPort: 0 },
  async ({ emulator }) => {
    const missing = await request(emulator.restUrl!, { path: "/inventory/managedObjects" });
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).error, "general/notFound");
    const get = await request(emulator.restUrl!, {
      method: "GET",
      path: TOKEN_PATH,
      device: RSA_CHAIN,
    });
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, "POST");
  },
);

emulatorTest(
  "REST: the project's own REST client (requestRestToken) against the emulator, trusted and not",
  { restPort: 0 },
  async ({ emulator }) => {
    const trust = await fixtureTrust("ca/server-ca.pem");
    const device = await fixtureIdentity("devices/rsa");
    for (const sendChain of [false, true]) {
      const token = await requestRestToken({
        restUrl: emulator.restUrl!,
        identity: device,
        trust,
        sendChain,
      });
      const claims = await verifyToken(emulator, `71,${token.token}`);
      assert.equal(claims.sub, "device_device-rsa-001");
    }
    const stranger = await fixtureIdentity("bad/unknown-ca");
    await assert.rejects(
      requestRestToken({ restUrl: emulator.restUrl!, identity: stranger, trust }),
      (err: C8yError) => {
        assert.equal(err.code, "HTTP_UNAUTHORIZED", err.message);
        assert.match(err.message, /not issued by a trusted CA/);
        return true;
      },
    );
  },
);
