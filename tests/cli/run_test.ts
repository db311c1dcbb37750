import assert from "node:assert/strict";
import { ROOT } from "../support/cli.ts";

/** What one in-process `run()` produced. */
interface RunResult {
  code: number;
  out: string[];
  err: string[];
}

/**
 * Calls `run()` of `lib/cli/run.ts` once per command line, one after the other in ONE Deno
 * process whose standard input is `stdin`, and returns what each run wrote.
 */
async function runInOneProcess(commandLines: string[][], stdin: string): Promise<RunResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "c8y-runs-" });
  try {
    const script = `${dir}/runs.ts`;
    await Deno.writeTextFile(
      script,
      `import { run } from ${JSON.stringify(new URL("lib/cli/run.ts", `file://${ROOT}`).href)};
const results = [];
for (const args of ${JSON.stringify(commandLines)}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  results.push({ code, out, err });
}
console.log(JSON.stringify(results));
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `--allow-read=${ROOT},${dir}`, script],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    const decoder = new TextDecoder();
    assert.equal(code, 0, decoder.decode(stderr));
    return JSON.parse(decoder.decode(stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("run() twice in one process: the second run shares neither the stdin line nor the secrets", async () => {
  const keystore = "fixtures/devices/ec256.jks";
  const [first, second, third] = await runInOneProcess(
    [
      ["inspect", "--json", "--keystore", keystore, "--keystore-password", "stdin"],
      // The first run's stdin line ("changeit") must not be handed to this run.
      ["inspect", "--json", "--keystore", keystore, "--keystore-password", "stdin"],
      // Nor may the first run's password be scrubbed from this run's messages: it never saw it.
      ["inspect", "--keystore", "fixtures/devices/changeit.jks", "--keystore-password", "pass:x"],
    ],
    "changeit\n",
  );
  assert.equal(first!.code, 0, first!.err.join("\n"));
  assert.equal(JSON.parse(first!.out.join("\n")).keystore.path, keystore);

  assert.equal(second!.code, 3, second!.out.join("\n"));
  const error = JSON.parse(second!.out.join("\n")).error;
  assert.equal(error.stage, "store");
  assert.match(error.code, /^KEYSTORE_PASSWORD/);

  assert.equal(third!.code, 3);
  assert.deepEqual(third!.err, [
    'error: The keystore "fixtures/devices/changeit.jks" does not exist',
    "hint: Check the path (it is relative to the current directory).",
  ]);
});
