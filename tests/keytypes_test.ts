/**
 * Every key type a store can hold is read (PEM, PKCS#12 and JKS written by openssl and keytool),
 * and the ones Deno's TLS client cannot present are named offline (`KEY_TYPE_UNSUPPORTED`). What
 * the client can present is measured here against a real mosquitto with
 * `require_certificate true`: the offline finding must agree with the handshake.
 *
 * @module
 */

import assert from "node:assert/strict";
import tls from "node:tls";
import { clientId } from "../lib/connect/client_id.ts";
import { diagnose } from "../lib/diagnose/diagnose.ts";
import { loadKeyStore } from "../lib/stores/load.ts";
import { runCli } from "./support/cli.ts";
import { fixtureText, mosquittoTest, startMosquitto } from "./support/mosquitto.ts";

const fixtures = new URL("../fixtures/", import.meta.url);
const bytes = (path: string): Uint8Array => Deno.readFileSync(new URL(path, fixtures));
const exists = (path: string): boolean => {
  try {
    return Deno.statSync(new URL(path, fixtures)).isFile;
  } catch {
    return false;
  }
};

/** Key type fixtures: name, the key type and curve read, and whether TLS can present it. */
const KEY_TYPES = [
  { name: "rsa3072", keyType: "rsa", curve: undefined, presentable: true },
  { name: "p521", keyType: "ec", curve: "secp521r1", presentable: true },
  { name: "ed25519", keyType: "ed25519", curve: undefined, presentable: true },
  { name: "rsa-pss", keyType: "rsa-pss", curve: undefined, presentable: false },
  { name: "secp256k1", keyType: "ec", curve: "secp256k1", presentable: false },
  { name: "brainpoolP256r1", keyType: "ec", curve: "brainpoolP256r1", presentable: false },
  { name: "ed448", keyType: "ed448", curve: undefined, presentable: false },
  { name: "dsa", keyType: "dsa", curve: undefined, presentable: false },
] as const;

for (const { name, keyType, curve, presentable } of KEY_TYPES) {
  Deno.test({
    name: `loadKeyStore() reads the ${name} key from PEM, PKCS#12 and JKS; diagnose() ` +
      (presentable ? "finds nothing against it" : "names it KEY_TYPE_UNSUPPORTED"),
    permissions: { read: [fixtures] },
    async fn(): Promise<void> {
      const stores = [
        { file: `keytypes/${name}.chain.pem`, key: bytes(`keytypes/${name}.key`) },
        { file: `keytypes/${name}.p12`, key: undefined },
        ...(exists(`keytypes/${name}.jks`)
          ? [{ file: `keytypes/${name}.jks`, key: undefined }]
          : []),
      ];
      for (const { file, key } of stores) {
        const id = await loadKeyStore(bytes(file), { password: "changeit", name: file, key });
        assert.equal(id.keyType, keyType, file);
        assert.equal(id.chain[0].summary.keyType, keyType, file);
        assert.equal(id.chain[0].summary.curve, curve, file);
        assert.equal(id.chain[0].summary.commonName, `device-${name}`);
        const found = diagnose({ identity: id }).filter((p) => p.code === "KEY_TYPE_UNSUPPORTED");
        assert.equal(found.length, presentable ? 0 : 1, file);
        if (!presentable) {
          assert.match(found[0].message, /Ed25519/);
          assert.equal(found[0].severity, "error");
        }
      }
    },
  });
}

mosquittoTest("Deno's TLS client presents exactly the key types diagnose() accepts", async () => {
  await using mosquitto = await startMosquitto();
  const ca = await fixtureText("ca/server-ca.pem");
  for (const { name, presentable } of KEY_TYPES) {
    const key = await fixtureText(`keytypes/${name}.key`);
    const cert = await fixtureText(`keytypes/${name}.chain.pem`);
    const outcome = await new Promise<string>((resolve) => {
      let socket: tls.TLSSocket;
      try {
        socket = tls.connect(
          { host: "127.0.0.1", port: mosquitto.port, key, cert, ca: [ca], minVersion: "TLSv1.2" },
          () => {
            // MQTT 3.1.1 CONNECT, client id "k": mosquitto answers CONNACK once it accepted the
            // client certificate.
            socket.write(new Uint8Array([16, 13, 0, 4, 77, 81, 84, 84, 4, 2, 0, 60, 0, 1, 107]));
            socket.once("data", (d: Uint8Array) => {
              resolve(d[0] === 0x20 && d[3] === 0 ? "connack" : `data ${d[0]}`);
              socket.destroy();
            });
          },
        );
      } catch (err) {
        resolve(`refused before connecting: ${(err as Error).message}`);
        return;
      }
      socket.on("error", (err: Error) => resolve(`error: ${err.message}`));
      socket.on("close", () => resolve("closed"));
    });
    assert.equal(outcome === "connack", presentable, `${name}: ${outcome}`);
  }
});

mosquittoTest(
  "a device whose names are Latin-1 TeletexStrings connects as d:Gerät-01 (mosquitto verifies it)",
  async () => {
    await using mosquitto = await startMosquitto({ cafile: "interop/teletex-ca.pem" });
    const id = await loadKeyStore(bytes("interop/dn-teletex.p12"), { password: "changeit" });
    assert.equal(clientId(id), "d:Gerät-01");
    const ca = await fixtureText("ca/server-ca.pem");
    const connack = await new Promise<string>((resolve) => {
      const socket = tls.connect(
        {
          host: "127.0.0.1",
          port: mosquitto.port,
          key: id.privateKeyPem,
          cert: id.chain.map((c) => c.pem).join(""),
          ca: [ca],
        },
        () => {
          const cid = new TextEncoder().encode(clientId(id));
          const rest = [0, 4, 77, 81, 84, 84, 4, 2, 0, 60, 0, cid.length, ...cid];
          socket.write(new Uint8Array([16, rest.length, ...rest]));
          socket.once("data", (d: Uint8Array) => {
            resolve([...d].join(","));
            socket.destroy();
          });
        },
      );
      socket.on("error", (err: Error) => resolve(`error: ${err.message}`));
    });
    assert.equal(connack, "32,2,0,0");
  },
);

Deno.test("token and check stop before connecting on a key type the TLS client cannot present", async () => {
  const path = "fixtures/keytypes/secp256k1.p12";
  for (const command of ["token", "check"]) {
    const r = await runCli(
      [
        command,
        "--keystore",
        path,
        "--keystore-password",
        "pass:changeit",
        "--url",
        "ssl://127.0.0.1:1",
        "--json",
      ],
      { read: [path], net: ["127.0.0.1:1"] },
    );
    assert.equal(r.code, 4, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.error?.code ?? out.code, "KEY_TYPE_UNSUPPORTED", r.stdout);
    assert.match(r.stdout, /secp256k1.*P-256\/P-384\/P-521/);
  }
});
