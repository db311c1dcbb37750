import assert from "node:assert/strict";
import { denoFlags, ROOT, runCli } from "../support/cli.ts";
import type { CliPermissions } from "../support/cli.ts";

const KS = "fixtures/devices/rsa.openssl3.p12";
const TS = "fixtures/server/server-truststore.p12";
const PWFILE = "fixtures/password.txt";

/** Drops one permission from a full set, for the "each flag missing in turn" cases. */
type Flags = Required<Pick<CliPermissions, "read" | "net" | "env">>;

function without(all: Flags, kind: keyof Flags, item: string): Flags {
  return { ...all, [kind]: all[kind].filter((x) => x !== item) };
}

Deno.test("inspect works under exactly its flags and names each one left out", async (t) => {
  const args = [
    "inspect",
    "--keystore",
    KS,
    "--keystore-password",
    `file:${PWFILE}`,
    "--truststore",
    TS,
    "--truststore-password",
    "env:TS_PW",
  ];
  const all = { read: [KS, TS, PWFILE], net: [], env: ["TS_PW"] };
  const env = { TS_PW: "changeit" };
  const ok = await runCli(args, all, { env });
  assert.equal(ok.code, 0, ok.stderr);
  for (
    const [kind, item, flag] of [
      ["read", KS, `--allow-read=${KS}`],
      ["read", TS, `--allow-read=${TS}`],
      ["read", PWFILE, `--allow-read=${PWFILE}`],
      ["env", "TS_PW", "--allow-env=TS_PW"],
    ] as const
  ) {
    await t.step(`without ${flag}`, async () => {
      const r = await runCli(args, without(all, kind, item), { env });
      assert.equal(r.code, 9, r.stderr);
      assert.match(r.stderr, /^error: /);
      assert.ok(r.stderr.split("\n")[0]!.includes(flag), r.stderr);
      assert.ok(r.stderr.includes(`--allow-read=${KS},${TS},${PWFILE}`), "the hint has every flag");
    });
  }
});

Deno.test("check without --allow-net names host:port before reading anything", async () => {
  const r = await runCli(
    ["check", "--url", "ssl://127.0.0.1:1884", "--keystore", KS, "--keystore-password", "pass:x"],
    { read: [KS] },
  );
  assert.equal(r.code, 9, r.stderr);
  assert.ok(r.stderr.includes("--allow-net=127.0.0.1:1884"), r.stderr);
  assert.ok(!r.stderr.includes("pass:x"), "the password is masked in the suggested command");
});

Deno.test("token and check without --ignore-env name it (MQTT.js's dependencies look up variables) before reading anything", async () => {
  for (const command of ["token", "check"]) {
    const r = await runCli(
      [command, "--url", "ssl://127.0.0.1:1884", "--keystore", KS, "--keystore-password", "pass:x"],
      { read: [KS], net: ["127.0.0.1:1884"], ignoreEnv: false },
    );
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr.split("\n")[0]!, /MQTT\.js.*needs --ignore-env/);
    assert.ok(
      r.stderr.includes(`deno run --ignore-env --allow-read=${KS} --allow-net=127.0.0.1:1884`),
      r.stderr,
    );
  }
});

const EMU = {
  trust: "fixtures/ca/device-root-ca.pem",
  cert: "fixtures/server/server.pem",
  key: "fixtures/server/server.key",
};
const emulateArgs = [
  "emulate",
  "--port",
  "0",
  "--trust",
  EMU.trust,
  "--server-cert",
  EMU.cert,
  "--server-key",
  EMU.key,
];
const emulateAll = { read: [EMU.trust, EMU.cert, EMU.key], net: ["127.0.0.1"], env: [] };

Deno.test("emulate names each permission left out", async (t) => {
  for (
    const [kind, item] of [
      ["read", EMU.trust],
      ["read", EMU.cert],
      ["read", EMU.key],
      ["net", "127.0.0.1"],
    ] as const
  ) {
    await t.step(`without ${kind} ${item}`, async () => {
      const r = await runCli(emulateArgs, without(emulateAll, kind, item));
      assert.equal(r.code, 9, r.stderr);
      assert.ok(r.stderr.split("\n")[0]!.includes(`--allow-${kind}=${item}`), r.stderr);
    });
  }
});

Deno.test("emulate under exactly its flags prints its mqtts:// URL and stops on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...denoFlags(emulateAll, "emulate"), "cli.ts", ...emulateArgs, "--quiet"],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    while (!/mqtts:\/\/127\.0\.0\.1:\d+/.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /mqtts:\/\/127\.0\.0\.1:\d+/);
  } finally {
    child.kill("SIGTERM");
    await reader.cancel();
    const status = await child.status;
    const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    assert.equal(status.code, 0, stderr);
  }
});

Deno.test("a keystore behind a symbolic link needs read access to its target, and says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-link-" });
  try {
    const link = `${dir}/device.p12`;
    const target = Deno.realPathSync(`${ROOT}${KS}`);
    await Deno.symlink(target, link);
    const args = ["inspect", "--keystore", link, "--keystore-password", "pass:changeit"];
    const refused = await runCli(args, { read: [link] });
    assert.equal(refused.code, 9, refused.stderr);
    assert.ok(refused.stderr.split("\n")[0]!.includes(`--allow-read=${target}`), refused.stderr);
    const ok = await runCli(args, { read: [link, target] });
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts's module doc example grants exactly what the permission planner asks for (--ignore-env included)", async () => {
  const doc = Deno.readTextFileSync(`${ROOT}/cli.ts`);
  const block = /```sh\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block, "cli.ts has a sh example");
  const line = block.split("\n").map((l) => l.replace(/^\s*\*\s?/, "").replace(/\\$/, "").trim())
    .join(" ").trim();
  const words = line.split(/\s+/);
  const at = words.indexOf("cli.ts");
  assert.deepEqual(words.slice(0, 2), ["deno", "run"], line);
  const documented = words.slice(2, at).sort();
  const args = words.slice(at + 1);
  // The same command line under no permission: the planner names every flag it needs.
  const r = await runCli(args, { ignoreEnv: false });
  assert.equal(r.code, 9, r.stderr);
  const suggested = /deno run (.*?) cli\.ts /.exec(r.stderr)?.[1]?.split(" ").sort();
  assert.ok(suggested, r.stderr);
  assert.deepEqual(documented, suggested);
  assert.ok(documented.includes("--ignore-env"));
});

Deno.test("--keystore /dev/stdin under --allow-read=/dev/stdin names the flag Deno wants (--allow-all)", async () => {
  const result = await runCli(
    ["inspect", "--keystore", "/dev/stdin", "--keystore-password", "pass:changeit"],
    { read: ["/dev/stdin"] },
    { stdin: "not read" },
  );
  assert.equal(result.code, 9, result.stderr);
  assert.equal(
    result.stderr,
    'error: Deno allows access to "/dev/stdin" only with --allow-all (it is not a regular file)\n' +
      "hint: Run deno with --allow-all, or save the content to a regular file and give that " +
      "file's path (read with --allow-read=<that file>).\n",
  );
  assert.doesNotMatch(result.stderr, /the flag Deno names|changeit/);
});
