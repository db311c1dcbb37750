/**
 * `cli.ts` without its crypto prewarm (`lib/cli/prewarm.ts`), for `deno task bench:cli` (job
 * `token-cold`): the same command line, so that the prewarm's gain is measured side by side in
 * every run and a Deno release that changes it is noticed.
 *
 * @module
 */

import { run } from "../lib/cli/run.ts";

if (import.meta.main) Deno.exit(await run(Deno.args));
