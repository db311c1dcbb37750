/**
 * A small, bounds-checked reader of ASN.1 DER (and the BER that PKCS#12 files sometimes use),
 * shared by the store readers (`stores/`) and the certificate summary (`x509/certificate.ts`).
 *
 * **Why it is hand-written.** The project prefers well-kept libraries, and `asn1js` or
 * `node-forge` would do this job. But opening a store is on the hot path of every command: the
 * performance goal is opening a JDK 17 PKCS#12 in at most 10 ms in-process, and a cold
 * `c8y-mqtt-cert inspect` within 3× the time of `openssl pkcs12`. Measured in a fresh Deno
 * 2.9.6 process, importing `npm:asn1js@4.0.0` costs about 14 ms and `npm:node-forge` about
 * 60 ms, against about 0 ms for this file; and the certificate summary would turn asynchronous
 * (dependencies load through a dynamic `import()`) for three fields. What the callers need is
 * small: walk tag-length-value headers, descend into constructed values, and decode OIDs, small
 * INTEGERs, OCTET STRINGs and strings.
 *
 * **What it guarantees.** Every length is checked against the bytes that are really there and
 * nothing is allocated from a length field; recursion is bounded ({@linkcode MAX_DER_DEPTH});
 * every failure is a {@linkcode DerError}, never a `RangeError` or `TypeError`. Returned
 * `content` and `raw` are views into the input (no copies).
 *
 * **What it deliberately does not do.**
 * - No schema: callers check tags and element counts themselves.
 * - No DER canonicality checks: non-minimal lengths, BER indefinite lengths (constructed values
 *   only) and constructed OCTET STRINGs are accepted, as lenient real-world readers (OpenSSL,
 *   the JDK) accept them. It is not a validator.
 * - No high tag numbers (tag number 31 and above, multi-byte identifiers): no PKCS#12 or X.509
 *   structure uses them; they are refused.
 * - No lengths of more than four length octets (values of 4 GiB and up): refused.
 * - No INTEGER beyond 48 bits, negative INTEGER, BIT STRING, time, REAL or other decoders:
 *   `node:crypto` reads keys, times and serial numbers.
 * - No encoding (writing DER).
 *
 * @example Walking a structure
 * ```ts
 * import { children, expectTag, readDer, readOid, readSmallInt } from "./der.ts";
 * // SEQUENCE { INTEGER 3, OBJECT IDENTIFIER 1.2.840.113549.1.7.1 }
 * const bytes = new Uint8Array([
 *   0x30, 0x0e, 0x02, 0x01, 0x03,
 *   0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
 * ]);
 * const [version, type] = children(expectTag(readDer(bytes), 0x30, "SEQUENCE"));
 * if (readSmallInt(version) !== 3 || readOid(type) !== "1.2.840.113549.1.7.1") throw new Error();
 * ```
 *
 * @module
 */

import { concat } from "./bytes.ts";

/** The deepest nesting {@linkcode children} descends to (PKCS#12 needs about 12, X.509 about 8). */
export const MAX_DER_DEPTH = 48;

/** The longest OBJECT IDENTIFIER accepted, in content octets (real ones have at most ~30). */
const MAX_OID_BYTES = 128;

/** One decoded tag-length-value. */
export interface Tlv {
  /** The identifier octet: class (bits 8-7), constructed (bit 6) and tag number (< 31). */
  tag: number;
  /** The contents octets (without the end-of-contents octets of an indefinite length). */
  content: Uint8Array;
  /** The whole encoding: identifier, length and contents (and end-of-contents) octets. */
  raw: Uint8Array;
  /** Nesting depth below the value {@linkcode readDer} returned (which has depth 0). */
  depth: number;
}

/**
 * A malformed or unexpected encoding. Callers turn it into their own domain error (for
 * example `StoreError` with code `STORE_CORRUPT`), keeping it as `cause`.
 *
 * @example
 * ```ts
 * import { DerError, readDer } from "./der.ts";
 * try {
 *   readDer(new Uint8Array([0x30, 0x05, 0x02]));
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof DerError)) throw err;
 *   // err.message: "DER: value runs past the end of the input"
 * }
 * ```
 */
export class DerError extends SyntaxError {
  /**
   * Creates the error; the message gets a "DER: " prefix.
   * @param message What is wrong.
   */
  constructor(message: string) {
    super(`DER: ${message}`);
    this.name = "DerError";
  }
}

/** Options of {@linkcode readDer}. */
export interface ReadDerOptions {
  /**
   * Whether bytes may follow the value (they are ignored). OpenSSL's `TRUSTED CERTIFICATE`,
   * for example, appends trust settings to the certificate.
   * @default false
   */
  allowTrailing?: boolean;
  /**
   * What the value is, for the message when trailing bytes are refused.
   * @default "the value"
   */
  what?: string;
}

/**
 * Decodes the value at the start of `bytes`: normally exactly one TLV that fills the input.
 *
 * @param bytes The encoding.
 * @param options Whether trailing bytes are allowed, and what to call the value in messages.
 * @returns The value, at depth 0.
 * @throws {DerError} When the header or the contents are cut short, a length is too large, a
 *   tag number is 31 or more, an indefinite length lacks its end-of-contents octets or is used
 *   on a primitive value, the nesting is deeper than {@linkcode MAX_DER_DEPTH}, or (without
 *   `allowTrailing`) bytes follow the value.
 *
 * @example Short and long form lengths
 * ```ts
 * import { readDer } from "./der.ts";
 * const short = readDer(new Uint8Array([0x04, 0x02, 0xaa, 0xbb]));
 * const long = readDer(new Uint8Array([0x04, 0x81, 0x02, 0xaa, 0xbb]));
 * if (short.content.length !== 2 || long.content[1] !== 0xbb) throw new Error();
 * ```
 *
 * @example The first of several values
 * ```ts
 * import { readDer } from "./der.ts";
 * const first = readDer(new Uint8Array([0x05, 0x00, 0x05, 0x00]), { allowTrailing: true });
 * if (first.raw.length !== 2) throw new Error();
 * ```
 */
export function readDer(bytes: Uint8Array, options: ReadDerOptions = {}): Tlv {
  if (!(bytes instanceof Uint8Array)) throw new DerError("the input is not a Uint8Array");
  const [tlv, end] = decode(bytes, 0, 0);
  if (end !== bytes.length && !options.allowTrailing) {
    throw new DerError(`trailing bytes after ${options.what ?? "the value"}`);
  }
  return tlv;
}

/**
 * The values inside a constructed value, in order.
 *
 * @param node A constructed value (bit 6 of its tag set), e.g. a SEQUENCE, SET or `[0]`.
 * @returns Its elements; empty for an empty SEQUENCE.
 * @throws {DerError} When `node` is primitive, an element is malformed, or the elements are
 *   nested deeper than {@linkcode MAX_DER_DEPTH}.
 *
 * @example
 * ```ts
 * import { children, readDer } from "./der.ts";
 * // SEQUENCE { INTEGER 1, NULL }
 * const ok = readDer(new Uint8Array([0x30, 0x05, 0x02, 0x01, 0x01, 0x05, 0x00]));
 * if (children(ok).map((c) => c.tag).join() !== "2,5") throw new Error();
 * ```
 */
export function children(node: Tlv): Tlv[] {
  if ((node.tag & 0x20) === 0) throw new DerError("expected a constructed value");
  const result: Tlv[] = [];
  const { content } = node;
  let p = 0;
  while (p < content.length) {
    const [child, next] = decode(content, p, node.depth + 1);
    result.push(child);
    p = next;
  }
  return result;
}

/**
 * Checks the identifier octet of a value.
 *
 * @param node The value.
 * @param tag The expected identifier octet, e.g. `0x30` (SEQUENCE), `0x04` (OCTET STRING).
 * @param what What the value should be, for the message. @default "tag 0x.."
 * @returns `node`, for chaining.
 * @throws {DerError} When the tag differs.
 *
 * @example
 * ```ts
 * import { children, expectTag, readDer } from "./der.ts";
 * const seq = expectTag(readDer(new Uint8Array([0x30, 0x00])), 0x30, "SEQUENCE");
 * if (children(seq).length !== 0) throw new Error();
 * ```
 */
export function expectTag(node: Tlv, tag: number, what?: string): Tlv {
  if (node.tag !== tag) {
    throw new DerError(`expected ${what ?? `tag 0x${tag.toString(16)}`}`);
  }
  return node;
}

/**
 * The single value inside an explicit context-specific tag `[n]`.
 *
 * @param node The tagged value (identifier `0xa0 | n`).
 * @param n The tag number (0 to 30).
 * @returns The value inside.
 * @throws {DerError} When the tag differs or `[n]` does not hold exactly one value.
 *
 * @example
 * ```ts
 * import { explicit, readDer, readSmallInt } from "./der.ts";
 * // [0] { INTEGER 2 }: the version field of an X.509 v3 TBSCertificate
 * const tagged = readDer(new Uint8Array([0xa0, 0x03, 0x02, 0x01, 0x02]));
 * if (readSmallInt(explicit(tagged, 0)) !== 2) throw new Error();
 * ```
 */
export function explicit(node: Tlv, n: number): Tlv {
  if (node.tag !== (0xa0 | n)) throw new DerError(`expected [${n}]`);
  const inner = children(node);
  if (inner.length !== 1) throw new DerError(`expected one value in [${n}]`);
  return inner[0];
}

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
 * import { readDer, readOctets } from "./der.ts";
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
 * import { readDer, readOid } from "./der.ts";
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
 * import { readDer, readSmallInt } from "./der.ts";
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
 * import { readDer, readString } from "./der.ts";
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

/** Decodes the TLV at `pos` of `buf`; returns it and the offset after it. */
function decode(buf: Uint8Array, pos: number, depth: number): [Tlv, number] {
  if (depth > MAX_DER_DEPTH) throw new DerError("nested too deeply");
  if (pos + 2 > buf.length) throw new DerError("truncated header");
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) throw new DerError("tag numbers above 30 are not supported");
  let p = pos + 1;
  const first = buf[p++];
  if (first === 0x80) {
    // BER indefinite length: elements up to the end-of-contents octets 00 00.
    if ((tag & 0x20) === 0) throw new DerError("indefinite length on a primitive value");
    const start = p;
    for (;;) {
      if (p + 2 > buf.length) throw new DerError("missing end-of-contents octets");
      if (buf[p] === 0 && buf[p + 1] === 0) break;
      p = decode(buf, p, depth + 1)[1];
    }
    const tlv = { tag, content: buf.subarray(start, p), raw: buf.subarray(pos, p + 2), depth };
    return [tlv, p + 2];
  }
  let length = first;
  if (first > 0x80) {
    const n = first & 0x7f;
    if (n > 4) throw new DerError("length of more than four octets");
    if (p + n > buf.length) throw new DerError("truncated length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p++];
  }
  if (length > buf.length - p) throw new DerError("value runs past the end of the input");
  const end = p + length;
  return [{ tag, content: buf.subarray(p, end), raw: buf.subarray(pos, end), depth }, end];
}

/**
 * Encodes one DER value: the identifier, the minimal length and the contents. The readers wrap
 * keys with it (a PKCS#1 or SEC1 key into PKCS#8); there is no other DER writing.
 *
 * @param tag The identifier octet, e.g. `0x30` (SEQUENCE).
 * @param parts The contents, concatenated.
 * @returns The encoding.
 *
 * @example
 * ```ts
 * import { encodeDer } from "./der.ts";
 * if (encodeDer(0x30, [new Uint8Array([5, 0])]).join() !== "48,2,5,0") throw new Error();
 * ```
 */
export function encodeDer(tag: number, parts: Uint8Array[]): Uint8Array {
  const content = concat(parts);
  const n = content.length;
  const length: number[] = [];
  if (n < 0x80) {
    length.push(n);
  } else {
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) length.unshift(rest & 0xff);
    length.unshift(0x80 | length.length);
  }
  return concat([new Uint8Array([tag, ...length]), content]);
}
