#!/usr/bin/env -S deno run --allow-read --allow-net --allow-env
/**
 * The `c8y-mqtt-cert` command line. The work is in `lib/cli/` (`run()`); this entry runs it with
 * `Deno.args` and exits with its code.
 *
 * ```sh
 * deno run --ignore-env --allow-read=device.p12,truststore.jks --allow-net=example.com:8883 \
 *   --allow-env=PW cli.ts token --url ssl://example.com:8883 --keystore device.p12 \
 *   --truststore truststore.jks --keystore-password env:PW
 * ```
 *
 * @module
 */

import { run } from "./lib/cli/run.ts";

export { run } from "./lib/cli/run.ts";
export type { Io } from "./lib/cli/context.ts";
export { VERSION } from "./lib/cli/version.ts";

/** Runs the command line with `Deno.args` and exits with its code. */
export async function main(): Promise<never> {
  const code = await run(Deno.args);
  Deno.exit(code);
}

if (import.meta.main) {
  // Prewarm, for the commands that make TLS connections: the first TLS handshake of a Deno
  // process spends about 40 ms initialising its crypto library. A throwaway WebCrypto key
  // generation, started here and never awaited, runs that initialisation on another thread while
  // the command line reads its stores (measured with Deno 2.9.6; `deno task bench:cli` compares
  // it with `tools/cli_without_prewarm.ts`). `inspect` makes no connection and skips it.
  if (["token", "check", "fleet", "emulate"].includes(Deno.args[0] ?? "")) {
    crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"])
      .catch(() => {});
  }
  await main();
}
