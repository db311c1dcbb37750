/**
 * Every store input ends in bounded work (issue 16 §1): the bounds are asserted through the
 * limit errors, never through measured durations. Hostile inputs are made here.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeDer } from "../../lib/encoding/der_encode.ts";
import { loadKeyStore, loadTrustStore } from "../../lib/stores/load.ts";
import { MAX_STORE_WORK, WorkBudget } from "../../lib/stores/kdf.ts";
import { pemBlocks, toPem } from "../../lib/encoding/pem.ts";
import { readPkcs12 } from "../../lib/stores/pkcs12/read.ts";
import { MAX_STORE_CERTIFICATES } from "../../lib/x509/certificate.ts";
import { runCli } from "../support/cli.ts";
import { assertStoreError } from "../support/stores.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const bytes = (path: string): Uint8Array => Deno.readFileSync(new URL(path, fixtures));
const oid = (dotted: number[]): Uint8Array => {
  const body: number[] = [dotted[0] * 40 + dotted[1]];
  for (const arc of dotted.slice(2)) {
    const out = [arc & 0x7f];
    for (let a = Math.floor(arc / 128); a > 0; a = Math.floor(a / 128)) {
      out.unshift(0x80 | (a & 0x7f));
    }
    body.push(...out);
  }
  return encodeDer(0x06, [new Uint8Array(body)]);
};
const int = (n: number): Uint8Array => {
  const b: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) b.unshift(v & 0xff);
  if (b.length === 0 || b[0] & 0x80) b.unshift(0);
  return encodeDer(0x02, [new Uint8Array(b)]);
};
const seq = (...parts: Uint8Array[]): Uint8Array => encodeDer(0x30, parts);
const octets = (n: number): Uint8Array => encodeDer(0x04, [new Uint8Array(n)]);

/** An ENCRYPTED PRIVATE KEY (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC) announcing `iterations`. */
function encryptedKey(iterations: number): string {
  const pbkdf2 = seq(
    oid([1, 2, 840, 113549, 1, 5, 12]),
    seq(octets(8), int(iterations), seq(oid([1, 2, 840, 113549, 2, 9]), new Uint8Array([5, 0]))),
  );
  const aes = seq(oid([2, 16, 840, 1, 101, 3, 4, 1, 42]), octets(16));
  const algorithm = seq(oid([1, 2, 840, 113549, 1, 5, 13]), seq(pbkdf2, aes));
  return toPem(seq(algorithm, octets(32)), "ENCRYPTED PRIVATE KEY");
}

Deno.test({
  name: "an encrypted PEM key announcing 2^31-1 PBKDF2 iterations is refused before deriving",
  permissions: read,
  async fn(): Promise<void> {
    const key = new TextEncoder().encode(encryptedKey(2 ** 31 - 1));
    const err = await assertStoreError(
      loadKeyStore(bytes("devices/rsa.chain.pem"), { key, keyName: "k.pem", keyPassword: "x" }),
      { code: "STORE_UNSUPPORTED", name: "k.pem" },
    );
    assert.match(err.message, /2147483647 key-derivation iterations, more than the 10000000/);
  },
});

Deno.test("WorkBudget refuses the charge that would pass the limit, and stops after a failure", () => {
  const budget = new WorkBudget('Keystore "x.p12"', 5000);
  budget.charge(2048);
  budget.charge(2048);
  assert.throws(() => budget.charge(2048), /budget of 5000 PBKDF2 iterations/);
  assert.equal(budget.spent, 4096);
  const failure = new Error("wrong password");
  const stopped = new WorkBudget('Keystore "x.p12"');
  stopped.stop(failure);
  assert.throws(() => stopped.charge(1), (e) => e === failure);
  assert.equal(MAX_STORE_WORK, 40_000_000);
});

Deno.test({
  name: "readPkcs12() bounds the work of a whole store: GnuTLS's one encrypted bag per " +
    "certificate stops at the budget, and reads within the default one",
  permissions: read,
  async fn(): Promise<void> {
    // MAC (600,000 PKCS#12-KDF iterations: 1.8M units) and two PBES2 bags (600,000 each).
    const file = "interop/gnutls.p12";
    await assertStoreError(
      readPkcs12(bytes(file), { password: "changeit", name: file, workLimit: 2_500_000 }),
      { code: "STORE_UNSUPPORTED", name: file },
    );
    const store = await readPkcs12(bytes(file), { password: "changeit", name: file });
    assert.equal(store.entries[0].certificates.length, 2);
  },
});

Deno.test("pemBlocks() stops at the first block without an end line (1 MiB of BEGIN lines)", () => {
  const line = "-----BEGIN X-----\n";
  const text = line.repeat(Math.ceil(1024 * 1024 / line.length));
  assert.throws(
    () => pemBlocks(text),
    /PEM block "X" \(line 1\) has no end line: line 2 begins another block/,
  );
  assert.throws(() => pemBlocks("junk\n" + line + "MAA=\n"), /\(line 2\) has no end line$/);
});

Deno.test({
  name: `a store with more than ${MAX_STORE_CERTIFICATES} certificates is refused, naming the cap`,
  permissions: read,
  async fn(): Promise<void> {
    // An EC certificate (about 700 bytes): 1001 of them fit into the 1 MiB a store may have.
    const cert = new TextDecoder().decode(bytes("interop/teletex-ca.pem"));
    const many = new TextEncoder().encode(cert.repeat(MAX_STORE_CERTIFICATES + 1));
    const err = await assertStoreError(loadTrustStore(many, { name: "bundle.pem" }), {
      code: "STORE_TOO_MANY_CERTIFICATES",
      name: "bundle.pem",
    });
    assert.match(err.message, /more than 1000 certificates/);
    const enough = new TextEncoder().encode(cert.repeat(MAX_STORE_CERTIFICATES));
    assert.equal((await loadTrustStore(enough, { name: "bundle.pem" })).certificates.length, 1);
  },
});

Deno.test("a FIFO as keystore or password file is refused before it is opened", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fifo-" });
  try {
    const fifo = `${dir}/store.p12`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    const store = await runCli(["inspect", "--keystore", fifo, "--keystore-password", "pass:x"], {
      read: [dir],
    });
    assert.equal(store.code, 3, store.stderr);
    assert.match(store.stderr, /is not a regular file \(a FIFO, socket or device\)/);
    const password = await runCli(
      [
        "inspect",
        "--keystore",
        "fixtures/devices/rsa.openssl3.p12",
        "--keystore-password",
        `file:${fifo}`,
      ],
      { read: [dir, "fixtures/devices/rsa.openssl3.p12"] },
    );
    assert.equal(password.code, 2, password.stderr);
    assert.match(password.stderr, /not a regular file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
