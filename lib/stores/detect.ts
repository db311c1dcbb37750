/**
 * What a store is: its format told from its first bytes ({@linkcode detectFormat}), and the
 * note for a store whose file name promises another format than its content has.
 *
 * @module
 */

import { certificateNames } from "../x509/tbs.ts";
import { readDer } from "../encoding/der.ts";
import { type C8yError, StoreError } from "../errors.ts";
import { javaStoreType } from "./jks.ts";
import type { StoreFormat } from "../types.ts";

export const FORMAT_LABEL: Record<StoreFormat | "jceks", string> = {
  jks: "JKS",
  pkcs12: "PKCS#12",
  pem: "PEM",
  der: "DER certificate",
  jceks: "JCEKS",
};

/**
 * Detects a store's format from its content.
 *
 * - JKS: magic `FEEDFEED`; JCEKS: magic `CECECECE` (recognised so that it can be refused clearly);
 * - PKCS#12: a `SEQUENCE` whose first element is `INTEGER 3` (the PFX version), with any length
 *   encoding the reader accepts: short, long, or BER's indefinite length (NSS `pk12util`);
 * - DER: a `SEQUENCE` whose first element is a `SEQUENCE` that begins like a TBSCertificate
 *   (one X.509 certificate, `server.cer`);
 * - PEM: text containing `-----BEGIN `.
 *
 * @param bytes The store's bytes.
 * @returns The format, or `undefined` when none matches.
 *
 * @example
 * ```ts
 * import { detectFormat } from "../../mod.ts";
 * const jks = new Uint8Array([0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
 * const p12 = new Uint8Array([0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03]);
 * const pem = new TextEncoder().encode("-----BEGIN CERTIFICATE-----\n");
 * if (detectFormat(jks) !== "jks" || detectFormat(p12) !== "pkcs12") throw new Error();
 * if (detectFormat(pem) !== "pem" || detectFormat(new Uint8Array([1])) !== undefined) {
 *   throw new Error();
 * }
 * ```
 */
export function detectFormat(bytes: Uint8Array): StoreFormat | "jceks" | undefined {
  const java = javaStoreType(bytes);
  if (java !== undefined) return java;
  if (bytes[0] === 0x30) {
    const first = headerLength(bytes, 0);
    if (first !== undefined) {
      if (bytes[first] === 0x02 && bytes[first + 1] === 0x01 && bytes[first + 2] === 0x03) {
        return "pkcs12";
      }
      if (bytes[first] === 0x30 && isCertificate(bytes)) return "der";
    }
  }
  if (indexOfAscii(bytes, "-----BEGIN ") >= 0) return "pem";
  return undefined;
}

/**
 * The length of the identifier and length octets of the value at `offset`, for every length
 * form the DER/BER reader accepts (short, long up to four octets, indefinite), or `undefined`.
 */
function headerLength(bytes: Uint8Array, offset: number): number | undefined {
  const first = bytes[offset + 1];
  if (first === undefined) return undefined;
  if (first <= 0x80) return 2; // short form, or 0x80: BER indefinite length
  const n = first & 0x7f;
  return n <= 4 ? 2 + n : undefined;
}

/** Whether the bytes start with one X.509 certificate (trailing bytes allowed, as openssl does). */
function isCertificate(bytes: Uint8Array): boolean {
  try {
    certificateNames(readDer(bytes, { allowTrailing: true }).raw);
    return true;
  } catch {
    return false;
  }
}

function indexOfAscii(bytes: Uint8Array, needle: string): number {
  const first = needle.charCodeAt(0);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    if (bytes[i] !== first) continue;
    for (let j = 1; j < needle.length; j++) {
      if (bytes[i + j] !== needle.charCodeAt(j)) continue outer;
    }
    return i;
  }
  return -1;
}

/** File name endings and the format they promise. */
const NAMED_FORMATS: [RegExp, StoreFormat][] = [
  [/\.(jks|keystore|truststore)$/i, "jks"],
  [/\.(p12|pfx)$/i, "pkcs12"],
  [/\.(pem|crt|key)$/i, "pem"],
  [/\.der$/i, "der"],
];

/**
 * The sentence that says what a store really is when its name promises another format, e.g.
 * `"truststore.jks" is a PKCS#12 store (keytool's default since JDK 9)`. Store errors carry it,
 * and `inspect` prints it.
 *
 * @param name The store's name (its path), whose ending promises a format.
 * @param format The format its content has.
 * @returns The sentence; `undefined` when name and content agree (or the name promises nothing).
 *
 * @example
 * ```ts
 * import { contentNote } from "./detect.ts";
 * if (!contentNote("truststore.jks", "pkcs12")?.includes("PKCS#12")) throw new Error();
 * if (contentNote("device.p12", "pkcs12") !== undefined) throw new Error();
 * ```
 */
export function contentNote(name: string, format: StoreFormat): string | undefined {
  const named = NAMED_FORMATS.find(([pattern]) => pattern.test(name))?.[1];
  if (named === undefined || named === format) return undefined;
  if (named === "jks" && format === "pkcs12") {
    return `"${name}" is a PKCS#12 store (keytool's default since JDK 9), not JKS; its ` +
      "certificates are encrypted with the store password";
  }
  return `"${name}" is a ${FORMAT_LABEL[format]} store, not ${
    FORMAT_LABEL[named]
  } as its name says`;
}

/** The error with the content note appended to its message, when name and content disagree. */
export function withContentNote(error: C8yError, name: string, format: StoreFormat): C8yError {
  const note = contentNote(name, format);
  if (note === undefined || !(error instanceof StoreError)) return error;
  return new StoreError(`${error.message}. ${note}`, {
    code: error.code,
    hint: error.hint,
    cause: error.cause,
    stage: error.stage,
  });
}
