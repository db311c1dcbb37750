import assert from "node:assert/strict";
import type { Emulator, EmulatorOptions } from "../lib/emulator/mod.ts";
import { type CliPermissions, type CliResult, runCli } from "./cli_helpers.ts";
import { startFixtureEmulator } from "./test_helpers.ts";

const fixtures = new URL("../fixtures/", import.meta.url);
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

Deno.test("check reports every stage with a mark and a time", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const r = await runDevice(emulator, "check", store("fixtures/devices/rsa.jks"));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const stage of ["keystore", "truststore", "certificates", "tls", "mqtt", "token"]) {
    assert.match(r.stdout, new RegExp(`✓ ${stage}\\s+\\d+ ms`), `${stage} in:\n${r.stdout}`);
  }
  assert.match(r.stdout, /✓ tls\s+\d+ ms\s+TLSv1\.[23], server certificate trusted/);
  assert.match(r.stdout, /✓ mqtt\s+\d+ ms\s+CONNACK 0 \(accepted\) as d:device-rsa-001/);
  assert.match(r.stdout, /✓ token\s+\d+ ms\s+71 on s\/dat, device_device-rsa-001, expires /);
});

Deno.test("check stops at the certificates stage for an expired device, --force goes on to mqtt", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const ks = store("fixtures/bad/expired.p12");
  const base = deviceArgs(emulator, "check", ks, ["--json"]);
  const perms = devicePerms(emulator, ks);
  const stopped = await runCli(base, perms);
  assert.equal(stopped.code, 4, stopped.stdout);
  const body = JSON.parse(stopped.stdout);
  assert.equal(body.error.code, "CERT_EXPIRED");
  assert.equal(body.stages.at(-1).stage, "certificates");
  assert.equal(body.stages.at(-1).ok, false);
  const forced = await runCli([...base, "--force"], perms);
  assert.equal(forced.code, 7, forced.stdout);
  assert.equal(JSON.parse(forced.stdout).error.returnCode, 5);
});

Deno.test("token from a device of an unknown CA is refused by the emulator with CONNACK 5", async () => {
  await using emulator = await startFixtureEmulator(CLI_EMULATOR);
  const r = await runDevice(emulator, "token", store("fixtures/bad/unknown-ca.p12"));
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stderr, /^error: .*/m);
  assert.match(r.stderr, /^hint: /m);
  assert.ok(!/^\s+at /m.test(r.stderr));
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
