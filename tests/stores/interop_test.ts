/**
 * Stores, keys and certificates as other tools write them (NSS pk12util, GnuTLS certtool,
 * keytool with its system properties, openssl's PBEs, PEM as copy and paste leaves it), all
 * made by the real tools in fixtures/make.sh. The expected value is what openssl and keytool
 * made of the same file when make.sh wrote it (fixtures/interop/tools.tsv).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { detectFormat } from "../../lib/stores/detect.ts";
import { loadKeyStore, loadTrustStore } from "../../lib/stores/load.ts";
import { assertStoreError, tool } from "../support/stores.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const bytes = (path: string): Uint8Array => Deno.readFileSync(new URL(path, fixtures));
const PASSWORD = "changeit";
const WRONG = "Not-The-Pa55";

/** The key of the identity belongs to its leaf. */
function assertKeyMatchesLeaf(privateKeyPem: string, leafPem: string): void {
  const key = createPrivateKey(privateKeyPem);
  assert.ok(new X509Certificate(leafPem).checkPrivateKey(key));
  assert.ok(createPublicKey(key));
}

for (
  const [file, cn] of [
    ["interop/nss.p12", "device-rsa-001"],
    ["interop/gnutls.p12", "device-ec256-001"],
    ["interop/gnutls-3des.p12", "device-rsa-001"],
    ["interop/newline.p12", "device-rsa-001"],
    ["interop/crlf-after.p12", "device-rsa-001"],
  ]
) {
  Deno.test({
    name: `loadKeyStore() reads ${file} as openssl does (detected as PKCS#12)`,
    permissions: read,
    async fn(): Promise<void> {
      assert.equal(tool(file, "openssl"), "ok");
      assert.equal(detectFormat(bytes(file)), "pkcs12");
      const id = await loadKeyStore(bytes(file), { password: PASSWORD, name: file });
      assert.equal(id.format, "pkcs12");
      assert.equal(id.chain[0].summary.commonName, cn);
      assertKeyMatchesLeaf(id.privateKeyPem, id.chain[0].pem);
    },
  });
}

Deno.test({
  name: "NSS's BER PKCS#12 starts 30 80 02 01 03 and is detected for the truststore too",
  permissions: read,
  async fn(): Promise<void> {
    const nss = bytes("interop/nss.p12");
    assert.deepEqual([...nss.subarray(0, 5)], [0x30, 0x80, 0x02, 0x01, 0x03]);
    const trust = await loadTrustStore(nss, { password: PASSWORD, name: "nss.p12" });
    assert.equal(trust.format, "pkcs12");
    assert.ok(trust.certificates.length >= 2);
  },
});

Deno.test({
  name: "loadKeyStore() reads a JKS followed by a newline, as keytool does",
  permissions: read,
  async fn(): Promise<void> {
    assert.equal(tool("interop/newline.jks", "keytool-list"), "rsa:PrivateKeyEntry");
    const id = await loadKeyStore(bytes("interop/newline.jks"), { password: PASSWORD });
    assert.equal(id.alias, "rsa");
  },
});

Deno.test({
  name: "loadKeyStore() of a MAC-less keytool PKCS#12 with an encrypted key asks for a password " +
    "when none was given, and says 'wrong' only for a given one",
  permissions: read,
  async fn(): Promise<void> {
    const file = "interop/nomac-keytool.p12";
    assert.equal(tool(file, "openssl"), "ok");
    const err = await assertStoreError(loadKeyStore(bytes(file), { name: file }), {
      code: "KEYSTORE_PASSWORD_REQUIRED",
      name: file,
    });
    assert.doesNotMatch(err.message, /wrong/);
    await assertStoreError(loadKeyStore(bytes(file), { password: WRONG, name: file }), {
      code: "KEY_PASSWORD",
      name: file,
      secrets: [WRONG],
    });
    const id = await loadKeyStore(bytes(file), { password: PASSWORD, name: file });
    assert.equal(id.chain[0].summary.commonName, "device-rsa-001");
  },
});

Deno.test({
  name: "loadTrustStore() says what truststore.jks really is: PKCS#12, as keytool writes it",
  permissions: read,
  async fn(): Promise<void> {
    const file = "interop/truststore.jks";
    assert.equal(tool(file, "openssl"), "ok"); // openssl reads it: it is PKCS#12
    const err = await assertStoreError(loadTrustStore(bytes(file), { name: file }), {
      code: "KEYSTORE_PASSWORD_REQUIRED",
      name: file,
    });
    assert.match(err.message, /is a PKCS#12 store \(keytool's default since JDK 9\)/);
    assert.match(err.message, /encrypted with the store password/);
    const trust = await loadTrustStore(bytes(file), { password: PASSWORD, name: file });
    assert.equal(trust.format, "pkcs12");
    assert.equal(trust.certificates[0].summary.commonName, "c8y-mqtt-cert Test Server CA");
  },
});

for (
  const file of ["interop/server.cer", "interop/server-keytool.cer", "interop/server-newline.cer"]
) {
  Deno.test({
    name: `loadTrustStore() reads the single DER certificate ${file} (detected, or type der)`,
    permissions: read,
    async fn(): Promise<void> {
      assert.equal(tool(file, "openssl-subject"), "CN=c8y-mqtt-cert Test Server CA");
      assert.equal(detectFormat(bytes(file)), "der");
      for (const type of [undefined, "der" as const]) {
        const trust = await loadTrustStore(bytes(file), { name: file, type });
        assert.equal(trust.format, "der");
        assert.equal(trust.certificates.length, 1);
        assert.equal(trust.certificates[0].summary.subject, "CN=c8y-mqtt-cert Test Server CA");
      }
      await assertStoreError(loadKeyStore(bytes(file), { name: file }), {
        code: "STORE_NO_KEY",
        name: file,
      });
    },
  });
}

Deno.test({
  name: "loadKeyStore() decrypts only the chosen JKS entry, each with its own key password",
  permissions: read,
  async fn(): Promise<void> {
    const file = "interop/two-keypass.jks";
    assert.equal(tool(file, "keytool-list"), "device-a:PrivateKeyEntry device-b:PrivateKeyEntry");
    for (
      const [alias, keyPassword, cn] of [
        ["device-a", "passwordA", "device-rsa-001"],
        ["device-b", "passwordB", "device-ec256-001"],
      ]
    ) {
      const id = await loadKeyStore(bytes(file), { password: PASSWORD, keyPassword, alias });
      assert.equal(id.alias, alias);
      assert.equal(id.chain[0].summary.commonName, cn);
      assertKeyMatchesLeaf(id.privateKeyPem, id.chain[0].pem);
    }
  },
});

for (
  const file of [
    "interop/begin-trailing-space.pem",
    "interop/every-line-trailing-space.pem",
    "interop/crlf.chain.pem",
    "interop/no-final-newline.pem",
    "interop/text-between.chain.pem",
    "interop/cert-76.pem",
    "interop/indented.pem",
  ]
) {
  Deno.test({
    name: `loadTrustStore() reads as many certificates from ${file} as openssl does`,
    permissions: read,
    async fn(): Promise<void> {
      const expected = Number(tool(file, "openssl-certs"));
      if (expected === 0) {
        // openssl and keytool -printcert take an indented boundary for text: no block.
        const err = await assertStoreError(loadTrustStore(bytes(file), { name: file }), {
          code: "STORE_FORMAT",
          name: file,
        });
        assert.match(err.message, /no PEM block/);
        return;
      }
      const trust = await loadTrustStore(bytes(file), { name: file });
      assert.equal(trust.certificates.length, expected);
    },
  });
}

const KEYS = [
  ["interop/pkcs8-PBE-SHA1-3DES.pem", "rsa"],
  ["interop/pkcs8-PBE-SHA1-2DES.pem", "rsa"],
  ["interop/pkcs8-PBE-SHA1-RC2-40.pem", "ec256"],
  ["interop/pkcs8-PBE-SHA1-RC2-128.pem", "ec256"],
  ["interop/pkcs8-PBE-SHA1-RC4-128.pem", "ec256"],
  ["interop/pkcs8-PBE-MD5-DES.pem", "ec256"],
  ["interop/pkcs8-PBE-SHA1-DES.pem", "ec256"],
  ["interop/pkcs8-pbes2-des3-sha1.pem", "ec256"],
  ["interop/pkcs8-pbes2-aes128-sha512.pem", "ec384"],
  ["interop/pkcs8-scrypt.pem", "ec256"],
  ["interop/pkcs8-76.pem", "rsa"],
  ["interop/pkcs8-1line.pem", "rsa"],
  ["interop/certtool-aes128.key.pem", "ec256"],
  ["interop/certtool-3des-pkcs12.key.pem", "rsa"],
] as const;

for (const [file, device] of KEYS) {
  Deno.test({
    name: `loadKeyStore() opens the encrypted key ${file} as openssl does, and never says ` +
      "'wrong password' for the right one",
    permissions: read,
    async fn(): Promise<void> {
      assert.equal(tool(file, "openssl-pkey"), "ok");
      const chain = bytes(`devices/${device}.chain.pem`);
      const options = { key: bytes(file), keyName: file, name: `${device}.chain.pem` };
      const id = await loadKeyStore(chain, { ...options, keyPassword: PASSWORD });
      assertKeyMatchesLeaf(id.privateKeyPem, id.chain[0].pem);
      await assertStoreError(loadKeyStore(chain, { ...options, keyPassword: WRONG }), {
        code: "KEY_PASSWORD",
        name: file,
        secrets: [WRONG],
      });
      await assertStoreError(loadKeyStore(chain, options), {
        code: "KEY_PASSWORD_REQUIRED",
        name: file,
      });
    },
  });
}

for (const n of ["teletex", "bmp", "utf8", "universal", "printable"]) {
  const file = `interop/dn-${n}.pem`;
  Deno.test({
    name:
      `parseCertificate() shows the ${n} directory strings of ${file} as openssl and keytool do`,
    permissions: read,
    async fn(): Promise<void> {
      // openssl prints RFC 2253 (last RDN first); the summary keeps the DER order.
      const openssl = tool(file, "openssl-subject");
      const keytool = tool(file, "keytool-owner");
      const chain = `interop/dn-${n}.chain.pem`;
      for (
        const id of [
          await loadKeyStore(bytes(`interop/dn-${n}.p12`), { password: PASSWORD, name: file }),
          await loadKeyStore(bytes(chain), { key: bytes(`interop/dn-${n}.key`), name: chain }),
        ]
      ) {
        const [leaf, ca] = id.chain;
        assert.equal(leaf.summary.subject.split(", ").reverse().join(","), openssl);
        assert.equal(
          leaf.summary.subject.split(", ").reverse().join(", "),
          keytool.replace("EMAILADDRESS=", "emailAddress="),
        );
        assert.equal(leaf.summary.commonName, openssl.replace(/^.*CN=/, ""));
        assert.equal(leaf.summary.issuer, "CN=Prüf-CA, O=Müller & Söhne");
        assert.equal(ca.summary.subject, leaf.summary.issuer, "the chain is ordered by issuer");
        assert.ok(ca.summary.selfSigned && ca.summary.isCA);
      }
    },
  });
}

Deno.test({
  name: "a PKCS#12 whose AuthenticatedSafe is followed by extra bytes says so, never 'truncated'",
  permissions: read,
  async fn(): Promise<void> {
    // The MAC-less, unencrypted store: its AuthenticatedSafe OCTET STRING gets two more bytes
    // (05 00) inside, and every enclosing length grows by two.
    const original = bytes("devices/rsa.nomac.p12");
    const { readDer, children } = await import("../../lib/encoding/der.ts");
    const { encodeDer } = await import("../../lib/encoding/der_encode.ts");
    const pfx = children(readDer(original));
    const contentInfo = children(pfx[1]);
    const octets = children(contentInfo[1])[0];
    const grown = encodeDer(0x04, [octets.content, new Uint8Array([5, 0])]);
    const rebuilt = encodeDer(0x30, [
      pfx[0].raw,
      encodeDer(0x30, [contentInfo[0].raw, encodeDer(0xa0, [grown])]),
      ...pfx.slice(2).map((p) => p.raw),
    ]);
    const err = await assertStoreError(loadKeyStore(rebuilt, { name: "extra.p12" }), {
      code: "STORE_CORRUPT",
      name: "extra.p12",
    });
    assert.match(err.message, /extra bytes after the end of the AuthenticatedSafe/);
    assert.doesNotMatch(err.message, /truncated/);
  },
});
