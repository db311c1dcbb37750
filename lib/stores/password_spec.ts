/**
 * Password sources in the form of openssl's `-passin`: `pass:VALUE`, `env:NAME`, `file:PATH`,
 * `stdin`; any other text is taken literally. Parsing is pure; reading the source is the
 * command line's job.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** Where a password comes from. */
export type PasswordSpec =
  | { kind: "pass"; value: string }
  | { kind: "env"; name: string }
  | { kind: "file"; path: string }
  | { kind: "stdin" };

/**
 * Parses a password source.
 *
 * @param spec The option's value, e.g. `env:KEYSTORE_PASSWORD`.
 * @param option The option's name, used in error messages (e.g. `--keystore-password`).
 * @returns Where to find the password.
 * @throws {UsageError} `PASSWORD_SPEC` when `env:` or `file:` has nothing after the colon.
 *
 * @example Reading the forms
 * ```ts
 * import { parsePasswordSpec } from "./password_spec.ts";
 * const spec = parsePasswordSpec("env:KEYSTORE_PASSWORD", "--keystore-password");
 * if (spec.kind !== "env" || spec.name !== "KEYSTORE_PASSWORD") throw new Error("unexpected");
 * if (parsePasswordSpec("changeit", "--keystore-password").kind !== "pass") throw new Error("!");
 * ```
 */
export function parsePasswordSpec(spec: string, option: string): PasswordSpec {
  if (spec === "stdin") return { kind: "stdin" };
  if (spec.startsWith("pass:")) return { kind: "pass", value: spec.slice(5) };
  for (const kind of ["env", "file"] as const) {
    if (!spec.startsWith(`${kind}:`)) continue;
    const rest = spec.slice(kind.length + 1);
    if (rest === "") {
      throw new UsageError(`${option} "${kind}:" needs a ${kind === "env" ? "name" : "path"}`, {
        code: "PASSWORD_SPEC",
        hint: `Write ${option} ${kind}:${kind === "env" ? "NAME" : "PATH"}.`,
      });
    }
    return kind === "env" ? { kind, name: rest } : { kind, path: rest };
  }
  return { kind: "pass", value: spec };
}
