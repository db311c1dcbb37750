/**
 * The PEM "keystore": a certificate chain, a private key, or both, read into a
 * {@linkcode RawStore} (the blocks themselves are split by `encoding/pem.ts`).
 *
 * **Private keys** in every form OpenSSL writes are accepted and converted to unencrypted
 * PKCS#8 here, from the DER, so that every key type is read (also those `node:crypto` cannot
 * load): `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY` (PKCS#8 with any algorithm of
 * `pbe.ts`: PBES2, the PKCS#12 PBEs, PBES1), `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY`
 * (SEC1), `DSA PRIVATE KEY`, and the legacy OpenSSL encryption of the last three
 * (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`). Encrypted keys are decrypted on demand
 * (`unlockKey`), with the same bounded work as a PKCS#12 store.
 *
 * @module
 */

import { createDecipheriv, createHash } from "node:crypto";
import { concat } from "../encoding/bytes.ts";
import { children, DerError, expectTag, readDer } from "../encoding/der.ts";
import { encodeDer } from "../encoding/der_encode.ts";
import { readOctets } from "../encoding/der_values.ts";
import { StoreError } from "../errors.ts";
import { pkcs8Info } from "../x509/key_info.ts";
import { pbeDecrypt } from "./pbe.ts";
import { WorkBudget } from "./kdf.ts";
import { certificateDer, MAX_STORE_CERTIFICATES } from "../x509/certificate.ts";
import { type PemBlock, pemBlocks } from "../encoding/pem.ts";
import type { RawEntry, RawStore } from "../types.ts";

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
 * The result has one entry (alias `undefined`): the private key as unencrypted PKCS#8 DER
 * (`privateKeyPkcs8`), or for an encrypted key `unlockKey`, which decrypts it on demand; and
 * every certificate in file order.
 *
 * @param text The PEM text.
 * @param options File label and whether keys are read.
 * @returns The store with one entry.
 * @throws {StoreError} `STORE_FORMAT` (no PEM block, or a framing problem), `STORE_EMPTY`
 *   (neither key nor certificate), `STORE_NO_CERTIFICATE` (no certificate when `keys` is
 *   `false`), `STORE_TOO_MANY_CERTIFICATES`, `PEM_MULTIPLE_KEYS`, `KEY_INVALID` (an
 *   unencrypted key that is not one). `unlockKey` rejects with `KEY_PASSWORD_REQUIRED` (no
 *   password given), `KEY_PASSWORD` (wrong password), `STORE_UNSUPPORTED` (an algorithm this
 *   tool lacks, named, or work beyond the caps) or `KEY_INVALID`.
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
      hint: 'A PEM file has lines like "-----BEGIN CERTIFICATE-----" at the start of a line; ' +
        "check the file and its type.",
    });
  }
  const certificates = blocks.map(certificateDer).filter((der) => der !== undefined);
  if (certificates.length > MAX_STORE_CERTIFICATES) {
    throw new StoreError(
      `"${name}" holds more than ${MAX_STORE_CERTIFICATES} certificates, the most this tool ` +
        "reads from one store",
      {
        code: "STORE_TOO_MANY_CERTIFICATES",
        hint: "Keep only the certificates that are needed (the device chain, or the server's CA).",
      },
    );
  }
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
  const entry: RawEntry = { alias: undefined, privateKeyPkcs8: undefined, certificates };
  const key = keys[0];
  if (key !== undefined && isEncrypted(key)) {
    entry.unlockKey = (password) => unlockKey(key, password, name);
  } else if (key !== undefined) {
    entry.privateKeyPkcs8 = toPkcs8(key.label, key.der, name);
  }
  return { format: "pem", entries: [entry] };
}

/** Whether a key block is password-protected (PKCS#8 encryption or OpenSSL's legacy header). */
function isEncrypted(block: PemBlock): boolean {
  return block.label === "ENCRYPTED PRIVATE KEY" ||
    (block.headers["Proc-Type"] ?? "").toUpperCase().includes("ENCRYPTED");
}

/** Decrypts an encrypted key block, with the bounded work of `kdf.ts`. */
async function unlockKey(
  block: PemBlock,
  password: string | undefined,
  name: string,
): Promise<Uint8Array> {
  if (password === undefined) {
    throw new StoreError(`The private key in "${name}" is encrypted and no password was given`, {
      code: "KEY_PASSWORD_REQUIRED",
      hint: "Give the key's passphrase (`keyPassword`, or `password` for a PEM keystore).",
    });
  }
  const budget = new WorkBudget(`The private key in "${name}"`);
  let plain: Uint8Array | undefined;
  let label: string;
  try {
    if (block.label === "ENCRYPTED PRIVATE KEY") {
      const epki = children(expectTag(readDer(block.der), 0x30, "EncryptedPrivateKeyInfo"));
      if (epki.length !== 2) throw new DerError("bad EncryptedPrivateKeyInfo");
      const data = readOctets(expectTag(epki[1], 0x04, "OCTET STRING"));
      plain = await pbeDecrypt(epki[0], data, password, budget);
      label = "PRIVATE KEY";
    } else {
      plain = await decryptLegacy(block, password, name);
      label = block.label;
    }
  } catch (cause) {
    if (cause instanceof StoreError) throw cause;
    throw new StoreError(`The encrypted private key in "${name}" is damaged`, {
      code: "KEY_INVALID",
      hint: "Export the private key again (openssl pkcs8 -topk8 -in KEY -out key.pem).",
      cause,
    });
  }
  let key: Uint8Array | undefined;
  try {
    key = plain === undefined ? undefined : toPkcs8(label, plain, name);
  } catch {
    key = undefined;
  }
  if (key === undefined) {
    throw new StoreError(`Cannot decrypt the private key in "${name}": wrong password`, {
      code: "KEY_PASSWORD",
      hint: "Check the key's passphrase (`keyPassword`, or `password` for a PEM keystore).",
    });
  }
  return key;
}

/** Ciphers of OpenSSL's legacy key encryption (`DEK-Info`), with key and IV lengths. */
const DEK_CIPHERS: Record<string, { node: string; keyLength: number; iv: number }> = {
  "AES-128-CBC": { node: "aes-128-cbc", keyLength: 16, iv: 16 },
  "AES-192-CBC": { node: "aes-192-cbc", keyLength: 24, iv: 16 },
  "AES-256-CBC": { node: "aes-256-cbc", keyLength: 32, iv: 16 },
  "DES-EDE3-CBC": { node: "des-ede3-cbc", keyLength: 24, iv: 8 },
};

/**
 * OpenSSL's legacy key encryption: the key is `EVP_BytesToKey` (MD5, one round, the first
 * eight bytes of the IV as salt) of the passphrase, the cipher as `DEK-Info` names it.
 * @returns The plaintext, or `undefined` for bad padding (a wrong password).
 */
function decryptLegacy(block: PemBlock, password: string, name: string): Uint8Array | undefined {
  const [cipherName, ivHex] = (block.headers["DEK-Info"] ?? "").split(",").map((s) => s.trim());
  const cipher = DEK_CIPHERS[(cipherName ?? "").toUpperCase()];
  if (cipher === undefined) {
    throw new StoreError(
      `The private key in "${name}" uses an unsupported legacy encryption ` +
        `(DEK-Info "${cipherName ?? ""}")`,
      {
        code: "STORE_UNSUPPORTED",
        hint: "Convert it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out key.pem",
      },
    );
  }
  if (!/^[0-9A-Fa-f]+$/.test(ivHex ?? "") || ivHex.length !== cipher.iv * 2) {
    throw new DerError("bad DEK-Info IV");
  }
  const iv = Uint8Array.fromHex(ivHex);
  const secret = new TextEncoder().encode(password);
  const parts: Uint8Array[] = [];
  let previous = new Uint8Array(0);
  for (let have = 0; have < cipher.keyLength; have += previous.length) {
    previous = new Uint8Array(
      createHash("md5").update(previous).update(secret).update(iv.subarray(0, 8)).digest(),
    );
    parts.push(previous);
  }
  const key = concat(parts).subarray(0, cipher.keyLength);
  if (block.der.length === 0 || block.der.length % cipher.iv !== 0) {
    throw new DerError("bad ciphertext length");
  }
  const decipher = createDecipheriv(cipher.node, key, iv);
  decipher.setAutoPadding(false);
  const padded = concat([decipher.update(block.der), decipher.final()]);
  const count = padded.at(-1) ?? 0;
  if (count < 1 || count > cipher.iv || padded.subarray(-count).some((b) => b !== count)) {
    return undefined;
  }
  return padded.subarray(0, padded.length - count);
}

const OID_RSA = new Uint8Array([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
const OID_EC = new Uint8Array([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
const OID_DSA = new Uint8Array([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]);
const NULL = new Uint8Array([0x05, 0x00]);
const VERSION_0 = new Uint8Array([0x02, 0x01, 0x00]);

/**
 * An unencrypted key as PKCS#8 DER: PKCS#8 as it is, PKCS#1 (RSA), SEC1 (EC) and OpenSSL's
 * DSA form wrapped into a PrivateKeyInfo. Checked to be a PrivateKeyInfo of a known layout.
 * @throws {StoreError} `KEY_INVALID` when it is not a key of the kind the label says.
 */
function toPkcs8(label: string, der: Uint8Array, name: string): Uint8Array {
  try {
    let pkcs8: Uint8Array;
    if (label === "PRIVATE KEY") {
      pkcs8 = readDer(der, { what: "the private key" }).raw.slice();
    } else if (label === "RSA PRIVATE KEY") {
      children(expectTag(readDer(der), 0x30, "RSAPrivateKey"));
      pkcs8 = privateKeyInfo([OID_RSA, NULL], der);
    } else if (label === "EC PRIVATE KEY") {
      const parts = children(expectTag(readDer(der), 0x30, "ECPrivateKey"));
      const params = parts.find((p) => p.tag === 0xa0);
      if (params === undefined) throw new DerError("the EC key names no curve");
      pkcs8 = privateKeyInfo([OID_EC, children(params)[0].raw], der);
    } else if (label === "DSA PRIVATE KEY") {
      const [, p, q, g, , x] = children(expectTag(readDer(der), 0x30, "DSAPrivateKey"));
      if (x === undefined) throw new DerError("bad DSAPrivateKey");
      pkcs8 = privateKeyInfo([OID_DSA, encodeDer(0x30, [p.raw, q.raw, g.raw])], x.raw);
    } else {
      throw new DerError(`unknown key label ${label}`);
    }
    pkcs8Info(pkcs8);
    return pkcs8;
  } catch (cause) {
    throw new StoreError(`Cannot read the private key in "${name}": the key is damaged`, {
      code: "KEY_INVALID",
      hint: "Export the private key again (openssl pkey -in KEY -out key.pem).",
      cause,
    });
  }
}

function privateKeyInfo(algorithm: Uint8Array[], key: Uint8Array): Uint8Array {
  return encodeDer(0x30, [VERSION_0, encodeDer(0x30, algorithm), encodeDer(0x04, [key])]);
}
