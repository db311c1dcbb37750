import assert from "node:assert/strict";
import {
  assertStoreError as assertStoreErrorAsync,
  assertStoreErrorSync as assertStoreError,
  entryKey,
} from "../support/stores.ts";
import { Buffer } from "node:buffer";
import { createPrivateKey } from "node:crypto";
import { readPem } from "../../lib/stores/pem.ts";
import { pemBlocks, toPem } from "../../lib/encoding/pem.ts";
import { certificateDer } from "../../lib/x509/certificate.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const text = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));
const PASSWORD = "changeit";
const WRONG = "Not-The-Pa55";

/**
 * A PKCS#8 key as node:crypto writes it: SEC1 keys wrapped by the reader keep their curve inside
 * too, which is the same key in other bytes.
 */
function normalized(der: Uint8Array | undefined): Uint8Array {
  const key = createPrivateKey({ key: Buffer.from(der!), format: "der", type: "pkcs8" });
  return new Uint8Array(key.export({ type: "pkcs8", format: "der" }));
}

/** The reference PKCS#8 DER of a fixture key, from node:crypto directly. */
function pkcs8(path: string): Uint8Array {
  const key = createPrivateKey({ key: text(path), format: "pem" });
  return new Uint8Array(key.export({ type: "pkcs8", format: "der" }));
}

for (const d of ["rsa", "ec256", "ec384"]) {
  const variants: [string, string | undefined][] = [
    [`devices/${d}.key`, undefined],
    [`devices/${d}.key.enc.pem`, PASSWORD],
    [`devices/${d}.key.legacy-enc.pem`, PASSWORD],
    [d === "rsa" ? "devices/rsa.key.pkcs1.pem" : `devices/${d}.key.sec1.pem`, undefined],
  ];
  for (const [path, password] of variants) {
    Deno.test({
      name: `readPem() converts ${path} to the same unencrypted PKCS#8 key`,
      permissions: read,
      async fn(): Promise<void> {
        const store = readPem(text(path), { name: path });
        assert.equal(store.format, "pem");
        assert.equal(store.entries.length, 1);
        const [entry] = store.entries;
        assert.equal(entry.alias, undefined);
        assert.deepEqual(entry.certificates, []);
        assert.deepEqual(normalized(await entryKey(entry, password)), pkcs8(`devices/${d}.key`));
      },
    });
  }
  for (const kind of ["key.enc.pem", "key.legacy-enc.pem"]) {
    const path = `devices/${d}.${kind}`;
    Deno.test({
      name: `readPem() asks for the passphrase of ${path} (KEY_PASSWORD_REQUIRED)`,
      permissions: read,
      async fn(): Promise<void> {
        await assertStoreErrorAsync(
          entryKey(readPem(text(path), { name: path }).entries[0], undefined),
          {
            code: "KEY_PASSWORD_REQUIRED",
            name: path,
          },
        );
      },
    });
    Deno.test({
      name: `readPem() refuses a wrong passphrase for ${path} (KEY_PASSWORD)`,
      permissions: read,
      async fn(): Promise<void> {
        const [entry] = readPem(text(path), { name: path }).entries;
        await assertStoreErrorAsync(entryKey(entry, WRONG), {
          code: "KEY_PASSWORD",
          name: path,
          secrets: [WRONG, PASSWORD],
        });
      },
    });
  }
}

Deno.test({
  name: "readPem() reads a certificate chain without a key",
  permissions: read,
  fn(): void {
    const store = readPem(text("devices/ec256.chain.pem"), { name: "chain" });
    assert.equal(store.entries[0].privateKeyPkcs8, undefined);
    assert.deepEqual(
      store.entries[0].certificates,
      pemBlocks(text("devices/ec256.chain.pem")).map((b) => b.der),
    );
  },
});

Deno.test({
  name: "readPem() reads a key and its chain from one file",
  permissions: read,
  async fn(): Promise<void> {
    const combined = text("devices/ec384.key.enc.pem") + text("devices/ec384.chain.pem");
    const store = readPem(combined, { name: "combined.pem" });
    assert.equal(store.entries.length, 1);
    assert.deepEqual(await entryKey(store.entries[0], PASSWORD), pkcs8("devices/ec384.key"));
    assert.equal(store.entries[0].certificates.length, 2);
  },
});

Deno.test({
  name: "readPem() with keys: false ignores an encrypted key and needs no password",
  permissions: read,
  fn(): void {
    const combined = text("devices/rsa.key.enc.pem") + text("devices/rsa.pem");
    const store = readPem(combined, { name: "c.pem", keys: false });
    assert.equal(store.entries[0].privateKeyPkcs8, undefined);
    assert.equal(store.entries[0].certificates.length, 1);
    assertStoreError(() => readPem(text("devices/rsa.key"), { name: "k.pem", keys: false }), {
      code: "STORE_NO_CERTIFICATE",
      name: "k.pem",
    });
  },
});

Deno.test({
  name: "readPem() refuses a file with two private keys",
  permissions: read,
  fn(): void {
    const two = text("devices/rsa.key") + text("devices/ec256.key");
    assertStoreError(() => readPem(two, { name: "two.pem" }), {
      code: "PEM_MULTIPLE_KEYS",
      name: "two.pem",
    });
  },
});

Deno.test("readPem() refuses text without PEM blocks, bad base64 and unknown blocks only", () => {
  assertStoreError(() => readPem("hello\n", { name: "a.txt" }), {
    code: "STORE_FORMAT",
    name: "a.txt",
  });
  assertStoreError(
    () => readPem("-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n", { name: "b" }),
    { code: "STORE_FORMAT", name: "b" },
  );
  const csr = "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n";
  const err = assertStoreError(() => readPem(csr, { name: "req.pem" }), {
    code: "STORE_EMPTY",
    name: "req.pem",
  });
  assert.ok(err.message.includes("CERTIFICATE REQUEST"));
});

Deno.test("readPem() reports a damaged unencrypted key as KEY_INVALID", () => {
  const bad = "-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n";
  assertStoreError(() => readPem(bad, { name: "bad.key" }), {
    code: "KEY_INVALID",
    name: "bad.key",
  });
});

Deno.test({
  name: "certificateDer() takes certificates from CERTIFICATE, X509 and TRUSTED blocks only",
  permissions: read,
  fn(): void {
    const [cert] = pemBlocks(text("devices/rsa.pem"));
    const der = cert.der;
    // openssl x509 -trustout appends trust settings (a SEQUENCE) after the certificate.
    const trust = new Uint8Array([0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x2b, 6, 1, 5, 5, 7]);
    const text3 = toPem(der, "CERTIFICATE") + toPem(der, "X509 CERTIFICATE") +
      toPem(new Uint8Array([...der, ...trust]), "TRUSTED CERTIFICATE") +
      text("devices/rsa.key");
    const blocks = pemBlocks(text3);
    assert.equal(blocks.length, 4);
    assert.deepEqual(blocks.slice(0, 3).map(certificateDer), [der, der, der]);
    assert.equal(certificateDer(blocks[3]), undefined);
    // readPem() goes through the same helper: three certificates and the key.
    const store = readPem(text3, { name: "mixed.pem" });
    assert.deepEqual(store.entries[0].certificates, [der, der, der]);
    assert.deepEqual(store.entries[0].privateKeyPkcs8, pkcs8("devices/rsa.key"));
    // A TRUSTED CERTIFICATE body that is not DER is handed on unchanged.
    const [junk] = pemBlocks(toPem(new Uint8Array([1, 2, 3]), "TRUSTED CERTIFICATE"));
    assert.deepEqual(certificateDer(junk), new Uint8Array([1, 2, 3]));
  },
});

Deno.test({
  name:
    "readPem() reports damaged base64 in an encrypted key as a framing problem, never a wrong password",
  permissions: read,
  async fn(): Promise<void> {
    const body = text("interop/pkcs8-76.pem").split("\n");
    body[2] = body[2].slice(0, 10) + "*" + body[2].slice(11);
    const err = assertStoreError(() => readPem(body.join("\n"), { name: "k.pem" }), {
      code: "STORE_FORMAT",
      name: "k.pem",
    });
    assert.match(err.message, /"ENCRYPTED PRIVATE KEY" \(line 1\) is not valid base64/);
    // Valid base64 whose DER is cut: the key is damaged, not the password wrong.
    const lines = text("interop/pkcs8-1line.pem").split("\n");
    lines[1] = lines[1].slice(0, 40);
    const [entry] = readPem(lines.join("\n"), { name: "cut.pem" }).entries;
    await assertStoreErrorAsync(entryKey(entry, PASSWORD), {
      code: "KEY_INVALID",
      name: "cut.pem",
    });
  },
});
