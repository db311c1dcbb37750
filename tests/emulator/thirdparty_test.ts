/**
 * The emulator against third-party MQTT clients, so that it is known to speak plain MQTT over
 * TLS: mosquitto's command-line clients (Debian package `mosquitto-clients`) and, when installed,
 * the Eclipse Paho Python client (`python3-paho-mqtt`).
 *
 * Without `mosquitto_rr`/`mosquitto_pub` the mosquitto tests are ignored with a warning, unless
 * `REQUIRE_MOSQUITTO=1` (set by `.ci/run`) makes them run and fail.
 */
import assert from "node:assert/strict";
import type { Emulator } from "../../lib/emulator/mod.ts";
import { loadJose } from "../../lib/deps.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const path = (p: string): string => new URL(p, fixtures).pathname;

/** Whether the command runs and exits with 0 (false when it is not installed). */
function runs(cmd: string, args: string[]): Promise<boolean> {
  return run(cmd, args).then((out) => out.code === 0, () => false);
}

const requireMosquitto = Deno.env.get("REQUIRE_MOSQUITTO") === "1";
const haveMosquitto = await runs("sh", [
  "-c",
  "command -v mosquitto_rr && command -v mosquitto_pub",
]);
if (!haveMosquitto) {
  console.warn(
    requireMosquitto
      ? "mosquitto_rr/mosquitto_pub not found, but REQUIRE_MOSQUITTO=1: the tests will fail"
      : "SKIPPING the emulator's mosquitto client tests: install mosquitto-clients " +
        "(or set REQUIRE_MOSQUITTO=1 to make this an error)",
  );
}

/** A python3 that can import paho.mqtt, if any. */
let python: string | undefined;
for (const candidate of ["python3", "/usr/bin/python3"]) {
  if (await runs(candidate, ["-c", "import paho.mqtt.client"])) {
    python = candidate;
    break;
  }
}
if (!python) {
  console.warn("SKIPPING the emulator's Paho Python test: no python3 with paho-mqtt found");
}

const permissions: Deno.PermissionOptions = {
  read: true,
  net: ["127.0.0.1", "localhost"],
  env: true,
  sys: true,
  run: true,
};

/**
 * Defines a test that runs `body` against a fresh emulator on the fixtures (trusting the device
 * root CA) and closes it afterwards.
 */
function emulatorTest(
  name: string,
  ignore: boolean,
  body: (emulator: Emulator) => Promise<void>,
): void {
  Deno.test({ name, ignore, permissions }, async () => {
    await using emulator = await startFixtureEmulator();
    await body(emulator);
  });
}

async function verify(emulator: Emulator, line: string): Promise<Record<string, unknown>> {
  assert.match(line, /^71,[\w-]+\.[\w-]+\.[\w-]+$/);
  const jose = await loadJose();
  const key = await jose.importJWK(emulator.publicKeyJwk as Parameters<typeof jose.importJWK>[0]);
  const { payload } = await jose.jwtVerify(line.slice(3), key, {
    issuer: emulator.issuer,
    audience: emulator.issuer,
  });
  return payload as Record<string, unknown>;
}

function tlsArgs(device: string, clientId: string, port: number): string[] {
  return [
    "--cafile",
    path("ca/server-ca.pem"),
    "--cert",
    path(`${device}.chain.pem`),
    "--key",
    path(`${device}.key`),
    "-i",
    clientId,
    "-h",
    "localhost",
    "-p",
    String(port),
  ];
}

/**
 * mosquitto_rr's token request: subscribe to s/dat and publish a null message on s/uat over one
 * connection, then wait at most `seconds` for the answer.
 */
function tokenRequestArgs(
  device: string,
  clientId: string,
  port: number,
  seconds: number,
): string[] {
  return [
    ...tlsArgs(device, clientId, port),
    "-t",
    "s/uat",
    "-e",
    "s/dat",
    "-n",
    "-W",
    `${seconds}`,
  ];
}

/** What a client run printed: its exit code, its standard output, and both outputs together. */
interface RunResult {
  code: number;
  stdout: string;
  text: string;
}

async function run(cmd: string, args: string[]): Promise<RunResult> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  return { code: out.code, stdout, text: stdout + new TextDecoder().decode(out.stderr) };
}

/** Asserts that a client run succeeded and printed a token of `emulator` for `subject`. */
async function assertToken(emulator: Emulator, out: RunResult, subject: string): Promise<void> {
  assert.equal(out.code, 0, out.text);
  const claims = await verify(emulator, out.stdout.trim());
  assert.equal(claims.sub, subject);
}

const noMosquitto = !haveMosquitto && !requireMosquitto;

emulatorTest(
  "the emulator gives mosquitto_rr (MQTT 3.1.1, one connection) a token on s/dat",
  noMosquitto,
  async (emulator) => {
    // mosquitto_rr subscribes to -e and publishes the (null) request on -t over ONE connection,
    // which is what the token exchange needs: the token goes to the requesting client only.
    const out = await run("mosquitto_rr", [
      "-V",
      "mqttv311",
      ...tokenRequestArgs("devices/rsa", "d:device-rsa-001", emulator.port, 10),
    ]);
    await assertToken(emulator, out, "device_device-rsa-001");
  },
);

emulatorTest(
  "the emulator refuses mosquitto clients: unknown CA (CONNACK 5) and MQTT 5 (CONNACK 1)",
  noMosquitto,
  async (emulator) => {
    const unknown = await run("mosquitto_pub", [
      "-V",
      "mqttv311",
      ...tlsArgs("bad/unknown-ca", "d:device-unknown", emulator.port),
      "-t",
      "s/uat",
      "-n",
    ]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.text, /not authori[sz]ed/i);

    // mosquitto_rr speaks MQTT 5 by default; the emulator answers CONNACK 1.
    const v5 = await run(
      "mosquitto_rr",
      tokenRequestArgs("devices/rsa", "d:device-rsa-001", emulator.port, 5),
    );
    assert.notEqual(v5.code, 0);
    assert.match(v5.text, /Unsupported Protocol Version/i);
  },
);

emulatorTest(
  "the emulator reads 3,000 back-to-back QoS 0 lines of mosquitto_pub -l, each once, in order",
  noMosquitto,
  async () => {
    const lines: string[] = [];
    const problems: string[] = [];
    await using emulator = await startFixtureEmulator({
      log: (event) => {
        if (event.kind === "message") lines.push(event.line ?? "");
        if (event.kind === "error" || event.kind === "refused") problems.push(event.reason ?? "");
      },
    });
    const sent = Array.from({ length: 3000 }, (_, i) => `200,c8y_Temperature,T,${i}`);
    const child = new Deno.Command("mosquitto_pub", {
      args: [
        "-V",
        "mqttv311",
        ...tlsArgs("devices/rsa", "d:device-rsa-001", emulator.port),
        "-t",
        "s/us",
        "-l",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(sent.join("\n") + "\n"));
    await writer.close();
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    for (let i = 0; i < 200 && lines.length < sent.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.deepEqual(problems, []);
    assert.deepEqual(lines, sent);
  },
);

const PAHO = new URL("../../tools/paho_token.py", import.meta.url).pathname;

emulatorTest(
  "the emulator gives the Eclipse Paho Python client a token",
  !python,
  async (emulator) => {
    const out = await run(python!, [
      PAHO,
      "localhost",
      String(emulator.port),
      path("ca/server-ca.pem"),
      path("devices/ec256.chain.pem"),
      path("devices/ec256.key"),
      "d:device-ec256-001",
    ]);
    await assertToken(emulator, out, "device_device-ec256-001");
  },
);
