import assert from "node:assert/strict";
import process from "node:process";
import { XMLParser } from "npm:fast-xml-parser@5.12.1";
import { checkFleet } from "../../lib/fleet/check_fleet.ts";
import { fleetJUnitReport } from "../../lib/fleet/junit.ts";
import {
  type FleetDevice,
  MAX_MANIFEST_LINE_CHARS,
  readManifest,
} from "../../lib/fleet/manifest.ts";
import type { DeviceResult } from "../../lib/fleet/result.ts";
import { loadTrustStore } from "../../lib/stores/load.ts";
import { type ErrorCode, StoreError, UsageError } from "../../lib/errors.ts";
import { makeFleetScenario } from "../support/fleet.ts";
import { startFixtureEmulator } from "../support/emulator.ts";
import type { EmulatorEvent } from "../../lib/emulator/mod.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;
const readFile = (path: string): Promise<Uint8Array> => Deno.readFile(path);
const serverCa = await loadTrustStore(await Deno.readFile(`${FIXTURES}ca/server-ca.pem`));

/** Reads a manifest file as a stream, each time the list is opened. */
function manifestFile(path: string): () => AsyncGenerator<FleetDevice> {
  return () => readManifest(Deno.openSync(path).readable, { name: path });
}

Deno.test("checkFleet() gives each of 20 devices its row, a summary by class and a JUnit report", async () => {
  const scenario = await makeFleetScenario();
  try {
    const events: EmulatorEvent[] = [];
    await using emulator = await startFixtureEmulator({ log: (e) => events.push(e) });
    const results: DeviceResult[] = [];
    const summary = await checkFleet(manifestFile(scenario.manifest), {
      url: `ssl://localhost:${emulator.port}`,
      trust: serverCa,
      readFile,
      concurrency: 8,
      timeoutMs: 5000,
      onResult: (r) => results.push(r),
    });
    assert.equal(results.length, 20);
    for (const expected of scenario.rows) {
      const row = results.find((r) => r.line === expected.line);
      assert.ok(row, `a row for line ${expected.line}`);
      assert.equal(row.keystore, expected.keystore);
      assert.equal(
        row.error?.code,
        expected.failure?.code,
        `line ${expected.line}: ${row.error?.message}`,
      );
      assert.equal(row.error?.class, expected.failure?.class);
      assert.equal(row.ok, expected.failure === undefined);
      if (expected.clientId) assert.equal(row.clientId, expected.clientId);
      if (row.ok) {
        assert.equal(row.token?.subject, `device_${row.clientId!.slice(2)}`);
        assert.ok(Date.parse(row.token!.expiresAt!) > Date.now());
        assert.deepEqual(row.stages.map((s) => s.stage), [
          "store",
          "certificate",
          "dns",
          "tcp",
          "tls",
          "mqtt",
          "subscribe",
          "token",
        ]);
      }
    }
    // The duplicate pair names each other, and neither connected.
    const dup = results.filter((r) => r.error?.code === "CLIENT_ID_DUPLICATE");
    assert.ok(dup[0].error!.message.includes(dup[1].keystore));
    assert.ok(dup.every((r) => !r.stages.some((s) => s.stage === "tcp")));
    const tokens = events.filter((e) => e.kind === "token").length;
    assert.equal(tokens, 15);

    assert.equal(summary.devices, 20);
    assert.equal(summary.passed, 15);
    assert.deepEqual(summary.classes.map((c) => [c.class, c.count]), [
      ["certificate", 3],
      ["store", 1],
      ["mqtt", 1],
    ]);
    assert.deepEqual(summary.classes[0].codes, { CLIENT_ID_DUPLICATE: 2, CERT_EXPIRED: 1 });
    assert.ok(summary.classes[0].hint.includes("one connection per client id"));
    assert.deepEqual(summary.duplicates.map((d) => d.clientId), ["d:device-rsa-001"]);
    assert.ok(summary.stats.peakKeystoresHeld <= 8);

    // The JUnit report, read back by an XML parser: one test case per device, failures typed.
    const xml = await fleetJUnitReport(results, summary);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(xml);
    const suite = doc.testsuites.testsuite;
    assert.equal(suite.tests, "20");
    assert.equal(suite.failures, "5");
    assert.equal(suite.testcase.length, 20);
    const failures = suite.testcase.filter((t: { failure?: unknown }) => t.failure);
    assert.deepEqual(
      failures.map((t: { failure: { type: string } }) => t.failure.type).sort(),
      [
        "certificate CERT_EXPIRED",
        "certificate CLIENT_ID_DUPLICATE",
        "certificate CLIENT_ID_DUPLICATE",
        "mqtt MQTT_NOT_AUTHORIZED",
        "store KEYSTORE_PASSWORD",
      ],
    );
    // No password of the manifest appears anywhere in the results.
    const text = JSON.stringify(results) + xml;
    for (const secret of ["changeit", "not-the-password"]) assert.ok(!text.includes(secret));
  } finally {
    await Deno.remove(scenario.dir, { recursive: true });
  }
});

Deno.test("checkFleet() streams a manifest offline holding no more keystores than the concurrency", async () => {
  const line = `${FIXTURES}devices/ec256.chain.pem,,,,${FIXTURES}devices/ec256.key\n`;
  // The manifest is made on the fly, one line per chunk, so it never exists as a whole either.
  function* text(): Generator<string> {
    yield "keystore,password,alias,client_id,key\n";
    for (let i = 0; i < 300; i++) yield line;
  }
  let results = 0;
  let duplicates = 0;
  const summary = await checkFleet(() => readManifest(text()), {
    mode: "offline",
    readFile,
    concurrency: 10,
    onResult: (r) => {
      results++;
      assert.ok(r.ok, r.error?.message ?? "");
      if (r.warnings.some((w) => w.code === "CLIENT_ID_DUPLICATE")) duplicates++;
    },
  });
  assert.equal(results, 300);
  assert.equal(summary.passed, 300);
  // Offline, nothing connects: a shared client id is a warning on every later line.
  assert.equal(duplicates, 299);
  assert.equal(summary.duplicates[0].devices.length, 300);
  assert.equal(summary.stats.keystoresRead, 300);
  assert.ok(summary.stats.peakKeystoresHeld <= 10, `${summary.stats.peakKeystoresHeld}`);
  assert.ok(summary.stats.peakInFlight <= 10);
  assert.equal(summary.stats.peakResultsHeld, 0);
});

Deno.test("checkFleet() stops at a malformed manifest line before any device connects", async () => {
  const events: EmulatorEvent[] = [];
  await using emulator = await startFixtureEmulator({ log: (e) => events.push(e) });
  const csv = `keystore,password\n${FIXTURES}devices/rsa.jdk.p12,changeit\n"unbalanced,x\n`;
  await assert.rejects(
    checkFleet(() => readManifest([csv], { name: "fleet.csv" }), {
      url: `ssl://localhost:${emulator.port}`,
      trust: serverCa,
      readFile,
    }),
    (err: unknown) =>
      err instanceof UsageError && err.code === "MANIFEST_QUOTE" &&
      err.message.includes(`"fleet.csv" line 3, column 1`),
  );
  assert.deepEqual(events.filter((e) => e.kind === "connect"), []);
});

Deno.test("readManifest() names the line and column of each malformed form", async () => {
  const cases: [string, string, string][] = [
    ["keystore,pasword\na,b\n", "MANIFEST_COLUMN", "line 1, column 2"],
    ["password,alias\nx,y\n", "MANIFEST_HEADER", "line 1"],
    ["keystore,keystore\n", "MANIFEST_COLUMN", "line 1, column 2"],
    ["keystore,password\na.p12,x\n\nb.p12,x,y\n", "MANIFEST_FIELDS", "line 4"],
    ['keystore,password\na.p12,"x\nb.p12,y\n', "MANIFEST_QUOTE", "line 2, column 2"],
    ['keystore\n"a.p12"x\n', "MANIFEST_QUOTE", "line 2, column 1"],
    ['keystore,password\na.p12, "x"\n', "MANIFEST_QUOTE", "line 2, column 2"],
    ["keystore,alias\n,x\n", "MANIFEST_KEYSTORE", "line 2, column 1"],
    ['{"keystore":"a"}\n{"keystore":"b","pass":"x"}\n', "MANIFEST_COLUMN", "line 2"],
    ['{"keystore":"a"}\n\n{"keystore":1}\n', "MANIFEST_JSON", "line 3"],
    ['{"keystore":"a"}\n{"keystore"\n', "MANIFEST_JSON", "line 2, column"],
    [" \n\n", "MANIFEST_EMPTY", "is empty"],
  ];
  for (const [text, code, where] of cases) {
    // Split anywhere: a chunk boundary changes nothing.
    const chunks = [text.slice(0, 5), text.slice(5)];
    await assert.rejects(
      Array.fromAsync(readManifest(chunks, { name: "m" })),
      (err: unknown) =>
        err instanceof UsageError && err.code === code && err.message.includes(where),
      JSON.stringify(text),
    );
  }
  // Paths lose surrounding spaces, a password keeps them; CRLF, a BOM and a header in capitals.
  assert.deepEqual(
    await Array.fromAsync(readManifest(["\uFEFFKeystore, Password\r\n a.p12 , x \r\n"])),
    [{ keystore: "a.p12", password: " x ", line: 2 }],
  );
  const jsonl = '{"keystore":"a.p12","password":"env:A","clientId":"d:a"}\n\n{"keystore":"b"}';
  assert.deepEqual(await Array.fromAsync(readManifest([jsonl])), [
    { keystore: "a.p12", password: "env:A", clientId: "d:a", line: 1 },
    { keystore: "b", line: 3 },
  ]);
});

Deno.test("checkFleet() in connect mode connects each device, runs whileConnected, and asks no token", async () => {
  const events: EmulatorEvent[] = [];
  await using emulator = await startFixtureEmulator({ log: (e) => events.push(e) });
  const devices: FleetDevice[] = ["rsa", "ec256", "ec384"].map((name) => ({
    keystore: `${FIXTURES}devices/${name}.chain.pem`,
    key: `${FIXTURES}devices/${name}.key`,
  }));
  const results: DeviceResult[] = [];
  const connected: string[] = [];
  const summary = await checkFleet(devices, {
    mode: "connect",
    url: `ssl://localhost:${emulator.port}`,
    trust: serverCa,
    readFile,
    whileConnected: async (session, { clientId }) => {
      assert.equal(session.clientId, clientId);
      connected.push(clientId);
      await session.publish("s/us", `100,${clientId},c8y_MQTTDevice`);
    },
    onResult: (r) => results.push(r),
  });
  assert.equal(summary.passed, 3);
  assert.deepEqual(connected.sort(), [
    "d:device-ec256-001",
    "d:device-ec384-001",
    "d:device-rsa-001",
  ]);
  for (const r of results) {
    assert.deepEqual(r.stages.map((s) => s.stage), [
      "store",
      "certificate",
      "dns",
      "tcp",
      "tls",
      "mqtt",
    ]);
    assert.equal(r.token, undefined);
  }
  assert.equal(events.filter((e) => e.kind === "token").length, 0);
  assert.equal(events.filter((e) => e.kind === "disconnect").length, 3);
});

Deno.test("checkFleet() gives a row to every device also when the list can be walked only once", async () => {
  await using emulator = await startFixtureEmulator();
  function* once(): Generator<FleetDevice> {
    yield { keystore: `${FIXTURES}devices/rsa.chain.pem`, key: `${FIXTURES}devices/rsa.key` };
  }
  const results: DeviceResult[] = [];
  const summary = await checkFleet(once(), {
    url: `ssl://localhost:${emulator.port}`,
    trust: serverCa,
    readFile,
    onResult: (r) => results.push(r),
  });
  assert.equal(summary.devices, 1);
  assert.equal(results[0].error?.code, "STORE_CHANGED");
  assert.match(results[0].error!.hint, /walked twice/);
});

Deno.test("readManifest() waits for a slow reader without piling up listeners on the parser", async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning.name);
  process.on("warning", onWarning);
  try {
    // Chunks as large as a file stream's (64 KiB): each one fills the parser's input buffer.
    const line = `devices/${"x".repeat(200)}.p12\n`;
    const text = ["keystore\n", ...Array.from({ length: 20 }, () => line.repeat(300))];
    let n = 0;
    for await (const _ of readManifest(text)) {
      n++;
      if (n % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.equal(n, 6000);
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(warnings, []);
});

Deno.test("checkFleet() keeps each distinct hint of a class with its code and count, most common first", async () => {
  const failures: Record<string, [ErrorCode, string]> = {
    "a.p12": ["STORE_NOT_FOUND", "Check the path."],
    "b.p12": ["KEYSTORE_PASSWORD", "Check the store password."],
    "c.p12": ["KEYSTORE_PASSWORD", "Check the store password."],
    "d.p12": ["KEYSTORE_PASSWORD", "Another hint of the same code."],
  };
  const summary = await checkFleet(Object.keys(failures).map((keystore) => ({ keystore })), {
    mode: "offline",
    readFile: (path) => {
      const [code, hint] = failures[path];
      return Promise.reject(new StoreError(`${path} fails`, { code, hint }));
    },
  });
  assert.equal(summary.classes.length, 1);
  const [store] = summary.classes;
  assert.deepEqual(store.codes, { STORE_NOT_FOUND: 1, KEYSTORE_PASSWORD: 3 });
  assert.equal(store.hint, "Check the store password.");
  assert.deepEqual(store.hints, [
    { code: "KEYSTORE_PASSWORD", hint: "Check the store password.", count: 2 },
    { code: "STORE_NOT_FOUND", hint: "Check the path.", count: 1 },
    { code: "KEYSTORE_PASSWORD", hint: "Another hint of the same code.", count: 1 },
  ]);
});

Deno.test("readManifest() refuses a line longer than MAX_MANIFEST_LINE_CHARS, in CSV and in JSON lines", async () => {
  const long = "x".repeat(MAX_MANIFEST_LINE_CHARS + 10);
  const cases: [string[], string][] = [
    [["keystore,password\n", `a.p12,${long}\n`], "fleet.csv"],
    // JSON lines, arriving in small chunks without a newline.
    [['{"keystore": "a.p12"}\n', ...Array.from({ length: 70 }, () => "y".repeat(1024))], "f.jsonl"],
  ];
  for (const [chunks, name] of cases) {
    await assert.rejects(
      async () => {
        for await (const _ of readManifest(chunks, { name })) { /* drain */ }
      },
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "MANIFEST_LINE_TOO_LONG");
        assert.match(err.message, new RegExp(`line 2: longer than ${MAX_MANIFEST_LINE_CHARS}`));
        return true;
      },
    );
  }
});
