import assert from "node:assert/strict";
import {
  assertStoreError,
  encodeDer,
  entryKey,
  type ExpectedStoreError,
} from "../support/stores.ts";
import { Buffer } from "node:buffer";
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  X509Certificate,
} from "node:crypto";
import { readPkcs12 } from "../../lib/stores/pkcs12/read.ts";
import { StoreError } from "../../lib/errors.ts";
import type { RawStore } from "../../lib/types.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const permissions = { read: [fixtures] };
const PASSWORD = "changeit";
const WRONG = "Wr0ng-Passw0rd!";

const DEVICES = [
  { name: "rsa", type: "rsa", curve: undefined, cn: "device-rsa-001" },
  { name: "ec256", type: "ec", curve: "prime256v1", cn: "device-ec256-001" },
  { name: "ec384", type: "ec", curve: "secp384r1", cn: "device-ec384-001" },
] as const;
const VARIANTS = [
  { file: "openssl3", label: "an OpenSSL 3 default (PBES2/AES-256, SHA-256 MAC)" },
  { file: "legacy", label: "an OpenSSL -legacy (RC2-40 + 3DES, SHA-1 MAC)" },
  { file: "jdk", label: "a JDK 17 keytool (PBES2/AES-256, 10000 iterations)" },
  { file: "nomac", label: "an unencrypted, MAC-less" },
] as const;

function read(path: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(path, fixtures));
}

/** The DER of the first PEM certificate in a fixture file. */
async function pemCertDer(path: string): Promise<Uint8Array> {
  return new Uint8Array(new X509Certificate(await Deno.readTextFile(new URL(path, fixtures))).raw);
}

function pkcs8Key(der: Uint8Array | undefined): KeyObject {
  assert.ok(der, "the entry has a private key");
  return createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
}

function spki(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: "spki", format: "der" });
}

/** Asserts a rejection with the expected StoreError (exit code 3), and returns it. */
async function rejectsWith(
  promise: Promise<unknown>,
  expected: ExpectedStoreError,
): Promise<StoreError> {
  const err = await assertStoreError(promise, expected);
  assert.equal(err.exitCode, 3);
  return err;
}

/** Checks a device store: one key entry named like the device, key matching leaf, leaf + CA. */
async function assertDeviceStore(
  store: RawStore,
  device: (typeof DEVICES)[number],
  chainLength = 2,
): Promise<void> {
  assert.equal(store.format, "pkcs12");
  assert.equal(store.entries.length, 1);
  const [entry] = store.entries;
  assert.equal(entry.alias, device.name);
  const key = pkcs8Key(await entryKey(entry, PASSWORD));
  assert.equal(key.asymmetricKeyType, device.type);
  assert.equal(key.asymmetricKeyDetails?.namedCurve, device.curve);
  assert.equal(entry.certificates.length, chainLength);
  const leaf = new X509Certificate(Buffer.from(entry.certificates[0]));
  assert.equal(leaf.subject, `CN=${device.cn}`);
  assert.ok(leaf.checkPrivateKey(key), "the key belongs to the leaf certificate");
  assert.deepEqual(spki(key), leaf.publicKey.export({ type: "spki", format: "der" }));
  // The very key and certificates the fixtures were made from.
  const original = createPrivateKey(
    await Deno.readTextFile(new URL(`devices/${device.name}.key`, fixtures)),
  );
  assert.deepEqual(spki(key), spki(original));
  assert.deepEqual(entry.certificates[0], await pemCertDer(`devices/${device.name}.pem`));
  if (chainLength > 1) {
    assert.deepEqual(entry.certificates[1], await pemCertDer("ca/device-intermediate-ca.pem"));
  }
}

// ------------------------------------------------------------------------------------------
// A minimal DER encoder/decoder for building variants of the fixtures in the tests.

interface Der {
  tag: number;
  content: Uint8Array;
}

function decodeDer(buf: Uint8Array): Der[] {
  const out: Der[] = [];
  let p = 0;
  while (p < buf.length) {
    const tag = buf[p++];
    let length = buf[p++];
    if (length & 0x80) {
      const n = length & 0x7f;
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + buf[p++];
    }
    out.push({ tag, content: buf.subarray(p, p + length) });
    p += length;
  }
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** The PFX's parts: version, authSafe ContentInfo, MacData. */
function pfxParts(p12: Uint8Array): Der[] {
  const [pfx] = decodeDer(p12);
  return decodeDer(pfx.content);
}

function encodeAll(parts: Der[]): Uint8Array {
  return concat(...parts.map((p) => encodeDer(p.tag, p.content)));
}

/** A fixture PFX without its MacData: the same contents, no integrity check. */
async function withoutMac(path: string): Promise<Uint8Array> {
  return encodeDer(0x30, encodeAll(pfxParts(await read(path)).slice(0, 2)));
}

function indexOfBytes(haystack: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** A small deterministic PRNG (mulberry32), so that the mutation tests are reproducible. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------------------------------
// The variants

for (const device of DEVICES) {
  for (const variant of VARIANTS) {
    const file = `devices/${device.name}.${variant.file}.p12`;
    Deno.test({
      name: `readPkcs12() reads ${variant.label} PKCS12 with the ${device.name} key and chain`,
      permissions,
      async fn(): Promise<void> {
        const store = await readPkcs12(await read(file), { password: PASSWORD, name: file });
        await assertDeviceStore(store, device);
      },
    });
  }
}

for (const variant of VARIANTS.filter((v) => v.file !== "nomac")) {
  for (const device of DEVICES) {
    const file = `devices/${device.name}.${variant.file}.p12`;
    Deno.test({
      name: `readPkcs12() says KEYSTORE_PASSWORD for ${variant.label} ${device.name} PKCS12 ` +
        "opened with the wrong password",
      permissions,
      async fn(): Promise<void> {
        const err = await rejectsWith(
          readPkcs12(await read(file), { password: WRONG, name: file }),
          { code: "KEYSTORE_PASSWORD", name: file, secrets: [WRONG, PASSWORD] },
        );
        assert.equal(
          err.message,
          `Cannot open the PKCS#12 store "${file}": wrong password (the integrity check failed)`,
        );
        assert.match(err.hint, /`password`/);
      },
    });

    Deno.test({
      name: `readPkcs12() says KEY_PASSWORD for ${variant.label} ${device.name} PKCS12 ` +
        "given the wrong key password",
      permissions,
      async fn(): Promise<void> {
        const store = await readPkcs12(await read(file), { password: PASSWORD, name: file });
        const err = await rejectsWith(entryKey(store.entries[0], WRONG), {
          code: "KEY_PASSWORD",
          name: file,
          secrets: [WRONG],
        });
        assert.equal(
          err.message,
          `Cannot decrypt the private key "${device.name}" in "${file}": wrong key password`,
        );
        assert.match(err.hint, /`keyPassword`/);
      },
    });
  }
}

Deno.test({
  name: "readPkcs12() opens an unencrypted MAC-less PKCS12 whatever the password",
  permissions,
  async fn(): Promise<void> {
    const bytes = await read("devices/ec256.nomac.p12");
    const store = await readPkcs12(bytes, { password: WRONG, name: "ec256.nomac.p12" });
    await assertDeviceStore(store, DEVICES[1]);
  },
});

Deno.test({
  name: "readPkcs12() decrypts no key while reading: a key bag opens on demand, alone",
  permissions,
  async fn(): Promise<void> {
    const bytes = await read("devices/multi.p12");
    const store = await readPkcs12(bytes, { password: PASSWORD });
    assert.ok(store.entries.every((e) => e.privateKeyPkcs8 === undefined && e.unlockKey));
    const rsa = store.entries.find((e) => e.alias === "rsa")!;
    assert.equal(pkcs8Key(await entryKey(rsa, PASSWORD)).asymmetricKeyType, "rsa");
  },
});

Deno.test({
  name: "readPkcs12() reads a leaf-only PKCS12 as one key entry with one certificate",
  permissions,
  async fn(): Promise<void> {
    const store = await readPkcs12(await read("devices/rsa.leafonly.p12"), { password: PASSWORD });
    await assertDeviceStore(store, DEVICES[0], 1);
  },
});

Deno.test({
  name: "readPkcs12() reads a keytool PKCS12 with two key entries, each with its own chain",
  permissions,
  async fn(): Promise<void> {
    const store = await readPkcs12(await read("devices/multi.p12"), { password: PASSWORD });
    assert.deepEqual(store.entries.map((e) => e.alias), ["rsa", "ec256"]);
    const intermediate = await pemCertDer("ca/device-intermediate-ca.pem");
    for (const [i, device] of [DEVICES[0], DEVICES[1]].entries()) {
      const entry = store.entries[i];
      const key = pkcs8Key(await entryKey(entry, PASSWORD));
      assert.equal(key.asymmetricKeyType, device.type);
      assert.equal(entry.certificates.length, 2);
      assert.deepEqual(entry.certificates[0], await pemCertDer(`devices/${device.name}.pem`));
      assert.deepEqual(entry.certificates[1], intermediate);
      assert.ok(new X509Certificate(Buffer.from(entry.certificates[0])).checkPrivateKey(key));
    }
  },
});

Deno.test({
  name: "readPkcs12() reads a keytool server truststore as one certificate entry",
  permissions,
  async fn(): Promise<void> {
    const store = await readPkcs12(await read("server/server-truststore.p12"), {
      password: PASSWORD,
    });
    assert.equal(store.format, "pkcs12");
    assert.deepEqual(store.entries, [{
      alias: "server-ca",
      privateKeyPkcs8: undefined,
      certificates: [await pemCertDer("ca/server-ca.pem")],
    }]);
  },
});

Deno.test({
  name: "readPkcs12() reads a keytool device truststore as certificate entries with aliases",
  permissions,
  async fn(): Promise<void> {
    const store = await readPkcs12(await read("devices/truststore.p12"), { password: PASSWORD });
    assert.deepEqual(store.entries, [
      {
        alias: "device-root-ca",
        privateKeyPkcs8: undefined,
        certificates: [await pemCertDer("ca/device-root-ca.pem")],
      },
      {
        alias: "device-intermediate-ca",
        privateKeyPkcs8: undefined,
        certificates: [await pemCertDer("ca/device-intermediate-ca.pem")],
      },
    ]);
  },
});

Deno.test({
  name: "readPkcs12() says KEYSTORE_PASSWORD for a truststore opened with the wrong password",
  permissions,
  async fn(): Promise<void> {
    const err = await rejectsWith(
      readPkcs12(await read("devices/truststore.p12"), { password: WRONG, name: "ts.p12" }),
      { code: "KEYSTORE_PASSWORD", name: "ts.p12" },
    );
    assert.match(err.message, /"ts\.p12"/);
  },
});

// ------------------------------------------------------------------------------------------
// Bad input

for (
  const [file, detail] of [
    ["bad/empty.p12", "the file is empty"],
    ["bad/random.bin", "truncated or corrupt"],
    ["bad/truncated.p12", "truncated or corrupt"],
  ]
) {
  Deno.test({
    name: `readPkcs12() says STORE_CORRUPT for ${file}`,
    permissions,
    async fn(): Promise<void> {
      const err = await rejectsWith(
        readPkcs12(await read(file), { password: PASSWORD, name: file }),
        { code: "STORE_CORRUPT", name: file },
      );
      assert.equal(err.message, `"${file}" is not a valid PKCS#12 keystore (${detail})`);
      assert.ok(err.hint.length > 0);
    },
  });
}

Deno.test({
  name: "readPkcs12() names the format when given a JKS keystore",
  permissions,
  async fn(): Promise<void> {
    const err = await rejectsWith(
      readPkcs12(await read("devices/rsa.jks"), { password: PASSWORD, name: "rsa.jks" }),
      { code: "STORE_CORRUPT", name: "rsa.jks" },
    );
    assert.match(err.message, /"rsa\.jks" is not a valid PKCS#12 keystore \(it looks like a JKS/);
  },
});

Deno.test({
  name: "readPkcs12() only ever throws StoreError for bit-flipped and truncated keystores",
  permissions,
  async fn(): Promise<void> {
    const random = prng(0x5eed);
    const files = [
      "devices/rsa.openssl3.p12",
      "devices/ec256.legacy.p12",
      "devices/ec384.jdk.p12",
      "devices/rsa.nomac.p12",
      "devices/truststore.p12",
    ];
    const codes = new Map<string, number>();
    let opened = 0;
    for (const file of files) {
      const original = await read(file);
      for (let i = 0; i < 60; i++) {
        const bytes = original.slice();
        const flips = 1 + Math.floor(random() * 3);
        for (let f = 0; f < flips; f++) {
          const bit = Math.floor(random() * bytes.length * 8);
          bytes[bit >> 3] ^= 1 << (bit & 7);
        }
        const cut = i % 4 === 0 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
        try {
          await readPkcs12(cut, { password: PASSWORD, name: file });
          opened++; // e.g. a flip inside an unencrypted certificate of a MAC-less store
        } catch (err) {
          assert.ok(err instanceof StoreError, `${file} mutation ${i}: ${err}`);
          assert.ok(!err.message.includes(PASSWORD));
          codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
        }
      }
    }
    // The MAC catches flips (as a failed integrity check); structure errors are STORE_CORRUPT.
    assert.ok((codes.get("KEYSTORE_PASSWORD") ?? 0) > 0);
    assert.ok((codes.get("STORE_CORRUPT") ?? 0) > 0);
    assert.ok(opened < files.length * 60);
  },
});

Deno.test({
  name: "readPkcs12() only ever throws StoreError for every prefix of a keystore",
  permissions,
  async fn(): Promise<void> {
    const original = await read("devices/ec256.nomac.p12");
    for (let length = 0; length < original.length; length += 7) {
      await rejectsWith(
        readPkcs12(original.subarray(0, length), { password: PASSWORD, name: "cut.p12" }),
        { code: "STORE_CORRUPT", name: "cut.p12" },
      );
    }
  },
});

Deno.test({
  name: "readPkcs12() refuses an absurd MAC iteration count with STORE_UNSUPPORTED before deriving",
  permissions,
  async fn(): Promise<void> {
    const parts = pfxParts(await read("devices/rsa.openssl3.p12"));
    const mac = decodeDer(parts[2].content);
    mac[2] = { tag: 0x02, content: new Uint8Array([0x7f, 0xff, 0xff, 0xff]) };
    parts[2] = { tag: 0x30, content: encodeAll(mac) };
    const bytes = encodeDer(0x30, encodeAll(parts));
    // Refused by the iteration cap, before any key derivation: 2^31 rounds would take hours.
    const err = await rejectsWith(
      readPkcs12(bytes, { password: PASSWORD, name: "slow.p12" }),
      { code: "STORE_UNSUPPORTED", name: "slow.p12" },
    );
    assert.match(err.message, /"slow\.p12" asks for 2147483647 key-derivation iterations/);
  },
});

Deno.test({
  name: "readPkcs12() decrypts a MAC-less encrypted PKCS12 and says KEYSTORE_PASSWORD " +
    "when its certificates do not decrypt",
  permissions,
  async fn(): Promise<void> {
    // rsa.openssl3.p12 without its MacData: encrypted certificates, no integrity check.
    const bytes = await withoutMac("devices/rsa.openssl3.p12");
    await assertDeviceStore(await readPkcs12(bytes, { password: PASSWORD }), DEVICES[0]);
    const err = await rejectsWith(
      readPkcs12(bytes, { password: WRONG, name: "nomac-enc.p12" }),
      { code: "KEYSTORE_PASSWORD", name: "nomac-enc.p12" },
    );
    assert.equal(
      err.message,
      'Cannot open the PKCS#12 store "nomac-enc.p12": wrong password (the certificates could not be decrypted)',
    );
  },
});

Deno.test({
  name: "readPkcs12() says STORE_UNSUPPORTED naming the OID of an unknown encryption algorithm",
  permissions,
  async fn(): Promise<void> {
    // The legacy store without its MAC, its RC2-40 OID (1.2.840.113549.1.12.1.6) made .7, which
    // RFC 7292 does not assign (RC4, .1 and .2, is read since pbe.ts).
    const bytes = await withoutMac("devices/ec256.legacy.p12");
    const rc2 = [0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x06];
    const at = indexOfBytes(bytes, rc2);
    assert.ok(at > 0);
    bytes[at + rc2.length - 1] = 0x07;
    const err = await rejectsWith(
      readPkcs12(bytes, { password: PASSWORD, name: "unknown.p12" }),
      { code: "STORE_UNSUPPORTED", name: "unknown.p12" },
    );
    assert.match(err.message, /"unknown\.p12".*OID 1\.2\.840\.113549\.1\.12\.1\.7/);
    assert.match(err.hint, /openssl pkcs12 .*-export/);
  },
});

Deno.test({
  name: "readPkcs12() reads BER with indefinite lengths and constructed OCTET STRINGs",
  permissions,
  async fn(): Promise<void> {
    const parts = pfxParts(await read("devices/ec384.jdk.p12"));
    // authSafe: ContentInfo { data, [0] { OCTET STRING } } -> indefinite lengths, the octets
    // split into two chunks of a constructed OCTET STRING. The MAC covers the octets only.
    const [type, explicit] = decodeDer(parts[1].content);
    const [octets] = decodeDer(explicit.content);
    const half = Math.floor(octets.content.length / 2);
    const chunks = concat(
      encodeDer(0x04, octets.content.subarray(0, half)),
      encodeDer(0x04, octets.content.subarray(half)),
    );
    const eoc = new Uint8Array([0, 0]);
    const indefinite = (tag: number, ...content: Uint8Array[]): Uint8Array =>
      concat(new Uint8Array([tag, 0x80]), ...content, eoc);
    const authSafe = indefinite(
      0x30,
      encodeDer(type.tag, type.content),
      indefinite(0xa0, indefinite(0x24, chunks)),
    );
    const bytes = indefinite(
      0x30,
      encodeDer(parts[0].tag, parts[0].content),
      authSafe,
      encodeDer(parts[2].tag, parts[2].content),
    );
    await assertDeviceStore(await readPkcs12(bytes, { password: PASSWORD }), DEVICES[2]);
  },
});

/**
 * The PKCS#12 key derivation (RFC 7292 appendix B.2) written plainly on node:crypto: an
 * independent reference for the reader's `@noble/hashes` version.
 */
function referenceKdf(
  hash: string,
  { u, v }: { u: number; v: number },
  password: string,
  salt: Uint8Array,
  iterations: number,
): Uint8Array {
  const bmp = new Uint8Array(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) bmp[2 * i + 1] = password.charCodeAt(i);
  const fill = (src: Uint8Array): Uint8Array =>
    Uint8Array.from({ length: v * Math.ceil(src.length / v) }, (_, i) => src[i % src.length]);
  const D = new Uint8Array(v).fill(3); // ID 3: MAC key
  let a: Uint8Array = concat(D, fill(salt), fill(bmp));
  for (let r = 0; r < iterations; r++) a = createHash(hash).update(a).digest();
  return a.subarray(0, u); // one block: the MAC key is u bytes
}

Deno.test({
  name: "readPkcs12() checks a MAC of every SHA-1 and SHA-2 digest, matching a reference KDF",
  permissions,
  async fn(): Promise<void> {
    // ec256.nomac.p12 (no MAC) given a MacData computed here for each digest.
    const parts = pfxParts(await read("devices/ec256.nomac.p12"));
    const [, explicitContent] = decodeDer(parts[1].content);
    const [octets] = decodeDer(explicitContent.content);
    const authSafe = octets.content;
    const salt = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const iterations = 1000;
    const digests = [
      { hash: "sha1", oid: [0x2b, 0x0e, 0x03, 0x02, 0x1a], u: 20, v: 64 },
      { hash: "sha224", oid: [0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 4], u: 28, v: 64 },
      { hash: "sha256", oid: [0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 1], u: 32, v: 64 },
      { hash: "sha384", oid: [0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 2], u: 48, v: 128 },
      { hash: "sha512", oid: [0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 3], u: 64, v: 128 },
      { hash: "sha512-224", oid: [0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 5], u: 28, v: 128 },
      { hash: "sha512-256", oid: [0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 6], u: 32, v: 128 },
    ];
    for (const digest of digests) {
      const key = referenceKdf(digest.hash, digest, PASSWORD, salt, iterations);
      const mac = createHmac(digest.hash, key).update(authSafe).digest();
      const algorithm = encodeDer(
        0x30,
        concat(encodeDer(0x06, new Uint8Array(digest.oid)), encodeDer(0x05, new Uint8Array())),
      );
      const macData = concat(
        encodeDer(0x30, concat(algorithm, encodeDer(0x04, mac))),
        encodeDer(0x04, salt),
        encodeDer(0x02, new Uint8Array([iterations >> 8, iterations & 0xff])),
      );
      const bytes = encodeDer(0x30, concat(encodeAll(parts), encodeDer(0x30, macData)));
      const name = `ec256.${digest.hash}-mac.p12`;
      const store = await readPkcs12(bytes, { password: PASSWORD, name });
      await assertDeviceStore(store, DEVICES[1]);
      await rejectsWith(readPkcs12(bytes, { password: WRONG, name }), {
        code: "KEYSTORE_PASSWORD",
        name,
      });
    }
  },
});

Deno.test("readPkcs12() throws TypeError for arguments of the wrong type", async (): Promise<void> => {
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    readPkcs12("not bytes" as any, { password: PASSWORD }),
    TypeError,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    readPkcs12(new Uint8Array(4), { password: undefined as any }),
    TypeError,
  );
});
