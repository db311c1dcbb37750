/**
 * `token --watch` as a user runs it: a subprocess under exactly the permissions it needs, against
 * the emulator, printing tokens until it is sent SIGTERM.
 */

import assert from "node:assert/strict";
import type { EmulatorEvent } from "../../lib/emulator/mod.ts";
import { decodeToken } from "../../lib/token/decode_token.ts";
import { denoFlags, ROOT } from "../support/cli.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const TRUST = "fixtures/server/server-truststore.jks";
const KEYSTORE = "fixtures/devices/rsa.jks";

/** Starts `token --watch` and reads its stdout line by line. */
function startWatch(url: string, port: number, extra: string[] = []): AsyncDisposable & {
  child: Deno.ChildProcess;
  lines: AsyncIterator<string>;
  stderr: Promise<string>;
} {
  const args = [
    "token",
    "--watch",
    "--url",
    url,
    "--keystore",
    KEYSTORE,
    "--keystore-password",
    "pass:changeit",
    "--truststore",
    TRUST,
    ...extra,
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...denoFlags({ read: [KEYSTORE, TRUST], net: [`127.0.0.1:${port}`] }, "token"),
      "cli.ts",
      ...args,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    [Symbol.asyncIterator]();
  const stderr = new Response(child.stderr).text();
  return {
    child,
    lines,
    stderr,
    // A test that failed half-way leaves no process behind.
    async [Symbol.asyncDispose](): Promise<void> {
      try {
        child.kill("SIGKILL");
      } catch {
        // it has ended
      }
      await child.status;
      await stderr;
    },
  };
}

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller): void {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) controller.enqueue(line);
    },
    flush(controller): void {
      if (rest) controller.enqueue(rest);
    },
  });
}

async function nextLine(lines: AsyncIterator<string>, timeoutMs = 20_000): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no line on stdout within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const { value, done } = await Promise.race([lines.next(), timeout]);
    assert.ok(!done, "stdout ended before a line came");
    return value;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("token --watch prints each renewed token on its own line, and on SIGTERM disconnects and exits 0", async () => {
  const events: EmulatorEvent[] = [];
  await using emulator = await startFixtureEmulator({
    tokenLifetimeSeconds: 6,
    log: (e) => events.push(e),
  });
  await using watch = startWatch(emulator.url, emulator.port);
  const { child, lines, stderr } = watch;
  const first = await nextLine(lines);
  const token = decodeToken(first);
  assert.equal(token.subject, "device_device-rsa-001");
  assert.equal(token.tenant, emulator.tenant);
  // The 6 s token is renewed once half its lifetime has passed: a second line, a new token.
  const second = decodeToken(await nextLine(lines));
  assert.notEqual(second.token, token.token);
  assert.equal(second.subject, token.subject);
  child.kill("SIGTERM");
  const status = await child.status;
  const err = await stderr;
  assert.equal(status.code, 0, err);
  assert.match(err, /stopping: disconnecting/);
  assert.ok(!err.includes(first), "the token is printed on stdout only");
  const { done } = await lines.next();
  assert.ok(done, "nothing more on stdout");
  // The emulator hears the end of the connection on its own schedule: wait for it.
  for (let i = 0; i < 100 && !events.some((e) => e.kind === "disconnect"); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const mine = events.filter((e) => e.clientId === "d:device-rsa-001");
  assert.deepEqual(mine.map((e) => e.kind).filter((k) => k !== "device-created"), [
    "connect",
    "token",
    "token",
    "disconnect",
  ]);
});

Deno.test("token --watch --json prints one JSON object per line", async () => {
  await using emulator = await startFixtureEmulator();
  await using watch = startWatch(emulator.url, emulator.port, ["--json"]);
  const { child, lines, stderr } = watch;
  const line = await nextLine(lines);
  const object = JSON.parse(line);
  assert.equal(object.clientId, "d:device-rsa-001");
  assert.equal(decodeToken(object.token).subject, "device_device-rsa-001");
  assert.equal(object.expiresAt, decodeToken(object.token).expiresAt);
  child.kill("SIGINT");
  assert.equal((await child.status).code, 0, await stderr);
});

Deno.test("token --watch --json reports a lost connection and the reconnect as JSON lines on stderr, without the token", async () => {
  let emulator = await startFixtureEmulator({ tokenLifetimeSeconds: 6 });
  const port = emulator.port;
  try {
    await using watch = startWatch(emulator.url, port, ["--json"]);
    const { child, lines, stderr } = watch;
    const first = JSON.parse(await nextLine(lines));
    await emulator[Symbol.asyncDispose]();
    await new Promise((r) => setTimeout(r, 500));
    emulator = await startFixtureEmulator({ port, tokenLifetimeSeconds: 6 });
    // The renewal after the reconnect comes from the new emulator.
    const second = JSON.parse(await nextLine(lines));
    assert.notEqual(second.token, first.token);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    const err = await stderr;
    const events = err.trimEnd().split("\n").map((l) => JSON.parse(l));
    const kinds = events.map((e) => e.event);
    assert.ok(kinds.includes("connection-lost"), err);
    assert.ok(kinds.includes("reconnected"), err);
    assert.equal(kinds.at(-1), "stopping", err);
    assert.ok(events.every((e) => typeof e.time === "string"), err);
    assert.equal(events.find((e) => e.event === "reconnected").url, emulator.url);
    for (const token of [first.token, second.token]) assert.ok(!err.includes(token), err);
    assert.doesNotMatch(err, /eyJ[\w-]{10,}\./);
  } finally {
    await emulator[Symbol.asyncDispose]();
  }
});
