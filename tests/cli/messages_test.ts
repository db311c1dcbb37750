/**
 * What the command line says before it does anything: help per command, "did you mean" for a
 * mistyped flag or command, our own words for a bad value, and where a misplaced option goes.
 * Each case runs `cli.ts` as a subprocess with no permission at all (none is needed to refuse a
 * command line) and asserts the text, not just the exit code.
 */

import assert from "node:assert/strict";
import { type CliResult, ROOT, runCli } from "../support/cli.ts";

/** Each command's page: what it must show, and what belongs to other commands only. */
const PAGES: Record<string, { has: RegExp[]; hasNot: RegExp[] }> = {
  token: {
    has: [
      /^ {2}c8y-mqtt-cert token --url URL --keystore PATH/m,
      /^ {2}--keystore-password P /m,
      /^ {2}--timeout SECONDS /m,
      /--allow-net=<host>:<port> cli\.ts token/,
      /^PASSWORD SPEC/m,
      /^ {2}7 {2}MQTT:/m,
    ],
    hasNot: [/--server-cert/, /--token-lifetime/, /^ {2}check /m],
  },
  check: {
    has: [/^ {2}c8y-mqtt-cert check --url URL/m, /one line per stage/, /--force /, /cli\.ts check/],
    hasNot: [/--server-cert/, /--tenant/],
  },
  inspect: {
    has: [/^ {2}c8y-mqtt-cert inspect /m, /^ {2}--truststore PATH /m, /cli\.ts inspect/],
    hasNot: [/--allow-net/, /^ {2}--url /m, /--timeout/, /--force/],
  },
  fleet: {
    has: [
      /^ {2}c8y-mqtt-cert fleet --manifest FILE \| --keystores DIR/m,
      /^ {2}--concurrency N /m,
      /^ {2}--json {18}One JSON object per device as it finishes/m,
      /cli\.ts fleet/,
    ],
    hasNot: [/^ {2}--server-cert/m, /^ {2}--alias /m],
  },
  emulate: {
    has: [
      /^ {2}c8y-mqtt-cert emulate --trust PATH/m,
      /^ {2}--server-cert PEM /m,
      /^ {2}--token-lifetime S /m,
      /deno run --ignore-env --allow-read=<trust>,<cert>,<key>/,
    ],
    hasNot: [/^ {2}--keystore /m, /^ {2}--url /m],
  },
};

Deno.test("each command's --help and help <command> show that command's page", async (t) => {
  const overview = await runCli(["--help"]);
  assert.equal(overview.code, 0);
  for (const [command, page] of Object.entries(PAGES)) {
    await t.step(command, async () => {
      const r = await runCli([command, "--help"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.ok(r.stdout.startsWith(`c8y-mqtt-cert ${command}\n`), r.stdout.slice(0, 80));
      for (const re of page.has) assert.match(r.stdout, re);
      for (const re of page.hasNot) assert.doesNotMatch(r.stdout, re);
      assert.notEqual(r.stdout, overview.stdout);
      // `help <command>` and `-h` print the same page.
      assert.equal((await runCli(["help", command])).stdout, r.stdout);
      assert.equal((await runCli([command, "-h"])).stdout, r.stdout);
    });
  }
});

Deno.test("help alone is the overview, which points to the pages", async () => {
  const r = await runCli(["help"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, (await runCli(["--help"])).stdout);
  assert.match(r.stdout, /c8y-mqtt-cert help COMMAND {3}\(or COMMAND --help\)/);
  for (const command of Object.keys(PAGES)) {
    assert.match(r.stdout, new RegExp(`^ {2}c8y-mqtt-cert ${command} `, "m"));
  }
});

/** A usage error: exit 2, the error line and the hint line, in both output modes. */
async function usageError(args: string[], error: RegExp, hint: RegExp): Promise<void> {
  const r = await runCli(args);
  assert.equal(r.code, 2, r.stderr);
  const [first, second, ...rest] = r.stderr.trimEnd().split("\n");
  assert.match(first!, error);
  assert.match(second!, hint);
  assert.deepEqual(rest, []);
  const json = await runCli([...args, "--json"]);
  assert.equal(json.code, 2);
  const body = JSON.parse(json.stdout);
  assert.equal(body.ok, false);
  assert.equal(body.error.code, "USAGE");
  assert.match(`error: ${body.error.message}`, error);
  assert.match(`hint: ${body.error.hint}`, hint);
}

const USAGE_CASES: [string, string[], RegExp, RegExp][] = [
  [
    "a mistyped flag gets the closest one",
    ["token", "--url", "localhost", "--keystore", "k.p12", "--keystore-pasword", "pass:x"],
    /^error: Unknown option --keystore-pasword$/,
    /^hint: Did you mean --keystore-password\? /,
  ],
  [
    "a flag cut short gets the flag it starts",
    ["inspect", "--truststore-pass", "x"],
    /^error: Unknown option --truststore-pass$/,
    /^hint: Did you mean --truststore-password\? /,
  ],
  [
    "a flag far from every other gets no guess",
    ["inspect", "--frobnicate"],
    /^error: Unknown option --frobnicate$/,
    /^hint: Run c8y-mqtt-cert --help for the options\.$/,
  ],
  [
    "a mistyped command gets the closest one",
    ["tokne", "--url", "x"],
    /^error: Unknown command "tokne"$/,
    /^hint: Did you mean token\? Commands: token, check, inspect, emulate, fleet\./,
  ],
  [
    "a negative --timeout gets our message, not the parser's",
    ["token", "--url", "localhost", "--keystore", "k.p12", "--timeout", "-1"],
    /^error: --timeout must be a positive number of seconds, not "-1"$/,
    /^hint: For example --timeout 20\.$/,
  ],
  [
    "token --port says the port goes into --url",
    ["token", "--url", "localhost", "--keystore", "k.p12", "--port", "8883"],
    /^error: The token command does not take --port$/,
    /^hint: Put the port in --url, e\.g\. --url ssl:\/\/<host>:8883/,
  ],
  [
    "check --host says the host goes into --url",
    ["check", "--url", "localhost", "--keystore", "k.p12", "--host", "example.com"],
    /^error: The check command does not take --host$/,
    /^hint: Put the host in --url/,
  ],
  [
    "an option of another command names the command's own page",
    ["inspect", "--keystore", "k.p12", "--server-key", "s.key"],
    /^error: The inspect command does not take --server-key$/,
    /^hint: Run c8y-mqtt-cert inspect --help for its options\.$/,
  ],
];

for (const [name, args, error, hint] of USAGE_CASES) {
  Deno.test(`usage: ${name}`, () => usageError(args, error, hint));
}

Deno.test("a permission error's deno run line moves a pass: password to env:NAME, and works as pasted", async () => {
  const keystore = "fixtures/devices/rsa.jks";
  const password = "changeit";
  // Nothing listens on port 9 of 127.0.0.1: with every permission granted, the run fails there.
  const args = [
    "inspect",
    "--keystore",
    keystore,
    `--keystore-password=pass:${password}`,
    "--truststore",
    "fixtures/server/server-truststore.jks",
    "--truststore-password",
    password,
  ];
  const r = await runCli(args);
  assert.equal(r.code, 9, r.stderr);
  assert.ok(!r.stderr.includes(password), "no password in the error or the suggested line");
  assert.doesNotMatch(r.stderr, /\*\*\*/);
  const hint = r.stderr.split("\n").find((l) => l.startsWith("hint: "))!;
  assert.match(
    hint,
    /^hint: Put the keystore password into the variable KEYSTORE_PASSWORD and the truststore password into the variable TRUSTSTORE_PASSWORD \(a password never goes into a suggested command line\), then run: deno run /,
  );
  const line = hint.slice(hint.indexOf("deno run ") + "deno run ".length).split(" ");
  assert.ok(line.includes("--allow-env=KEYSTORE_PASSWORD,TRUSTSTORE_PASSWORD"), hint);
  assert.ok(line.includes("--keystore-password=env:KEYSTORE_PASSWORD"), hint);
  assert.ok(line.includes("--truststore-password"), hint);
  assert.equal(line[line.indexOf("--truststore-password") + 1], "env:TRUSTSTORE_PASSWORD");
  // Pasted with the variables set, the line runs: inspect reads both stores and succeeds.
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...line],
    cwd: ROOT,
    env: { NO_COLOR: "1", KEYSTORE_PASSWORD: password, TRUSTSTORE_PASSWORD: password },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assert.equal(child.code, 0, stderr);
  assert.match(new TextDecoder().decode(child.stdout), /^client id: d:device-rsa-001$/m);
});

/**
 * Runs a command on a new pseudo-terminal (Python's `pty`, a real terminal to the child), types
 * `answer` and Enter once `password: ` appears, and returns everything the terminal showed.
 */
async function onTerminal(args: string[], answer: string): Promise<CliResult> {
  const script = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out, answered, deadline = b"", False, time.time() + 20
while time.time() < deadline:
    if fd in select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not answered and b"password: " in out:
            time.sleep(0.2)
            os.write(fd, os.environ["ANSWER"].encode() + b"\\r")
            answered = True
sys.stdout.write(out.decode(errors="replace"))
done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    os.kill(pid, 9)  # still waiting for input: no prompt came
    status = os.waitpid(pid, 0)[1]
sys.exit(os.waitstatus_to_exitcode(status))
`;
  const child = await new Deno.Command("python3", {
    args: ["-c", script, Deno.execPath(), "run", "--no-prompt", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ANSWER: answer },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: child.code,
    stdout: decoder.decode(child.stdout),
    stderr: decoder.decode(child.stderr),
  };
}

Deno.test("--keystore-password stdin on a terminal asks without echoing what is typed", async () => {
  const keystore = "fixtures/devices/rsa.jks";
  const r = await onTerminal(
    [
      `--allow-read=${keystore}`,
      "cli.ts",
      "inspect",
      "--keystore",
      keystore,
      "--keystore-password",
      "stdin",
    ],
    "changeit",
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^Keystore password: /m);
  assert.ok(!r.stdout.includes("changeit"), `the typed password is not echoed:\n${r.stdout}`);
  assert.match(r.stdout, /^client id: d:device-rsa-001\r?$/m);
});

Deno.test("check with a --client-id that does not name the CN says which client id on the certificate line", async () => {
  const keystore = "fixtures/devices/rsa.jks";
  const result = await runCli([
    "check",
    "--url",
    "ssl://127.0.0.1:1",
    "--keystore",
    keystore,
    "--keystore-password",
    "pass:changeit",
    "--client-id",
    "d:other-device",
  ], { read: [keystore], net: ["127.0.0.1:1"] });
  assert.equal(result.code, 4, result.stderr);
  const line = result.stdout.split("\n").find((l) => l.startsWith("✗ certificate"));
  assert.match(line ?? "", /^✗ certificate +\d+ ms {2}--client-id d:other-device; 1 error$/);
  assert.match(result.stderr, /^error: The client id "d:other-device" names device "other-device"/);
});
