/**
 * `examples/device_agent.ts` run as its README says, against the emulator: it registers, sends
 * measurements, keeps a 6 s token fresh, answers an operation sent on `s/ds`, survives an
 * emulator restart, and stops cleanly on SIGINT.
 */

import assert from "node:assert/strict";
import type { EmulatorEvent } from "../../lib/emulator/mod.ts";
import { ROOT } from "../support/cli.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const KEYSTORE = "fixtures/devices/rsa.jks";
const TRUST = "fixtures/server/server-truststore.jks";
const CLIENT_ID = "d:device-rsa-001";

/** The agent's stdout, line by line, with a way to wait for a line. */
class Lines {
  readonly seen: string[] = [];
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    (async () => {
      let rest = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const line of parts) this.#push(line);
      }
      if (rest) this.#push(rest);
    })();
  }

  /** Waits for a line (seen after `from`, an index into `seen`) that matches. */
  wait(pattern: RegExp, from = 0, timeoutMs = 20_000): Promise<string> {
    const found = this.seen.slice(from).find((l) => pattern.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no line matching ${pattern}; saw:\n${this.seen.join("\n")}`)),
        timeoutMs,
      );
      this.#waiters.push({
        test: (l) => pattern.test(l),
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  #push(line: string): void {
    this.seen.push(line);
    for (const w of [...this.#waiters]) {
      if (w.test(line)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }
}

/** The `s/us` lines the emulator logged from the agent. */
function upstream(events: EmulatorEvent[]): string[] {
  return events.filter((e) =>
    e.kind === "message" && e.clientId === CLIENT_ID && e.topic === "s/us"
  )
    .map((e) => e.line!);
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("examples/device_agent.ts registers, measures, renews its token, answers an operation, survives an emulator restart and stops on SIGINT", async () => {
  const first: EmulatorEvent[] = [];
  let emulator = await startFixtureEmulator({
    tokenLifetimeSeconds: 6,
    log: (e) => first.push(e),
  });
  const port = emulator.port;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--ignore-env",
      "--no-prompt",
      "--allow-env=KEYSTORE_PASSWORD",
      `--allow-read=${KEYSTORE},${TRUST}`,
      `--allow-net=127.0.0.1:${port}`,
      "examples/device_agent.ts",
      "--url",
      emulator.url,
      "--keystore",
      KEYSTORE,
      "--truststore",
      TRUST,
      "--interval",
      "1",
    ],
    cwd: ROOT,
    env: { KEYSTORE_PASSWORD: "changeit", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = new Lines(child.stdout);
  const stderr = new Response(child.stderr).text();
  try {
    await lines.wait(/registered: 100,device-rsa-001,c8y_MQTTDevice/);
    await lines.wait(/measurement sent: 211,\d+\.\d/);
    await until(() => upstream(first).some((l) => l.startsWith("211,")), "a measurement");
    assert.equal(upstream(first)[0], "100,device-rsa-001,c8y_MQTTDevice");

    // An operation from the platform: executing, then successful, on s/us.
    await emulator.sendToDevice(CLIENT_ID, "510,device-rsa-001");
    await lines.wait(/operation received: 510,device-rsa-001/);
    await until(
      () => upstream(first).includes("503,c8y_Restart"),
      "the operation's answer",
    );
    const answers = upstream(first).filter((l) => /^50[1-3],/.test(l));
    assert.deepEqual(answers, ["501,c8y_Restart", "503,c8y_Restart"]);

    // The 6 s token is renewed (the first one and at least one renewal).
    await until(
      () =>
        lines.seen.filter((l) => / token for device_device-rsa-001, expires /.test(l)).length >= 2,
      "a token renewal",
    );

    // The emulator restarts on the same port: the agent reconnects and carries on.
    await emulator[Symbol.asyncDispose]();
    const mark = lines.seen.length;
    await lines.wait(/connection lost/, mark);
    const second: EmulatorEvent[] = [];
    emulator = await startFixtureEmulator({
      port,
      tokenLifetimeSeconds: 6,
      log: (e) => second.push(e),
    });
    await lines.wait(/reconnected to mqtts:\/\/127\.0\.0\.1:/, mark);
    await lines.wait(/registered again: 100,/, mark);
    await until(() => upstream(second).some((l) => l.startsWith("211,")), "a measurement after");
    await emulator.sendToDevice(CLIENT_ID, "511,device-rsa-001,reboot");
    await until(() => upstream(second).some((l) => l.startsWith("502,c8y_Command")), "502");
    assert.ok(
      upstream(second).includes("501,c8y_Command"),
      `501 before 502: ${upstream(second).join(" | ")}`,
    );

    child.kill("SIGINT");
    const status = await child.status;
    assert.equal(status.code, 0, await stderr);
    await lines.wait(/disconnected/);
    for (const line of lines.seen) assert.ok(!/eyJ[\w-]{10,}\./.test(line), `no token: ${line}`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already ended
    }
    await child.status;
    await stderr;
    await emulator[Symbol.asyncDispose]();
  }
});

Deno.test("examples/device_agent.ts with a wrong password names its own input KEYSTORE_PASSWORD, not the library's option", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--ignore-env",
      "--no-prompt",
      "--allow-env=KEYSTORE_PASSWORD",
      `--allow-read=${KEYSTORE}`,
      "examples/device_agent.ts",
      "--url",
      "mqtts://127.0.0.1:8883",
      "--keystore",
      KEYSTORE,
    ],
    cwd: ROOT,
    env: { KEYSTORE_PASSWORD: "wrong-password", NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 1, err);
  assert.equal(new TextDecoder().decode(stdout), "");
  assert.match(
    err,
    /^error: .*rsa\.jks.*\nhint: Check the store password \(KEYSTORE_PASSWORD\)\.\n$/,
  );
  assert.doesNotMatch(err, /`password`|wrong-password/);
});
