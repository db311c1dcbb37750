/**
 * Decoders of the DER values the callers read, each from a {@linkcode Tlv} of `der.ts`: the
 * bytes of an OCTET STRING (primitive or BER-constructed), an OBJECT IDENTIFIER in dotted form, a
 * small non-negative INTEGER, and the character strings of names. What they leave out, and why
 * the DER reader is written here, is in `der.ts`.
 *
 * @example
 * ```ts
 * import { readDer } from "./der.ts";
 * import { readOid } from "./der_values.ts";
 * if (readOid(readDer(new Uint8Array([0x06, 0x03, 0x55, 0x04, 0x03]))) !== "2.5.4.3") {
 *   throw new Error();
 * }
 * ```
 *
 * @module
 */

import { concat } from "./bytes.ts";
import { children, DerError, expectTag, type Tlv } from "./der.ts";

/** The longest OBJECT IDENTIFIER accepted, in content octets (real ones have at most ~30). */
const MAX_OID_BYTES = 128;

/**
 * The bytes of an OCTET STRING (or of an implicitly tagged one), primitive or constructed from
 * OCTET STRING segments (BER).
 *
 * @param node The value; its tag is not checked (implicit tags are common), only its form.
 * @returns The octets (a view into the input when primitive, a copy when constructed).
 * @throws {DerError} When a segment of a constructed string is not an OCTET STRING.
 *
 * @example
 * ```ts
 * import { readDer } from "./der.ts";
 * import { readOctets } from "./der_values.ts";
 * // BER: a constructed OCTET STRING of two segments, with an indefinite length
 * const ber = new Uint8Array([0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00, 0x00]);
 * if (readOctets(readDer(ber)).join() !== "170,187") throw new Error();
 * ```
 */
export function readOctets(node: Tlv): Uint8Array {
  if ((node.tag & 0x20) === 0) return node.content;
  const parts = children(node).map((child) => {
    if (child.tag !== 0x04 && child.tag !== 0x24) {
      throw new DerError("a constructed OCTET STRING holds something else");
    }
    return readOctets(child);
  });
  return concat(parts);
}

/**
 * Decodes an OBJECT IDENTIFIER to its dotted form. Arcs beyond 2^53 (UUID OIDs under
 * `2.25`) are decoded exactly.
 *
 * @param node An OBJECT IDENTIFIER (tag `0x06`).
 * @returns The dotted decimal form, e.g. `2.5.4.3`.
 * @throws {DerError} When the tag is not `0x06`, the contents are empty, longer than 128
 *   octets, or end inside an arc.
 *
 * @example
 * ```ts
 * import { readDer } from "./der.ts";
 * import { readOid } from "./der_values.ts";
 * if (readOid(readDer(new Uint8Array([0x06, 0x03, 0x55, 0x04, 0x03]))) !== "2.5.4.3") {
 *   throw new Error();
 * }
 * ```
 */
export function readOid(node: Tlv): string {
  expectTag(node, 0x06, "OBJECT IDENTIFIER");
  const bytes = node.content;
  if (bytes.length === 0) throw new DerError("empty OBJECT IDENTIFIER");
  if (bytes.length > MAX_OID_BYTES) throw new DerError("OBJECT IDENTIFIER too long");
  const arcs: string[] = [];
  let value = 0n;
  let small = 0;
  let big = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (big) {
      value = value * 128n + BigInt(b & 0x7f);
    } else {
      small = small * 128 + (b & 0x7f);
      if (small > Number.MAX_SAFE_INTEGER / 128) {
        big = true;
        value = BigInt(small);
      }
    }
    if ((b & 0x80) !== 0) {
      if (i === bytes.length - 1) throw new DerError("truncated OBJECT IDENTIFIER");
      continue;
    }
    const arc = big ? value : BigInt(small);
    if (arcs.length === 0) {
      const top = arc < 40n ? 0n : arc < 80n ? 1n : 2n;
      arcs.push(String(top), String(arc - 40n * top));
    } else {
      arcs.push(String(arc));
    }
    small = 0;
    value = 0n;
    big = false;
  }
  return arcs.join(".");
}

/**
 * Decodes a non-negative INTEGER of up to 48 bits (versions, iteration counts, key lengths).
 *
 * @param node An INTEGER (tag `0x02`).
 * @returns Its value, or `Infinity` when it needs more than 48 bits (callers compare it with a
 *   limit).
 * @throws {DerError} When the tag is not `0x02`, the contents are empty, or it is negative.
 *
 * @example
 * ```ts
 * import { readDer } from "./der.ts";
 * import { readSmallInt } from "./der_values.ts";
 * if (readSmallInt(readDer(new Uint8Array([0x02, 0x02, 0x27, 0x10]))) !== 10_000) {
 *   throw new Error();
 * }
 * ```
 */
export function readSmallInt(node: Tlv): number {
  expectTag(node, 0x02, "INTEGER");
  const bytes = node.content;
  if (bytes.length === 0) throw new DerError("empty INTEGER");
  if ((bytes[0] & 0x80) !== 0) throw new DerError("negative INTEGER");
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  if (bytes.length - start > 6) return Infinity;
  let value = 0;
  for (let i = start; i < bytes.length; i++) value = value * 256 + bytes[i];
  return value;
}

/**
 * Decodes a character string: UTF8String and the ASCII-based types (PrintableString,
 * IA5String, NumericString, VisibleString; GraphicString and GeneralString are read as UTF-8
 * too), TeletexString and VideotexString as Latin-1 (as OpenSSL and Java read them), BMPString
 * (UTF-16BE) and UniversalString (UTF-32BE).
 * Invalid characters become U+FFFD: the string is for display and comparison, not validation.
 *
 * @param node The string value.
 * @returns The text.
 * @throws {DerError} When the tag is no string type, or a BMPString or UniversalString has a
 *   length that is not a multiple of its character size.
 *
 * @example
 * ```ts
 * import { readDer } from "./der.ts";
 * import { readString } from "./der_values.ts";
 * const bmp = readDer(new Uint8Array([0x1e, 0x04, 0x00, 0x72, 0x00, 0x73])); // BMPString "rs"
 * const utf8 = readDer(new Uint8Array([0x0c, 0x02, 0xc3, 0xa9])); // UTF8String "é"
 * if (readString(bmp) !== "rs" || readString(utf8) !== "é") throw new Error();
 * ```
 */
export function readString(node: Tlv): string {
  const bytes = node.content;
  switch (node.tag) {
    case 0x1e: { // BMPString
      if (bytes.length % 2 !== 0) throw new DerError("bad BMPString length");
      let s = "";
      for (let i = 0; i < bytes.length; i += 2) {
        s += String.fromCharCode((bytes[i] << 8) | bytes[i + 1]);
      }
      return s;
    }
    case 0x1c: { // UniversalString
      if (bytes.length % 4 !== 0) throw new DerError("bad UniversalString length");
      let s = "";
      for (let i = 0; i < bytes.length; i += 4) {
        const code = ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) |
          bytes[i + 3]) >>> 0;
        const valid = code <= 0x10ffff && (code < 0xd800 || code > 0xdfff);
        s += String.fromCodePoint(valid ? code : 0xfffd);
      }
      return s;
    }
    case 0x14: // TeletexString (T61)
    case 0x15: // VideotexString
      // OpenSSL (`-nameopt utf8`) and Java (`DerValue.getT61String`) read these as Latin-1, and
      // openssl's string_mask writes a Latin-1 "ä" into a TeletexString.
      return latin1(bytes);
    case 0x0c: // UTF8String
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x19: // GraphicString
    case 0x1a: // VisibleString
    case 0x1b: // GeneralString
      return new TextDecoder().decode(bytes);
    default:
      throw new DerError(`tag 0x${node.tag.toString(16)} is not a string type`);
  }
}

/** Bytes as Latin-1 (ISO 8859-1) text: one character per byte. */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
