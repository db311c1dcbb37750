/**
 * PEM text <-> DER: splitting a PEM text into its blocks, and writing DER back as a block.
 *
 * **Framing** follows RFC 7468's lax rules as OpenSSL and Java apply them: whitespace at the
 * end of any line (copy and paste), CRLF or CR line ends, text before, between and after
 * blocks, a missing final newline, and base64 of any line width (64, Java's MIME 76, or one
 * line) are accepted; an encapsulation boundary starts its line (an indented `-----BEGIN` is
 * text, as for `openssl x509` and `keytool -printcert`). The scanner reads each line once, so
 * any input is split in linear time. Every framing problem names the block and its line.
 *
 * @module
 */

/** One `-----BEGIN <label>-----` ... `-----END <label>-----` block of a PEM text. */
export interface PemBlock {
  /** The label, e.g. `CERTIFICATE` or `EC PRIVATE KEY`. */
  label: string;
  /** RFC 1421 headers such as `Proc-Type` and `DEK-Info` (empty for most blocks). */
  headers: Record<string, string>;
  /** The decoded base64 body. */
  der: Uint8Array;
  /**
   * The block in canonical form: its boundaries, headers, and the body in 64-character lines,
   * with `\n` line ends and a final newline.
   */
  text: string;
  /** The line (1-based) of its `-----BEGIN` boundary in the input. */
  line: number;
}

/** A boundary line, once whitespace at its end is dropped. */
const BOUNDARY = /^-----(BEGIN|END) (.*)-----$/;

/**
 * Splits a PEM text into its blocks, in order. Text around the blocks (OpenSSL's
 * `Bag Attributes`, `subject=` lines, comments) is ignored.
 *
 * @param text The PEM text.
 * @returns The blocks; empty when the text has none.
 * @throws {SyntaxError} When a block has no end line (a new `-----BEGIN` or the end of the
 *   text comes first), its end line does not match its label, or its body is not base64; the
 *   message names the block and its line.
 *
 * @example Splitting a chain file
 * ```ts
 * import { pemBlocks, toPem } from "./pem.ts";
 * const text = "subject=CN=a\n" + toPem(new Uint8Array([1, 2]), "CERTIFICATE") +
 *   toPem(new Uint8Array([3]), "CERTIFICATE");
 * const blocks = pemBlocks(text);
 * if (blocks.length !== 2 || blocks[1].der[0] !== 3) throw new Error("unexpected");
 * ```
 */
export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  let open: { label: string; line: number; body: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/[ \t\v\f]+$/, "");
    const boundary = line.startsWith("-----") ? BOUNDARY.exec(line) : null;
    if (open === undefined) {
      if (boundary?.[1] === "BEGIN") open = { label: boundary[2], line: i + 1, body: [] };
      continue;
    }
    if (boundary === null) {
      open.body.push(line);
      continue;
    }
    const [, kind, label] = boundary;
    if (kind === "BEGIN") {
      throw new SyntaxError(
        `PEM block "${open.label}" (line ${open.line}) has no end line: ` +
          `line ${i + 1} begins another block`,
      );
    }
    if (label !== open.label) {
      throw new SyntaxError(
        `PEM block "${open.label}" (line ${open.line}) ends with "-----END ${label}-----" ` +
          `(line ${i + 1})`,
      );
    }
    blocks.push(decodeBlock(open.label, open.line, open.body));
    open = undefined;
  }
  if (open !== undefined) {
    throw new SyntaxError(`PEM block "${open.label}" (line ${open.line}) has no end line`);
  }
  return blocks;
}

/** Decodes one block's body: RFC 1421 headers, then base64 in lines of any width. */
function decodeBlock(label: string, line: number, body: string[]): PemBlock {
  const headers: Record<string, string> = {};
  let i = 0;
  if (body.length > 0 && /^[A-Za-z][A-Za-z0-9-]*:/.test(body[0])) {
    let last: string | undefined;
    for (; i < body.length && body[i].trim() !== ""; i++) {
      if (/^[ \t]/.test(body[i]) && last !== undefined) {
        headers[last] += body[i].trim(); // a folded header line
        continue;
      }
      const colon = body[i].indexOf(":");
      if (colon < 0) break;
      last = body[i].slice(0, colon).trim();
      headers[last] = body[i].slice(colon + 1).trim();
    }
  }
  const base64 = body.slice(i).join("").replace(/[ \t\v\f]+/g, "");
  const bad = base64.search(/[^A-Za-z0-9+/=]|=[^=]|={3}/);
  if (bad >= 0 || base64.length % 4 === 1) {
    throw new SyntaxError(`PEM block "${label}" (line ${line}) is not valid base64`);
  }
  const der = Uint8Array.fromBase64(base64);
  const headerText = Object.entries(headers).map(([k, v]) => `${k}: ${v}\n`).join("");
  const pem = toPem(der, label);
  const text = headerText === "" ? pem : pem.replace("-----\n", `-----\n${headerText}\n`);
  return { label, headers, der, text, line };
}

/**
 * Writes DER bytes as one PEM block with 64-character lines.
 *
 * @param der The bytes to encode.
 * @param label The block label.
 * @default label "CERTIFICATE"
 * @returns The PEM block, ending with a newline.
 *
 * @example
 * ```ts
 * import { toPem } from "./pem.ts";
 * const pem = toPem(new Uint8Array([0x30, 0x00]), "CERTIFICATE");
 * if (pem !== "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n") {
 *   throw new Error(pem);
 * }
 * ```
 */
export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = der.toBase64();
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}${
    lines.length ? "\n" : ""
  }-----END ${label}-----\n`;
}
