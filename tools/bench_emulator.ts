/**
 * The emulator's CPU per token: runs the emulator in this process and, in a child process,
 * devices that each connect (mutual TLS, MQTT.js), subscribe to `s/dat`, request a token on
 * `s/uat`, wait for it and disconnect; prints this process's CPU time (user + system, from
 * `process.cpuUsage()`) divided by the tokens issued. The child's CPU is not counted.
 *
 * ```sh
 * deno run -A tools/bench_emulator.ts [--tokens 300] [--concurrency 10] \
 *   [--server-cert PEM --server-key PEM]   # default: the fixture server (RSA 2048)
 *   [--token-algorithm RS256|ES256]        # default: RS256, as the platform
 * # where the time goes:
 * deno run -A --cpu-prof --cpu-prof-dir=/tmp/emu-prof tools/bench_emulator.ts --tokens 300
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url);
const fixture = (path: string): string => Deno.readTextFileSync(new URL(`fixtures/${path}`, ROOT));

/** Child mode: `tokens` token requests against `url`, `concurrency` at a time. */
async function devices(url: string, tokens: number, concurrency: number): Promise<void> {
  const { default: mqtt } = await import("npm:mqtt@5.16.0");
  const cert = fixture("devices/rsa.chain.pem");
  const key = fixture("devices/rsa.key");
  const ca = fixture("ca/server-ca.pem");
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const client = await mqtt.connectAsync(url, {
      // Each device its own session: the platform admits one connection per client id.
      clientId: `d:device-rsa-001:bench${i}`,
      cert,
      key,
      ca,
      servername: "localhost",
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    const token = new Promise<void>((resolve) => client.once("message", () => resolve()));
    await client.subscribeAsync("s/dat", { qos: 0 });
    await client.publishAsync("s/uat", "", { qos: 0 });
    await token;
    await client.endAsync();
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < tokens; i = next++) await one(i);
    }),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      tokens: { type: "string", default: "300" },
      concurrency: { type: "string", default: "10" },
      client: { type: "string" },
      "server-cert": { type: "string" },
      "server-key": { type: "string" },
      "token-algorithm": { type: "string", default: "RS256" },
    },
  });
  const tokens = Number(values.tokens);
  const concurrency = Number(values.concurrency);
  if (values.client) return await devices(values.client, tokens, concurrency);

  const { startEmulator } = await import("../lib/emulator/mod.ts");
  let issued = 0;
  await using emulator = await startEmulator({
    serverCertPem: values["server-cert"]
      ? Deno.readTextFileSync(values["server-cert"])
      : fixture("server/server.pem"),
    serverKeyPem: values["server-key"]
      ? Deno.readTextFileSync(values["server-key"])
      : fixture("server/server.key"),
    trustedCaPems: [fixture("ca/device-root-ca.pem")],
    tokenAlgorithm: values["token-algorithm"] as "RS256" | "ES256",
    log: (event) => {
      if (event.kind === "token") issued++;
      if (event.kind === "error" || event.kind === "refused") console.error(event);
    },
  });
  const run = (n: number): Promise<Deno.CommandOutput> =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--client",
        emulator.url,
        "--tokens",
        String(n),
        "--concurrency",
        String(concurrency),
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
  // A warm-up round (JIT, first TLS handshake), not counted.
  await run(Math.min(30, tokens));
  issued = 0;
  const before = process.cpuUsage();
  const started = performance.now();
  const out = await run(tokens);
  const cpu = process.cpuUsage(before);
  const wallMs = performance.now() - started;
  if (out.code !== 0 || issued !== tokens) {
    throw new Error(`child exited ${out.code}; ${issued} of ${tokens} tokens issued`);
  }
  const perToken = (cpu.user + cpu.system) / 1000 / tokens;
  console.log(
    `emulator CPU per token: ${perToken.toFixed(2)} ms (user ${
      (cpu.user / 1000 / tokens).toFixed(2)
    }, system ${(cpu.system / 1000 / tokens).toFixed(2)}); ${tokens} tokens, concurrency ` +
      `${concurrency}, ${(tokens / wallMs * 1000).toFixed(0)} tokens/s`,
  );
}

await main();
