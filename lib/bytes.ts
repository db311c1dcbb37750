/**
 * Two small byte helpers shared by the store readers: hex encoding (for set keys and key ids)
 * and comparison.
 *
 * @module
 */

/**
 * Writes bytes as lower-case hex, two digits per byte.
 *
 * @param bytes The bytes.
 * @returns The hex string; empty for no bytes.
 *
 * @example
 * ```ts
 * import { hex } from "./bytes.ts";
 * if (hex(new Uint8Array([0x0a, 0xff])) !== "0aff") throw new Error("unexpected");
 * ```
 */
export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const byte of bytes) s += byte.toString(16).padStart(2, "0");
  return s;
}

/**
 * Tells whether two byte arrays hold the same bytes.
 *
 * @param a The first bytes; `undefined` equals nothing.
 * @param b The second bytes; `undefined` equals nothing.
 * @returns `true` when both are given, of the same length and equal byte by byte.
 *
 * @example
 * ```ts
 * import { equalBytes } from "./bytes.ts";
 * if (!equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]))) throw new Error("equal");
 * if (equalBytes(undefined, new Uint8Array())) throw new Error("undefined equals nothing");
 * ```
 */
export function equalBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
