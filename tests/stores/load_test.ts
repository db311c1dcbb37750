import assert from "node:assert/strict";
import { assertStoreError, JDK_CACERTS, jdkCacertsOrWarn } from "../support/stores.ts";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { UsageError } from "../../lib/errors.ts";
import { detectFormat } from "../../lib/stores/detect.ts";
import { MAX_STORE_BYTES } from "../../lib/stores/read_store.ts";
import { loadKeyStore, loadTrustStore } from "../../lib/stores/load.ts";
import type { DeviceIdentity } from "../../lib/types.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const bytes = (path: string): Uint8Array => Deno.readFileSync(new URL(path, fixtures));
const text = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));
const PASSWORD = "changeit";
const KEY_PASSWORD = "keysecret";
const WRONG = "Not-The-Pa55";
const INTERMEDIATE = "c8y-mqtt-cert Test Device Intermediate CA";
const ROOT = "c8y-mqtt-cert Test Device Root CA";
const DEVICES = [
  { d: "rsa", cn: "device-rsa-001", keyType: "rsa" },
  { d: "ec256", cn: "device-ec256-001", keyType: "ec" },
  { d: "ec384", cn: "device-ec384-001", keyType: "ec" },
] as const;

/** The identity's key matches its leaf, and every certificate is issued by the next one. */
function assertGoodIdentity(id: DeviceIdentity, cn: string, keyType: string): void {
  assert.equal(id.chain[0].summary.commonName, cn);
  assert.equal(id.keyType, keyType);
  const key = createPrivateKey(id.privateKeyPem);
  const leaf = new X509Certificate(id.chain[0].pem);
  assert.ok(leaf.checkPrivateKey(key), "chain[0] belongs to the private key");
  assert.equal(
    createPublicKey(key).export({ type: "spki", format: "pem" }),
    leaf.publicKey.export({ type: "spki", format: "pem" }),
  );
  for (let i = 0; i + 1 < id.chain.length; i++) {
    const child = new X509Certificate(id.chain[i].pem);
    const issuer = new X509Certificate(id.chain[i + 1].pem);
    assert.ok(child.verify(issuer.publicKey), `chain[${i + 1}] signed chain[${i}]`);
  }
  assert.match(id.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
}

// ---- detectFormat ----------------------------------------------------------------------------

Deno.test({
  name: "detectFormat() recognises JKS, JCEKS, every PKCS#12 variant and PEM",
  permissions: read,
  fn(): void {
    const expected: [string, string | undefined][] = [
      ["devices/rsa.jks", "jks"],
      ["devices/ec256.keypass.jks", "jks"],
      ["devices/truststore.jks", "jks"],
      ["devices/rsa.jceks", "jceks"],
      ["devices/rsa.openssl3.p12", "pkcs12"],
      ["devices/ec384.legacy.p12", "pkcs12"],
      ["devices/ec256.jdk.p12", "pkcs12"],
      ["devices/rsa.nomac.p12", "pkcs12"],
      ["server/server-truststore.p12", "pkcs12"],
      ["bad/truncated.p12", "pkcs12"],
      ["devices/rsa.pem", "pem"],
      ["devices/rsa.key.legacy-enc.pem", "pem"],
      ["devices/ec256.key", "pem"],
      ["bad/random.bin", undefined],
      ["bad/empty.p12", undefined],
    ];
    for (const [path, format] of expected) assert.equal(detectFormat(bytes(path)), format, path);
    // A DER certificate is a SEQUENCE too, but its first element is a SEQUENCE, not INTEGER 3.
    const der = new X509Certificate(text("devices/rsa.pem")).raw;
    assert.equal(detectFormat(new Uint8Array(der)), "der");
  },
});

// ---- loadKeyStore: good stores -------------------------------------------------------------

for (const { d, cn, keyType } of DEVICES) {
  for (const variant of ["jks", "openssl3.p12", "legacy.p12", "jdk.p12", "nomac.p12"]) {
    Deno.test({
      name: `loadKeyStore() reads ${d}.${variant} (${keyType} key, leaf first)`,
      permissions: read,
      async fn(): Promise<void> {
        const id = await loadKeyStore(bytes(`devices/${d}.${variant}`), {
          password: PASSWORD,
          name: `${d}.${variant}`,
        });
        assert.equal(id.format, variant === "jks" ? "jks" : "pkcs12");
        assert.equal(id.alias, d);
        assert.deepEqual(id.aliases, [d]);
        assertGoodIdentity(id, cn, keyType);
        assert.deepEqual(id.chain.map((c) => c.summary.commonName), [cn, INTERMEDIATE]);
      },
    });
  }

  Deno.test({
    name: `loadKeyStore() reads ${d}.keypass.jks only with the right key password`,
    permissions: read,
    async fn(): Promise<void> {
      const name = `devices/${d}.keypass.jks`;
      const id = await loadKeyStore(bytes(name), {
        password: PASSWORD,
        keyPassword: KEY_PASSWORD,
        name,
      });
      assertGoodIdentity(id, cn, keyType);
      const err = await assertStoreError(loadKeyStore(bytes(name), { password: PASSWORD, name }), {
        code: "KEY_PASSWORD",
        name,
        secrets: [PASSWORD, KEY_PASSWORD],
      });
      assert.ok(err.hint.includes("`keyPassword`"), err.hint);
      await assertStoreError(
        loadKeyStore(bytes(name), { password: PASSWORD, keyPassword: WRONG, name }),
        { code: "KEY_PASSWORD", name, secrets: [PASSWORD, KEY_PASSWORD, WRONG] },
      );
    },
  });

  for (const keyFile of ["key", "key.enc.pem", "key.legacy-enc.pem"]) {
    Deno.test({
      name: `loadKeyStore() reads ${d}.fullchain.pem with the separate key ${d}.${keyFile}`,
      permissions: read,
      async fn(): Promise<void> {
        const id = await loadKeyStore(bytes(`devices/${d}.fullchain.pem`), {
          key: bytes(`devices/${d}.${keyFile}`),
          keyPassword: keyFile === "key" ? undefined : PASSWORD,
          name: `${d}.fullchain.pem`,
          keyName: `${d}.${keyFile}`,
        });
        assert.equal(id.format, "pem");
        assert.equal(id.alias, undefined);
        assert.deepEqual(id.aliases, []);
        assertGoodIdentity(id, cn, keyType);
        assert.deepEqual(id.chain.map((c) => c.summary.commonName), [cn, INTERMEDIATE, ROOT]);
      },
    });
  }

  Deno.test({
    name: `loadKeyStore() reads one PEM file holding the ${d} chain and encrypted key`,
    permissions: read,
    async fn(): Promise<void> {
      const combined = text(`devices/${d}.chain.pem`) + text(`devices/${d}.key.enc.pem`);
      const id = await loadKeyStore(new TextEncoder().encode(combined), {
        password: PASSWORD,
        name: "combined.pem",
      });
      assertGoodIdentity(id, cn, keyType);
      await assertStoreError(
        loadKeyStore(new TextEncoder().encode(combined), { name: "combined.pem" }),
        { code: "KEY_PASSWORD_REQUIRED", name: "combined.pem" },
      );
      await assertStoreError(
        loadKeyStore(new TextEncoder().encode(combined), { password: WRONG, name: "combined.pem" }),
        { code: "KEY_PASSWORD", name: "combined.pem", secrets: [WRONG, PASSWORD] },
      );
    },
  });
}

Deno.test({
  name: "loadKeyStore() reads PKCS#1 and SEC1 key files next to a PEM certificate",
  permissions: read,
  async fn(): Promise<void> {
    for (
      const [d, keyFile, cn] of [
        ["rsa", "rsa.key.pkcs1.pem", "device-rsa-001"],
        ["ec256", "ec256.key.sec1.pem", "device-ec256-001"],
        ["ec384", "ec384.key.sec1.pem", "device-ec384-001"],
      ]
    ) {
      const id = await loadKeyStore(bytes(`devices/${d}.chain.pem`), {
        key: bytes(`devices/${keyFile}`),
      });
      assertGoodIdentity(id, cn, d === "rsa" ? "rsa" : "ec");
    }
  },
});

Deno.test({
  name: "loadKeyStore() puts the leaf first in a misordered PEM chain",
  permissions: read,
  async fn(): Promise<void> {
    const id = await loadKeyStore(bytes("bad/misordered.chain.pem"), {
      key: bytes("devices/rsa.key"),
      name: "misordered.chain.pem",
    });
    assert.deepEqual(id.chain.map((c) => c.summary.commonName), ["device-rsa-001", INTERMEDIATE]);
    assertGoodIdentity(id, "device-rsa-001", "rsa");
  },
});

Deno.test({
  name: "loadKeyStore() orders by issuer links and keeps unrelated certificates at the end",
  permissions: read,
  async fn(): Promise<void> {
    const pem = text("ca/unknown-ca.pem") + text("ca/device-root-ca.pem") +
      text("ca/device-intermediate-ca.pem") + text("devices/ec256.pem");
    const id = await loadKeyStore(new TextEncoder().encode(pem), {
      key: bytes("devices/ec256.key"),
    });
    assert.deepEqual(id.chain.map((c) => c.summary.commonName), [
      "device-ec256-001",
      INTERMEDIATE,
      ROOT,
      "c8y-mqtt-cert Unknown CA",
    ]);
  },
});

Deno.test({
  name: "loadKeyStore() keeps the store order when no certificate matches the key",
  permissions: read,
  async fn(): Promise<void> {
    const id = await loadKeyStore(bytes("bad/mismatch.chain.pem"), {
      key: bytes("bad/mismatch.key"),
    });
    assert.equal(id.chain[0].summary.commonName, "device-mismatch");
    assert.equal(id.chain.length, 2);
    const leaf = new X509Certificate(id.chain[0].pem);
    assert.equal(leaf.checkPrivateKey(createPrivateKey(id.privateKeyPem)), false);
  },
});

Deno.test({
  name: "loadKeyStore() reads a PKCS#12 with the leaf only",
  permissions: read,
  async fn(): Promise<void> {
    const id = await loadKeyStore(bytes("devices/rsa.leafonly.p12"), { password: PASSWORD });
    assert.deepEqual(id.chain.map((c) => c.summary.commonName), ["device-rsa-001"]);
    assertGoodIdentity(id, "device-rsa-001", "rsa");
  },
});

Deno.test({
  name: "loadKeyStore() obeys an explicit matching type",
  permissions: read,
  async fn(): Promise<void> {
    const id = await loadKeyStore(bytes("devices/ec256.jks"), { password: PASSWORD, type: "jks" });
    assert.equal(id.format, "jks");
  },
});

// ---- loadKeyStore: aliases -----------------------------------------------------------------

for (const ext of ["p12", "jks"]) {
  const name = `devices/multi.${ext}`;
  Deno.test({
    name: `loadKeyStore() picks an entry of multi.${ext} by alias`,
    permissions: read,
    async fn(): Promise<void> {
      for (const { d, cn, keyType } of DEVICES.slice(0, 2)) {
        const id = await loadKeyStore(bytes(name), { password: PASSWORD, alias: d, name });
        assert.equal(id.alias, d);
        assert.deepEqual([...id.aliases].sort(), ["ec256", "rsa"]);
        assertGoodIdentity(id, cn, keyType);
      }
      const upper = await loadKeyStore(bytes(name), { password: PASSWORD, alias: "EC256" });
      assert.equal(upper.alias, "ec256");
    },
  });

  Deno.test({
    name: `loadKeyStore() asks for an alias for multi.${ext} and lists the aliases`,
    permissions: read,
    async fn(): Promise<void> {
      const err = await assertStoreError(loadKeyStore(bytes(name), { password: PASSWORD, name }), {
        code: "STORE_ALIAS_REQUIRED",
        name,
        secrets: [PASSWORD],
      });
      assert.ok(err.message.includes('"rsa"') && err.message.includes('"ec256"'), err.message);
      assert.ok(err.hint.includes("`alias`"), err.hint);
      const unknown = await assertStoreError(
        loadKeyStore(bytes(name), { password: PASSWORD, alias: "nope", name }),
        { code: "STORE_ALIAS_UNKNOWN", name, secrets: [PASSWORD] },
      );
      assert.ok(unknown.message.includes('"nope"'));
      assert.ok(unknown.message.includes('"rsa"') && unknown.message.includes('"ec256"'));
    },
  });
}

// ---- loadKeyStore: refusals ----------------------------------------------------------------

Deno.test({
  name: "loadKeyStore() refuses JCEKS with the keytool conversion command",
  permissions: read,
  async fn(): Promise<void> {
    const name = "devices/rsa.jceks";
    const err = await assertStoreError(loadKeyStore(bytes(name), { password: PASSWORD, name }), {
      code: "STORE_JCEKS",
      name,
      secrets: [PASSWORD],
    });
    assert.ok(err.hint.includes("-srcstoretype JCEKS"), err.hint);
    assert.ok(err.hint.includes("-deststoretype PKCS12"), err.hint);
  },
});

Deno.test({
  name: "loadKeyStore() refuses wrong store passwords for JKS and PKCS#12",
  permissions: read,
  async fn(): Promise<void> {
    for (
      const name of ["devices/rsa.jks", "devices/ec256.openssl3.p12", "devices/ec384.jdk.p12"]
    ) {
      await assertStoreError(loadKeyStore(bytes(name), { password: WRONG, name }), {
        code: "KEYSTORE_PASSWORD",
        name,
        secrets: [WRONG],
      });
    }
  },
});

Deno.test({
  name: "loadKeyStore() asks for the password of a PKCS#12 or JKS given none",
  permissions: read,
  async fn(): Promise<void> {
    for (const name of ["devices/rsa.openssl3.p12", "devices/rsa.jks"]) {
      await assertStoreError(loadKeyStore(bytes(name), { name }), {
        code: "KEYSTORE_PASSWORD_REQUIRED",
        name,
      });
    }
  },
});

Deno.test({
  name: "loadKeyStore() says a truststore given as keystore looks like a truststore",
  permissions: read,
  async fn(): Promise<void> {
    for (
      const name of [
        "devices/truststore.jks",
        "devices/truststore.p12",
        "server/server-truststore.pem",
      ]
    ) {
      const err = await assertStoreError(loadKeyStore(bytes(name), { password: PASSWORD, name }), {
        code: "STORE_NO_KEY",
        name,
        secrets: [PASSWORD],
      });
      assert.ok(err.message.includes("truststore"), err.message);
      assert.ok(err.hint.includes("`loadTrustStore`"), err.hint);
    }
  },
});

// A PEM keystore with only half of an identity: both hint at the `key` option.
for (
  const { test, name, code } of [
    {
      test: "loadKeyStore() refuses a PEM certificate without a key and hints at `key`",
      name: "devices/ec256.pem",
      code: "STORE_NO_KEY",
    },
    {
      test: "loadKeyStore() refuses a PEM key without a certificate",
      name: "devices/ec256.key",
      code: "STORE_NO_CERTIFICATE",
    },
  ]
) {
  Deno.test({
    name: test,
    permissions: read,
    async fn(): Promise<void> {
      const err = await assertStoreError(loadKeyStore(bytes(name), { name }), { code, name });
      assert.ok(err.hint.includes("`key`"), err.hint);
    },
  });
}

Deno.test({
  name: "loadKeyStore() refuses a --key file without a key and --key with a JKS",
  permissions: read,
  async fn(): Promise<void> {
    await assertStoreError(
      loadKeyStore(bytes("devices/rsa.pem"), { key: bytes("devices/rsa.pem"), keyName: "k.pem" }),
      { code: "STORE_NO_KEY", name: "k.pem" },
    );
    await assert.rejects(
      loadKeyStore(bytes("devices/rsa.jks"), {
        password: PASSWORD,
        key: bytes("devices/rsa.key"),
        name: "rsa.jks",
      }),
      (err: unknown) => err instanceof UsageError && err.code === "KEY_NOT_PEM",
    );
  },
});

Deno.test({
  name: "loadKeyStore() refuses two different keys in the PEM keystore and the --key file",
  permissions: read,
  async fn(): Promise<void> {
    const combined = text("devices/rsa.chain.pem") + text("devices/rsa.key");
    await assertStoreError(
      loadKeyStore(new TextEncoder().encode(combined), {
        key: bytes("devices/ec256.key"),
        name: "combined.pem",
      }),
      { code: "KEY_CONFLICT", name: "combined.pem" },
    );
    const same = await loadKeyStore(new TextEncoder().encode(combined), {
      key: bytes("devices/rsa.key.pkcs1.pem"),
    });
    assertGoodIdentity(same, "device-rsa-001", "rsa");
  },
});

Deno.test({
  name: "loadKeyStore() refuses an explicit type that does not match and names the real one",
  permissions: read,
  async fn(): Promise<void> {
    const name = "devices/rsa.jks";
    const err = await assertStoreError(
      loadKeyStore(bytes(name), { password: PASSWORD, type: "pkcs12", name }),
      { code: "STORE_FORMAT", name, secrets: [PASSWORD] },
    );
    assert.ok(err.hint.includes('`type: "jks"`'), err.hint);
    const pem = await assertStoreError(
      loadKeyStore(bytes("devices/rsa.openssl3.p12"), { type: "pem", name: "x.p12" }),
      { code: "STORE_FORMAT", name: "x.p12" },
    );
    assert.ok(pem.hint.includes("pkcs12"), pem.hint);
  },
});

Deno.test({
  name: "loadKeyStore() refuses empty, random and over-size input before parsing",
  permissions: read,
  async fn(): Promise<void> {
    await assertStoreError(loadKeyStore(bytes("bad/empty.p12"), { name: "bad/empty.p12" }), {
      code: "STORE_EMPTY",
      name: "bad/empty.p12",
    });
    await assertStoreError(
      loadKeyStore(bytes("bad/random.bin"), { password: PASSWORD, name: "bad/random.bin" }),
      { code: "STORE_FORMAT", name: "bad/random.bin", secrets: [PASSWORD] },
    );
    // Over the limit, even a valid-looking header is not looked at.
    const huge = new Uint8Array(MAX_STORE_BYTES + 1);
    huge.set([0xfe, 0xed, 0xfe, 0xed]);
    const err = await assertStoreError(
      loadKeyStore(huge, { password: PASSWORD, name: "huge.jks" }),
      { code: "STORE_TOO_LARGE", name: "huge.jks", secrets: [PASSWORD] },
    );
    assert.ok(err.message.includes(String(MAX_STORE_BYTES)));
  },
});

Deno.test({
  name: "loadKeyStore() reports truncated stores as STORE_CORRUPT",
  permissions: read,
  async fn(): Promise<void> {
    const p12 = await assertStoreError(
      loadKeyStore(bytes("bad/truncated.p12"), { password: PASSWORD, name: "bad/truncated.p12" }),
      { code: "STORE_CORRUPT", name: "bad/truncated.p12", secrets: [PASSWORD] },
    );
    assert.ok(p12.cause !== undefined);
    const jks = bytes("devices/rsa.jks");
    await assertStoreError(
      loadKeyStore(jks.subarray(0, jks.length / 2), { password: PASSWORD, name: "half.jks" }),
      { code: "STORE_CORRUPT", name: "half.jks", secrets: [PASSWORD] },
    );
    // A PEM file cut inside its second certificate.
    const cut = new TextEncoder().encode(text("devices/rsa.chain.pem").slice(0, 1500));
    const pemErr = await assertStoreError(
      loadKeyStore(cut, { key: bytes("devices/rsa.key"), name: "cut.pem" }),
      { code: "STORE_FORMAT", name: "cut.pem" },
    );
    assert.ok(pemErr.message.includes("no end line"), pemErr.message);
    const broken = new TextEncoder().encode(
      "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
    );
    await assertStoreError(loadKeyStore(broken, { key: bytes("devices/rsa.key"), name: "b.pem" }), {
      code: "CERT_PARSE",
      name: "b.pem",
    });
  },
});

// ---- loadTrustStore ------------------------------------------------------------------------

for (const ext of ["jks", "p12", "pem"]) {
  Deno.test({
    name: `loadTrustStore() reads the server CA from server-truststore.${ext}`,
    permissions: read,
    async fn(): Promise<void> {
      const trust = await loadTrustStore(bytes(`server/server-truststore.${ext}`), {
        password: PASSWORD,
      });
      assert.equal(trust.format, ext === "p12" ? "pkcs12" : ext);
      assert.deepEqual(trust.certificates.map((c) => c.summary.commonName), [
        "c8y-mqtt-cert Test Server CA",
      ]);
      assert.equal(trust.certificates[0].alias, ext === "pem" ? undefined : "server-ca");
      assert.equal(trust.certificates[0].pem, text("ca/server-ca.pem"));
    },
  });
}

Deno.test({
  name: "loadTrustStore() reads a JKS truststore without a password",
  permissions: read,
  async fn(): Promise<void> {
    const trust = await loadTrustStore(bytes("devices/truststore.jks"));
    assert.deepEqual(trust.certificates.map((c) => c.summary.commonName).sort(), [
      INTERMEDIATE,
      ROOT,
    ]);
  },
});

Deno.test({
  name: "loadTrustStore() reads the device CAs from truststore.p12 and a PEM bundle",
  permissions: read,
  async fn(): Promise<void> {
    const p12 = await loadTrustStore(bytes("devices/truststore.p12"), { password: PASSWORD });
    assert.deepEqual(p12.certificates.map((c) => c.alias).sort(), [
      "device-intermediate-ca",
      "device-root-ca",
    ]);
    const pem = await loadTrustStore(bytes("ca/device-ca-chain.pem"));
    assert.deepEqual(pem.certificates.map((c) => c.summary.commonName), [INTERMEDIATE, ROOT]);
  },
});

Deno.test({
  name: "loadTrustStore() refuses wrong or missing passwords and stores without certificates",
  permissions: read,
  async fn(): Promise<void> {
    await assertStoreError(
      loadTrustStore(bytes("devices/truststore.jks"), { password: WRONG, name: "t.jks" }),
      { code: "KEYSTORE_PASSWORD", name: "t.jks", secrets: [WRONG] },
    );
    const err = await assertStoreError(
      loadTrustStore(bytes("server/server-truststore.p12"), { name: "t.p12" }),
      { code: "KEYSTORE_PASSWORD_REQUIRED", name: "t.p12" },
    );
    assert.ok(err.hint.includes("`password`"), err.hint);
    await assertStoreError(loadTrustStore(bytes("devices/rsa.key.enc.pem"), { name: "k.pem" }), {
      code: "STORE_NO_CERTIFICATE",
      name: "k.pem",
    });
    await assertStoreError(loadTrustStore(bytes("bad/random.bin"), { name: "r.bin" }), {
      code: "STORE_FORMAT",
      name: "r.bin",
    });
    const jceks = await assertStoreError(
      loadTrustStore(bytes("devices/rsa.jceks"), { password: PASSWORD, name: "t.jceks" }),
      { code: "STORE_JCEKS", name: "t.jceks", secrets: [PASSWORD] },
    );
    assert.ok(jceks.hint.includes("keytool -importkeystore"));
  },
});

Deno.test({
  name: "loadTrustStore() reads the JDK's cacerts (JKS, password changeit, >100 CAs)",
  permissions: { read: [...JDK_CACERTS] },
  async fn(): Promise<void> {
    const path = jdkCacertsOrWarn("the JDK cacerts test");
    if (path === undefined) return;
    const data = Deno.readFileSync(path);
    const trust = await loadTrustStore(data, { password: PASSWORD, name: path });
    assert.ok(trust.certificates.length > 100, `${trust.certificates.length} certificates`);
    assert.ok(trust.certificates.every((c) => c.summary.isCA || c.summary.selfSigned));
    assert.ok(trust.certificates.every((c) => c.alias !== undefined));
    if (trust.format === "jks") {
      const unchecked = await loadTrustStore(data, { name: path });
      assert.equal(unchecked.certificates.length, trust.certificates.length);
    }
  },
});
