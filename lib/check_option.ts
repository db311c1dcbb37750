/**
 * The check every numeric option of a public function goes through, so that a value that cannot
 * work (`attempts: 0`, `timeoutMs: 0`, `NaN`) fails at once as a {@linkcode UsageError} naming the
 * option, instead of as a `TypeError` or, later, as a network timeout.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** The bounds {@linkcode checkNumberOption} enforces. */
export interface NumberBounds {
  /** The smallest value allowed. @default 1 */
  min?: number;
  /** The largest value allowed. @default Number.MAX_SAFE_INTEGER */
  max?: number;
  /** Whether the value must be a whole number. @default true */
  integer?: boolean;
}

/**
 * Returns `value` when it is a number within the bounds, `undefined` when it is `undefined` (the
 * caller's default applies), and throws otherwise.
 *
 * @param name The option's name as the caller wrote it, e.g. `attempts` or `timeoutMs`.
 * @param value The value given.
 * @param bounds The range; by default a whole number from 1.
 * @returns The value, unchanged.
 * @throws {UsageError} `OPTION_INVALID`, naming the option, the value and the range.
 *
 * @example
 * ```ts
 * import { checkNumberOption } from "./check_option.ts";
 * if (checkNumberOption("attempts", 3) !== 3) throw new Error();
 * if (checkNumberOption("attempts", undefined) !== undefined) throw new Error();
 * try {
 *   checkNumberOption("timeoutMs", 0);
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if ((err as { code?: string }).code !== "OPTION_INVALID") throw err;
 * }
 * ```
 */
export function checkNumberOption(
  name: string,
  value: number | undefined,
  bounds: NumberBounds = {},
): number | undefined {
  if (value === undefined) return undefined;
  const min = bounds.min ?? 1;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  const integer = bounds.integer ?? true;
  const ok = typeof value === "number" && !Number.isNaN(value) && value >= min && value <= max &&
    (!integer || Number.isInteger(value));
  if (ok) return value;
  const kind = integer ? "a whole number" : "a number";
  const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
  throw new UsageError(`The option ${name} must be ${kind} ${range}, not ${String(value)}`, {
    code: "OPTION_INVALID",
    hint: `Give ${name} ${kind} ${range}, or leave it out for the default.`,
  });
}
