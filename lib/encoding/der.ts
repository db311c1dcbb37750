/**
 * A small, bounds-checked reader of ASN.1 DER (and the BER that PKCS#12 files sometimes use):
 * tag-length-value headers and constructed values. The values inside are decoded by
 * `der_values.ts` (OCTET STRINGs, OIDs, small INTEGERs, strings); `der_encode.ts` writes one value.
 * Shared by the store readers (`stores/`) and the certificate summary (`x509/`).
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
 * - No general encoder: `der_encode.ts` writes one value from its contents, for wrapping keys.
 *
 * @example Walking a structure
 * ```ts
 * import { children, expectTag, readDer } from "./der.ts";
 * import { readOid, readSmallInt } from "./der_values.ts";
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

/** The deepest nesting {@linkcode children} descends to (PKCS#12 needs about 12, X.509 about 8). */
export const MAX_DER_DEPTH = 48;

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
 * import { explicit, readDer } from "./der.ts";
 * import { readSmallInt } from "./der_values.ts";
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
