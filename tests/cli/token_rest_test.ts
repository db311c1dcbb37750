/**
 * `token --via rest` and `check --via rest` against the emulator's REST endpoint, under exactly the
 * permissions the planner asks for.
 */

import assert from "node:assert/strict";
import { ROOT, runCli } from "../support/cli.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

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

Deno.test("the permission planner names the REST host:port for --via rest, and neither --allow-sys nor --ignore-env", async () => {
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
    ignoreEnv: false,
  });
  assert.equal(withTrust.code, 9, withTrust.stderr);
  assert.match(
    withTrust.stderr,
    /connecting to rest\.example\.com:8443 needs --allow-net=rest\.example\.com:8443/,
  );
  assert.doesNotMatch(withTrust.stderr, /--allow-net=mqtt|--allow-sys|--ignore-env|MQTT\.js/);

  const defaultRoots = await runCli(base, { read: [KEYSTORE], ignoreEnv: false });
  assert.equal(defaultRoots.code, 9, defaultRoots.stderr);
  // The pass: password moves to env:KEYSTORE_PASSWORD in the suggested line (never repeated).
  assert.match(
    defaultRoots.stderr,
    /run: deno run --allow-read=fixtures\/devices\/rsa\.jks --allow-net=mqtt\.example\.com:443 --allow-env=KEYSTORE_PASSWORD cli\.ts token /,
  );
  assert.doesNotMatch(defaultRoots.stderr, /--allow-sys|--ignore-env/);

  // Over MQTT, --ignore-env is still asked for (MQTT.js loads).
  const mqtt = await runCli(base.slice(0, -2), {
    read: [KEYSTORE],
    net: ["mqtt.example.com:8883"],
    ignoreEnv: false,
  });
  assert.equal(mqtt.code, 9, mqtt.stderr);
  assert.match(
    mqtt.stderr,
    /loading MQTT\.js, whose dependencies look up environment variables, needs --ignore-env/,
  );
});

Deno.test("token --via rest needs neither --allow-sys nor --ignore-env: without a truststore the default root CAs apply", async () => {
  await using emulator = await startFixtureEmulator({ restPort: 0 });
  const net = [`127.0.0.1:${emulator.restPort}`];
  const common = ["--keystore", KEYSTORE, "--keystore-password", "pass:changeit", "--via", "rest"];
  // No truststore: the default root CAs do not hold the fixture server CA, so the TLS stage
  // names the untrusted server certificate (exit 6); no permission is asked for.
  const untrusted = await runCli(
    ["token", ...common, "--rest-url", emulator.restUrl!, "--json"],
    { read: [KEYSTORE], net, ignoreEnv: false },
  );
  assert.equal(untrusted.code, 6, untrusted.stdout + untrusted.stderr);
  const error = JSON.parse(untrusted.stdout).error;
  assert.equal(error.code, "TLS_SERVER_UNTRUSTED");
  assert.match(error.hint, /default root CAs do not trust it/);
  // With the truststore, and still without --ignore-env, the token comes.
  const ok = await runCli(
    ["token", ...common, "--truststore", TRUST, "--rest-url", emulator.restUrl!],
    { read: [KEYSTORE, TRUST], net, ignoreEnv: false },
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
});

Deno.test("--via rest takes the REST address from --rest-url alone, or from an https:// --url", async () => {
  await using emulator = await startFixtureEmulator({ restPort: 0 });
  const net = [`127.0.0.1:${emulator.restPort}`];
  const common = [
    "--keystore",
    KEYSTORE,
    "--keystore-password",
    "pass:changeit",
    "--truststore",
    TRUST,
    "--via",
    "rest",
  ];
  const permissions = { read: [KEYSTORE, TRUST], net, ignoreEnv: false };
  const restOnly = await runCli(
    ["check", ...common, "--rest-url", emulator.restUrl!, "--json"],
    permissions,
  );
  assert.equal(restOnly.code, 0, restOnly.stdout + restOnly.stderr);
  const report = JSON.parse(restOnly.stdout);
  assert.equal(report.restUrl, emulator.restUrl);
  assert.equal(report.url, undefined, "no broker without --url");

  const httpsUrl = await runCli(["token", ...common, "--url", emulator.restUrl!], permissions);
  assert.equal(httpsUrl.code, 0, httpsUrl.stderr);
  assert.doesNotMatch(httpsUrl.stderr, /MQTT endpoint/);

  const both = await runCli(
    ["token", ...common, "--url", emulator.restUrl!, "--rest-url", emulator.restUrl!],
    permissions,
  );
  assert.equal(both.code, 2, both.stderr);
  assert.match(
    both.stderr,
    /--rest-url names one too; with --via rest give the HTTPS address once/,
  );

  const neither = await runCli(["token", ...common], permissions);
  assert.equal(neither.code, 2, neither.stderr);
  assert.match(neither.stderr, /The token command with --via rest needs --rest-url \(or --url\)/);

  // Over MQTT an https:// --url is still a web address, not a broker.
  const mqtt = await runCli(
    ["token", ...common.slice(0, -2), "--url", emulator.restUrl!],
    { read: [KEYSTORE, TRUST] },
  );
  assert.equal(mqtt.code, 2, mqtt.stderr);
  assert.match(
    mqtt.stderr,
    /MQTT endpoint.*\n.*add --via rest \(the https:\/\/ URL is then the REST address\)/,
  );
});

Deno.test("check --via rest at the emulator's MQTT port names the wrong endpoint, not only the certificate", async () => {
  const events: { kind: string; reason?: string }[] = [];
  await using emulator = await startFixtureEmulator({
    restPort: 0,
    log: (e) => events.push(e as { kind: string; reason?: string }),
  });
  const mqttPort = Number(new URL(emulator.url.replace(/^mqtts:/, "https:")).port);
  const restUrl = `https://127.0.0.1:${mqttPort}`;
  const args = [
    "check",
    "--keystore",
    KEYSTORE,
    "--keystore-password",
    "pass:changeit",
    "--truststore",
    TRUST,
    "--via",
    "rest",
    "--rest-url",
    restUrl,
    "--json",
  ];
  const permissions = { read: [KEYSTORE, TRUST], net: [`127.0.0.1:${mqttPort}`] };

  // The REST URL is the broker's own address (--url): the wrong endpoint comes first.
  const broker = await runCli([...args, "--url", emulator.url], permissions);
  assert.equal(broker.code, 6, broker.stdout + broker.stderr);
  const first = JSON.parse(broker.stdout).error;
  assert.equal(first.code, "TLS_CLOSED_AFTER_HANDSHAKE");
  assert.equal(first.stage, "tls");
  assert.match(
    first.message,
    /closed the connection right after the TLS 1\.3 handshake, without answering the token request: most likely this is not the REST endpoint \(it is the MQTT broker's address, which does not speak HTTP\); else the server did not accept the device certificate/,
  );
  assert.match(first.hint, /^Give the tenant's HTTPS address as the REST URL/);
  assert.doesNotMatch(first.hint, /CHAIN_ANCHOR/);
  // The peer really was the MQTT broker, which took the HTTP request for a broken MQTT packet.
  assert.ok(events.some((e) => e.kind === "error" && /Invalid protocol/.test(e.reason ?? "")));

  // Without --url the port is not known as MQTT's: the certificate first, the port second.
  const unknown = await runCli(args, permissions);
  assert.equal(unknown.code, 6, unknown.stdout + unknown.stderr);
  const second = JSON.parse(unknown.stdout).error;
  assert.equal(second.code, "TLS_CLIENT_CERT_REFUSED");
  assert.match(
    second.message,
    new RegExp(
      `most likely it did not accept the device certificate .*; else port ${mqttPort} is not the REST endpoint \\(an MQTT port such as 8883 closes the connection on an HTTP request\\)`,
    ),
  );
});

Deno.test("the README's install line (and deno task compile's flags) take the token over REST without a truststore or --allow-sys", async () => {
  const readme = Deno.readTextFileSync(`${ROOT}/README.md`);
  const install = /^deno install --global --name c8y-mqtt-cert (.*) cli\.ts$/m.exec(readme)?.[1];
  assert.ok(install, "README has the install line");
  const flags = install.split(" ");
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const compile = /^deno compile (.*) --output \S+ cli\.ts$/.exec(config.tasks.compile)?.[1];
  assert.deepEqual(compile?.split(" ").sort(), [...flags].sort(), "install and compile agree");
  assert.ok(!flags.includes("--allow-sys"));

  await using emulator = await startFixtureEmulator({ restPort: 0 });
  const run = async (extra: string[]): Promise<{ code: number; stdout: string }> => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        ...flags,
        "cli.ts",
        "token",
        "--via",
        "rest",
        "--rest-url",
        emulator.restUrl!,
        "--keystore",
        KEYSTORE,
        "--keystore-password",
        "pass:changeit",
        "--json",
        ...extra,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
  };
  // No truststore: the default root CAs are read without sys access; they do not hold the fixture
  // server CA, so the TLS stage says so (exit 6), not a permission (exit 9).
  const roots = await run([]);
  assert.equal(roots.code, 6, roots.stdout);
  assert.equal(JSON.parse(roots.stdout).error.code, "TLS_SERVER_UNTRUSTED");
  const trusted = await run(["--truststore", TRUST]);
  assert.equal(trusted.code, 0, trusted.stdout);
  assert.equal(JSON.parse(trusted.stdout).ok, true);
});

Deno.test("check --via rest to a host name works under --allow-net=<host>:<port> alone and times its dns stage", async () => {
  await using emulator = await startFixtureEmulator({ restPort: 0 });
  // The fixture server certificate names "localhost": only the address form changes.
  const restUrl = `https://localhost:${emulator.restPort}`;
  const check = await runCli([
    "check",
    "--keystore",
    KEYSTORE,
    "--keystore-password",
    "pass:changeit",
    "--truststore",
    TRUST,
    "--via",
    "rest",
    "--rest-url",
    restUrl,
    "--json",
  ], { read: [KEYSTORE, TRUST], net: [`localhost:${emulator.restPort}`], ignoreEnv: false });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const stages = JSON.parse(check.stdout).stages as { stage: string; detail?: string }[];
  assert.deepEqual(stages.map((s) => s.stage).slice(-5), ["dns", "tcp", "tls", "http", "token"]);
  assert.match(
    stages.find((s) => s.stage === "dns")?.detail ?? "",
    /^localhost -> (127\.0\.0\.1|::1)$/,
  );
});
