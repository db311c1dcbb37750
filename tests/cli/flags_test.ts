/**
 * The library names its options (`keyPassword`, `type: "jks"`), the command line its flags: the
 * store errors of `lib/` carry no flag, and the CLI prints them with the flags of the store they
 * are about (one table, `lib/cli/flags.ts`).
 */

import assert from "node:assert/strict";
import { C8yError, loadKeyStore, loadTrustStore, StoreError } from "../../mod.ts";
import { errorWithFlags, KEYSTORE_FLAGS, truststoreFlags, withFlags } from "../../lib/cli/flags.ts";
import { runCli } from "../support/cli.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const bytes = (path: string): Uint8Array => Deno.readFileSync(new URL(path, fixtures));
/** A command-line flag (`--keystore-type`); tools' own options have one dash (`-legacy`). */
const FLAG = /(^|[\s(])--[a-z]/;

Deno.test("withFlags() writes the options a table knows as flags, values after them", () => {
  assert.equal(
    withFlags('Use `type: "pkcs12"`, or give `password` and `keyPassword`.', KEYSTORE_FLAGS),
    "Use --keystore-type pkcs12, or give --keystore-password and --key-password.",
  );
  const trust = truststoreFlags("trust");
  assert.equal(
    withFlags("Check `password` and `type`.", trust),
    "Check --trust-password and --trust-type.",
  );
  assert.equal(
    withFlags("Use it as the truststore (`loadTrustStore`).", truststoreFlags("truststore")),
    "Use it as the truststore (--truststore).",
  );
  // Names the table lacks, and backticks around other things, stay as they are.
  assert.equal(
    withFlags("Run `openssl pkcs12` with `alias`.", trust),
    "Run `openssl pkcs12` with `alias`.",
  );
  assert.equal(withFlags("no options here", KEYSTORE_FLAGS), "no options here");
});

Deno.test("errorWithFlags() keeps the error's class, code, stage and cause", () => {
  const cause = new Error("inner");
  const error = new StoreError('Keystore "a.jks" has no key entry "x"', {
    code: "STORE_ALIAS_UNKNOWN",
    hint: "Give one of the listed aliases with `alias`.",
    cause,
  });
  const same = errorWithFlags(error, KEYSTORE_FLAGS);
  assert.ok(same instanceof StoreError);
  assert.equal(same.code, "STORE_ALIAS_UNKNOWN");
  assert.equal(same.stage, error.stage);
  assert.equal(same.cause, cause);
  assert.equal(same.hint, "Give one of the listed aliases with --alias.");
  const other = new Error("not ours");
  assert.equal(errorWithFlags(other, KEYSTORE_FLAGS), other);
});

Deno.test({
  name: "the store errors of the library name options, never command-line flags",
  permissions: read,
  async fn(): Promise<void> {
    const failures: (() => Promise<unknown>)[] = [
      () => loadKeyStore(bytes("devices/multi.jks"), { password: "changeit", name: "multi.jks" }),
      () => loadKeyStore(bytes("devices/multi.jks"), { password: "changeit", alias: "no-such" }),
      () => loadKeyStore(bytes("devices/rsa.jks"), { password: "changeit", type: "pkcs12" }),
      () => loadKeyStore(bytes("devices/rsa.jks"), { password: "wrong-password" }),
      () => loadKeyStore(bytes("devices/rsa.openssl3.p12"), { password: "wrong-password" }),
      () => loadKeyStore(bytes("devices/rsa.openssl3.p12"), {}),
      () =>
        loadKeyStore(bytes("devices/rsa.keypass.jks"), { password: "changeit", keyPassword: "x" }),
      () => loadKeyStore(bytes("devices/rsa.pem"), {}),
      () => loadKeyStore(bytes("devices/rsa.key"), {}),
      () => loadKeyStore(bytes("devices/truststore.jks"), { password: "changeit" }),
      () => loadKeyStore(bytes("devices/rsa.pem"), { alias: "a", key: bytes("devices/rsa.key") }),
      () =>
        loadKeyStore(bytes("devices/rsa.jks"), {
          password: "changeit",
          key: bytes("devices/rsa.key"),
        }),
      () => loadTrustStore(bytes("devices/truststore.jks"), { password: "wrong-password" }),
      () => loadTrustStore(bytes("devices/truststore.p12"), {}),
      () => loadTrustStore(bytes("devices/truststore.jks"), { type: "pkcs12" }),
      () => loadTrustStore(bytes("devices/rsa.key"), {}),
      () => loadTrustStore(new TextEncoder().encode("hello"), {}),
    ];
    for (const [i, failure] of failures.entries()) {
      const error = await failure().then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof C8yError, `case ${i}: expected a C8yError, got ${error}`);
      assert.doesNotMatch(error.message, FLAG, `case ${i}: ${error.message}`);
      assert.doesNotMatch(error.hint, FLAG, `case ${i}: ${error.hint}`);
    }
  },
});

Deno.test({
  name: "the CLI prints the keystore's and the truststore's own flags in store hints",
  permissions: { read: true, run: [Deno.execPath()] },
  async fn(): Promise<void> {
    const keystore = await runCli(
      [
        "inspect",
        "--keystore",
        "fixtures/devices/multi.jks",
        "--keystore-password",
        "pass:changeit",
        "--alias",
        "no-such",
      ],
      { read: ["fixtures"] },
    );
    assert.equal(keystore.code, 3, keystore.stderr);
    assert.match(keystore.stderr, /^hint: Give one of the listed aliases with --alias\.$/m);
    const truststore = await runCli(
      ["inspect", "--truststore", "fixtures/devices/truststore.jks", "--truststore-type", "pkcs12"],
      { read: ["fixtures"] },
    );
    assert.equal(truststore.code, 3, truststore.stderr);
    assert.match(truststore.stderr, /^hint: Use --truststore-type jks, or leave the option out/m);
    const password = await runCli(
      [
        "inspect",
        "--truststore",
        "fixtures/devices/truststore.jks",
        "--truststore-password",
        "pass:wrong-password",
      ],
      { read: ["fixtures"] },
    );
    assert.equal(password.code, 3, password.stderr);
    assert.match(password.stderr, /^hint: .*--truststore-password/m);
    assert.doesNotMatch(password.stderr, /`/);
    // A finding of diagnose() names the option clientId; inspect prints --client-id.
    const finding = await runCli(
      [
        "inspect",
        "--keystore",
        "fixtures/devices/rsa.pem",
        "--key",
        "fixtures/devices/rsa.key",
        "--client-id",
        "d:someone-else",
      ],
      { read: ["fixtures"] },
    );
    assert.equal(finding.code, 4, finding.stderr);
    assert.match(
      finding.stdout,
      /hint: Use --client-id d:device-rsa-001, or leave --client-id out\./,
    );
    assert.doesNotMatch(finding.stdout, /`/);
  },
});
