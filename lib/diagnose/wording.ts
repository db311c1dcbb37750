/**
 * How the offline findings word things: certificates by CN or subject, short lists, and
 * durations in their largest whole unit.
 *
 * @module
 */

import type { Certificate, TrustedCertificate } from "../types.ts";

const SECOND = 1000;

const MINUTE = 60 * SECOND;

const HOUR = 60 * MINUTE;

/** A day in milliseconds. */
export const DAY = 24 * HOUR;

const YEAR = 365 * DAY;

/**
 * Says a duration in the largest whole unit: `3 days`, `2 hours`, `1 minute`.
 *
 * @param ms The duration in milliseconds (the sign is ignored).
 * @returns A phrase such as `25 years`, `less than a second` below one second.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./wording.ts";
 * if (formatDuration(3 * 24 * 3600_000 + 5000) !== "3 days") throw new Error();
 * if (formatDuration(-60_000) !== "1 minute") throw new Error();
 * ```
 */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const units: [number, string][] = [
    [YEAR, "year"],
    [DAY, "day"],
    [HOUR, "hour"],
    [MINUTE, "minute"],
    [SECOND, "second"],
  ];
  for (const [size, name] of units) {
    const n = Math.floor(abs / size);
    if (n >= 1) return `${n} ${name}${n === 1 ? "" : "s"}`;
  }
  return "less than a second";
}

/** A certificate by its CN, else its subject: `CN=device-rsa-001`. */
export function nameOf(cert: Certificate): string {
  const { commonName, subject } = cert.summary;
  if (commonName !== undefined && commonName !== "") return `CN=${commonName}`;
  return subject ? `subject "${subject}"` : "empty subject";
}

/** `, alias "x"` for a truststore entry with an alias, else nothing. */
export function aliasOf(cert: Certificate | TrustedCertificate): string {
  return "alias" in cert && cert.alias !== undefined ? `, alias "${cert.alias}"` : "";
}

/** `a, b, c, d and 5 more`: long chains would make unreadable messages. */
export function listOf(items: string[]): string {
  return items.length <= 4
    ? items.join(", ")
    : `${items.slice(0, 3).join(", ")} and ${items.length - 3} more`;
}

/** `x`, or `one of x, y`. */
export function oneOf(items: string[]): string {
  return items.length === 1 ? items[0] : `one of ${items.join(", ")}`;
}

/** The text with a capital first letter. */
export function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
