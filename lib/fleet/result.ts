/**
 * What a fleet check reports: one plain object per device, failure classes, and the summary of a
 * run (classes with their counts and devices, most common first).
 *
 * @module
 */

import {
  C8yError,
  CertificateError,
  MqttError,
  NetworkError,
  PermissionError,
  StoreError,
  TlsError,
  TokenError,
  UsageError,
} from "../errors.ts";
import type { Stage } from "../errors.ts";

/**
 * The class of a failure, in the words of the single-device commands (one exit code each):
 * `usage`, `permission`, `store`, `certificate`, `network`, `tls`, `mqtt`, `token`, and `internal`
 * for a failure the tool did not foresee. Listed in the order a device meets them.
 */
export type FailureClass =
  | "usage"
  | "permission"
  | "store"
  | "certificate"
  | "network"
  | "tls"
  | "mqtt"
  | "token"
  | "internal";

/** Every {@linkcode FailureClass}, in the order a device meets them (ties rank by it). */
export const FAILURE_CLASSES: readonly FailureClass[] = [
  "usage",
  "permission",
  "store",
  "certificate",
  "network",
  "tls",
  "mqtt",
  "token",
  "internal",
];

/** Why a device failed: the error's fields, never a password, key or token. */
export interface DeviceFailure {
  /** The error's stable code, e.g. `KEYSTORE_PASSWORD`, `TLS_CLIENT_CERT_REFUSED`. */
  code: string;
  /** The failure's class. */
  class: FailureClass;
  /** The stage it happened in. */
  stage: Stage;
  /** One sentence naming the culprit. */
  message: string;
  /** What to do about it (may be empty). */
  hint: string;
}

/** The time one stage of a device took. */
export interface StageTime {
  /** The stage: `store` (keystore read), `certificate` (offline checks), then the connection's. */
  stage: Stage;
  /** Its duration in milliseconds. */
  ms: number;
}

/** The outcome of one device. */
export interface DeviceResult {
  /** The device's position in the list (0-based). */
  index: number;
  /** The keystore path, as the list gives it. */
  keystore: string;
  /** The manifest line, when the device came from one. */
  line?: number;
  /** Whether every step that was asked for succeeded. */
  ok: boolean;
  /** The client id the device connects (or would connect) with, once known. */
  clientId?: string;
  /** The stages that succeeded, in order, with their times. */
  stages: StageTime[];
  /** Milliseconds from the start of the device's first step to its end (both passes). */
  totalMs: number;
  /** The token's subject and expiry (ISO 8601), when a token was fetched. */
  token?: { subject?: string; expiresAt?: string; tenant?: string };
  /** Offline findings of severity `warning` (codes and messages). */
  warnings: { code: string; message: string }[];
  /** Why it failed, when it did. */
  error?: DeviceFailure;
}

/** One failure class of a run. */
export interface FailureClassSummary {
  /** The class. */
  class: FailureClass;
  /** How many devices failed with it. */
  count: number;
  /** How many of those had each error code. */
  codes: Record<string, number>;
  /** The devices (labels as {@linkcode deviceLabel} makes them), in the order they finished. */
  devices: string[];
  /** The hint of the class's most common code. */
  hint: string;
  /**
   * Each distinct hint of the class with its code and how many devices got it, most common
   * first (at most {@linkcode MAX_HINTS_PER_CLASS}: a hint naming a file differs per device).
   */
  hints: { code: string; hint: string; count: number }[];
}

/** The most distinct hints a class keeps (see {@linkcode FailureClassSummary.hints}). */
export const MAX_HINTS_PER_CLASS = 10;

/** Counters of a run, through which its memory use can be checked. */
export interface FleetStats {
  /** Keystores read so far (the connecting pass reads a keystore again). */
  keystoresRead: number;
  /** The most keystores (bytes or identity) held at once: at most the concurrency. */
  peakKeystoresHeld: number;
  /** The most devices being worked on at once. */
  peakInFlight: number;
  /** The most finished results held back at once (they are handed on as they finish). */
  peakResultsHeld: number;
}

/** The summary of a run. */
export interface FleetSummary {
  /** Devices checked. */
  devices: number;
  /** Devices that passed. */
  passed: number;
  /** Devices that failed. */
  failed: number;
  /** Failure classes, most common first (ties: the class met first in a device's path). */
  classes: FailureClassSummary[];
  /** Client ids used by more than one device, with the devices of each. */
  duplicates: { clientId: string; devices: string[] }[];
  /** Milliseconds from the start to the end of the run. */
  durationMs: number;
  /** Milliseconds of the offline pass (reading keystores, checks, client ids) within `durationMs`. */
  offlineMs: number;
  /** The run's counters. */
  stats: FleetStats;
}

/**
 * The class of an error: the family it belongs to (a `StoreError` is `store`, ...); anything
 * that is not a {@linkcode C8yError} is `internal`, except a denied Deno permission.
 *
 * @param error Anything thrown.
 * @returns Its class.
 *
 * @example
 * ```ts
 * import { failureClass, StoreError } from "../../mod.ts";
 * const err = new StoreError("wrong password", { code: "KEYSTORE_PASSWORD" });
 * if (failureClass(err) !== "store") throw new Error(failureClass(err));
 * if (failureClass(new RangeError("bug")) !== "internal") throw new Error("internal");
 * ```
 */
export function failureClass(error: unknown): FailureClass {
  if (error instanceof UsageError) return "usage";
  if (error instanceof PermissionError) return "permission";
  if (error instanceof StoreError) return "store";
  if (error instanceof CertificateError) return "certificate";
  if (error instanceof NetworkError) return "network";
  if (error instanceof TlsError) return "tls";
  if (error instanceof MqttError) return "mqtt";
  if (error instanceof TokenError) return "token";
  if (isPermissionDenied(error)) return "permission";
  return "internal";
}

function isPermissionDenied(error: unknown): boolean {
  const name = (error as { name?: unknown } | undefined)?.name;
  return name === "NotCapable" || name === "PermissionDenied";
}

/** Turns anything thrown into the fields a result carries (the first line of its message). */
export function toFailure(error: unknown): DeviceFailure {
  const cls = failureClass(error);
  if (error instanceof C8yError) {
    return {
      code: error.code,
      class: cls,
      stage: error.stage,
      message: error.message,
      hint: error.hint,
    };
  }
  const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
  return {
    code: cls === "permission" ? "PERMISSION_MISSING" : "INTERNAL",
    class: cls,
    stage: cls === "permission" ? "permission" : "usage",
    message: message || "Unknown failure",
    hint: cls === "permission"
      ? "Grant the permission the message names."
      : "This is a bug of the tool: please report it with the message.",
  };
}

/**
 * How a device is named in summaries: its keystore path, with the manifest line when known.
 *
 * @param result The device's result (or just where it came from).
 * @returns E.g. `devices/a.p12 (line 3)`.
 */
export function deviceLabel(result: Pick<DeviceResult, "keystore" | "line">): string {
  return result.line === undefined ? result.keystore : `${result.keystore} (line ${result.line})`;
}

/** Gathers results into failure classes as they finish (only failures are kept). */
export class SummaryBuilder {
  #devices = 0;
  #passed = 0;
  #classes = new Map<
    FailureClass,
    Omit<FailureClassSummary, "hints"> & {
      firstHint: Map<string, string>;
      hints: Map<string, { code: string; hint: string; count: number }>;
    }
  >();

  /** Counts one finished device. */
  add(result: DeviceResult): void {
    this.#devices++;
    if (result.ok || result.error === undefined) {
      this.#passed++;
      return;
    }
    const { error } = result;
    let entry = this.#classes.get(error.class);
    if (entry === undefined) {
      entry = {
        class: error.class,
        count: 0,
        codes: {},
        devices: [],
        hint: "",
        firstHint: new Map(),
        hints: new Map(),
      };
      this.#classes.set(error.class, entry);
    }
    entry.count++;
    entry.codes[error.code] = (entry.codes[error.code] ?? 0) + 1;
    entry.devices.push(deviceLabel(result));
    if (!entry.firstHint.has(error.code)) entry.firstHint.set(error.code, error.hint);
    const key = `${error.code}\n${error.hint}`;
    const seen = entry.hints.get(key);
    if (seen !== undefined) seen.count++;
    else if (entry.hints.size < MAX_HINTS_PER_CLASS) {
      entry.hints.set(key, { code: error.code, hint: error.hint, count: 1 });
    }
  }

  /** The summary so far. */
  build(
    extra: Pick<FleetSummary, "duplicates" | "durationMs" | "offlineMs" | "stats">,
  ): FleetSummary {
    const classes = [...this.#classes.values()].map(({ firstHint, hints, ...entry }) => {
      const [top] = Object.entries(entry.codes).sort((a, b) => b[1] - a[1]);
      return {
        ...entry,
        hint: firstHint.get(top[0]) ?? "",
        hints: [...hints.values()].filter((h) => h.hint !== "")
          .sort((a, b) => b.count - a.count).map((h) => ({ ...h })),
      };
    });
    classes.sort((a, b) =>
      b.count - a.count || FAILURE_CLASSES.indexOf(a.class) - FAILURE_CLASSES.indexOf(b.class)
    );
    return {
      devices: this.#devices,
      passed: this.#passed,
      failed: this.#devices - this.#passed,
      classes,
      ...extra,
      durationMs: Math.round(extra.durationMs * 10) / 10,
      offlineMs: Math.round(extra.offlineMs * 10) / 10,
    };
  }
}

/** Builds a device's result (times rounded to 0.1 ms, the error as its plain fields). */
export function deviceResult(
  device: { keystore: string; line?: number },
  index: number,
  outcome: {
    ok: boolean;
    clientId?: string;
    stages: StageTime[];
    warnings?: DeviceResult["warnings"];
    ms: number;
    token?: DeviceResult["token"];
    error?: unknown;
  },
): DeviceResult {
  const out: DeviceResult = {
    index,
    keystore: device.keystore,
    ok: outcome.ok,
    stages: outcome.stages.map((s) => ({ stage: s.stage, ms: round(s.ms) })),
    totalMs: round(outcome.ms),
    warnings: outcome.warnings ?? [],
  };
  if (device.line !== undefined) out.line = device.line;
  if (outcome.clientId !== undefined) out.clientId = outcome.clientId;
  if (outcome.token !== undefined) out.token = outcome.token;
  if (!outcome.ok) out.error = toFailure(outcome.error);
  return out;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
