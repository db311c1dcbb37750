import assert from "node:assert/strict";
import { XMLParser } from "npm:fast-xml-parser@5.12.1";
import type { EmulatorEvent } from "../../lib/emulator/mod.ts";
import type { DeviceResult, FleetSummary } from "../../lib/fleet/result.ts";
import { type CliResult, denoFlags, ROOT, runCli } from "../support/cli.ts";
import { makeFleetScenario } from "../support/fleet.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;

/** The permissions of the `deno run` line a PERMISSION_MISSING hint suggests. */
interface Suggested {
  read?: string[];
  net?: string[];
  env?: string[];
  write?: string[];
  ignoreEnv: boolean;
}

function suggestedPermissions(hint: string): Suggested {
  const flag = (name: string): string[] | undefined =>
    new RegExp(`--allow-${name}=(\\S+)`).exec(hint)?.[1].split(",");
  return {
    read: flag("read"),
    net: flag("net"),
    env: flag("env"),
    write: flag("write"),
    ignoreEnv: / --ignore-env /.test(hint),
  };
}

/** Runs `cli.ts` as `runCli` does, with `--allow-write` as well (for `--junit`). */
async function runCliWriting(args: string[], permissions: Suggested): Promise<CliResult> {
  const write = permissions.write?.length ? [`--allow-write=${permissions.write.join(",")}`] : [];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...denoFlags(permissions), ...write, "cli.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

type JsonLine =
  | ({ kind: "device" } & DeviceResult)
  | ({ kind: "summary"; exitCode: number } & FleetSummary);

Deno.test("fleet: 20 devices against the emulator, permissions from the manifest, JSON lines, a JUnit file and the most common class's exit code", async () => {
  const scenario = await makeFleetScenario();
  try {
    const events: EmulatorEvent[] = [];
    await using emulator = await startFixtureEmulator({ log: (e) => events.push(e) });
    const junit = `${scenario.dir}/report/fleet.xml`;
    await Deno.mkdir(`${scenario.dir}/report`);
    const args = [
      "fleet",
      "--manifest",
      scenario.manifest,
      "--url",
      `ssl://localhost:${emulator.port}`,
      "--truststore",
      "fixtures/ca/server-ca.pem",
      "--concurrency",
      "8",
      "--timeout",
      "5",
      "--json",
      "--junit",
      junit,
    ];

    // With access to the manifest only, the planner reads it and names every path it needs.
    const denied = await runCli(args, { read: [scenario.manifest] });
    assert.equal(denied.code, 9, denied.stderr);
    const hint = JSON.parse(denied.stdout).error.hint as string;
    const granted = suggestedPermissions(hint);
    for (const path of [`${FIXTURES}bad`, `${FIXTURES}devices`, scenario.dir]) {
      assert.ok(granted.read?.includes(path), `${path} in ${hint}`);
    }
    assert.deepEqual(granted.net, [`localhost:${emulator.port}`]);
    assert.deepEqual(granted.write, [`${scenario.dir}/report`]);
    assert.ok(granted.ignoreEnv, "MQTT.js's dependencies look up variables: --ignore-env");
    assert.equal(events.filter((e) => e.kind === "connect").length, 0);

    // The suggested line works as given.
    const run = await runCliWriting(args, granted);
    assert.equal(run.code, 4, run.stderr); // certificate: 3 of the 5 failures
    const lines: JsonLine[] = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const rows = lines.filter((l) => l.kind === "device");
    assert.equal(rows.length, 20);
    for (const expected of scenario.rows) {
      const row = rows.find((r) => r.line === expected.line)!;
      assert.equal(row.keystore, expected.keystore);
      assert.equal(row.ok, expected.failure === undefined, `line ${expected.line}`);
      assert.equal(row.error?.code, expected.failure?.code, `line ${expected.line}`);
      assert.equal(row.error?.class, expected.failure?.class);
      if (expected.clientId) assert.equal(row.clientId, expected.clientId);
      if (row.ok) assert.equal(row.token?.subject, `device_${row.clientId!.slice(2)}`);
    }
    const summary = lines.at(-1)!;
    assert.equal(summary.kind, "summary");
    if (summary.kind !== "summary") return;
    assert.equal(summary.exitCode, 4);
    assert.deepEqual([summary.devices, summary.passed, summary.failed], [20, 15, 5]);
    assert.deepEqual(summary.classes.map((c) => [c.class, c.count, c.devices.length]), [
      ["certificate", 3, 3],
      ["store", 1, 1],
      ["mqtt", 1, 1],
    ]);
    assert.ok(!run.stdout.includes("changeit") && !run.stderr.includes("not-the-password"));

    // The JUnit report, read back by an XML parser; no temporary file is left beside it.
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" })
      .parse(await Deno.readTextFile(junit));
    const suite = doc.testsuites.testsuite;
    assert.deepEqual([suite.tests, suite.failures], ["20", "5"]);
    assert.equal(suite.testcase.length, 20);
    const failed = suite.testcase.filter((t: { failure?: unknown }) => t.failure);
    assert.deepEqual(
      failed.map((t: { name: string; failure: { type: string } }) => [t.name, t.failure.type])
        .sort(),
      scenario.rows.filter((r) => r.failure)
        .map((r) => [`${r.keystore} (line ${r.line})`, `${r.failure!.class} ${r.failure!.code}`])
        .sort(),
    );
    assert.deepEqual([...Deno.readDirSync(`${scenario.dir}/report`)].map((e) => e.name), [
      "fleet.xml",
    ]);

    // For people: the table of classes, most common first, each with its devices and hint.
    const text = await runCliWriting(args.filter((a) => a !== "--json"), granted);
    assert.equal(text.code, 4);
    const classes = text.stdout.split("\n").filter((l) => /^ {2}\w+ +\d+ {2}/.test(l));
    assert.deepEqual(classes.map((l) => l.trim().split(/\s+/).slice(0, 2)), [
      ["certificate", "3"],
      ["store", "1"],
      ["mqtt", "1"],
    ]);
    assert.match(
      text.stdout,
      /hint \(CLIENT_ID_DUPLICATE\): The platform admits one connection per client id/,
    );
    assert.match(text.stdout, /exit code 4 \(certificate, the most common failure class\)/);
    assert.match(text.stderr, /fleet: 20 of 20 devices done, 5 failed/);
  } finally {
    await Deno.remove(scenario.dir, { recursive: true });
  }
});

Deno.test("fleet: a malformed manifest is a usage error naming line and column, before any connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const events: EmulatorEvent[] = [];
    await using emulator = await startFixtureEmulator({ log: (e) => events.push(e) });
    const cases: [string, RegExp][] = [
      ["keystore,password,serial\na.p12,x,1\n", /line 1, column 3: unknown column "serial"/],
      [
        `keystore,password\n${FIXTURES}devices/rsa.jdk.p12,changeit\n"b.p12,x\n`,
        /line 3, column 1: a quoted cell is not closed/,
      ],
      ["keystore,password\na.p12,x,y\n", /line 2: 3 cells where the header has 2/],
    ];
    for (const [text, message] of cases) {
      const manifest = `${dir}/fleet.csv`;
      await Deno.writeTextFile(manifest, text);
      const run = await runCli(
        ["fleet", "--manifest", manifest, "--url", `ssl://localhost:${emulator.port}`],
        { read: [dir, FIXTURES], net: [`localhost:${emulator.port}`], ignoreEnv: true },
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.match(run.stderr, new RegExp(`error: The manifest "${manifest}"`));
    }
    assert.equal(events.filter((e) => e.kind === "connect").length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet --offline: 2,000 lines of one device are streamed, never more keystores held than the concurrency", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const manifest = `${dir}/fleet.csv`;
    const line = `${FIXTURES}devices/ec256.chain.pem,${FIXTURES}devices/ec256.key\n`;
    await Deno.writeTextFile(manifest, "keystore,key\n" + line.repeat(2000));
    const run = await runCli(
      ["fleet", "--manifest", manifest, "--offline", "--concurrency", "10", "--json", "--quiet"],
      { read: [manifest, `${FIXTURES}devices`] },
    );
    assert.equal(run.code, 0, run.stderr);
    const lines: JsonLine[] = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2001);
    const summary = lines.at(-1)!;
    if (summary.kind !== "summary") throw new Error("the summary comes last");
    assert.equal(summary.passed, 2000);
    assert.equal(summary.stats.keystoresRead, 2000);
    assert.ok(summary.stats.peakKeystoresHeld <= 10, `${summary.stats.peakKeystoresHeld}`);
    assert.ok(summary.stats.peakInFlight <= 10);
    assert.equal(summary.stats.peakResultsHeld, 0);
    // Nothing connects offline: a shared client id is a warning (on every later line).
    assert.deepEqual(summary.duplicates.map((d) => [d.clientId, d.devices.length]), [
      ["d:device-ec256-001", 2000],
    ]);
    const warned = lines.filter((l) =>
      l.kind === "device" && l.warnings.some((w) => w.code === "CLIENT_ID_DUPLICATE")
    );
    assert.equal(warned.length, 1999);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet --keystores DIR takes the directory's keystores and PEM pairs, with one password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const copy = (from: string, to: string): Promise<void> =>
      Deno.copyFile(`${FIXTURES}${from}`, `${dir}/${to}`);
    await copy("devices/rsa.jdk.p12", "a.p12");
    await copy("devices/ec256.jks", "b.jks");
    await copy("devices/ec384.chain.pem", "c.chain.pem");
    await copy("devices/ec384.pem", "c.pem");
    await copy("devices/ec384.key", "c.key");
    await copy("bad/expired.p12", "d.pfx");
    await Deno.writeTextFile(`${dir}/notes.txt`, "not a keystore");
    const run = await runCli(
      [
        "fleet",
        "--keystores",
        dir,
        "--keystore-password",
        "env:FLEET_PASSWORD",
        "--offline",
        "--json",
        "-q",
      ],
      { read: [dir], env: ["FLEET_PASSWORD"] },
      { env: { FLEET_PASSWORD: "changeit" } },
    );
    assert.equal(run.code, 4, run.stderr);
    const lines: JsonLine[] = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const rows = lines.filter((l) => l.kind === "device")
      .map((r) => [r.keystore.slice(dir.length + 1), r.clientId ?? r.error?.code]).sort();
    // c.pem is left out: c.key goes with c.chain.pem; notes.txt is no keystore.
    assert.deepEqual(rows, [
      ["a.p12", "d:device-rsa-001"],
      ["b.jks", "d:device-ec256-001"],
      ["c.chain.pem", "d:device-ec384-001"],
      ["d.pfx", "CERT_EXPIRED"],
    ]);
    assert.ok(!run.stdout.includes("changeit"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet on a terminal draws a progress bar on stderr (cli-progress)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const manifest = `${dir}/fleet.csv`;
    const line = `${FIXTURES}devices/ec256.chain.pem,${FIXTURES}devices/ec256.key\n`;
    await Deno.writeTextFile(manifest, "keystore,key\n" + line.repeat(30));
    // `script` (util-linux) runs the command on a pseudo-terminal and copies what it shows.
    const command = [
      Deno.execPath(),
      "run",
      "--no-prompt",
      `--allow-read=${dir},${FIXTURES}devices`,
      "cli.ts",
      "fleet",
      "--manifest",
      manifest,
      "--offline",
      "--concurrency",
      "5",
    ].join(" ");
    const out = await new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      cwd: ROOT,
      stdin: "null",
      env: { TERM: "xterm", NO_COLOR: "1" },
    }).output();
    const screen = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, screen);
    assert.match(screen, /fleet \[[█░]+\] 30\/30 devices, 0 failed/);
    assert.match(screen, /fleet: 30 of 30 devices passed, 0 failed/);
    assert.doesNotMatch(screen, /devices done/, "no plain progress lines on a terminal");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The `hint:` line of a text error report. */
function hintLine(stderr: string): string {
  return stderr.split("\n").find((l) => l.startsWith("hint: "))!;
}

/** A manifest of devices of the fixtures, one `keystore,password,key` line each. */
async function manifestOf(dir: string, lines: [string, string, string?][]): Promise<string> {
  const manifest = `${dir}/fleet.csv`;
  const rows = lines.map(([keystore, password, key]) =>
    `${FIXTURES}${keystore},${password},${key ? FIXTURES + key : ""}`
  );
  await Deno.writeTextFile(manifest, ["keystore,password,key", ...rows].join("\n") + "\n");
  return manifest;
}

Deno.test("fleet --junit: a missing directory or a directory as FILE is a usage error naming it, before any device", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const manifest = await manifestOf(dir, [["devices/ec256.jdk.p12", "changeit"]]);
    await Deno.mkdir(`${dir}/reports`);
    const cases: [string, RegExp][] = [
      [
        `${dir}/nodir/fleet.xml`,
        new RegExp(
          `error: --junit "${dir}/nodir/fleet.xml": the directory "${dir}/nodir" does not exist`,
        ),
      ],
      [`${dir}/reports`, new RegExp(`error: --junit "${dir}/reports" is a directory, not a file`)],
    ];
    for (const [junit, message] of cases) {
      const run = await runCliWriting(
        ["fleet", "--manifest", manifest, "--offline", "--junit", junit],
        { read: [dir, FIXTURES], write: [dir], ignoreEnv: false },
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /bug|Unexpected/);
      assert.doesNotMatch(run.stderr, /devices done/, "no device was read");
      assert.equal(run.stdout, "");
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "fleet.csv",
      "reports",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet --junit: a report that cannot be written at the end comes after the summary, as REPORT_WRITE with exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    // The report's name becomes a directory once the first device connects (after the check
    // of --junit), so the rename at the end fails.
    const junit = `${dir}/fleet.xml`;
    await using emulator = await startFixtureEmulator({
      log: (e) => {
        if (e.kind === "connect") Deno.mkdirSync(junit, { recursive: true });
      },
    });
    const manifest = `${dir}/fleet.csv`;
    await Deno.writeTextFile(
      manifest,
      `keystore,password\n${FIXTURES}devices/ec256.jdk.p12,changeit\n` +
        `${FIXTURES}devices/rsa.jdk.p12,wrong\n`,
    );
    const fleet = async (json: boolean): Promise<CliResult> => {
      await Deno.remove(junit, { recursive: true }).catch(() => {});
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--ignore-env",
          `--allow-read=${dir},${FIXTURES}`,
          `--allow-write=${dir}`,
          `--allow-net=localhost:${emulator.port}`,
          "cli.ts",
          "fleet",
          "--manifest",
          manifest,
          "--url",
          `ssl://localhost:${emulator.port}`,
          "--truststore",
          "fixtures/ca/server-ca.pem",
          "--no-token",
          "--junit",
          junit,
          ...(json ? ["--json"] : []),
        ],
        cwd: ROOT,
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      const decoder = new TextDecoder();
      return {
        code: out.code,
        stdout: decoder.decode(out.stdout),
        stderr: decoder.decode(out.stderr),
      };
    };
    const { code, stdout, stderr } = await fleet(false);
    assert.equal(code, 2, stderr);
    assert.match(stdout, /fleet: 1 of 2 devices passed, 1 failed/);
    assert.match(stdout, /store +1 {2}KEYSTORE_PASSWORD 1/);
    assert.match(stdout, /exit code 3 \(store, the most common failure class\)/);
    assert.match(
      stderr,
      new RegExp(
        `error: The JUnit report "${junit}" could not be written: .*\\(exit code 2 instead of the devices' 3\\)`,
      ),
    );
    assert.doesNotMatch(stderr, /bug|Unexpected/);
    // No temporary file is left behind.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "fleet.csv",
      "fleet.xml",
    ]);

    // In JSON, the summary comes last and carries the error.
    const json = await fleet(true);
    assert.equal(json.code, 2, json.stderr);
    const summary = JSON.parse(json.stdout.trim().split("\n").at(-1)!);
    assert.equal(summary.kind, "summary");
    assert.deepEqual([summary.devices, summary.failed], [2, 1]);
    assert.deepEqual([summary.ok, summary.exitCode, summary.devicesExitCode], [false, 2, 3]);
    assert.equal(summary.error.code, "REPORT_WRITE");
    assert.equal(summary.error.exitCode, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet --offline lists client ids used twice in its text report, as a warning with the devices", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const manifest = await manifestOf(dir, [
      ["devices/ec256.jdk.p12", "changeit"],
      ["devices/rsa.jdk.p12", "changeit"],
      ["devices/ec256.jks", "changeit"],
    ]);
    const run = await runCli(["fleet", "--manifest", manifest, "--offline", "-q"], {
      read: [dir, FIXTURES],
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /fleet: 3 of 3 devices passed, 0 failed/);
    assert.match(
      run.stdout,
      /warning CLIENT_ID_DUPLICATE: 1 client id\(s\) used by more than one device/,
    );
    const line = run.stdout.split("\n").find((l) => l.includes("d:device-ec256-001 (2 devices)"));
    assert.ok(line, run.stdout);
    assert.ok(line.includes(`${FIXTURES}devices/ec256.jdk.p12 (line 2)`), line);
    assert.ok(line.includes(`${FIXTURES}devices/ec256.jks (line 4)`), line);
    assert.ok(!run.stdout.includes("device-rsa-001"), "a client id used once is no warning");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet hints speak the manifest's words, and the table shows each distinct hint of a class", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const manifest = await manifestOf(dir, [
      ["devices/missing.p12", "changeit"],
      ["devices/rsa.jdk.p12", "wrong"],
      ["devices/ec256.keypass.jks", "changeit"],
      ["devices/ec256.chain.pem", "wrong", "devices/ec256.key.enc.pem"],
    ]);
    const run = await runCli(["fleet", "--manifest", manifest, "--offline", "-q"], {
      read: [dir, FIXTURES],
    });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stdout, /hint \(STORE_NOT_FOUND\): Check the path/);
    assert.match(
      run.stdout,
      /hint \(KEYSTORE_PASSWORD\): Check the store password \(the manifest's password column\)\./,
    );
    // The JKS key entry and the PEM key file: one hint, naming what a manifest cannot give.
    const keyHints = run.stdout.split("\n").filter((l) => l.includes("hint (KEY_PASSWORD)"));
    assert.equal(keyHints.length, 1, run.stdout);
    assert.match(keyHints[0], /Check the manifest's password column: fleet opens the key with it/);
    assert.match(keyHints[0], /cannot be given in a manifest: .*check --key-password/);
    assert.doesNotMatch(run.stdout, /keyPassword|`password`/);

    // The same words in the JSON rows and summary.
    const json = await runCli(["fleet", "--manifest", manifest, "--offline", "--json", "-q"], {
      read: [dir, FIXTURES],
    });
    assert.doesNotMatch(json.stdout, /keyPassword|`password`/);
    const summary = JSON.parse(json.stdout.trim().split("\n").at(-1)!) as FleetSummary;
    assert.deepEqual(summary.classes[0].hints.map((h) => [h.code, h.count]).sort(), [
      ["KEYSTORE_PASSWORD", 1],
      ["KEY_PASSWORD", 1],
      ["KEY_PASSWORD", 1],
      ["STORE_NOT_FOUND", 1],
    ]);

    // With --keystores, the password is --keystore-password.
    await Deno.copyFile(`${FIXTURES}devices/rsa.jdk.p12`, `${dir}/a.p12`);
    const keystores = await runCli(
      ["fleet", "--keystores", dir, "--keystore-password", "pass:wrong", "--offline", "-q"],
      { read: [dir] },
    );
    assert.equal(keystores.code, 3, keystores.stderr);
    assert.match(
      keystores.stdout,
      /hint \(KEYSTORE_PASSWORD\): Check the store password \(--keystore-password\)\./,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet --junit needs read and write access to the report's directory: help, README and planner agree", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const help = await runCli(["fleet", "--help"]);
    assert.match(help.stdout, /--allow-read=.*\[,<directory of --junit FILE>\]/);
    assert.match(help.stdout, /\[--allow-write=<directory of --junit FILE>\]/);
    const readme = await Deno.readTextFile(`${ROOT}README.md`);
    const row = readme.split("\n").find((l) => l.startsWith("| `fleet`") && l.includes("allow"));
    assert.match(row!, /`--junit FILE`: `--allow-read` and `--allow-write` of FILE's directory/);

    const manifest = await manifestOf(dir, [["devices/ec256.jdk.p12", "changeit"]]);
    await Deno.mkdir(`${dir}/reports`);
    const junit = `${dir}/reports/fleet.xml`;
    const run = await runCliWriting(
      ["fleet", "--manifest", manifest, "--offline", "--junit", junit],
      { read: [manifest, FIXTURES], write: [`${dir}/reports`], ignoreEnv: false },
    );
    assert.equal(run.code, 9, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`reading "${dir}/reports" needs --allow-read=${dir}/reports`),
    );
    const granted = suggestedPermissions(hintLine(run.stderr));
    assert.ok(granted.read?.includes(`${dir}/reports`));
    assert.deepEqual(granted.write, [`${dir}/reports`]);
    const again = await runCliWriting(
      ["fleet", "--manifest", manifest, "--offline", "--junit", junit, "-q"],
      granted,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(await Deno.readTextFile(junit), /<testsuite /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet with an unreadable manifest says the next run names the files it lists", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const manifest = await manifestOf(dir, [["devices/ec256.jdk.p12", "changeit"]]);
    const args = ["fleet", "--manifest", manifest, "--offline"];
    const first = await runCli(args, {});
    assert.equal(first.code, 9, first.stderr);
    assert.match(
      first.stderr,
      new RegExp(
        `hint: The manifest "${manifest}" cannot be read yet, so this line does not name the ` +
          "keystores, key files and password files \\(or env: variables\\) it lists: once the " +
          "manifest may be read, the next run names each of them\\. Run: deno run",
      ),
    );
    assert.deepEqual(suggestedPermissions(hintLine(first.stderr)).read, [manifest]);
    // Granted the manifest, the next line names its keystore (and says nothing more).
    const second = await runCli(args, { read: [manifest] });
    assert.equal(second.code, 9, second.stderr);
    assert.deepEqual(suggestedPermissions(hintLine(second.stderr)).read, [
      manifest,
      `${FIXTURES}devices/ec256.jdk.p12`,
    ]);
    assert.doesNotMatch(second.stderr, /cannot be read yet/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet: a manifest or --keystores path that is missing, a directory or a FIFO is a usage error naming it, never a hang", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  try {
    const fifo = `${dir}/fifo.csv`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    const cases: [string[], RegExp][] = [
      [["--manifest", `${dir}/missing.csv`], /error: The manifest ".*missing\.csv" does not exist/],
      [["--manifest", dir], /error: The manifest ".*" is a directory, not a file/],
      [["--manifest", fifo], /error: The manifest ".*fifo\.csv" is not a regular file/],
      [["--keystores", `${dir}/none`], /error: --keystores ".*none" does not exist/],
      [["--keystores", fifo], /error: --keystores ".*fifo\.csv" is not a directory/],
    ];
    for (const [source, message] of cases) {
      const run = await runCli(["fleet", ...source, "--offline"], { read: [dir] });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /bug/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
