#!/usr/bin/env -S deno run --allow-read --allow-net --allow-env
/**
 * The `c8y-mqtt-cert` command line: starts the crypto prewarm (`lib/cli/prewarm.ts`), then runs
 * `run()` (the work, in `lib/cli/`) with `Deno.args` and exits with its code.
 *
 * ```sh
 * deno run --ignore-env --allow-read=device.p12,truststore.jks --allow-net=example.com:8883 \
 *   --allow-env=PW cli.ts token --url ssl://example.com:8883 --keystore device.p12 \
 *   --truststore truststore.jks --keystore-password env:PW
 * ```
 *
 * @module
 */

import { prewarm } from "./lib/cli/prewarm.ts";
import { run } from "./lib/cli/run.ts";
export { run } from "./lib/cli/run.ts";
export type { Io } from "./lib/cli/context.ts";
export { VERSION } from "./lib/cli/version.ts";

/** Runs the command line with `Deno.args` and exits with its code. */
export async function main(): Promise<never> {
  Deno.exit(await run(Deno.args));
}

if (import.meta.main) {
  prewarm(Deno.args); // not awaited: it runs while the command reads its stores
  await main();
}
