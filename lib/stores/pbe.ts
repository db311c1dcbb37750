/**
 * Password-based decryption as keystores and encrypted private keys use it, shared by the
 * PKCS#12 reader (`pkcs12/`) and the PEM reader (`pem.ts`), so that a key in an
 * `ENCRYPTED PRIVATE KEY` block opens with exactly the algorithms a PKCS#12 store opens with:
 *
 * - PBES2 (RFC 8018): PBKDF2 with HMAC-SHA-1/-224/-256/-384/-512(/224/256) or scrypt (RFC 7914),
 *   then AES-128/192/256-CBC or 3DES-CBC;
 * - the PKCS#12 PBEs (RFC 7292 appendix C): 3DES (three- and two-key), RC2-128, RC2-40, RC4-128
 *   and RC4-40 with the PKCS#12 key derivation;
 * - PBES1 (RFC 8018 §6.1): PBKDF1 with MD5 or SHA-1 and DES-CBC or RC2-CBC.
 *
 * The keys come from `kdf.ts`, with its bounded work. AES runs natively (WebCrypto), 3DES on
 * `node:crypto`; RC2 and DES, which neither WebCrypto nor Deno's `node:crypto` have, on
 * `node-forge` (loaded only for them); RC4 is the few lines below.
 *
 * @module
 */

import { createDecipheriv } from "node:crypto";
import { binaryString, concat, fromBinaryString, own } from "../encoding/bytes.ts";
import { children, DerError, expectTag, type Tlv } from "../encoding/der.ts";
import { readOctets, readOid, readSmallInt } from "../encoding/der_values.ts";
import { loadForge } from "../deps.ts";
import { StoreError } from "../errors.ts";
import {
  bmpPassword,
  checkIterations,
  HINT_UNSUPPORTED,
  MAX_PBKDF2_ITERATIONS,
  MAX_PKCS12_KDF_ITERATIONS,
  pbkdf1,
  pbkdf2,
  pkcs12Kdf,
  PRFS,
  scryptKey,
  SHA1,
  type WorkBudget,
} from "./kdf.ts";

const OID = {
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  scrypt: "1.3.6.1.4.1.11591.4.11",
  desEde3Cbc: "1.2.840.113549.3.7",
  desCbc: "1.3.14.3.2.7",
} as const;

/** Names of algorithms, for messages about unsupported ones. */
export const ALGORITHM_NAMES: Record<string, string> = {
  "1.2.840.113549.1.12.1.1": "pbeWithSHAAnd128BitRC4",
  "1.2.840.113549.1.12.1.2": "pbeWithSHAAnd40BitRC4",
  "1.2.840.113549.1.12.1.3": "pbeWithSHAAnd3-KeyTripleDES-CBC",
  "1.2.840.113549.1.12.1.4": "pbeWithSHAAnd2-KeyTripleDES-CBC",
  "1.2.840.113549.1.12.1.5": "pbeWithSHAAnd128BitRC2-CBC",
  "1.2.840.113549.1.12.1.6": "pbeWithSHAAnd40BitRC2-CBC",
  "1.2.840.113549.1.5.1": "pbeWithMD2AndDES-CBC",
  "1.2.840.113549.1.5.4": "pbeWithMD2AndRC2-CBC",
  "1.2.840.113549.1.5.3": "pbeWithMD5AndDES-CBC",
  "1.2.840.113549.1.5.6": "pbeWithMD5AndRC2-CBC",
  "1.2.840.113549.1.5.10": "pbeWithSHA1AndDES-CBC",
  "1.2.840.113549.1.5.11": "pbeWithSHA1AndRC2-CBC",
  "1.2.840.113549.1.5.14": "PBMAC1",
  [OID.scrypt]: "scrypt",
  [OID.pbes2]: "PBES2",
  "1.2.840.113549.3.2": "RC2-CBC",
  "1.2.840.113549.3.9": "RC5-CBC-Pad",
  "1.2.156.10197.1.104.2": "SM4-CBC",
  "1.2.410.200004.1.4": "SEED-CBC",
  "1.2.392.200011.61.1.1.1.2": "Camellia-128-CBC",
  "1.2.392.200011.61.1.1.1.4": "Camellia-256-CBC",
  "2.16.840.1.101.3.4.1.6": "AES-128-GCM",
  "2.16.840.1.101.3.4.1.46": "AES-256-GCM",
};

/** PKCS#12 PBE algorithms (RFC 7292 appendix C). */
const PKCS12_PBE: Record<string, { cipher: "3des" | "rc2" | "rc4"; keyLength: number }> = {
  "1.2.840.113549.1.12.1.1": { cipher: "rc4", keyLength: 16 },
  "1.2.840.113549.1.12.1.2": { cipher: "rc4", keyLength: 5 },
  "1.2.840.113549.1.12.1.3": { cipher: "3des", keyLength: 24 },
  "1.2.840.113549.1.12.1.4": { cipher: "3des", keyLength: 16 },
  "1.2.840.113549.1.12.1.5": { cipher: "rc2", keyLength: 16 },
  "1.2.840.113549.1.12.1.6": { cipher: "rc2", keyLength: 5 },
};

/** PBES1 algorithms (RFC 8018 §6.1): PBKDF1 and a 64-bit block cipher. */
const PBES1: Record<string, { hash: "md5" | "sha1"; cipher: "des" | "rc2" }> = {
  "1.2.840.113549.1.5.3": { hash: "md5", cipher: "des" },
  "1.2.840.113549.1.5.6": { hash: "md5", cipher: "rc2" },
  "1.2.840.113549.1.5.10": { hash: "sha1", cipher: "des" },
  "1.2.840.113549.1.5.11": { hash: "sha1", cipher: "rc2" },
};

/** PBES2 encryption schemes. */
const PBES2_CIPHERS: Record<string, { cipher: "aes" | "3des" | "des"; keyLength: number }> = {
  "2.16.840.1.101.3.4.1.2": { cipher: "aes", keyLength: 16 },
  "2.16.840.1.101.3.4.1.22": { cipher: "aes", keyLength: 24 },
  "2.16.840.1.101.3.4.1.42": { cipher: "aes", keyLength: 32 },
  [OID.desEde3Cbc]: { cipher: "3des", keyLength: 24 },
  [OID.desCbc]: { cipher: "des", keyLength: 8 },
};

/**
 * Decrypts `data` with a password-based encryption algorithm.
 *
 * @param algorithm The AlgorithmIdentifier (PBES2, a PKCS#12 PBE or PBES1).
 * @param data The ciphertext.
 * @param password The password.
 * @param budget The work budget of the store or key file being read.
 * @returns The plaintext, or `undefined` when the padding is wrong (a wrong password, or a
 *   damaged ciphertext).
 * @throws {StoreError} `STORE_UNSUPPORTED` for an algorithm this module lacks or work beyond a
 *   cap; `DEPENDENCY_LOAD` when `@noble/hashes` or `node-forge` cannot be loaded.
 * @throws {DerError} When the parameters are malformed.
 */
export async function pbeDecrypt(
  algorithm: Tlv,
  data: Uint8Array,
  password: string,
  budget: WorkBudget,
): Promise<Uint8Array | undefined> {
  const parts = children(expectTag(algorithm, 0x30, "AlgorithmIdentifier"));
  if (parts.length !== 2) throw new DerError("encryption algorithm without parameters");
  const oid = readOid(parts[0]);
  if (oid === OID.pbes2) return await decryptPbes2(parts[1], data, password, budget);
  const pkcs12 = PKCS12_PBE[oid];
  const pbes1 = PBES1[oid];
  if (!pkcs12 && !pbes1) throw unsupported(budget, "encryption algorithm", oid);

  const params = children(expectTag(parts[1], 0x30, "PBEParameter"));
  if (params.length !== 2) throw new DerError("bad PBEParameter");
  const salt = readOctets(expectTag(params[0], 0x04, "OCTET STRING"));
  const iterations = readSmallInt(params[1]);
  checkIterations(iterations, MAX_PKCS12_KDF_ITERATIONS, budget);
  if (pbes1) {
    if (salt.length !== 8) throw new DerError("PBES1 salt is not 8 bytes");
    budget.charge(3 * iterations);
    if (data.length === 0 || data.length % 8 !== 0) throw new DerError("bad ciphertext length");
    const dk = pbkdf1(pbes1.hash, new TextEncoder().encode(password), salt, iterations);
    const key = dk.subarray(0, 8);
    const iv = dk.subarray(8, 16);
    return await forgeCbc(pbes1.cipher, key, iv, data, budget);
  }
  const pbe = pkcs12!;
  const bmp = bmpPassword(password);
  const ivRounds = pbe.cipher === "rc4" ? 0 : 1;
  budget.charge(3 * iterations * (Math.ceil(pbe.keyLength / SHA1.u) + ivRounds));
  const key = await pkcs12Kdf(
    SHA1,
    bmp,
    salt,
    { id: 1, iterations, length: pbe.keyLength },
    budget,
  );
  if (pbe.cipher === "rc4") return rc4(key, data);
  if (data.length === 0 || data.length % 8 !== 0) throw new DerError("bad ciphertext length");
  const iv = await pkcs12Kdf(SHA1, bmp, salt, { id: 2, iterations, length: 8 }, budget);
  if (pbe.cipher === "3des") {
    const key3 = key.length === 16 ? concat([key, key.subarray(0, 8)]) : key;
    return desEde3Cbc(key3, iv, data);
  }
  return await forgeCbc("rc2", key, iv, data, budget);
}

/** PBES2 (RFC 8018 §6.2): PBKDF2 or scrypt, then AES-CBC, 3DES-CBC or DES-CBC. */
async function decryptPbes2(
  paramsNode: Tlv,
  data: Uint8Array,
  password: string,
  budget: WorkBudget,
): Promise<Uint8Array | undefined> {
  const params = children(expectTag(paramsNode, 0x30, "PBES2-params"));
  if (params.length !== 2) throw new DerError("bad PBES2-params");
  const kdf = children(expectTag(params[0], 0x30, "AlgorithmIdentifier"));
  const scheme = children(expectTag(params[1], 0x30, "AlgorithmIdentifier"));
  if (kdf.length !== 2 || scheme.length < 1) throw new DerError("bad PBES2 algorithms");
  const kdfOid = readOid(kdf[0]);
  if (kdfOid !== OID.pbkdf2 && kdfOid !== OID.scrypt) {
    throw unsupported(budget, "key derivation function", kdfOid);
  }
  const schemeOid = readOid(scheme[0]);
  const cipher = PBES2_CIPHERS[schemeOid];
  if (!cipher) throw unsupported(budget, "encryption algorithm", schemeOid);
  if (scheme.length !== 2) throw new DerError("encryption scheme without an IV");
  const iv = readOctets(expectTag(scheme[1], 0x04, "OCTET STRING"));
  if (iv.length !== (cipher.cipher === "aes" ? 16 : 8)) throw new DerError("bad IV length");

  // OpenSSL and the JDK both feed PBKDF2 and scrypt the UTF-8 bytes of the password.
  const secret = new TextEncoder().encode(password);
  let key: Uint8Array;
  if (kdfOid === OID.scrypt) {
    key = await scryptKey(kdf[1], secret, cipher.keyLength, budget);
  } else {
    const kdfParams = children(expectTag(kdf[1], 0x30, "PBKDF2-params"));
    if (kdfParams.length < 2 || kdfParams.length > 4) throw new DerError("bad PBKDF2-params");
    if (kdfParams[0].tag !== 0x04) throw unsupported(budget, "PBKDF2 salt source", "otherSource");
    const salt = readOctets(kdfParams[0]);
    const iterations = readSmallInt(kdfParams[1]);
    checkIterations(iterations, MAX_PBKDF2_ITERATIONS, budget);
    let prf = SHA1;
    for (const optional of kdfParams.slice(2)) {
      if (optional.tag === 0x02) {
        if (readSmallInt(optional) !== cipher.keyLength) {
          throw new DerError("bad PBKDF2 key length");
        }
      } else {
        const prfOid = readOid(children(expectTag(optional, 0x30, "AlgorithmIdentifier"))[0]);
        const found = PRFS[prfOid];
        if (!found) throw unsupported(budget, "PBKDF2 pseudo-random function", prfOid);
        prf = found;
      }
    }
    budget.charge(iterations * Math.ceil(cipher.keyLength / prf.u));
    key = await pbkdf2(secret, salt, iterations, prf, cipher.keyLength);
  }
  if (cipher.cipher !== "aes") {
    if (data.length === 0 || data.length % 8 !== 0) throw new DerError("bad ciphertext length");
    return cipher.cipher === "3des"
      ? desEde3Cbc(key, iv, data)
      : await forgeCbc("des", key, iv, data, budget);
  }
  if (data.length === 0 || data.length % 16 !== 0) throw new DerError("bad ciphertext length");
  const aesKey = await crypto.subtle.importKey("raw", own(key), "AES-CBC", false, ["decrypt"]);
  try {
    const plain = await crypto.subtle.decrypt({ name: "AES-CBC", iv: own(iv) }, aesKey, own(data));
    return new Uint8Array(plain);
  } catch {
    return undefined; // bad padding
  }
}

/** 3DES-CBC with strict PKCS#7 unpadding. */
function desEde3Cbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array | undefined {
  const decipher = createDecipheriv("des-ede3-cbc", key, iv);
  decipher.setAutoPadding(false);
  const padded = concat([decipher.update(data), decipher.final()]);
  return unpad(padded, 8);
}

/** RC2-CBC or DES-CBC via node-forge (WebCrypto and Deno's node:crypto lack both). */
async function forgeCbc(
  cipherName: "rc2" | "des",
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
  budget: WorkBudget,
): Promise<Uint8Array | undefined> {
  let forge;
  try {
    forge = await loadForge();
  } catch (cause) {
    throw new StoreError(
      `Cannot load node-forge, which is needed for the legacy ${cipherName.toUpperCase()} ` +
        `encryption of ${budget.subject}`,
      {
        code: "DEPENDENCY_LOAD",
        hint: "Let Deno fetch npm:node-forge once (network access or a filled DENO_DIR cache), " +
          "or export it again with AES (OpenSSL 3 defaults).",
        cause,
      },
    );
  }
  const { util } = forge;
  // node-forge has DES (legacy API `forge.des`), but its type declarations lack it.
  const des = (forge as unknown as { des: typeof forge.rc2 }).des;
  const cipher = cipherName === "rc2"
    ? forge.rc2.createDecryptionCipher(util.createBuffer(binaryString(key)), key.length * 8)
    : des.createDecryptionCipher(util.createBuffer(binaryString(key)));
  cipher.start(util.createBuffer(binaryString(iv)));
  cipher.update(util.createBuffer(binaryString(data)));
  if (!cipher.finish(() => true)) return undefined; // keep padding: unpad() checks it
  return unpad(fromBinaryString(cipher.output.getBytes()), 8);
}

/** RC4 (the stream cipher of two PKCS#12 PBEs): no padding, so no check here. */
function rc4(key: Uint8Array, data: Uint8Array): Uint8Array {
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i] + key[i % key.length]) & 0xff;
    [s[i], s[j]] = [s[j], s[i]];
  }
  const out = new Uint8Array(data.length);
  for (let n = 0, i = 0, j = 0; n < data.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + s[i]) & 0xff;
    [s[i], s[j]] = [s[j], s[i]];
    out[n] = data[n] ^ s[(s[i] + s[j]) & 0xff];
  }
  return out;
}

/** Removes PKCS#7 padding, or returns `undefined` when it is not valid. */
function unpad(padded: Uint8Array, blockSize: number): Uint8Array | undefined {
  const count = padded.at(-1) ?? 0;
  if (count < 1 || count > blockSize || count > padded.length) return undefined;
  for (let i = padded.length - count; i < padded.length; i++) {
    if (padded[i] !== count) return undefined;
  }
  return padded.subarray(0, padded.length - count);
}

/**
 * The error for an algorithm this module does not implement, naming it.
 *
 * @param budget Names what is read.
 * @param what The kind of algorithm, e.g. `encryption algorithm`.
 * @param oid Its OID.
 * @returns A `STORE_UNSUPPORTED` error.
 */
export function unsupported(budget: WorkBudget, what: string, oid: string): StoreError {
  const known = ALGORITHM_NAMES[oid];
  return new StoreError(
    `${budget.subject} uses an unsupported ${what} (${
      known ? `${known}, OID ${oid}` : `OID ${oid}`
    })`,
    { code: "STORE_UNSUPPORTED", hint: HINT_UNSUPPORTED },
  );
}
