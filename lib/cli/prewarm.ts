/**
 * The crypto prewarm, for the commands that make TLS connections: the first TLS handshake of a
 * Deno process spends about 40 ms initialising its crypto library. A throwaway WebCrypto key
 * generation, started by `cli.ts` before the command runs and never awaited, runs that
 * initialisation on another thread while the command line reads its stores (measured with Deno
 * 2.9.6; `deno task bench:cli` compares it with `tools/cli_without_prewarm.ts`). `inspect` makes
 * no connection and skips it.
 *
 * @module
 */

/** The commands that make TLS connections, and so start the prewarm. */
const CONNECTING_COMMANDS: readonly string[] = ["token", "check", "fleet", "emulate"];

/**
 * Starts the prewarm when `args` name a command that connects; returns at once (the key
 * generation is not awaited, and its failure is ignored).
 *
 * @param args The command line's arguments (`Deno.args`).
 */
export function prewarm(args: readonly string[]): void {
  if (CONNECTING_COMMANDS.includes(args[0] ?? "")) {
    crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"])
      .catch(() => {});
  }
}
