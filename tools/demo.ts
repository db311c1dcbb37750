/**
 * `deno task demo`: starts the emulator on the fixtures, runs `token` against it under the
 * narrowest permission flags, prints the decoded claims, and stops the emulator.
 *
 * @module
 */

const root = new URL("../", import.meta.url);
// Fixture paths below are relative to the project root, the working directory of both processes.

const keystore = "fixtures/devices/rsa.jdk.p12";
const truststore = "fixtures/server/server-truststore.jks";
const emulatorFiles = {
  trust: "fixtures/devices/truststore.p12",
  cert: "fixtures/server/server.pem",
  key: "fixtures/server/server.key",
};

function deno(args: string[], stdout: "piped" | "inherit"): Deno.ChildProcess {
  return new Deno.Command("deno", {
    args,
    cwd: root.pathname,
    stdin: "null",
    stdout,
    stderr: "inherit",
  }).spawn();
}

console.log("Starting the emulator (fixtures/devices/truststore.p12 as its trusted CAs)...");
const emulator = deno([
  "run",
  "--ignore-env",
  `--allow-read=${emulatorFiles.trust},${emulatorFiles.cert},${emulatorFiles.key}`,
  "--allow-net=127.0.0.1",
  "cli.ts",
  "emulate",
  "--port",
  "0",
  "--trust",
  emulatorFiles.trust,
  "--trust-password",
  "pass:changeit",
  "--server-cert",
  emulatorFiles.cert,
  "--server-key",
  emulatorFiles.key,
  "--tenant",
  "t-demo",
], "piped");

let exitCode = 1;
try {
  const url = await readUrl(emulator.stdout);
  const port = new URL(url.replace("mqtts:", "http:")).port;
  const command = [
    "run",
    "--ignore-env", // MQTT.js's dependencies look up environment variables when they load
    `--allow-read=${keystore},${truststore}`,
    `--allow-net=127.0.0.1:${port}`,
    "cli.ts",
    "token",
    "--url",
    url,
    "--keystore",
    keystore,
    "--keystore-password",
    "pass:changeit",
    "--truststore",
    truststore,
    "--json",
  ];
  console.log(`\n$ deno ${command.join(" ")}\n`);
  const token = await deno(command, "piped").output();
  const text = new TextDecoder().decode(token.stdout);
  exitCode = token.code;
  if (token.code === 0) {
    const result = JSON.parse(text);
    console.log(`client id   ${result.clientId}`);
    console.log(`tenant      ${result.tenant}`);
    console.log(`expires at  ${result.expiresAt}`);
    console.log(`token       ${result.token.slice(0, 24)}... (${result.token.length} characters)`);
    console.log("claims:");
    console.log(JSON.stringify(result.claims, null, 2));
    console.log(`timings (ms): ${JSON.stringify(result.timings)}`);
  } else {
    console.log(text);
    console.error(`token failed with exit code ${token.code}`);
  }
} catch (error) {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  emulator.kill("SIGTERM");
  await emulator.status;
  await emulator.stdout.cancel().catch(() => {});
}
Deno.exit(exitCode);

/** Reads the emulator's stdout until the line with its mqtts:// URL. */
async function readUrl(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    reader.cancel("timeout");
  }, 30_000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done && timedOut) throw new Error("The emulator was not ready after 30 s");
      if (done) throw new Error("The emulator stopped before it was ready");
      buffer += value;
      const match = buffer.match(/mqtts:\/\/[^\s)]+/);
      if (match) return match[0];
    }
  } finally {
    clearTimeout(deadline);
    reader.releaseLock();
  }
}
