/**
 * `emulate` as a user runs it: on every loopback name under the permission line it prints
 * itself, with its REST endpoint, its one-line-per-event log, and operations typed on stdin.
 */
import assert from "node:assert/strict";
import { denoFlags, ROOT, runCli } from "../support/cli.ts";
import { connectDevice } from "../emulator/support.ts";

const EMU_FILES = [
  "fixtures/ca/device-root-ca.pem",
  "fixtures/server/server.pem",
  "fixtures/server/server.key",
];
const EMULATE = [
  "emulate",
  "--port",
  "0",
  "--trust",
  EMU_FILES[0],
  "--server-cert",
  EMU_FILES[1],
  "--server-key",
  EMU_FILES[2],
];

/** A running `emulate` child with its announced URLs and its stderr lines so far. */
interface Running {
  child: Deno.ChildProcess;
  url: string;
  restUrl: string | undefined;
  stderr: string[];
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  /** The first line on stdout. */
  announced: string;
  /** SIGTERM, then its exit code and whole stderr. */
  stop(): Promise<{ code: number; stderr: string }>;
}

/** Starts `cli.ts emulate` with the given extra arguments and net grant; waits for its URL. */
async function startEmulate(extra: string[], net: string[]): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...denoFlags({ read: EMU_FILES, net }, "emulate"),
      "cli.ts",
      ...EMULATE,
      ...extra,
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr: string[] = [];
  const errDone = (async () => {
    let partial = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      stderr.push(...lines);
    }
    if (partial) stderr.push(partial);
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  reader.releaseLock();
  const url = /mqtts:\/\/[^\s"]+:\d+/.exec(seen)?.[0];
  const restUrl = /https:\/\/[^\s"]+:\d+/.exec(seen)?.[0];
  const stdin = child.stdin.getWriter();
  const stop = async (): Promise<{ code: number; stderr: string }> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already ended
    }
    await stdin.close().catch(() => {});
    const { code } = await child.status;
    await child.stdout.cancel().catch(() => {});
    await errDone;
    return { code, stderr: stderr.join("\n") };
  };
  if (!url) {
    const { stderr: text } = await stop();
    assert.fail(`no URL announced: ${seen} ${text}`);
  }
  return { child, url: url!, restUrl, stderr, stdin, stop, announced: seen.split("\n")[0]! };
}

for (
  const [host, grant, shown] of [
    ["localhost", "127.0.0.1", "127.0.0.1"],
    ["127.0.0.1", "127.0.0.1", "127.0.0.1"],
    ["::1", "[::1]", "[::1]"],
    ["[::1]", "[::1]", "[::1]"],
  ] as const
) {
  Deno.test(`emulate --host ${host} runs under the --allow-net it names`, async () => {
    const refused = await runCli([...EMULATE, "--host", host], { read: EMU_FILES });
    assert.equal(refused.code, 9, refused.stderr);
    assert.ok(refused.stderr.includes(`--allow-net=${grant}`), refused.stderr);
    assert.doesNotMatch(refused.stderr, /Uncaught|invalid empty host/);
    const running = await startEmulate(["--host", host, "--quiet"], [grant]);
    assert.match(running.url, new RegExp(`^mqtts://${shown.replace(/[[\].]/g, "\\$&")}:\\d+$`));
    const { code, stderr } = await running.stop();
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /Uncaught|error/i);
  });
}

Deno.test(
  "emulate --rest-port announces its REST URL, logs each s/us line on one line, sends typed operations",
  async () => {
    const running = await startEmulate(["--rest-port", "0"], ["127.0.0.1"]);
    let device: Awaited<ReturnType<typeof connectDevice>> | undefined;
    try {
      assert.match(running.restUrl ?? "", /^https:\/\/127\.0\.0\.1:\d+$/);
      device = await connectDevice(running.url, "devices/rsa", "d:device-rsa-001");
      assert.equal(device.code, 0);
      const operation = new Promise<string>((resolve) =>
        device!.client.on("message", (topic, payload) => {
          if (topic === "s/ds") resolve(new TextDecoder().decode(payload));
        })
      );
      await device.client.subscribeAsync("s/ds", { qos: 0 });
      await device.client.publishAsync("s/us", "100,Pump 7,c8y_Pump\n200,c8y_T,T,21", { qos: 0 });
      const typed = "d:device-rsa-001 510,device-rsa-001\nnonsense\nd:nobody 510,x\n";
      await running.stdin.write(new TextEncoder().encode(typed));
      assert.equal(await operation, "510,device-rsa-001");
      for (let i = 0; i < 200 && !running.stderr.some((l) => l.includes("d:nobody")); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      const log = running.stderr.join("\n");
      assert.match(log, /^emulator: message .*topic=s\/us line="100,Pump 7,c8y_Pump"$/m);
      assert.match(log, /^emulator: message .*line=200,c8y_T,T,21$/m);
      assert.match(log, /^emulator: device-created .*deviceName="Pump 7" deviceType=c8y_Pump$/m);
      assert.match(
        log,
        /^emulator: operation clientId=d:device-rsa-001 .*line=510,device-rsa-001$/m,
      );
      assert.match(log, /^emulator: not sent: type <client id> <SmartREST line>/m);
      assert.match(log, /^emulator: not sent: No device is connected as "d:nobody"$/m);
      for (const line of running.stderr) assert.match(line, /^emulator: /, line);
    } finally {
      await device?.client.endAsync(true);
      const { code, stderr } = await running.stop();
      assert.equal(code, 0, stderr);
    }
  },
);

Deno.test("emulate refuses a --host that is not loopback, as a usage error naming it", async () => {
  for (const host of ["0.0.0.0", "::", "192.168.1.10", "example.com", "127.0.0.256"]) {
    const result = await runCli([...EMULATE, "--host", host], { read: EMU_FILES });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `^error: --host ${host.replace(/[.:]/g, "\\$&")} is not a loopback address: ` +
          "the emulator listens on 127.0.0.1, ::1 or localhost only\nhint: ",
      ),
    );
  }
  // Another address of 127.0.0.0/8 is loopback: it gets as far as the permission check.
  const other = await runCli([...EMULATE, "--host", "127.0.0.2"], { read: EMU_FILES });
  assert.equal(other.code, 9, other.stderr);
  assert.ok(other.stderr.includes("--allow-net=127.0.0.2"), other.stderr);
});

Deno.test("emulate's help names every option it takes in its usage line", async () => {
  const help = await runCli(["emulate", "--help"], {});
  assert.equal(help.code, 0, help.stderr);
  const start = help.stdout.indexOf("USAGE\n");
  const usage = help.stdout.slice(start, help.stdout.indexOf("\n\n", start));
  for (
    const option of ["--host", "--port", "--rest-port", "--tenant", "--token-lifetime", "--json"]
  ) {
    assert.ok(usage.includes(option), `${option} in:\n${usage}`);
  }
});

Deno.test("emulate --json prints one JSON object per line: the listening line and each event", async () => {
  const running = await startEmulate(["--json", "--rest-port", "0"], ["127.0.0.1"]);
  let device: Awaited<ReturnType<typeof connectDevice>> | undefined;
  try {
    device = await connectDevice(running.url, "devices/rsa", "d:device-rsa-001");
    assert.equal(device.code, 0);
    await device.client.publishAsync("s/us", "100,Pump 7,c8y_Pump", { qos: 0 });
    await running.stdin.write(new TextEncoder().encode("nonsense\n"));
    for (
      let i = 0;
      i < 200 && !running.stderr.some((l) => l.includes('"line":"100,Pump 7,c8y_Pump"'));
      i++
    ) await new Promise((r) => setTimeout(r, 25));
    for (let i = 0; i < 200 && !running.stderr.some((l) => l.includes("not-sent")); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    await device?.client.endAsync(true);
  }
  const { code, stderr } = await running.stop();
  assert.equal(code, 0, stderr);
  const events = stderr.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  assert.ok(events.every((e) => typeof e.kind === "string" && typeof e.time === "string"));
  assert.ok(events.some((e) => e.kind === "message" && e.line === "100,Pump 7,c8y_Pump"));
  assert.ok(events.some((e) => e.kind === "not-sent" && /client id/.test(e.reason)));
  const listening = JSON.parse(running.announced);
  assert.deepEqual(listening, { kind: "listening", url: running.url, restUrl: running.restUrl });
  assert.match(running.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
});
