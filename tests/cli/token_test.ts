import assert from "node:assert/strict";
import type { Emulator, EmulatorOptions } from "../../lib/emulator/mod.ts";
import { type CliPermissions, type CliResult, runCli } from "../support/cli.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const text = (p: string) => Deno.readTextFileSync(new URL(p, fixtures));
const PASSWORD = "changeit";

/** The emulator of these tests: the fixture one, also trusting the intermediate CA, own tenant. */
const CLI_EMULATOR: Partial<EmulatorOptions> = {
  trustedCaPems: [text("ca/device-root-ca.pem"), text("ca/device-intermediate-ca.pem")],
  tenant: "t-cli",
};

const TRUST = "fixtures/server/server-truststore.jks";

/** A keystore as the CLI is given it: the files to read and the flags. */
interface StoreArgs {
  label: string;
  files: string[];
  args: string[];
}

/** The options of a store password given on the command line. */
const STORE_PASSWORD = ["--keystore-password", `pass:${PASSWORD}`];

/** A keystore file and its options: by default the store password. */
function store(path: string, options: string[] = STORE_PASSWORD): StoreArgs {
  return {
    label: path.slice(path.lastIndexOf("/") + 1),
    files: [path],
    args: ["--keystore", path, ...options],
  };
}

function storeVariants(device: string): StoreArgs[] {
  const d = `fixtures/devices/${device}`;
  return [
    store(`${d}.openssl3.p12`),
    store(`${d}.legacy.p12`),
    store(`${d}.jdk.p12`),
    store(`${d}.nomac.p12`),
    store(`${d}.jks`),
    store(`${d}.keypass.jks`, [...STORE_PASSWORD, "--key-password", "pass:keysecret"]),
    {
      label: `${device}.chain.pem + ${device}.key.enc.pem`,
      files: [`${d}.chain.pem`, `${d}.key.enc.pem`],
      args: [
        "--keystore",
        `${d}.chain.pem`,
        "--key",
        `${d}.key.enc.pem`,
        "--key-password",
        "pass:changeit",
      ],
    },
  ];
}

/** The command line of `command` for `device` against the emulator, trusting its server. */
function deviceArgs(
  emulator: Emulator,
  command: "token" | "check",
  device: StoreArgs,
  extra: string[] = [],
): string[] {
  return [command, "--url", emulator.url, ...device.args, "--truststore", TRUST, ...extra];
}

/** Exactly the permissions {@linkcode deviceArgs} need. */
function devicePerms(emulator: Emulator, device: StoreArgs): CliPermissions {
  return { read: [...device.files, TRUST], net: [`127.0.0.1:${emulator.port}`] };
}

/** Runs {@linkcode deviceArgs} under exactly their permissions. */
function runDevice(
  emulator: Emulator,
  command: "token" | "check",
  device: StoreArgs,
  extra: string[] = [],
): Promise<CliResult> {
  return runCli(deviceArgs(emulator, command, device, extra), devicePerms(emulator, device));
}

const CN: Record<string, string> = {
  rsa: "device-rsa-001",
  ec256: "device-ec256-001",
  ec384: "device-ec384-001",
};

Deno.test("token fetches a JWT from the emulator with every fixture keystore", async (t) => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  for (const device of ["rsa", "ec256", "ec384"]) {
    for (const store of storeVariants(device)) {
      await t.step(store.label, async () => {
        const r = await runDevice(emulator, "token", store);
        assert.equal(r.code, 0, r.stderr);
        const token = r.stdout.trim();
        assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "stdout holds the token alone");
        const claims = JSON.parse(
          atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")),
        );
        assert.equal(claims.sub, `device_${CN[device]}`);
        assert.equal(claims.ten, "t-cli");
        assert.ok(!r.stderr.includes(PASSWORD) && !r.stderr.includes("keysecret"));
        assert.ok(!r.stderr.includes(token), "progress never shows the token");
      });
    }
  }
});

Deno.test("token --json prints one object with claims, expiry and timings", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const ks = store("fixtures/devices/ec256.jdk.p12", ["--keystore-password", "env:KS_PW"]);
  const url = `ssl://127.0.0.1:${emulator.port}`;
  const r = await runCli(
    ["token", "--url", url, ...ks.args, "--truststore", TRUST, "--json"],
    { ...devicePerms(emulator, ks), env: ["KS_PW"] },
    { env: { KS_PW: PASSWORD } },
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.ok, true);
  assert.equal(out.clientId, "d:device-ec256-001");
  assert.equal(out.tenant, "t-cli");
  assert.equal(out.claims.sub, "device_device-ec256-001");
  assert.ok(Date.parse(out.expiresAt) > Date.now());
  assert.equal(typeof out.timings.tls, "number");
});

Deno.test("token output is never altered by password scrubbing, even for a one-letter password", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const chain = "fixtures/devices/rsa.chain.pem";
  const key = "fixtures/devices/rsa.key";
  // The PEM key is not encrypted, so the (unused) password "e" must not touch the token.
  const r = await runDevice(emulator, "token", {
    label: "rsa.chain.pem + rsa.key",
    files: [chain, key],
    args: ["--keystore", chain, "--key", key, "--keystore-password", "pass:e"],
  }, ["--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.match(out.token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.equal(out.clientId, "d:device-rsa-001");
});

/** The stages of a whole run, in order: one vocabulary for check, token and error.stage. */
const ALL_STAGES = ["store", "certificate", "dns", "tcp", "tls", "mqtt", "subscribe", "token"];

/** The `stages` of `check --json`, checked to name each stage once. */
function stagesOf(body: { stages: { stage: string }[] }): string[] {
  const names = body.stages.map((s) => s.stage);
  assert.equal(new Set(names).size, names.length, `a stage twice: ${names}`);
  return names;
}

Deno.test("check reports every stage once with a mark and a time", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const r = await runDevice(emulator, "check", store("fixtures/devices/rsa.jks"));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const rows = r.stdout.split("\n").filter((l) => /^[✓!✗] /.test(l));
  assert.deepEqual(rows.map((l) => l.split(/\s+/)[1]), ALL_STAGES);
  for (const row of rows) assert.match(row, /^✓ \S+\s+\d+ ms/);
  assert.match(
    r.stdout,
    /✓ store\s+\d+ ms\s+keystore fixtures\/devices\/rsa\.jks: jks alias "rsa"/,
  );
  assert.match(r.stdout, /✓ certificate\s+\d+ ms\s+d:device-rsa-001; no errors or warnings/);
  assert.match(
    r.stdout,
    /✓ tls\s+\d+ ms\s+TLSv1\.[23], server certificate "CN=localhost" \(issued by "CN=c8y-mqtt-cert Test Server CA"\) trusted/,
  );
  assert.match(r.stdout, /✓ mqtt\s+\d+ ms\s+CONNACK 0 \(accepted\) as d:device-rsa-001/);
  assert.match(r.stdout, /✓ token\s+\d+ ms\s+71 on s\/dat, device_device-rsa-001, expires /);
});

Deno.test("check --json stages[], token --json timings and error.stage speak one vocabulary", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const device = store("fixtures/devices/ec256.jks");
  const check = await runDevice(emulator, "check", device, ["--json"]);
  assert.equal(check.code, 0, check.stderr);
  const body = JSON.parse(check.stdout);
  assert.deepEqual(stagesOf(body), ALL_STAGES);
  for (const s of body.stages) assert.deepEqual([s.state, s.ok], ["ok", true], s.stage);
  const token = await runDevice(emulator, "token", device, ["--json"]);
  assert.equal(token.code, 0, token.stderr);
  assert.deepEqual(Object.keys(JSON.parse(token.stdout).timings), ALL_STAGES);
  // A failure's error.stage is the name of its row.
  const refused = await runDevice(emulator, "check", store("fixtures/bad/unknown-ca.p12"), [
    "--json",
  ]);
  const failed = JSON.parse(refused.stdout);
  assert.equal(failed.error.stage, "mqtt");
  assert.equal(failed.stages.at(-1).stage, "mqtt");
  assert.equal(failed.stages.at(-1).state, "error");
});

Deno.test("check stops at the certificate stage for an expired device; --force goes on, the stage stays ✗", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const ks = store("fixtures/bad/expired.p12");
  const base = deviceArgs(emulator, "check", ks, ["--json"]);
  const perms = devicePerms(emulator, ks);
  const stopped = await runCli(base, perms);
  assert.equal(stopped.code, 4, stopped.stdout);
  const body = JSON.parse(stopped.stdout);
  assert.equal(body.error.code, "CERT_EXPIRED");
  assert.equal(body.error.stage, "certificate");
  assert.match(body.error.hint, /\(--force connects anyway\.\)$/);
  assert.deepEqual(stagesOf(body), ["store", "certificate"]);
  assert.equal(body.stages.at(-1).state, "error");
  assert.equal(body.stages.at(-1).ok, false);

  const forced = await runCli([...base, "--force"], perms);
  assert.equal(forced.code, 7, forced.stdout);
  const refused = JSON.parse(forced.stdout);
  assert.equal(refused.error.returnCode, 5);
  assert.deepEqual(stagesOf(refused).slice(0, 2), ["store", "certificate"]);
  assert.equal(refused.stages[1].state, "error");
  assert.equal(refused.stages.at(-1).stage, "mqtt");
  // The refusal is explained by what the offline checks found, not by "retry".
  assert.match(
    refused.error.hint,
    /^Most likely a certificate of the device chain has expired \(CERT_EXPIRED\)/,
  );
  assert.doesNotMatch(refused.error.hint, /retry/i);

  // On the terminal: each stage once, never "✓ certificate" beside an error.
  const human = await runCli(base.filter((a) => a !== "--json").concat("--force"), perms);
  assert.equal(human.code, 7);
  assert.equal(human.stdout.match(/^. certificate /gm)?.length, 1, human.stdout);
  assert.match(
    human.stdout,
    /^✗ certificate\s+\d+ ms\s+d:device-expired; 1 error \(--force: connecting anyway\)$/m,
  );
  assert.equal(human.stdout.match(/CERT_EXPIRED/g)?.length, 1, "the finding is listed once");
  assert.match(human.stderr, /^hint: Most likely .*\(CERT_EXPIRED\)/m);
});

Deno.test("check marks a certificate stage with warnings '!' and still connects", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  // Leaf and root without the intermediate: a gap the emulator fills from its trusted CAs.
  const root = new URL("../../", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ dir: root, prefix: ".tmp-leaf-root-" });
  try {
    const chain = `${dir}/leaf-and-root.pem`;
    await Deno.writeTextFile(chain, text("devices/rsa.pem") + text("ca/device-root-ca.pem"));
    const rel = chain.slice(root.length);
    const device = {
      label: "leaf + root",
      files: [rel, "fixtures/devices/rsa.key"],
      args: ["--keystore", rel, "--key", "fixtures/devices/rsa.key"],
    };
    const r = await runDevice(emulator, "check", device, ["--json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const body = JSON.parse(r.stdout);
    const certificate = body.stages.find((s: { stage: string }) => s.stage === "certificate");
    assert.equal(certificate.state, "warning");
    assert.equal(certificate.ok, true);
    assert.match(certificate.detail, /1 warning/);
    assert.deepEqual(body.problems.map((p: { code: string }) => p.code), ["CHAIN_INCOMPLETE"]);
    const human = await runDevice(emulator, "check", device);
    assert.match(human.stdout, /^! certificate\s+\d+ ms\s+d:device-rsa-001; 1 warning$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("token from a device of an unknown CA is refused with CONNACK 5, explained by CHAIN_ANCHOR", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const r = await runDevice(emulator, "token", store("fixtures/bad/unknown-ca.p12"));
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stderr, /^error: .*CONNACK 5/m);
  assert.match(
    r.stderr,
    /^hint: Most likely the tenant does not trust the device chain's CA \(CHAIN_ANCHOR\)\. Upload "CN=c8y-mqtt-cert Unknown CA"/m,
  );
  assert.doesNotMatch(r.stderr, /retry/i);
  assert.ok(!/^\s+at /m.test(r.stderr));
  // token's progress: the same stage lines as check's, the failed one marked ✗.
  assert.match(r.stderr, /^✓ store\s+\d+ ms/m);
  assert.match(r.stderr, /^✗ mqtt\s+\d+ ms/m);
});

Deno.test("token names the missing permission flag for each flag left out", async (t) => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const ks = "fixtures/devices/rsa.jks";
  const host = `127.0.0.1:${emulator.port}`;
  const device = store(ks, ["--keystore-password", "env:KS_PW"]);
  const args = deviceArgs(emulator, "token", device);
  const all = { ...devicePerms(emulator, device), env: ["KS_PW"] };
  const cases: [string, CliPermissions, string][] = [
    ["read of the keystore", { ...all, read: [TRUST] }, `--allow-read=${ks}`],
    ["read of the truststore", { ...all, read: [ks] }, `--allow-read=${TRUST}`],
    ["net", { ...all, net: [] }, `--allow-net=${host}`],
    ["env", { ...all, env: [] }, "--allow-env=KS_PW"],
  ];
  for (const [what, perms, flag] of cases) {
    await t.step(`without ${what}`, async () => {
      const r = await runCli(args, perms, { env: { KS_PW: PASSWORD } });
      assert.equal(r.code, 9, r.stderr);
      assert.ok(r.stderr.split("\n")[0]!.includes(flag), r.stderr);
      assert.match(r.stderr, /hint: Run: deno run --ignore-env --allow-read=.*cli\.ts token/);
    });
  }
  const ok = await runCli(args, all, { env: { KS_PW: PASSWORD } });
  assert.equal(ok.code, 0, ok.stderr);
});

Deno.test("check --client-id of another device --force: the certificate stage once as ✗, then the broker's answer", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const device = store("fixtures/devices/rsa.jks");
  const extra = ["--client-id", "d:someone-else", "--force"];
  const r = await runDevice(emulator, "check", device, [...extra, "--json"]);
  assert.equal(r.code, 7, r.stdout);
  const body = JSON.parse(r.stdout);
  assert.deepEqual(stagesOf(body), ["store", "certificate", "dns", "tcp", "tls", "mqtt"]);
  assert.deepEqual(
    body.stages.map((s: { state: string }) => s.state),
    ["ok", "error", "ok", "ok", "ok", "error"],
  );
  assert.equal(body.error.code, "MQTT_NOT_AUTHORIZED");
  assert.match(body.error.message, /"d:someone-else"/);
  assert.match(
    body.error.hint,
    /^Most likely the client id does not name .*\(CLIENT_ID_MISMATCH\)/,
  );
  const human = await runDevice(emulator, "check", device, extra);
  assert.equal(human.code, 7);
  assert.equal(human.stdout.match(/CLIENT_ID_MISMATCH/g)?.length, 1, human.stdout);
  assert.doesNotMatch(
    human.stdout + human.stderr,
    /names device "someone-else", but the certificate's/,
  );
});

Deno.test("check and token --verbose show the tls row when MQTT fails: TLS version, server certificate", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const device = store("fixtures/bad/unknown-ca.p12");
  const tls =
    /^✓ tls\s+\d+ ms\s+TLSv1\.[23], server certificate "CN=localhost" \(issued by "CN=c8y-mqtt-cert Test Server CA"\) trusted$/m;
  const check = await runDevice(emulator, "check", device);
  assert.equal(check.code, 7);
  assert.match(check.stdout, tls);
  assert.match(check.stdout, /^✗ mqtt\s+\d+ ms\s+.*CONNACK 5, not authorized$/m);
  const token = await runDevice(emulator, "token", device, ["--verbose"]);
  assert.equal(token.code, 7);
  assert.match(token.stderr, tls);
  // Without --verbose the same rows, without the connection's details.
  const quiet = await runDevice(emulator, "token", device);
  assert.match(quiet.stderr, /^✓ tls\s+\d+ ms$/m);
});

Deno.test("token --verbose shows what check shows about the connection", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const r = await runDevice(emulator, "token", store("fixtures/devices/ec256.jks"), ["-v"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /^✓ tls\s+\d+ ms\s+TLSv1\.[23], server certificate "CN=localhost" \(issued by /m,
  );
  assert.match(r.stderr, /^✓ mqtt\s+\d+ ms\s+CONNACK 0 \(accepted\) as d:device-ec256-001$/m);
});

Deno.test("an untrusted server certificate is named with its subject and issuer", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const device = store("fixtures/devices/rsa.jks");
  const args = [
    "check",
    "--url",
    emulator.url,
    ...device.args,
    "--truststore",
    "fixtures/ca/unknown-ca.pem",
  ];
  const r = await runCli(args, {
    read: [...device.files, "fixtures/ca/unknown-ca.pem"],
    net: [`127.0.0.1:${emulator.port}`],
  });
  assert.equal(r.code, 6, r.stderr);
  assert.match(
    r.stderr,
    /^error: The server certificate of mqtts:\/\/127\.0\.0\.1:\d+ \("CN=localhost", issued by "CN=c8y-mqtt-cert Test Server CA"\) is not trusted/m,
  );
  assert.match(r.stderr, /^hint: The truststore does not hold "CN=c8y-mqtt-cert Test Server CA"/m);
  assert.match(r.stdout, /^✗ tls /m);
});
