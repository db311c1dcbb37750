/**
 * The library's words turned into the command line's: errors from `lib/` name an option of the
 * call that failed in backticks (`` `keyPassword` ``, `` `type: "jks"` ``) or the call itself
 * (`` `loadTrustStore` ``), and the command line prints its flag instead. These tables are the one
 * place where an option of the library meets its flag.
 *
 * @module
 */

import { C8yError } from "../errors.ts";
import type { Problem } from "../types.ts";

/** Option (or call) names of the library -> the flag that gives them on the command line. */
export type FlagTable = Readonly<Record<string, string>>;

/**
 * The options of `connect()`, `fetchToken()`, `clientId()` and `diagnose()` as `token`, `check`
 * and `inspect` give them; what the store calls name is translated first, with the store's own
 * table.
 */
export const LIBRARY_FLAGS: FlagTable = {
  clientId: "--client-id",
  explicit: "--client-id",
  connectTimeoutMs: "--timeout",
  timeoutMs: "--timeout",
  trust: "--truststore",
  alias: "--alias",
  key: "--key",
  keyPassword: "--key-password",
};

/** `loadKeyStore()` and `listKeyStore()`, as `--keystore` and its options give them. */
export const KEYSTORE_FLAGS: FlagTable = {
  password: "--keystore-password",
  keyPassword: "--key-password",
  alias: "--alias",
  type: "--keystore-type",
  key: "--key",
  loadKeyStore: "--keystore",
  loadTrustStore: "--truststore",
};

/**
 * `loadTrustStore()`, as a truststore option and its companions give it: `--truststore` with
 * `--truststore-password` and `--truststore-type`, or the emulator's `--trust`.
 *
 * @param option The store's option without dashes, e.g. `truststore` or `trust`.
 * @returns The table for that option.
 */
export function truststoreFlags(option: string): FlagTable {
  return {
    password: `--${option}-password`,
    type: `--${option}-type`,
    loadKeyStore: "--keystore",
    loadTrustStore: `--${option}`,
  };
}

/** An option name in backticks, with an optional string value: `` `type: "jks"` ``. */
const OPTION = /`([A-Za-z][A-Za-z0-9]*)(?:: "([^"`]*)")?`/g;

/**
 * A text with the options it names in backticks written as flags; names the table lacks stay as
 * they are.
 *
 * @param text A message or hint of the library.
 * @param flags The table of the call the text comes from.
 * @returns The text in the command line's words.
 *
 * @example
 * ```ts
 * import { KEYSTORE_FLAGS, withFlags } from "./flags.ts";
 * const hint = withFlags('Use `type: "jks"`, or give `keyPassword`.', KEYSTORE_FLAGS);
 * if (hint !== "Use --keystore-type jks, or give --key-password.") throw new Error(hint);
 * ```
 */
export function withFlags(text: string, flags: FlagTable): string {
  return text.replace(OPTION, (whole, name: string, value: string | undefined) => {
    const flag = Object.hasOwn(flags, name) ? flags[name] : undefined;
    if (flag === undefined) return whole;
    return value === undefined ? flag : `${flag} ${value}`;
  });
}

/**
 * Runs a library call and rethrows its {@linkcode C8yError} in the command line's words: the same
 * class, code, stage, cause and findings, with message and hint through {@linkcode withFlags}.
 *
 * @param flags The table of the call.
 * @param call The library call.
 * @returns What the call returns.
 */
export async function inFlags<T>(flags: FlagTable, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw errorWithFlags(error, flags);
  }
}

/**
 * The error in the command line's words (see {@linkcode inFlags}): a {@linkcode C8yError} gets
 * its message and hint rewritten in place (its class, code, stage, cause and other fields stay);
 * anything else is returned unchanged.
 *
 * @param error What a library call threw.
 * @param flags The table of the call.
 * @returns `error`.
 */
export function errorWithFlags(error: unknown, flags: FlagTable): unknown {
  if (error instanceof C8yError) {
    const words = error as { message: string; hint: string };
    words.message = withFlags(error.message, flags);
    words.hint = withFlags(error.hint, flags);
  }
  return error;
}

/**
 * Offline findings in the command line's words.
 *
 * @param problems What `diagnose()` found.
 * @param flags The table of the options they may name.
 * @returns New problems with message and hint through {@linkcode withFlags}.
 */
export function problemsWithFlags(
  problems: readonly Problem[],
  flags: FlagTable = LIBRARY_FLAGS,
): Problem[] {
  return problems.map((p) => ({
    ...p,
    message: withFlags(p.message, flags),
    ...(p.hint === undefined ? {} : { hint: withFlags(p.hint, flags) }),
  }));
}

/**
 * What `fleet` devices are read with, in the words of their source: the manifest's columns
 * (`password`, `alias`, `key`, `client_id`), or `--keystores DIR` with `--keystore-password`.
 * Neither can give a key entry a password of its own: `keyPassword` says so.
 *
 * @param source `manifest` or `keystores`.
 * @returns The table for the devices' errors.
 */
export function fleetFlags(source: "manifest" | "keystores"): FlagTable {
  const column = (name: string): string => `the manifest's ${name} column`;
  const manifest = source === "manifest";
  return {
    password: manifest ? column("password") : "--keystore-password",
    keyPassword: "check --key-password (fleet cannot give a key a password of its own)",
    alias: manifest
      ? column("alias")
      : "an alias (a manifest's alias column; --keystores has none)",
    key: manifest ? column("key") : "a NAME.key file beside NAME.chain.pem",
    clientId: manifest ? column("client_id") : "a client id (a manifest's client_id column)",
    explicit: manifest ? column("client_id") : "a client id (a manifest's client_id column)",
    connectTimeoutMs: "--timeout",
    timeoutMs: "--timeout",
    trust: "--truststore",
    loadKeyStore: manifest ? column("keystore") : "--keystores",
    loadTrustStore: "--truststore",
  };
}
