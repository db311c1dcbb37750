/**
 * `deno task bench:cli`: cold-process benchmark of `token` and `inspect` against the peers that
 * do the same job, measured side by side on this machine.
 *
 * It starts the emulator (in this process, on a free loopback port), then runs each command N
 * times as a fresh process, round-robin (one run of every command, then the next round), after a
 * few warm-up rounds. Each run's wall time is measured from spawn to exit; its peak resident
 * memory comes from GNU `/usr/bin/time -v` (Debian package `time`) when that is installed.
 *
 * Commands (peers only when installed):
 * - `deno`: `deno run` of an empty script (Deno's own start, for reference);
 * - `token`: `deno run --ignore-env --allow-read=... --allow-net=127.0.0.1:PORT cli.ts token`
 *   with the JDK 17 PKCS#12 `fixtures/devices/rsa.jdk.p12`, and `token-pem` with the PEM chain
 *   and key (no PKCS#12 key derivation);
 * - `token-cold`: the `token` job through `tools/cli_without_prewarm.ts`, the command line
 *   without the crypto prewarm of `cli.ts`, so that a runtime whose first handshake no longer
 *   pays for initialising its crypto library (or pays elsewhere) shows here;
 * - `floor`: `tools/session_floor.ts`, the same token job with this project's connection and PEM
 *   files but none of the command line's work: what Deno, Node compatibility and the network
 *   cost before any store is read;
 * - `inspect`: `cli.ts inspect --keystore fixtures/devices/rsa.jdk.p12`;
 * - `mosquitto_pub`: connect with the device certificate and publish one message on `s/us`;
 * - `mosquitto_rr`: the token job (subscribe `s/dat`, empty publish on `s/uat`, wait for `71`);
 * - `openssl`: `openssl pkcs12 -in rsa.jdk.p12 -nodes` (the peer of `inspect`);
 * - `paho`: an Eclipse Paho Python script doing the token job (a `python3` that has `paho.mqtt`);
 * - `node-mqttjs`: an MQTT.js script on Node.js doing the token job. MQTT.js 5.16.0 is installed
 *   with npm into `/tmp/c8y-bench-node` when missing (never into the repository).
 *
 * Then the `scale` job, unless `--scale-runs 0`: a CA and `--scale N` (default 200) device
 * certificates made with openssl at bench time, mosquitto with `require_certificate true`, and in
 * one process per peer at most 50 devices under way at a time, each connecting, subscribing to its own topic,
 * publishing one QoS 1 message there and receiving it: `tools/scale_deno.ts` (this project's
 * `connect()`), `tools/scale_paho.py` (Eclipse Paho for Python, a thread per device) and the same
 * with MQTT.js on Node.js; devices per second from each script's own clock.
 *
 * Options: `--runs N` (default 20), `--warmup N` (default 3), `--only a,b` (command names),
 * `--scale N` (devices, default 200), `--scale-runs N` (default 3; 0 leaves the job out),
 * `--json` (one JSON object on stdout), `--no-install` (no npm install), `--help`.
 *
 * Every run has its own timeout (the clients' own timeouts, plus a 30 s kill); all traffic is on
 * 127.0.0.1; the emulator is stopped at the end. Nothing here is part of `deno task test`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startEmulator } from "../lib/emulator/mod.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const NODE_DIR = "/tmp/c8y-bench-node";
const MQTTJS_VERSION = "5.16.0";
const TIME = "/usr/bin/time";
const RUN_TIMEOUT_MS = 30_000;
const MAX_RUNS = 1000;
/** A command is given up after this many failed runs. */
const MAX_FAILURES = 3;

/** Fixture paths, relative to the project root (the working directory of every run). */
const F = {
  p12: "fixtures/devices/rsa.jdk.p12",
  chain: "fixtures/devices/rsa.chain.pem",
  key: "fixtures/devices/rsa.key",
  serverCa: "fixtures/ca/server-ca.pem",
  serverTruststore: "fixtures/server/server-truststore.jks",
  serverCert: "fixtures/server/server.pem",
  serverKey: "fixtures/server/server.key",
  deviceRoot: "fixtures/ca/device-root-ca.pem",
  deviceIntermediate: "fixtures/ca/device-intermediate-ca.pem",
};
const CLIENT_ID = "d:device-rsa-001";
const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/** One command to measure. */
interface Job {
  /** Short name (for `--only` and the ratios). */
  name: string;
  /** What it does, for the table. */
  label: string;
  /** Program and arguments. */
  argv: string[];
  /** Returns why a finished run does not count as a success, or undefined when it does. */
  check(out: { code: number; stdout: string; stderr: string }): string | undefined;
  /** The run's time limit. @default RUN_TIMEOUT_MS */
  timeoutMs?: number;
}

/** The measurements of one job. */
interface Result {
  name: string;
  label: string;
  command: string;
  ok: boolean;
  /** The first failed run's reason, when any run failed. */
  failure?: string;
  /** Runs that failed (not counted in the statistics). */
  failures: number;
  runs: number;
  medianMs?: number;
  minMs?: number;
  maxMs?: number;
  /** Peak RSS per run, MiB (empty without `/usr/bin/time`). */
  rssMiB: number[];
  rssMedianMiB?: number;
  rssMaxMiB?: number;
  samplesMs: number[];
}

/** A ratio of medians the issue sets a target for. */
interface Ratio {
  label: string;
  numerator: string;
  denominator: string;
  /** The issue's target; none for ratios shown for context. */
  target?: number;
  value?: number;
}

const HELP = `deno task bench:cli [--runs N] [--warmup N] [--only NAMES] [--scale N]
  [--scale-runs N] [--json] [--no-install]

Cold-process benchmark of c8y-mqtt-cert token and inspect against mosquitto_pub/_rr, openssl,
Python Paho and MQTT.js on Node.js (those installed), against the emulator on 127.0.0.1.

  --runs N       measured runs per command (default 20)
  --warmup N     warm-up runs per command, not counted (default 3)
  --only NAMES   comma-separated subset of: ${
  [
    "deno",
    "token",
    "token-pem",
    "token-cold",
    "floor",
    "inspect",
    "mosquitto_pub",
    "mosquitto_rr",
    "openssl",
    "paho",
  ].join(", ")
}, node-mqttjs, scale
  --scale N      devices in the scale job (default 200)
  --scale-runs N runs of the scale job per peer (default 3; 0 leaves it out)
  --json         print one JSON object on stdout instead of the table
  --no-install   do not npm-install MQTT.js into ${NODE_DIR} when it is missing
`;

// ---------------------------------------------------------------------------------------------

/** The Paho peer, shared with the emulator's third-party client test. */
const PAHO_SCRIPT = new URL("./paho_token.py", import.meta.url).pathname;

const NODE_SCRIPT =
  `// Written by c8y-mqtt-cert's tools/bench_cli.ts: the token job with MQTT.js on Node.js.
import { readFileSync } from "node:fs";
import mqtt from "mqtt";
const [port, ca, cert, key, clientId] = process.argv.slice(2);
let done = false;
const fail = (message) => {
  if (done) return; // e.g. a reset while closing, after the token was printed
  console.error(message);
  process.exit(1);
};
const timer = setTimeout(() => fail("no token within 10 s"), 10000);
const client = mqtt.connect({
  protocol: "mqtts",
  host: "127.0.0.1",
  port: Number(port),
  ca: readFileSync(ca),
  cert: readFileSync(cert),
  key: readFileSync(key),
  clientId,
  protocolVersion: 4,
  clean: true,
  keepalive: 30,
  reconnectPeriod: 0,
});
client.on("error", (err) => fail(err.message));
client.on("connect", () => {
  client.subscribe("s/dat", { qos: 0 }, (err) => {
    if (err) fail(err.message);
    client.publish("s/uat", "", { qos: 0 });
  });
});
client.on("message", (_topic, payload) => {
  const line = payload.toString();
  if (!line.startsWith("71,")) return;
  done = true;
  console.log(line.slice(3));
  clearTimeout(timer);
  client.end(() => process.exit(0));
});
`;

const NODE_SCALE_SCRIPT =
  `// Written by c8y-mqtt-cert's tools/bench_cli.ts: the scale job with MQTT.js on Node.js.
import { readFileSync } from "node:fs";
import mqtt from "mqtt";
const [port, ca, dir, countText] = process.argv.slice(2);
const count = Number(countText);
const caPem = readFileSync(ca);
const timer = setTimeout(() => { console.error("not done within 60 s"); process.exit(1); }, 60000);
const start = performance.now();
// At most 50 devices under way at a time, as in the Deno and Paho scripts.
let next = 0;
const worker = async () => {
  while (next < count) await device(next++);
};
const device = (i) => new Promise((resolve, reject) => {
  const topic = "scale/" + i;
  const client = mqtt.connect({
    protocol: "mqtts", host: "127.0.0.1", port: Number(port), ca: caPem,
    cert: readFileSync(dir + "/device-" + i + ".pem"), key: readFileSync(dir + "/device-" + i + ".key"),
    clientId: "d:scale-" + i, protocolVersion: 4, clean: true, keepalive: 60, reconnectPeriod: 0,
  });
  client.on("error", reject);
  client.on("message", (t) => { if (t === topic) client.end(() => resolve()); });
  client.on("connect", () => client.subscribe(topic, { qos: 1 }, (err) => {
    if (err) reject(err); else client.publish(topic, "hello " + i, { qos: 1 });
  }));
});
Promise.all(Array.from({ length: Math.min(50, count) }, worker)).then(() => {
  clearTimeout(timer);
  console.log(JSON.stringify({ devices: count, ms: performance.now() - start }));
  process.exit(0);
}, (err) => { console.error(err.message); process.exit(1); });
`;

/** Makes a CA and `count` device certificates (EC P-256, CN `scale-<i>`) in `dir`. */
async function makeScaleCertificates(openssl: string, dir: string, count: number): Promise<void> {
  const script = `set -e
cd "$1"
"$0" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj "/CN=bench scale CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
i=0
while [ "$i" -lt "$2" ]; do
  "$0" req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "device-$i.key" \
    -out "device-$i.csr" -subj "/CN=scale-$i" 2>/dev/null
  "$0" x509 -req -in "device-$i.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -out "device-$i.pem" 2>/dev/null
  i=$((i + 1))
done`;
  const out = await output("sh", ["-c", script, openssl, dir, String(count)]);
  if (out?.code !== 0) {
    throw new Error(`openssl could not make the scale certificates: ${out?.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------

/** Runs a command to completion, quietly; undefined when it cannot be started. */
async function output(
  cmd: string,
  args: string[],
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string } | undefined> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  } catch {
    return undefined;
  }
}

async function which(cmd: string): Promise<string | undefined> {
  const out = await output("sh", ["-c", `command -v "$0"`, cmd]);
  const path = out?.code === 0 ? out.stdout.trim() : "";
  return path === "" ? undefined : path;
}

/** GNU time (`-v` and `-o`), or undefined. */
async function findTime(): Promise<string | undefined> {
  const out = await output(TIME, ["-v", "true"]);
  return out?.code === 0 && out.stderr.includes("Maximum resident set size") ? TIME : undefined;
}

/** A python3 that can import paho.mqtt (the one on PATH may be a pyenv shim without it). */
async function findPaho(): Promise<{ python: string; version: string } | undefined> {
  for (const python of ["python3", "/usr/bin/python3"]) {
    const out = await output(python, [
      "-c",
      "import sys, paho.mqtt; print(paho.mqtt.__version__, sys.version.split()[0])",
    ]);
    if (out?.code === 0) {
      const [paho, py] = out.stdout.trim().split(" ");
      return { python, version: `Python ${py}, paho-mqtt ${paho}` };
    }
  }
  return undefined;
}

/** Node.js with MQTT.js in NODE_DIR, installing it there when allowed. */
async function findNodeMqttjs(
  install: boolean,
  note: (line: string) => void,
): Promise<{ node: string; script: string; scaleScript: string; version: string } | undefined> {
  const node = await which("node");
  if (!node) return undefined;
  const installed = async (): Promise<string | undefined> => {
    try {
      const pkg = JSON.parse(
        await Deno.readTextFile(`${NODE_DIR}/node_modules/mqtt/package.json`),
      ) as { version?: string };
      return pkg.version;
    } catch {
      return undefined;
    }
  };
  if ((await installed()) !== MQTTJS_VERSION) {
    if (!install) {
      note(`MQTT.js ${MQTTJS_VERSION} is not in ${NODE_DIR} and --no-install was given`);
      return undefined;
    }
    const npm = await which("npm");
    if (!npm) {
      note("npm not found: cannot install MQTT.js for the Node.js peer");
      return undefined;
    }
    note(`Installing mqtt@${MQTTJS_VERSION} into ${NODE_DIR} (npm)...`);
    await Deno.mkdir(NODE_DIR, { recursive: true });
    const out = await output(npm, [
      "install",
      "--prefix",
      NODE_DIR,
      "--no-audit",
      "--no-fund",
      "--save-exact",
      `mqtt@${MQTTJS_VERSION}`,
    ], NODE_DIR);
    if (out?.code !== 0 || (await installed()) !== MQTTJS_VERSION) {
      note(`npm install mqtt@${MQTTJS_VERSION} failed: ${out?.stderr.trim().split("\n").at(-1)}`);
      return undefined;
    }
  }
  const script = `${NODE_DIR}/token.mjs`;
  await Deno.writeTextFile(script, NODE_SCRIPT);
  const scaleScript = `${NODE_DIR}/scale.mjs`;
  await Deno.writeTextFile(scaleScript, NODE_SCALE_SCRIPT);
  const version = (await output(node, ["--version"]))?.stdout.trim() ?? "?";
  return { node, script, scaleScript, version: `Node.js ${version}, MQTT.js ${MQTTJS_VERSION}` };
}

// ---------------------------------------------------------------------------------------------

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Runs one job once; returns wall time (ms), peak RSS (MiB) and the failure, if any. */
async function runOnce(
  job: Job,
  time: string | undefined,
  timeFile: string,
): Promise<{ ms: number; rssMiB?: number; failure?: string; stdout: string }> {
  const [program, ...args] = time ? [time, "-v", "-o", timeFile, ...job.argv] : job.argv;
  const controller = new AbortController();
  const start = performance.now();
  const child = new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: controller.signal,
  }).spawn();
  const timer = setTimeout(() => controller.abort(), job.timeoutMs ?? RUN_TIMEOUT_MS);
  let out: Deno.CommandOutput;
  try {
    out = await child.output();
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - start;
  const d = new TextDecoder();
  const result = { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  let failure = controller.signal.aborted
    ? `killed after ${RUN_TIMEOUT_MS / 1000} s`
    : job.check(result);
  if (failure) {
    const detail = (result.stderr || result.stdout).trim().split("\n").slice(-3).join(" | ");
    failure = `${failure}${detail ? `: ${detail}` : ""}`;
  }
  let rssMiB: number | undefined;
  if (time) {
    const report = await Deno.readTextFile(timeFile).catch(() => "");
    const kb = report.match(/Maximum resident set size \(kbytes\): (\d+)/)?.[1];
    if (kb) rssMiB = Number(kb) / 1024;
  }
  return { ms, rssMiB, failure, stdout: result.stdout };
}

/** Checks: exit code 0 and, optionally, a pattern on stdout. */
function expect(pattern?: RegExp, what = "expected output"): Job["check"] {
  return ({ code, stdout }) => {
    if (code !== 0) return `exit code ${code}`;
    if (pattern && !pattern.test(stdout.trim())) return `no ${what} on stdout`;
    return undefined;
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "20" },
      warmup: { type: "string", default: "3" },
      only: { type: "string" },
      json: { type: "boolean", default: false },
      "no-install": { type: "boolean", default: false },
      scale: { type: "string", default: "200" },
      "scale-runs": { type: "string", default: "3" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) {
    console.error(`--runs must be a whole number from 1 to ${MAX_RUNS}, not "${values.runs}"`);
    return 2;
  }
  if (!Number.isInteger(warmup) || warmup < 0 || warmup > MAX_RUNS) {
    console.error(`--warmup must be a whole number from 0 to ${MAX_RUNS}, not "${values.warmup}"`);
    return 2;
  }
  const scaleCount = Number(values.scale);
  const scaleRuns = Number(values["scale-runs"]);
  if (!Number.isInteger(scaleCount) || scaleCount < 1 || scaleCount > 1000) {
    console.error(`--scale must be a whole number from 1 to 1000, not "${values.scale}"`);
    return 2;
  }
  if (!Number.isInteger(scaleRuns) || scaleRuns < 0 || scaleRuns > MAX_RUNS) {
    console.error(`--scale-runs must be a whole number from 0 to ${MAX_RUNS}`);
    return 2;
  }
  const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const json = values.json;
  const notes: string[] = [];
  const note = (line: string): void => {
    notes.push(line);
    console.error(line);
  };

  // ---- What is installed
  const time = await findTime();
  if (!time) {
    note(`${TIME} (GNU time, Debian package "time") not found: peak memory is not measured`);
  }
  const mosquittoPub = await which("mosquitto_pub");
  const mosquittoRr = await which("mosquitto_rr");
  const openssl = await which("openssl");
  const paho = await findPaho();
  const wanted = (name: string): boolean => !only || only.includes(name);
  const nodeMqttjs = wanted("node-mqttjs") || wanted("scale")
    ? await findNodeMqttjs(!values["no-install"], note)
    : undefined;
  if (!mosquittoPub) note("mosquitto_pub not found: its peer is left out");
  if (!mosquittoRr) note("mosquitto_rr not found: its peer is left out");
  if (!openssl) note("openssl not found: the inspect peer is left out");
  if (!paho) note("no python3 with paho.mqtt found: the Paho peer is left out");
  if (!nodeMqttjs && (wanted("node-mqttjs") || wanted("scale"))) {
    note("the Node.js MQTT.js peer is left out");
  }

  const machine = await machineInfo({
    mosquitto: mosquittoPub,
    openssl,
    paho: paho?.version,
    node: nodeMqttjs?.version,
  });

  // ---- The emulator, in this process
  const read = (p: string): string => Deno.readTextFileSync(`${ROOT}${p}`);
  await using emulator = await startEmulator({
    serverCertPem: read(F.serverCert),
    serverKeyPem: read(F.serverKey),
    trustedCaPems: [read(F.deviceRoot), read(F.deviceIntermediate)],
    hostname: "127.0.0.1",
    port: 0,
    tenant: "t-bench",
  });
  const tmp = await Deno.makeTempDir({ prefix: "c8y-bench-" });
  const emptyScript = `${tmp}/empty.ts`;
  await Deno.writeTextFile(emptyScript, "");
  const timeFile = `${tmp}/time.txt`;

  try {
    const port = String(emulator.port);
    const url = `mqtts://127.0.0.1:${port}`;
    const deno = Deno.execPath();
    const tlsArgs = [
      "-V",
      "mqttv311",
      "--cafile",
      F.serverCa,
      "--cert",
      F.chain,
      "--key",
      F.key,
      "-i",
      CLIENT_ID,
      "-h",
      "127.0.0.1",
      "-p",
      port,
    ];
    /** `cli.ts token` against the emulator under exactly the flags the README gives. */
    const cliToken = (
      store: string[],
      truststore: string,
      files: string[],
      entry = "cli.ts",
    ): string[] => [
      deno,
      "run",
      "--ignore-env",
      `--allow-read=${[...files, truststore].join(",")}`,
      `--allow-net=127.0.0.1:${port}`,
      entry,
      "token",
      "--url",
      url,
      ...store,
      "--truststore",
      truststore,
      "--timeout",
      "10",
    ];
    const all: (Job | undefined)[] = [
      {
        name: "deno",
        label: "deno run (empty script)",
        argv: [deno, "run", emptyScript],
        check: expect(),
      },
      {
        name: "token",
        label: "token, rsa.jdk.p12",
        argv: cliToken(
          ["--keystore", F.p12, "--keystore-password", "pass:changeit"],
          F.serverTruststore,
          [F.p12],
        ),
        check: expect(JWT, "JWT"),
      },
      {
        name: "token-pem",
        label: "token, rsa.chain.pem + key",
        argv: cliToken(["--keystore", F.chain, "--key", F.key], F.serverCa, [F.chain, F.key]),
        check: expect(JWT, "JWT"),
      },
      {
        name: "token-cold",
        label: "token, rsa.jdk.p12, no prewarm",
        argv: cliToken(
          ["--keystore", F.p12, "--keystore-password", "pass:changeit"],
          F.serverTruststore,
          [F.p12],
          "tools/cli_without_prewarm.ts",
        ),
        check: expect(JWT, "JWT"),
      },
      {
        name: "floor",
        label: "floor: connection only, PEM",
        argv: [
          deno,
          "run",
          "--ignore-env",
          `--allow-read=${F.serverCa},${F.chain},${F.key}`,
          `--allow-net=127.0.0.1:${port}`,
          "tools/session_floor.ts",
          port,
          F.serverCa,
          F.chain,
          F.key,
          CLIENT_ID,
        ],
        check: expect(JWT, "JWT"),
      },
      {
        name: "inspect",
        label: "inspect, rsa.jdk.p12",
        argv: [
          deno,
          "run",
          `--allow-read=${F.p12}`,
          "cli.ts",
          "inspect",
          "--keystore",
          F.p12,
          "--keystore-password",
          "pass:changeit",
        ],
        check: expect(/device-rsa-001/, "client id"),
      },
      mosquittoPub === undefined ? undefined : {
        name: "mosquitto_pub",
        label: "mosquitto_pub connect + publish",
        argv: [mosquittoPub, ...tlsArgs, "-t", "s/us", "-m", "100,demo,test"],
        check: expect(),
      },
      mosquittoRr === undefined ? undefined : {
        name: "mosquitto_rr",
        label: "mosquitto_rr token",
        argv: [mosquittoRr, ...tlsArgs, "-t", "s/uat", "-e", "s/dat", "-n", "-W", "10"],
        check: expect(/^71,[\w-]+\.[\w-]+\.[\w-]+$/, "71,<JWT>"),
      },
      openssl === undefined ? undefined : {
        name: "openssl",
        label: "openssl pkcs12 -nodes, rsa.jdk.p12",
        argv: [openssl, "pkcs12", "-in", F.p12, "-nodes", "-passin", "pass:changeit"],
        check: expect(/BEGIN PRIVATE KEY[\s\S]*BEGIN CERTIFICATE/, "key and certificate"),
      },
      paho && {
        name: "paho",
        label: "Python Paho token",
        argv: [paho.python, PAHO_SCRIPT, "127.0.0.1", port, F.serverCa, F.chain, F.key, CLIENT_ID],
        check: expect(/^71,[\w-]+\.[\w-]+\.[\w-]+$/, "71,<JWT>"),
      },
      nodeMqttjs && {
        name: "node-mqttjs",
        label: "Node.js MQTT.js token",
        argv: [nodeMqttjs.node, nodeMqttjs.script, port, F.serverCa, F.chain, F.key, CLIENT_ID],
        check: expect(JWT, "JWT"),
      },
    ];
    const jobs = all.filter((j): j is Job => !!j && wanted(j.name));
    if (only) {
      const known = [...all.filter((j): j is Job => !!j).map((j) => j.name), "scale"];
      for (const name of only) {
        if (!known.includes(name)) note(`--only: "${name}" is unknown or not installed`);
      }
    }

    // ---- Measure, round-robin
    const samples = new Map<
      string,
      { ms: number[]; rss: number[]; failure?: string; failures: number }
    >(jobs.map((j) => [j.name, { ms: [], rss: [], failures: 0 }]));
    if (!json) {
      console.error(
        `Emulator on ${url}; ${jobs.length} commands, ${warmup} warm-up + ${runs} runs each...`,
      );
    }
    for (let round = 0; round < warmup + runs; round++) {
      for (const job of jobs) {
        const s = samples.get(job.name)!;
        if (s.failures >= MAX_FAILURES) continue;
        const r = await runOnce(job, time, timeFile);
        if (r.failure) {
          const why = `${round < warmup ? "warm-up" : "run"} ${round + 1}: ${r.failure}`;
          s.failure ??= why;
          s.failures++;
          note(
            `${job.name} failed (${why})` +
              (s.failures >= MAX_FAILURES ? `; given up after ${MAX_FAILURES} failures` : ""),
          );
          continue;
        }
        if (round < warmup) continue;
        s.ms.push(r.ms);
        if (r.rssMiB !== undefined) s.rss.push(r.rssMiB);
      }
    }

    // ---- Report
    const results: Result[] = jobs.map((job) => {
      const s = samples.get(job.name)!;
      const ms = [...s.ms].sort((a, b) => a - b);
      const rss = [...s.rss].sort((a, b) => a - b);
      const ok = s.failures < MAX_FAILURES && ms.length > 0;
      return {
        name: job.name,
        label: job.label,
        command: job.argv.join(" "),
        ok,
        failure: s.failure,
        failures: s.failures,
        runs: ms.length,
        medianMs: ok ? round(median(ms)) : undefined,
        minMs: ok ? round(ms[0]) : undefined,
        maxMs: ok ? round(ms.at(-1)!) : undefined,
        rssMiB: s.rss.map((v) => round(v)),
        rssMedianMiB: ok && rss.length ? round(median(rss)) : undefined,
        rssMaxMiB: ok && rss.length ? round(rss.at(-1)!) : undefined,
        samplesMs: s.ms.map((v) => round(v)),
      };
    });
    const byName = new Map(results.map((r) => [r.name, r]));
    const ratios: Ratio[] = [
      { label: "token / paho", numerator: "token", denominator: "paho", target: 1.8 },
      { label: "token-pem / paho", numerator: "token-pem", denominator: "paho", target: 1.3 },
      { label: "token / node-mqttjs", numerator: "token", denominator: "node-mqttjs", target: 0.5 },
      { label: "inspect / openssl", numerator: "inspect", denominator: "openssl", target: 4.0 },
      // Context: the prewarm's gain, the C client, and the floor no command-line work goes below.
      { label: "token / token-cold", numerator: "token", denominator: "token-cold" },
      { label: "token / mosquitto_pub", numerator: "token", denominator: "mosquitto_pub" },
      { label: "floor / paho", numerator: "floor", denominator: "paho" },
    ].map((r) => {
      const a = byName.get(r.numerator)?.medianMs;
      const b = byName.get(r.denominator)?.medianMs;
      return { ...r, value: a !== undefined && b ? round(a / b, 2) : undefined };
    });
    const tokenRss = byName.get("token")?.rssMaxMiB;
    const memory = { label: "token peak RSS (MiB, max)", target: 65, value: tokenRss };

    // ---- The scale job
    const scale = scaleRuns > 0 && wanted("scale")
      ? await runScale({
        count: scaleCount,
        runs: scaleRuns,
        tmp,
        openssl,
        paho,
        node: nodeMqttjs,
        time,
        timeFile,
        note,
      })
      : undefined;

    if (json) {
      console.log(JSON.stringify(
        { machine, runs, warmup, emulator: url, results, ratios, memory, scale, notes },
        null,
        2,
      ));
    } else {
      printTable({ machine, runs, warmup, results, ratios, memory, haveTime: !!time });
      if (scale) printScale(scale);
    }
    const scaleOk = scale === undefined || scale.peers.every((p) => p.ok);
    return results.every((r) => r.ok && r.failures === 0) && scaleOk ? 0 : 1;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  deno: string;
  tools: Record<string, string>;
}

async function machineInfo(found: {
  mosquitto?: string;
  openssl?: string;
  paho?: string;
  node?: string;
}): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const cpu = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown CPU";
  const tools: Record<string, string> = {};
  if (found.openssl) {
    tools.openssl = (await output(found.openssl, ["version"]))?.stdout.trim() ?? "?";
  }
  if (found.mosquitto) {
    const help = (await output(found.mosquitto, ["--help"]))?.stdout ?? "";
    tools.mosquitto = help.match(/version (\S+)/)?.[1] ?? "?";
  }
  if (found.paho) tools.paho = found.paho;
  if (found.node) tools.node = found.node;
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryGiB: round(Deno.systemMemoryInfo().total / 2 ** 30),
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    tools,
  };
}

function printTable(r: {
  machine: Machine;
  runs: number;
  warmup: number;
  results: Result[];
  ratios: Ratio[];
  memory: { label: string; target: number; value?: number };
  haveTime: boolean;
}): void {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Deno ${m.deno}`,
    `Peers: ${Object.entries(m.tools).map(([k, v]) => `${k} ${v}`).join("; ") || "none"}`,
    `${r.runs} cold runs per command (after ${r.warmup} warm-up), round-robin, ` +
      "wall time from spawn to exit" + (r.haveTime ? ", peak RSS from /usr/bin/time -v" : ""),
    "",
  );
  const ms = (v?: number): string => (v === undefined ? "-" : `${v.toFixed(1)} ms`);
  const mib = (v?: number): string => (v === undefined ? "-" : `${v.toFixed(1)} MiB`);
  const rows = [
    ["command", "median", "min", "max", "peak RSS median", "peak RSS max"],
    ...r.results.map((x) =>
      x.ok
        ? [x.label, ms(x.medianMs), ms(x.minMs), ms(x.maxMs), mib(x.rssMedianMiB), mib(x.rssMaxMiB)]
        : [x.label, "FAILED", "", "", "", ""]
    ),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const [i, row] of rows.entries()) {
    lines.push(
      row.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]) : cell.padStart(widths[j])))
        .join("  "),
    );
    if (i === 0) lines.push(widths.map((w) => "-".repeat(w)).join("  "));
  }
  lines.push("", "Ratios of medians (issue targets):");
  for (const q of r.ratios) {
    const value = q.value === undefined ? "   -" : q.value.toFixed(2).padStart(5);
    if (q.target === undefined) {
      lines.push(`  ${q.label.padEnd(24)} ${value}   (for context, no target)`);
      continue;
    }
    const verdict = q.value === undefined ? "not measured" : q.value <= q.target ? "met" : "missed";
    lines.push(
      `  ${q.label.padEnd(24)} ${value}   target <= ${q.target.toFixed(1)}   ${verdict}`,
    );
  }
  const mem = r.memory;
  lines.push(
    `  ${mem.label.padEnd(24)} ${mem.value === undefined ? "   -" : mem.value.toFixed(1)}` +
      `   target <= ${mem.target}   ${
        mem.value === undefined ? "not measured" : mem.value <= mem.target ? "met" : "missed"
      }`,
  );
  for (const x of r.results) {
    if (!x.ok) lines.push(`FAILED ${x.name}: ${x.failure}`);
    else if (x.failures) {
      lines.push(`${x.name}: ${x.failures} failed run(s) left out, the first: ${x.failure}`);
    }
  }
  console.log(lines.join("\n"));
}

/** One peer's figures in the scale job. */
interface ScalePeer {
  name: string;
  label: string;
  command: string;
  ok: boolean;
  failure?: string;
  /** Devices per second of each run, from the script's own clock. */
  devicesPerSecond: number[];
  medianDevicesPerSecond?: number;
  /** Peak RSS of each run, MiB. */
  rssMiB: number[];
}

/** The scale job's result. */
interface Scale {
  devices: number;
  runs: number;
  peers: ScalePeer[];
  ratios: Ratio[];
}

/**
 * The scale job: bench-time certificates, mosquitto with `require_certificate true`, then each
 * peer's script `runs` times, round-robin.
 */
async function runScale(options: {
  count: number;
  runs: number;
  tmp: string;
  openssl: string | undefined;
  paho: { python: string } | undefined;
  node: { node: string; scaleScript: string } | undefined;
  time: string | undefined;
  timeFile: string;
  note: (line: string) => void;
}): Promise<Scale | undefined> {
  const { count, runs, tmp, openssl, paho, node, time, timeFile, note } = options;
  if (!openssl) {
    note("openssl not found: the scale job is left out");
    return undefined;
  }
  const dir = `${tmp}/scale`;
  await Deno.mkdir(dir);
  console.error(`Scale: making a CA and ${count} device certificates...`);
  await makeScaleCertificates(openssl, dir, count);
  await using mosquitto = await startMosquitto({ cafile: `${dir}/ca.pem` });
  const port = String(mosquitto.port);
  const ca = `${ROOT}${F.serverCa}`;
  const scaleCheck: Job["check"] = ({ code, stdout }) => {
    if (code !== 0) return `exit code ${code}`;
    try {
      const r = JSON.parse(stdout.trim()) as { devices?: number; ms?: number };
      return r.devices === count && typeof r.ms === "number" ? undefined : "no figures";
    } catch {
      return "no figures on stdout";
    }
  };
  const jobs: Job[] = [
    {
      name: "scale-deno",
      label: "c8y-mqtt-cert connect()",
      argv: [
        Deno.execPath(),
        "run",
        "--ignore-env",
        `--allow-read=${ca},${dir}`,
        `--allow-net=127.0.0.1:${port}`,
        "tools/scale_deno.ts",
        port,
        ca,
        dir,
        String(count),
      ],
      check: scaleCheck,
      timeoutMs: 90_000,
    },
  ];
  if (paho) {
    jobs.push({
      name: "scale-paho",
      label: "Python Paho",
      argv: [paho.python, "tools/scale_paho.py", port, ca, dir, String(count)],
      check: scaleCheck,
      timeoutMs: 90_000,
    });
  }
  if (node) {
    jobs.push({
      name: "scale-node",
      label: "Node.js MQTT.js",
      argv: [node.node, node.scaleScript, port, ca, dir, String(count)],
      check: scaleCheck,
      timeoutMs: 90_000,
    });
  }
  console.error(`Scale: ${count} devices against mosquitto on ${port}, ${runs} runs each...`);
  const peers: ScalePeer[] = jobs.map((job) => ({
    name: job.name,
    label: job.label,
    command: job.argv.join(" "),
    ok: true,
    devicesPerSecond: [],
    rssMiB: [],
  }));
  for (let run = 0; run < runs; run++) {
    for (const [i, job] of jobs.entries()) {
      const peer = peers[i];
      if (!peer.ok) continue;
      const r = await runOnce(job, time, timeFile);
      if (r.failure) {
        peer.ok = false;
        peer.failure = r.failure;
        note(`${job.name} failed: ${r.failure}`);
        continue;
      }
      const { devices, ms } = JSON.parse(r.stdout.trim()) as { devices: number; ms: number };
      peer.devicesPerSecond.push(round(devices / (ms / 1000)));
      if (r.rssMiB !== undefined) peer.rssMiB.push(round(r.rssMiB));
    }
  }
  for (const peer of peers) {
    if (peer.ok && peer.devicesPerSecond.length > 0) {
      peer.medianDevicesPerSecond = round(median([...peer.devicesPerSecond].sort((a, b) => a - b)));
    }
  }
  const rate = (name: string): number | undefined =>
    peers.find((p) => p.name === name)?.medianDevicesPerSecond;
  const ratio = (label: string, a: string, b: string, target?: number): Ratio => {
    const x = rate(a);
    const y = rate(b);
    return {
      label,
      numerator: a,
      denominator: b,
      target,
      value: x !== undefined && y ? round(x / y, 2) : undefined,
    };
  };
  return {
    devices: count,
    runs,
    peers,
    ratios: [
      ratio("scale deno / paho", "scale-deno", "scale-paho", 1.5),
      ratio("scale deno / node-mqttjs", "scale-deno", "scale-node"),
    ],
  };
}

function printScale(scale: Scale): void {
  const lines = [
    "",
    `Scale: ${scale.devices} devices from one process against mosquitto (require_certificate), ` +
    `${scale.runs} runs, devices per second (each connects, subscribes, publishes, receives)`,
  ];
  for (const p of scale.peers) {
    lines.push(
      `  ${p.label.padEnd(26)} ${
        p.ok
          ? `${String(p.medianDevicesPerSecond).padStart(7)} /s  (runs: ${
            p.devicesPerSecond.join(", ")
          }; peak RSS ${p.rssMiB.length ? Math.max(...p.rssMiB) : "-"} MiB)`
          : `FAILED: ${p.failure}`
      }`,
    );
  }
  for (const q of scale.ratios) {
    const value = q.value === undefined ? "   -" : q.value.toFixed(2).padStart(5);
    lines.push(
      `  ${q.label.padEnd(26)} ${value}` +
        (q.target === undefined
          ? "   (for context, no target)"
          : `   target >= ${q.target.toFixed(1)}   ${
            q.value === undefined ? "not measured" : q.value >= q.target ? "met" : "missed"
          }`),
    );
  }
  console.log(lines.join("\n"));
}

if (import.meta.main) Deno.exit(await main());
