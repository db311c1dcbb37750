/**
 * No message, hint or JSON field is built from a password, and no output is rewritten after the
 * fact: a failing run prints exactly the same with any wrong password, also with passwords that
 * are words of the tool's own messages or one to three letters, and names files in full even
 * when their names contain the password.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli } from "../support/cli.ts";

/** A password that appears in no message: the reference run. */
const REFERENCE = "Zq9-Xy7";
/** Words of the tool's own messages, and one to three letters. */
const PASSWORDS = ["store", "password", "key", "wrong", "the", "PKCS", "a", "ab", "abc"];

const STORES = [
  { path: "fixtures/devices/rsa.openssl3.p12", says: /Cannot open the PKCS#12 store/ },
  { path: "fixtures/devices/rsa.jks", says: /integrity check failed/ },
  { path: "fixtures/devices/rsa.keypass.jks", says: /wrong key password/ },
];

for (const { path, says } of STORES) {
  Deno.test(`a wrong password never shapes the output for ${path}`, async () => {
    const run = (password: string, json: boolean): ReturnType<typeof runCli> =>
      runCli(
        [
          "inspect",
          "--keystore",
          path,
          "--keystore-password",
          `pass:${path.includes("keypass") ? "changeit" : password}`,
          ...(path.includes("keypass") ? ["--key-password", `pass:${password}`] : []),
          ...(json ? ["--json"] : []),
        ],
        { read: [path] },
      );
    for (const json of [false, true]) {
      const reference = await run(REFERENCE, json);
      assert.equal(reference.code, 3, reference.stderr);
      assert.match(reference.stderr + reference.stdout, says);
      assert.ok(!(reference.stderr + reference.stdout).includes(REFERENCE));
      assert.ok(!(reference.stderr + reference.stdout).includes("***"));
      for (const password of PASSWORDS) {
        const r = await run(password, json);
        assert.equal(r.code, reference.code, `${password}: ${r.stderr}`);
        assert.equal(r.stdout, reference.stdout, `stdout with password "${password}"`);
        assert.equal(r.stderr, reference.stderr, `stderr with password "${password}"`);
      }
    }
  });
}

Deno.test("a file whose name contains the password is named in full", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-secrets-" });
  try {
    const path = `${dir}/store-password-key.p12`;
    await Deno.copyFile(new URL("../../fixtures/devices/rsa.openssl3.p12", import.meta.url), path);
    for (const password of ["store", "password", "key", REFERENCE]) {
      const r = await runCli(
        ["inspect", "--keystore", path, "--keystore-password", `pass:${password}`],
        { read: [dir] },
      );
      assert.equal(r.code, 3, r.stderr);
      assert.ok(r.stderr.includes(`"${path}"`), r.stderr);
      assert.match(r.stderr, /wrong password/);
      assert.ok(!r.stderr.includes(REFERENCE));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a store that needs a password and got none asks for it (exit 2 without a terminal), never 'wrong'", async () => {
  const path = "fixtures/interop/nomac-keytool.p12";
  const r = await runCli(["inspect", "--keystore", path], { read: [path] });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no terminal/);
  assert.doesNotMatch(r.stderr, /wrong/);
});
