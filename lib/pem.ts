/**
 * PEM text: splitting it into blocks, writing DER back as PEM, and reading a PEM "keystore"
 * (a certificate chain, a private key, or both) into a {@linkcode RawStore}.
 *
 * Private keys in every form OpenSSL writes are accepted and converted to unencrypted PKCS#8:
 * `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY` (PKCS#8 with PBES2/PBES1), `RSA PRIVATE KEY`
 * (PKCS#1), `EC PRIVATE KEY` (SEC1), and the legacy OpenSSL encryption of the last two
 * (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`). All of these go through `node:crypto`
 * `createPrivateKey`, which Deno 2.9.6 backs with OpenSSL: it decrypts PBES2 (AES, PBKDF2 with
 * HMAC-SHA256) and the legacy `DEK-Info` ciphers, so no third-party code is needed here.
 *
 * @module
 */

import { fromBinaryString } from "./bytes.ts";
import { readDer } from "./der.ts";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { StoreError } from "./errors.ts";
import type { RawEntry, RawStore } from "./types.ts";

/** One `-----BEGIN <label>-----` ... `-----END <label>-----` block of a PEM text. */
export interface PemBlock {
  /** The label, e.g. `CERTIFICATE` or `EC PRIVATE KEY`. */
  label: string;
  /** RFC 1421 headers such as `Proc-Type` and `DEK-Info` (empty for most blocks). */
  headers: Record<string, string>;
  /** The decoded base64 body. */
  der: Uint8Array;
  /** The block's text, from `-----BEGIN` to the end line, with a final newline. */
  text: string;
}

const BLOCK_RE =
  /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----[ \t]*(?:\r?\n|$)/g;

/**
 * Splits a PEM text into its blocks, in order. Text around the blocks (OpenSSL's
 * `Bag Attributes`, `subject=` lines, comments) is ignored.
 *
 * @param text The PEM text.
 * @returns The blocks; empty when the text has none.
 * @throws {SyntaxError} When a block has no end line, its end line does not match its label,
 *   or its body is not valid base64.
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
  for (const m of text.matchAll(BLOCK_RE)) {
    const [whole, label, inner, endLabel] = m;
    if (label !== endLabel) {
      throw new SyntaxError(`PEM block "${label}" ends with "-----END ${endLabel}-----"`);
    }
    const headers: Record<string, string> = {};
    const lines = inner.split(/\r?\n/);
    let i = 0;
    if (lines.length > 0 && /^[A-Za-z-]+:/.test(lines[0])) {
      for (; i < lines.length && lines[i].trim() !== ""; i++) {
        const colon = lines[i].indexOf(":");
        if (colon < 0) break;
        headers[lines[i].slice(0, colon).trim()] = lines[i].slice(colon + 1).trim();
      }
    }
    const body = lines.slice(i).join("").replace(/\s+/g, "");
    blocks.push({
      label,
      headers,
      der: decodeBase64(body, label),
      text: whole.endsWith("\n") ? whole.replace(/\r\n/g, "\n") : whole + "\n",
    });
  }
  const begins = text.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? [];
  if (begins.length > blocks.length) {
    throw new SyntaxError(`PEM block "${begins[blocks.length].slice(11, -5)}" has no end line`);
  }
  return blocks;
}

function decodeBase64(body: string, label: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 === 1) {
    throw new SyntaxError(`PEM block "${label}" is not valid base64`);
  }
  return fromBinaryString(atob(body));
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

/** Labels of blocks holding an X.509 certificate. */
const CERT_LABELS = new Set(["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"]);

/**
 * The certificate of a PEM block, when the block holds one: `CERTIFICATE`, `X509 CERTIFICATE`,
 * or OpenSSL's `TRUSTED CERTIFICATE` (the certificate followed by trust settings, which are
 * dropped here). Every reader of certificates from PEM goes through this, so they all accept the
 * same blocks.
 *
 * @param block A block from {@linkcode pemBlocks}.
 * @returns The certificate's DER, or `undefined` for a block of another kind (a key, a CRL).
 *   A body that is not DER is returned unchanged, for the certificate parser to name the problem.
 *
 * @example
 * ```ts
 * import { certificateDer, pemBlocks, toPem } from "./pem.ts";
 * // A TRUSTED CERTIFICATE is an element (here the stand-in 30 00) followed by trust settings.
 * const text = toPem(new Uint8Array([0x30, 0x00, 0x30, 0x00]), "TRUSTED CERTIFICATE") +
 *   toPem(new Uint8Array([1]), "PRIVATE KEY");
 * const [trusted, key] = pemBlocks(text);
 * if (certificateDer(trusted)?.length !== 2) throw new Error("trust settings expected dropped");
 * if (certificateDer(key) !== undefined) throw new Error("a key is no certificate");
 * ```
 */
export function certificateDer(block: PemBlock): Uint8Array | undefined {
  if (!CERT_LABELS.has(block.label)) return undefined;
  return block.label === "TRUSTED CERTIFICATE" ? firstElement(block.der) : block.der;
}
/** Labels of blocks holding a private key. */
const KEY_LABELS = new Set([
  "PRIVATE KEY",
  "ENCRYPTED PRIVATE KEY",
  "RSA PRIVATE KEY",
  "EC PRIVATE KEY",
  "DSA PRIVATE KEY",
]);

/** Options of {@linkcode readPem}. */
export interface ReadPemOptions {
  /** Passphrase of an encrypted private key. @default undefined (the key must be unencrypted) */
  password?: string;
  /** Label of the file in messages (the CLI passes the path). @default "PEM file" */
  name?: string;
  /**
   * Whether to read private keys. Truststore reading passes `false`: key blocks are then
   * ignored (and need no password).
   * @default true
   */
  keys?: boolean;
}

/**
 * Reads a PEM file holding certificates, a private key, or both.
 *
 * The result has one entry (alias `undefined`): the private key as unencrypted PKCS#8 DER (or
 * `undefined` for a certificate-only file) and every certificate in file order.
 *
 * @param text The PEM text.
 * @param options Passphrase and file label.
 * @returns The store with one entry.
 * @throws {StoreError} `STORE_FORMAT` (no PEM block, or bad base64), `STORE_EMPTY` (neither key
 *   nor certificate), `STORE_NO_CERTIFICATE` (no certificate when `keys` is `false`),
 *   `PEM_MULTIPLE_KEYS`, `KEY_PASSWORD_REQUIRED` (encrypted key, no
 *   password), `KEY_PASSWORD` (wrong passphrase), `KEY_INVALID` (undecodable key).
 *
 * @example Reading a certificate-only file
 * ```ts
 * import { readPem } from "./pem.ts";
 * // A minimal (not parsed here) certificate body: readPem only splits and decodes.
 * const text = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
 * const store = readPem(text, { name: "ca.pem" });
 * if (store.entries[0].privateKeyPkcs8 !== undefined) throw new Error("no key expected");
 * if (store.entries[0].certificates.length !== 1) throw new Error("one certificate expected");
 * ```
 */
export function readPem(text: string, options: ReadPemOptions = {}): RawStore {
  const name = options.name ?? "PEM file";
  let blocks: PemBlock[];
  try {
    blocks = pemBlocks(text);
  } catch (cause) {
    throw new StoreError(`Cannot read "${name}": ${(cause as Error).message}`, {
      code: "STORE_FORMAT",
      hint: "The file is damaged; export it again from the tool that made it.",
      cause,
    });
  }
  if (blocks.length === 0) {
    throw new StoreError(`Cannot read "${name}": it contains no PEM block`, {
      code: "STORE_FORMAT",
      hint: 'A PEM file has lines like "-----BEGIN CERTIFICATE-----"; check the file and its type.',
    });
  }
  const certificates = blocks.map(certificateDer).filter((der) => der !== undefined);
  const keys = (options.keys ?? true) ? blocks.filter((b) => KEY_LABELS.has(b.label)) : [];
  if (keys.length > 1) {
    throw new StoreError(`"${name}" holds ${keys.length} private keys; expected one`, {
      code: "PEM_MULTIPLE_KEYS",
      hint: "Keep only the device's private key in the file.",
    });
  }
  if (keys.length === 0 && certificates.length === 0) {
    const labels = [...new Set(blocks.map((b) => b.label))].join(", ");
    if (!(options.keys ?? true)) {
      throw new StoreError(`"${name}" holds no certificate (found: ${labels})`, {
        code: "STORE_NO_CERTIFICATE",
        hint: "Give a PEM file with -----BEGIN CERTIFICATE----- blocks.",
      });
    }
    throw new StoreError(`"${name}" holds no certificate and no private key (found: ${labels})`, {
      code: "STORE_EMPTY",
      hint: "Give a PEM file with the device certificate and/or its private key.",
    });
  }
  const entry: RawEntry = {
    alias: undefined,
    privateKeyPkcs8: keys.length ? decryptKey(keys[0], options.password, name) : undefined,
    certificates,
  };
  return { format: "pem", entries: [entry] };
}

/** Whether a key block is password-protected (PKCS#8 encryption or OpenSSL's legacy header). */
function isEncrypted(block: PemBlock): boolean {
  return block.label === "ENCRYPTED PRIVATE KEY" ||
    (block.headers["Proc-Type"] ?? "").toUpperCase().includes("ENCRYPTED");
}

function decryptKey(block: PemBlock, password: string | undefined, name: string): Uint8Array {
  const encrypted = isEncrypted(block);
  if (encrypted && password === undefined) {
    throw new StoreError(`The private key in "${name}" is encrypted and no password was given`, {
      code: "KEY_PASSWORD_REQUIRED",
      hint: "Give the key's passphrase with --key-password (or --keystore-password).",
    });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: block.text,
      format: "pem",
      ...(encrypted ? { passphrase: password } : {}),
    });
  } catch (cause) {
    if (encrypted) {
      throw new StoreError(
        `Cannot decrypt the private key in "${name}": wrong password (or damaged key)`,
        { code: "KEY_PASSWORD", hint: "Check the key's passphrase (--key-password).", cause },
      );
    }
    throw new StoreError(`Cannot read the private key in "${name}": the key is damaged`, {
      code: "KEY_INVALID",
      hint: "Export the private key again (openssl pkey -in KEY -out key.pem).",
      cause,
    });
  }
  try {
    return new Uint8Array(key.export({ type: "pkcs8", format: "der" }));
  } catch (cause) {
    throw new StoreError(`Cannot convert the private key in "${name}" to PKCS#8`, {
      code: "KEY_INVALID",
      hint: "Convert it with: openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem",
      cause,
    });
  }
}

/**
 * The first DER element of `der` (an OpenSSL `TRUSTED CERTIFICATE` is the certificate followed
 * by trust settings). Returns `der` unchanged when it cannot be measured.
 */
function firstElement(der: Uint8Array): Uint8Array {
  try {
    return readDer(der, { allowTrailing: true }).raw;
  } catch {
    return der; // Not DER: the certificate parser names the problem.
  }
}
