/**
 * The tool's version, read from `deno.json`.
 *
 * @module
 */

import config from "../../deno.json" with { type: "json" };

/** The tool's version: `deno.json`'s. */
export const VERSION: string = config.version;
