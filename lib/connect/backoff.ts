/**
 * When to try again after a lost connection: exponential backoff with jitter, as a device that
 * stays connected needs it (so that devices dropped together do not come back together).
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { MAX_TIMER_MS } from "./mqtt_client.ts";

/** Timing of the automatic reconnect: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** The delay before the first attempt, in milliseconds; it doubles after each failure. @default 1000 */
  initialDelayMs?: number;
  /** The longest delay between two attempts, in milliseconds. @default 60000 */
  maxDelayMs?: number;
}

/** The default reconnect timing. */
export const DEFAULT_RECONNECT: Required<ReconnectOptions> = {
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
};

/**
 * The delay before reconnect attempt `attempt` (0 for the first): the initial delay doubled per
 * earlier failure, capped at the maximum, then a random point in its upper half ("equal jitter",
 * so that devices dropped together do not come back together).
 *
 * @param attempt How many attempts failed since the connection was lost.
 * @param timing The initial and maximum delays.
 * @param random A number in [0, 1). @default Math.random()
 * @returns The delay in milliseconds.
 *
 * @example
 * ```ts
 * import { reconnectDelayMs } from "../../mod.ts";
 * const timing = { initialDelayMs: 1000, maxDelayMs: 60_000 };
 * if (reconnectDelayMs(0, timing, 0) !== 500 || reconnectDelayMs(3, timing, 0.999) > 8000) {
 *   throw new Error("unexpected");
 * }
 * if (reconnectDelayMs(20, timing, 0) !== 30_000) throw new Error("capped at 60 s");
 * ```
 */
export function reconnectDelayMs(
  attempt: number,
  timing: Required<ReconnectOptions>,
  random: number = Math.random(),
): number {
  const full = Math.min(timing.maxDelayMs, timing.initialDelayMs * 2 ** Math.min(attempt, 40));
  return Math.round(full / 2 + random * (full / 2));
}

/**
 * The reconnect timing `connect()` was given (`true`: the defaults), checked.
 *
 * @throws {UsageError} `OPTION_INVALID` when a delay is not positive or the initial one is above
 * the maximum.
 */
export function reconnectTiming(
  option: boolean | ReconnectOptions | undefined,
): Required<ReconnectOptions> | undefined {
  if (option === undefined || option === false) return undefined;
  const timing = { ...DEFAULT_RECONNECT, ...(option === true ? {} : option) };
  const { initialDelayMs, maxDelayMs } = timing;
  if (
    !(Number.isFinite(initialDelayMs) && initialDelayMs > 0) ||
    !(Number.isFinite(maxDelayMs) && maxDelayMs >= initialDelayMs && maxDelayMs <= MAX_TIMER_MS)
  ) {
    throw new UsageError(
      `The reconnect delays must be positive with the initial one (${initialDelayMs} ms) at most the maximum (${maxDelayMs} ms)`,
      {
        code: "OPTION_INVALID",
        hint: "Leave them out for 1 s doubling up to 60 s.",
      },
    );
  }
  return timing;
}
