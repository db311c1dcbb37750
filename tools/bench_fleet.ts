/**
 * `deno task bench:fleet`: the fleet job (issue 15) beside its peers, measured in the same run.
 *
 * It makes N device certificates with openssl (P-256, signed by the fixture device intermediate
 * CA), starts mosquitto with `require_certificate true` on 127.0.0.1, and runs every job R times
 * as a fresh process, round-robin. In each job every device connects with mutual TLS as
 * `d:<CN>`, subscribes to `fleet/<CN>` (QoS 1), publishes one message there (QoS 0), waits for it
 * to come back and disconnects, C devices at a time:
 * - `fleet`: `checkFleet()` in `connect` mode on a CSV manifest (PEM chain + key per device): the
 *   offline pass (keystores read, checks, client ids, duplicates) and then the connections,
 *   which read each keystore again;
 * - `fleet-offline`: the same manifest with `mode: "offline"` (the offline pass alone);
 * - `connect`: the project's `connect()` with every identity read before the clock starts (the
 *   connection alone: the peer of the two below, which read PEM files with OpenSSL);
 * - `paho`: Eclipse Paho for Python, all devices in one selector loop (`tools/paho_fleet.py`);
 * - `node-mqttjs`: MQTT.js on Node.js (MQTT.js 5.16.0 is installed with
 *   npm into `/tmp/c8y-bench-node` when missing, never into the repository).
 *
 * Each job measures itself from its first device to its last, after its imports: devices per
 * second, client CPU (user + system) per device, and RSS per concurrent session ((peak RSS
 * sampled every 20 ms - RSS before the first device) / the most devices in flight at once).
 * The table gives each job's median over the rounds and the ratios of the medians.
 *
 * Options: `--devices N` (default 200), `--concurrency C` (default 50), `--rounds R` (default 3),
 * `--only a,b`, `--json`, `--no-install`, `--help`. Everything runs on 127.0.0.1; mosquitto and
 * the temporary directory are removed at the end. Nothing here is part of `deno task test`.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { checkFleet, type FleetMode } from "../lib/fleet/check_fleet.ts";
import { readManifest } from "../lib/fleet/manifest.ts";
import { loadKeyStore, loadTrustStore } from "../lib/stores/load.ts";
import { connect, type DeviceConnection } from "../lib/connect/connection.ts";
import type { DeviceIdentity } from "../lib/types.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { makeFleetDevices } from "./fleet_devices.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const NODE_DIR = "/tmp/c8y-bench-node";
const MQTTJS_VERSION = "5.16.0";
const ECHO_TIMEOUT_MS = 10_000;
const JOBS = ["fleet", "fleet-offline", "connect", "paho", "node-mqttjs"] as const;
type JobName = typeof JOBS[number];

/**
 * The fleet job with MQTT.js on Node.js, written next to an npm-installed MQTT.js and run with
 * node: each device connects as d:<CN> (MQTT 3.1.1, clean session), subscribes to fleet/<CN>
 * (QoS 1), publishes there (QoS 0), waits for the message and disconnects, C at a time. Prints
 * the same JSON object as the other jobs.
 */
const MQTTJS_SCRIPT =
  `// Written by c8y-mqtt-cert's tools/bench_fleet.ts: the fleet job with MQTT.js on Node.js.
// Usage: node fleet.mjs HOST PORT CA_PEM DEVICES_CSV CONCURRENCY (DEVICES_CSV: CHAIN,KEY,CN a line)
import { readFileSync } from "node:fs";
import process from "node:process";
import mqtt from "mqtt";

const [host, port, caPath, devicesCsv, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const devices = readFileSync(devicesCsv, "utf8").split("\\n").filter((l) => l.trim())
  .map((l) => l.trim().split(","));
const ca = readFileSync(caPath);

function device([chain, key, cn]) {
  return new Promise((resolve) => {
    const topic = "fleet/" + cn;
    let settled = false;
    const done = (ok, why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!ok) console.error("device " + cn + ": " + why);
      client.end(!ok, () => resolve(ok));
    };
    const timer = setTimeout(() => done(false, "no echo within 10 s"), 10000);
    const client = mqtt.connect({
      protocol: "mqtts",
      host,
      port: Number(port),
      ca,
      cert: readFileSync(chain),
      key: readFileSync(key),
      clientId: "d:" + cn,
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 0,
    });
    client.on("error", (err) => done(false, err.message));
    client.on("connect", () => {
      client.subscribe(topic, { qos: 1 }, (err) => {
        if (err) return done(false, err.message);
        client.publish(topic, "hello", { qos: 0 });
      });
    });
    client.on("message", (t) => {
      if (t === topic) done(true);
    });
  });
}

const base = process.memoryUsage.rss();
let peak = base;
const sampler = setInterval(() => peak = Math.max(peak, process.memoryUsage.rss()), 20);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 0;
let ok = 0;
let failed = 0;
let inFlight = 0;
let peakInFlight = 0;
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < devices.length) {
    const d = devices[next++];
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    if (await device(d)) ok++;
    else failed++;
    inFlight--;
  }
}));
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage.rss());
console.log(JSON.stringify({
  devices: devices.length,
  ok,
  failed,
  wallMs,
  cpuMs: (cpu.user + cpu.system) / 1000,
  rssBaseKiB: Math.round(base / 1024),
  rssPeakKiB: Math.round(peak / 1024),
  peakInFlight,
}));
`;

/** What every job prints (one JSON object on its last line). */
interface Measured {
  devices: number;
  ok: number;
  failed: number;
  wallMs: number;
  cpuMs: number;
  rssBaseKiB: number;
  rssPeakKiB: number;
  peakInFlight: number;
  /** `fleet` only: the offline pass's share of `wallMs`. */
  offlineMs?: number;
}

const HELP = `deno task bench:fleet [--devices N] [--concurrency C] [--rounds R] [--only ${
  JOBS.join(",")
}] [--json] [--no-install]

The fleet job (connect, subscribe, publish, receive, disconnect per device) with checkFleet(), the
project's connect(), Eclipse Paho for Python and MQTT.js on Node.js against mosquitto.`;

// ---- Workers: the Deno jobs, each in its own process -----------------------------------------

/** Subscribes to the device's own topic, publishes there and waits for the message to come back. */
async function echo(session: DeviceConnection, topic: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stop = (): void => {};
  const received = new Promise<void>((resolve, reject) => {
    stop = session.listen({
      messageArrived: (t) => t === topic && resolve(),
      connectionLost: (cause) => reject(cause),
    });
    timer = setTimeout(() => reject(new Error(`no echo on ${topic}`)), ECHO_TIMEOUT_MS);
  });
  try {
    await session.subscribe(topic, { qos: 1 });
    await session.publish(topic, "hello");
    await received;
  } finally {
    clearTimeout(timer);
    stop();
  }
}

/** Samples the process's RSS every 20 ms, from now until `stop()`. */
function rssSampler(): { base: number; stop(): number } {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => peak = Math.max(peak, process.memoryUsage.rss()), 20);
  return {
    base: Math.round(base / 1024),
    stop(): number {
      clearInterval(timer);
      return Math.round(Math.max(peak, process.memoryUsage.rss()) / 1024);
    },
  };
}

async function fleetWorker(
  mode: FleetMode,
  url: string,
  manifest: string,
  caPath: string,
  concurrency: number,
): Promise<Measured> {
  const trust = await loadTrustStore(await Deno.readFile(caPath));
  const rss = rssSampler();
  const cpu0 = process.cpuUsage();
  const summary = await checkFleet(
    () => readManifest(Deno.openSync(manifest).readable, { name: manifest }),
    {
      mode,
      url,
      trust,
      concurrency,
      readFile: (path) => Deno.readFile(path),
      whileConnected: (session, { clientId }) => echo(session, `fleet/${clientId.slice(2)}`),
      onResult: (r) => {
        if (!r.ok) console.error(`${r.keystore}: ${r.error?.message}`);
      },
    },
  );
  const cpu = process.cpuUsage(cpu0);
  return {
    devices: summary.devices,
    ok: summary.passed,
    failed: summary.failed,
    wallMs: summary.durationMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssBaseKiB: rss.base,
    rssPeakKiB: rss.stop(),
    peakInFlight: summary.stats.peakInFlight,
    offlineMs: summary.offlineMs,
  };
}

async function connectWorker(
  url: string,
  devicesCsv: string,
  caPath: string,
  concurrency: number,
): Promise<Measured> {
  const trust = await loadTrustStore(await Deno.readFile(caPath));
  const devices: { identity: DeviceIdentity; cn: string }[] = [];
  for (const line of (await Deno.readTextFile(devicesCsv)).split("\n")) {
    if (!line.trim()) continue;
    const [chain, key, cn] = line.split(",");
    const identity = await loadKeyStore(await Deno.readFile(chain), {
      key: await Deno.readFile(key),
    });
    devices.push({ identity, cn });
  }
  const rss = rssSampler();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  let ok = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < devices.length) {
      const { identity, cn } = devices[next++];
      peakInFlight = Math.max(peakInFlight, ++inFlight);
      try {
        const session = await connect({ url, identity, trust, clientId: `d:${cn}` });
        try {
          await echo(session, `fleet/${cn}`);
          ok++;
        } finally {
          await session.close();
        }
      } catch (error) {
        console.error(`device ${cn}: ${error instanceof Error ? error.message : error}`);
      } finally {
        inFlight--;
      }
    }
  }));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    devices: devices.length,
    ok,
    failed: devices.length - ok,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssBaseKiB: rss.base,
    rssPeakKiB: rss.stop(),
    peakInFlight,
  };
}

// ---- The coordinator -------------------------------------------------------------------------

async function output(cmd: string, args: string[], cwd?: string): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
}

/** A python3 that can import paho.mqtt (the one on PATH may be a pyenv shim without it). */
async function findPaho(): Promise<{ python: string; version: string } | undefined> {
  for (const python of ["python3", "/usr/bin/python3"]) {
    try {
      const out = await output(python, [
        "-c",
        "import sys, paho.mqtt; print(paho.mqtt.__version__, sys.version.split()[0])",
      ]);
      if (!out.success) continue;
      const [paho, py] = new TextDecoder().decode(out.stdout).trim().split(" ");
      return { python, version: `Python ${py}, paho-mqtt ${paho}` };
    } catch {
      // not installed
    }
  }
  return undefined;
}

/** Node.js with MQTT.js and the job's script beside it, installing MQTT.js if allowed. */
async function findNode(
  install: boolean,
): Promise<{ script: string; version: string } | undefined> {
  try {
    const version = new TextDecoder().decode((await output("node", ["--version"])).stdout).trim();
    const installed = async (): Promise<boolean> => {
      try {
        const pkg = JSON.parse(
          await Deno.readTextFile(`${NODE_DIR}/node_modules/mqtt/package.json`),
        );
        return pkg.version === MQTTJS_VERSION;
      } catch {
        return false;
      }
    };
    if (!await installed()) {
      if (!install) return undefined;
      await Deno.mkdir(NODE_DIR, { recursive: true });
      const out = await output("npm", [
        "install",
        "--no-audit",
        "--no-fund",
        `mqtt@${MQTTJS_VERSION}`,
      ], NODE_DIR);
      if (!out.success || !await installed()) return undefined;
    }
    const script = `${NODE_DIR}/fleet.mjs`;
    await Deno.writeTextFile(script, MQTTJS_SCRIPT);
    return { script, version: `Node.js ${version}, MQTT.js ${MQTTJS_VERSION}` };
  } catch {
    return undefined;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function coordinator(values: Record<string, string | boolean | undefined>): Promise<void> {
  const count = Number(values.devices);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  for (
    const [name, n] of [["--devices", count], ["--concurrency", concurrency], [
      "--rounds",
      rounds,
    ]] as const
  ) {
    if (!Number.isInteger(n) || n < 1 || n > 10_000) {
      console.error(`error: ${name} must be a whole number from 1 to 10000`);
      Deno.exit(2);
    }
  }
  const only = typeof values.only === "string" ? values.only.split(",") : [...JOBS];
  const unknown = only.filter((j) => !(JOBS as readonly string[]).includes(j));
  if (unknown.length) {
    console.error(`error: unknown job ${unknown.join(", ")} (the jobs are ${JOBS.join(", ")})`);
    Deno.exit(2);
  }
  const note = (line: string): void => console.error(line);
  const dir = await Deno.makeTempDir({ prefix: "c8y-bench-fleet-" });
  try {
    const made0 = performance.now();
    const devices = await makeFleetDevices({
      dir,
      count,
      caCert: `${ROOT}fixtures/ca/device-intermediate-ca.pem`,
      caKey: `${ROOT}fixtures/ca/device-intermediate-ca.key`,
    });
    note(
      `made ${count} device certificates with openssl in ${
        Math.round(performance.now() - made0)
      } ms`,
    );
    const devicesCsv = `${dir}/devices.csv`;
    await Deno.writeTextFile(
      devicesCsv,
      devices.map((d) => `${d.chain},${d.key},${d.commonName}`).join("\n") + "\n",
    );
    const manifest = `${dir}/fleet.csv`;
    await Deno.writeTextFile(
      manifest,
      "keystore,key\n" + devices.map((d) => `${d.chain},${d.key}`).join("\n") + "\n",
    );
    const ca = `${ROOT}fixtures/ca/server-ca.pem`;

    await using mosquitto = await startMosquitto();
    const url = `ssl://127.0.0.1:${mosquitto.port}`;
    const paho = only.includes("paho") ? await findPaho() : undefined;
    const node = only.includes("node-mqttjs") ? await findNode(!values["no-install"]) : undefined;
    if (only.includes("paho") && !paho) note("no python3 with paho.mqtt: the Paho job is left out");
    if (only.includes("node-mqttjs") && !node) note("no Node.js with MQTT.js: its job is left out");
    const self = new URL(import.meta.url).pathname;
    const deno = (job: string, extra: string[]): string[] => [
      Deno.execPath(),
      "run",
      "--allow-all",
      "--ignore-env",
      self,
      "--worker",
      job,
      "--url",
      url,
      "--ca",
      ca,
      "--concurrency",
      String(concurrency),
      ...extra,
    ];
    const argv: Partial<Record<JobName, string[]>> = {
      fleet: deno("fleet", ["--manifest", manifest]),
      "fleet-offline": deno("fleet-offline", ["--manifest", manifest]),
      connect: deno("connect", ["--list", devicesCsv]),
      ...(paho
        ? {
          paho: [
            paho.python,
            `${ROOT}tools/paho_fleet.py`,
            "127.0.0.1",
            String(mosquitto.port),
            ca,
            devicesCsv,
            String(concurrency),
          ],
        }
        : {}),
      ...(node
        ? {
          "node-mqttjs": [
            "node",
            node.script,
            "127.0.0.1",
            String(mosquitto.port),
            ca,
            devicesCsv,
            String(concurrency),
          ],
        }
        : {}),
    };
    const jobs = JOBS.filter((j) => only.includes(j) && argv[j]);
    const runs = new Map<JobName, Measured[]>(jobs.map((j) => [j, []]));
    const failures = new Map<JobName, string>();
    for (let round = 1; round <= rounds; round++) {
      for (const job of jobs) {
        const [cmd, ...args] = argv[job]!;
        const out = await output(cmd, args, ROOT);
        const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
        let measured: Measured | undefined;
        try {
          measured = JSON.parse(text);
        } catch {
          // reported below
        }
        const expectOk = job === "fleet-offline" ? count : count;
        if (!out.success || measured === undefined || measured.ok !== expectOk) {
          const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
          failures.set(
            job,
            `round ${round}: ${measured ? `${measured.ok} of ${count} ok` : "no result"}: ${err}`,
          );
          continue;
        }
        runs.get(job)!.push(measured);
        note(
          `round ${round} ${job}: ${Math.round(measured.wallMs)} ms, ${
            measured.cpuMs.toFixed(0)
          } ms CPU`,
        );
      }
    }

    const rows = jobs.filter((j) => runs.get(j)!.length > 0).map((job) => {
      const ms = runs.get(job)!;
      return {
        job,
        runs: ms.length,
        devicesPerSecond: median(ms.map((m) => m.devices / m.wallMs * 1000)),
        wallMs: median(ms.map((m) => m.wallMs)),
        cpuMsPerDevice: median(ms.map((m) => m.cpuMs / m.devices)),
        rssKiBPerSession: median(
          ms.map((m) => (m.rssPeakKiB - m.rssBaseKiB) / Math.max(1, m.peakInFlight)),
        ),
        offlineMs: job === "fleet" ? median(ms.map((m) => m.offlineMs ?? 0)) : undefined,
      };
    });
    const rate = (job: JobName): number | undefined =>
      rows.find((r) => r.job === job)?.devicesPerSecond;
    // Issue 15's goals: devices per second against the peers, client CPU and memory per device.
    const ratios = ([
      ["fleet", "paho", 2],
      ["fleet", "node-mqttjs", 2.5],
      ["connect", "paho", 2],
      ["connect", "node-mqttjs", 2.5],
    ] as const).flatMap(([a, b, goal]) => {
      const x = rate(a), y = rate(b);
      return x && y ? [{ label: `${a} / ${b} (devices/s)`, ratio: x / y, goal }] : [];
    });
    // The connecting pass of `fleet` alone: the whole run less the offline pass (same process
    // work, measured in the `fleet-offline` job).
    const full = rows.find((r) => r.job === "fleet");
    const offline = rows.find((r) => r.job === "fleet-offline");
    const connectingPass = full && offline
      ? {
        devicesPerSecond: count / (full.wallMs - full.offlineMs!) * 1000,
        cpuMsPerDevice: full.cpuMsPerDevice - offline.cpuMsPerDevice,
      }
      : undefined;
    const machine = {
      cpus: navigator.hardwareConcurrency,
      deno: Deno.version.deno,
      paho: paho?.version,
      node: node?.version,
      devices: count,
      concurrency,
      rounds,
    };
    if (values.json) {
      console.log(
        JSON.stringify(
          { machine, rows, connectingPass, ratios, failures: Object.fromEntries(failures) },
          null,
          2,
        ),
      );
      return;
    }
    console.log(
      `fleet job: ${count} devices, ${concurrency} at a time, median of ${rounds} rounds; ` +
        `${machine.cpus} CPUs, Deno ${machine.deno}${paho ? `, ${paho.version}` : ""}${
          node ? `, ${node.version}` : ""
        }`,
    );
    console.log("job            devices/s   wall ms  CPU ms/device  RSS KiB/session");
    for (const r of rows) {
      const extra = r.offlineMs === undefined
        ? ""
        : `  (offline pass ${Math.round(r.offlineMs)} ms)`;
      console.log(
        `${r.job.padEnd(14)} ${r.devicesPerSecond.toFixed(0).padStart(9)} ${
          r.wallMs.toFixed(0).padStart(9)
        } ` +
          `${r.cpuMsPerDevice.toFixed(2).padStart(14)} ${
            r.rssKiBPerSession.toFixed(0).padStart(16)
          }${extra}`,
      );
    }
    if (connectingPass) {
      console.log(
        `fleet's connecting pass (fleet less fleet-offline): ` +
          `${connectingPass.devicesPerSecond.toFixed(0)} devices/s, ` +
          `${connectingPass.cpuMsPerDevice.toFixed(2)} ms CPU/device (goal <= 1.5)`,
      );
    }
    for (const r of ratios) {
      console.log(`${r.label}: ${r.ratio.toFixed(2)} (goal >= ${r.goal})`);
    }
    for (const [job, why] of failures) console.log(`${job} FAILED ${why}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      devices: { type: "string", default: "200" },
      concurrency: { type: "string", default: "50" },
      rounds: { type: "string", default: "3" },
      only: { type: "string" },
      json: { type: "boolean" },
      "no-install": { type: "boolean" },
      help: { type: "boolean" },
      // The worker side (run by the coordinator).
      worker: { type: "string" },
      url: { type: "string" },
      ca: { type: "string" },
      manifest: { type: "string" },
      list: { type: "string" },
    },
  });
  if (values.help) {
    console.log(HELP);
  } else if (values.worker) {
    const concurrency = Number(values.concurrency);
    const measured = values.worker === "connect"
      ? await connectWorker(values.url!, values.list!, values.ca!, concurrency)
      : await fleetWorker(
        values.worker === "fleet-offline" ? "offline" : "connect",
        values.url!,
        values.manifest!,
        values.ca!,
        concurrency,
      );
    console.log(JSON.stringify(measured));
  } else {
    await coordinator(values);
  }
}
