/**
 * `token --via rest` and `check --via rest` against the emulator's REST endpoint, under exactly the
 * permissions the planner asks for.
 */

import assert from "node:assert/strict";
import { runCli } from "./cli_helpers.ts";
import { startFixtureEmulator } from "./test_helpers.ts";

const TRUST = "fixtures/server/server-truststore.jks";
const KEYSTORE = "fixtures/devices/rsa.jks";

Deno.test("token --via rest and check --via rest against the emulator, with only the REST address allowed", async () => {
  await using emulator = await startFixtureEmulator({ restPort: 0 });
  const args = (command: string, keystore = KEYSTORE): string[] => [
    command,
    "--url",
    emulator.url,
    "--keystore",
    keystore,
    "--keystore-password",
    "pass:changeit",
    "--truststore",
    TRUST,
    "--via",
    "rest",
    "--rest-url",
    emulator.restUrl!,
  ];
  const net = [`127.0.0.1:${emulator.restPort}`];
  const token = await runCli(args("token"), { read: [KEYSTORE, TRUST], net });
  assert.equal(token.code, 0, token.stderr);
  assert.match(token.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);

  const check = await runCli([...args("check"), "--json"], { read: [KEYSTORE, TRUST], net });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const report = JSON.parse(check.stdout);
  assert.equal(report.via, "rest");
  assert.equal(report.restUrl, emulator.restUrl);
  assert.deepEqual(
    report.stages.map((s: { stage: string }) => s.stage).slice(-5),
    ["dns", "tcp", "tls", "http", "token"],
  );

  // An untrusted device: exit 8 at stage http, the 401 named.
  const bad = "fixtures/bad/unknown-ca.p12";
  const refused = await runCli([...args("check", bad), "--force", "--json"], {
    read: [bad, TRUST],
    net,
  });
  assert.equal(refused.code, 8, refused.stdout + refused.stderr);
  const error = JSON.parse(refused.stdout).error;
  assert.equal(error.code, "HTTP_UNAUTHORIZED");
  assert.equal(error.stage, "http");
  // Explained by the offline findings of the same run, as a refusal over MQTT is.
  assert.match(
    error.hint,
    /^Most likely the tenant does not trust the device chain's CA \(CHAIN_ANCHOR\)\. Upload "CN=c8y-mqtt-cert Unknown CA".* the device may not be registered for certificate authentication\.$/,
  );
});

Deno.test("the permission planner names the REST host:port for --via rest (and --allow-sys without a truststore)", async () => {
  const base = [
    "token",
    "--url",
    "ssl://mqtt.example.com:8883",
    "--keystore",
    KEYSTORE,
    "--keystore-password",
    "pass:changeit",
    "--via",
    "rest",
  ];
  const withTrust = await runCli([
    ...base,
    "--truststore",
    TRUST,
    "--rest-url",
    "rest.example.com:8443",
  ], {
    read: [KEYSTORE, TRUST],
  });
  assert.equal(withTrust.code, 9, withTrust.stderr);
  assert.match(
    withTrust.stderr,
    /connecting to rest\.example\.com:8443 needs --allow-net=rest\.example\.com:8443/,
  );
  assert.doesNotMatch(withTrust.stderr, /--allow-net=mqtt|--allow-sys/);

  const defaultRoots = await runCli(base, { read: [KEYSTORE] });
  assert.equal(defaultRoots.code, 9, defaultRoots.stderr);
  // The pass: password moves to env:KEYSTORE_PASSWORD in the suggested line (never repeated).
  assert.match(
    defaultRoots.stderr,
    /--allow-net=mqtt\.example\.com:443 --allow-env=KEYSTORE_PASSWORD --allow-sys /,
  );
});
