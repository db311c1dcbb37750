/**
 * Password-based decryption as keystores and encrypted private keys use it, shared by the
 * PKCS#12 reader (`pkcs12.ts`) and the PEM reader (`pem.ts`), so that a key in an
 * `ENCRYPTED PRIVATE KEY` block opens with exactly the algorithms a PKCS#12 store opens with:
 *
 * - PBES2 (RFC 8018): PBKDF2 with HMAC-SHA-1/-224/-256/-384/-512(/224/256) or scrypt (RFC 7914),
 *   then AES-128/192/256-CBC or 3DES-CBC;
 * - the PKCS#12 PBEs (RFC 7292 appendix C): 3DES (three- and two-key), RC2-128, RC2-40, RC4-128
 *   and RC4-40 with the PKCS#12 key derivation;
 * - PBES1 (RFC 8018 §6.1): PBKDF1 with MD5 or SHA-1 and DES-CBC or RC2-CBC.
 *
 * **Bounded work.** Every derivation is checked against a per-derivation cap *before* it starts
 * (iteration counts, scrypt's cost) and charged to a {@linkcode WorkBudget} that belongs to one
 * store or key file: a store may carry many encrypted bags, and the budget bounds their sum.
 *
 * AES and the PKCS#12 MAC's HMAC run natively (WebCrypto, `node:crypto`); the PKCS#12 key
 * derivation on `@noble/hashes`; RC2 and DES, which neither WebCrypto nor Deno's `node:crypto`
 * have, on `node-forge` (loaded only for them); RC4 is the few lines below.
 *
 * @module
 */

import {
  createDecipheriv,
  createHash,
  pbkdf2 as nodePbkdf2,
  scrypt as nodeScrypt,
} from "node:crypto";
import { binaryString, concat, fromBinaryString, utf16be } from "./encoding/bytes.ts";
import {
  children,
  DerError,
  expectTag,
  readOctets,
  readOid,
  readSmallInt,
  type Tlv,
} from "./encoding/der.ts";
import { loadForge, loadNobleHashes, type NobleHashes } from "./deps.ts";
import { StoreError } from "./errors.ts";

/**
 * The most PBKDF2 iterations one derivation may ask for (about 1.5 s natively). Real tools use
 * 2,048 (OpenSSL) to 600,000 (NSS, GnuTLS); more is refused with `STORE_UNSUPPORTED`.
 */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;
/**
 * The most iterations of one PKCS#12 key derivation (MAC and PKCS#12 PBEs) or PBKDF1. Its loop
 * runs one JavaScript hash per iteration (about 0.4 µs), so the cap is lower than PBKDF2's.
 */
export const MAX_PKCS12_KDF_ITERATIONS = 1_000_000;
/** The largest scrypt cost one derivation may ask for: N·r·p (OpenSSL's default is 2^17). */
export const MAX_SCRYPT_COST = 2 ** 22;
/** The most memory one scrypt derivation may take: 128·N·r bytes. */
const MAX_SCRYPT_MEMORY = 512 * 1024 * 1024;

/**
 * The total key-derivation work one store or key file may ask for, in PBKDF2-iteration units
 * (about 0.15 µs each natively; a PKCS#12-KDF or PBKDF1 hash counts 3, an scrypt N·r·p step 4,
 * and every derivation at least 1,000 for its fixed cost). 40 million is about 6 s: what an
 * NSS or GnuTLS store of ten certificates needs (600,000 iterations each) fits, while a store
 * of thousands of encrypted bags stops with `STORE_UNSUPPORTED` before the work that would pass
 * the budget starts.
 */
export const MAX_STORE_WORK = 40_000_000;

/**
 * The key-derivation work of one store or key file: every derivation is charged before it
 * starts, and refused once the total would pass {@linkcode MAX_STORE_WORK}. `stop()` makes
 * every later charge fail, so that a failure ends the remaining decryptions of the store.
 */
export class WorkBudget {
  #spent = 0;
  #stopped: unknown = undefined;
  readonly #limit: number;
  readonly #subject: string;

  /**
   * @param subject How messages name what is read, e.g. `Keystore "device.p12"`.
   * @param limit The budget, in PBKDF2-iteration units. @default MAX_STORE_WORK
   */
  constructor(subject: string, limit: number = MAX_STORE_WORK) {
    this.#subject = subject;
    this.#limit = limit;
  }

  /** How messages name what is read. */
  get subject(): string {
    return this.#subject;
  }

  /** Work spent so far, in PBKDF2-iteration units. */
  get spent(): number {
    return this.#spent;
  }

  /**
   * Charges a derivation before it starts.
   * @throws {StoreError} `STORE_UNSUPPORTED` when the total would pass the limit; the error
   *   given to `stop()` when the store already failed.
   */
  charge(units: number): void {
    if (this.#stopped !== undefined) throw this.#stopped;
    const cost = Math.max(units, 1000);
    if (this.#spent + cost > this.#limit) {
      throw new StoreError(
        `${this.#subject} asks for more key-derivation work than this tool performs for one ` +
          `store (a budget of ${this.#limit} PBKDF2 iterations in all)`,
        { code: "STORE_UNSUPPORTED", hint: HINT_UNSUPPORTED },
      );
    }
    this.#spent += cost;
  }

  /** Ends the budget: every later {@linkcode WorkBudget.charge} throws `reason`. */
  stop(reason: unknown): void {
    this.#stopped ??= reason;
  }
}

const HINT_UNSUPPORTED = "Re-export it with OpenSSL 3 defaults, e.g. " +
  "`openssl pkcs12 -in old.p12 -nodes -legacy | openssl pkcs12 -export -out new.p12` or " +
  "`openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.key -out new.key`.";

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

/** A hash function: its names in node:crypto, WebCrypto and `@noble/hashes`, sizes in bytes. */
export interface HashInfo {
  node: string;
  webcrypto: string | undefined;
  noble: NobleName;
  /** Digest length. */
  u: number;
  /** Block length. */
  v: number;
}
type NobleName = "sha1" | "sha224" | "sha256" | "sha384" | "sha512" | "sha512_224" | "sha512_256";
const SHA1: HashInfo = { node: "sha1", webcrypto: "SHA-1", noble: "sha1", u: 20, v: 64 };
const SHA224: HashInfo = { node: "sha224", webcrypto: undefined, noble: "sha224", u: 28, v: 64 };
const SHA256: HashInfo = { node: "sha256", webcrypto: "SHA-256", noble: "sha256", u: 32, v: 64 };
const SHA384: HashInfo = { node: "sha384", webcrypto: "SHA-384", noble: "sha384", u: 48, v: 128 };
const SHA512: HashInfo = { node: "sha512", webcrypto: "SHA-512", noble: "sha512", u: 64, v: 128 };
const SHA512_224: HashInfo = {
  node: "sha512-224",
  webcrypto: undefined,
  noble: "sha512_224",
  u: 28,
  v: 128,
};
const SHA512_256: HashInfo = {
  node: "sha512-256",
  webcrypto: undefined,
  noble: "sha512_256",
  u: 32,
  v: 128,
};

/** Digest algorithms (by OID) of the PKCS#12 MAC. */
export const DIGESTS: Record<string, HashInfo> = {
  "1.3.14.3.2.26": SHA1,
  "2.16.840.1.101.3.4.2.4": SHA224,
  "2.16.840.1.101.3.4.2.1": SHA256,
  "2.16.840.1.101.3.4.2.2": SHA384,
  "2.16.840.1.101.3.4.2.3": SHA512,
  "2.16.840.1.101.3.4.2.5": SHA512_224,
  "2.16.840.1.101.3.4.2.6": SHA512_256,
};

/** PBKDF2 pseudo-random functions. */
const PRFS: Record<string, HashInfo> = {
  "1.2.840.113549.2.7": SHA1,
  "1.2.840.113549.2.8": SHA224,
  "1.2.840.113549.2.9": SHA256,
  "1.2.840.113549.2.10": SHA384,
  "1.2.840.113549.2.11": SHA512,
  "1.2.840.113549.2.12": SHA512_224,
  "1.2.840.113549.2.13": SHA512_256,
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

/** scrypt (RFC 7914) with its parameters checked against the caps before it runs. */
async function scryptKey(
  paramsNode: Tlv,
  secret: Uint8Array,
  keyLength: number,
  budget: WorkBudget,
): Promise<Uint8Array> {
  const params = children(expectTag(paramsNode, 0x30, "scrypt-params"));
  if (params.length < 4 || params.length > 5) throw new DerError("bad scrypt-params");
  const salt = readOctets(expectTag(params[0], 0x04, "OCTET STRING"));
  const [n, r, p] = params.slice(1, 4).map(readSmallInt);
  if (params[4] !== undefined && readSmallInt(params[4]) !== keyLength) {
    throw new DerError("bad scrypt key length");
  }
  if (n < 2 || (n & (n - 1)) !== 0 || r < 1 || p < 1) throw new DerError("bad scrypt parameters");
  const cost = n * r * p;
  if (cost > MAX_SCRYPT_COST || 128 * n * r > MAX_SCRYPT_MEMORY) {
    throw new StoreError(
      `${budget.subject} asks for scrypt with N=${n}, r=${r}, p=${p}, more than this tool ` +
        `performs (N·r·p up to ${MAX_SCRYPT_COST}, 128·N·r bytes up to ${MAX_SCRYPT_MEMORY})`,
      { code: "STORE_UNSUPPORTED", hint: HINT_UNSUPPORTED },
    );
  }
  budget.charge(4 * cost);
  return await new Promise((resolve, reject) =>
    nodeScrypt(
      secret,
      salt,
      keyLength,
      { N: n, r, p, maxmem: 128 * n * r * 2 + 1024 * 1024 },
      (err, key) => err ? reject(err) : resolve(new Uint8Array(key)),
    )
  );
}

/**
 * The PKCS#12 integrity MAC key (RFC 7292 appendix B with ID 3), charged to `budget`.
 *
 * @param hash The MAC's digest.
 * @param password The store password.
 * @param salt The MacData salt.
 * @param iterations The MacData iteration count.
 * @param budget The store's budget.
 * @returns The HMAC key (`hash.u` bytes).
 * @throws {StoreError} `STORE_UNSUPPORTED` beyond the caps; `DEPENDENCY_LOAD`.
 */
export async function pkcs12MacKey(
  hash: HashInfo,
  password: string,
  salt: Uint8Array,
  iterations: number,
  budget: WorkBudget,
): Promise<Uint8Array> {
  checkIterations(iterations, MAX_PKCS12_KDF_ITERATIONS, budget);
  budget.charge(3 * iterations);
  return await pkcs12Kdf(
    hash,
    bmpPassword(password),
    salt,
    { id: 3, iterations, length: hash.u },
    budget,
  );
}

/** PBKDF2: WebCrypto (native) for the hashes it has, `node:crypto` for the others. */
async function pbkdf2(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  hash: HashInfo,
  length: number,
): Promise<Uint8Array> {
  if (hash.webcrypto) {
    const base = await crypto.subtle.importKey("raw", own(password), "PBKDF2", false, [
      "deriveBits",
    ]);
    const bits = await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: hash.webcrypto, salt: own(salt), iterations },
      base,
      length * 8,
    );
    return new Uint8Array(bits);
  }
  return await new Promise((resolve, reject) =>
    nodePbkdf2(password, salt, iterations, length, hash.node, (err, key) => {
      if (err) reject(err);
      else resolve(new Uint8Array(key));
    })
  );
}

/** PBKDF1 (RFC 8018 §5.1): the hash of password and salt, hashed again `iterations - 1` times. */
function pbkdf1(
  hash: "md5" | "sha1",
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Uint8Array {
  let t = new Uint8Array(createHash(hash).update(password).update(salt).digest());
  for (let i = 1; i < iterations; i++) t = new Uint8Array(createHash(hash).update(t).digest());
  return t;
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

/** A hash of `@noble/hashes`, as far as the key derivation uses it. */
interface Hasher {
  create(): HashState;
}
interface HashState {
  update(data: Uint8Array): HashState;
  digestInto(out: Uint8Array): void;
  digest(): Uint8Array;
  _cloneInto(to?: HashState): HashState;
}

let nobleHashes: Promise<NobleHashes> | undefined;

/** Loads `@noble/hashes` once (and again after a failed load). */
async function hashes(budget: WorkBudget): Promise<NobleHashes> {
  nobleHashes ??= loadNobleHashes();
  try {
    return await nobleHashes;
  } catch (cause) {
    nobleHashes = undefined;
    throw new StoreError(
      `Cannot load @noble/hashes, which is needed for the key derivation of ${budget.subject}`,
      {
        code: "DEPENDENCY_LOAD",
        hint: "Let Deno fetch npm:@noble/hashes once (network access or a filled DENO_DIR cache).",
        cause,
      },
    );
  }
}

/** Options of {@linkcode pkcs12Kdf}. */
interface KdfOptions {
  /** 1 for keys, 2 for IVs, 3 for MAC keys. */
  id: 1 | 2 | 3;
  iterations: number;
  /** Bytes to derive. */
  length: number;
}

/** The PKCS#12 key derivation function (RFC 7292 appendix B.2). */
async function pkcs12Kdf(
  hash: HashInfo,
  password: Uint8Array,
  salt: Uint8Array,
  { id, iterations, length }: KdfOptions,
  budget: WorkBudget,
): Promise<Uint8Array> {
  const hasher: Hasher = (await hashes(budget))[hash.noble];
  const { u, v } = hash;
  const fill = (src: Uint8Array): Uint8Array => {
    const out = new Uint8Array(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length];
    return out;
  };
  const d = new Uint8Array(v).fill(id);
  const I = concat([fill(salt), fill(password)]);
  const result = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += u) {
    const a = iterateHash(hasher, hasher.create().update(d).update(I).digest(), iterations - 1);
    result.set(a.subarray(0, Math.min(u, length - offset)), offset);
    if (offset + u >= length) break;
    // I_j = (I_j + B + 1) mod 2^(8v), B = a repeated to v bytes.
    const b = new Uint8Array(v);
    for (let i = 0; i < v; i++) b[i] = a[i % u];
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let i = v - 1; i >= 0; i--) {
        const sum = I[j + i] + b[i] + carry;
        I[j + i] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return result;
}

/**
 * Hashes the digest `first` again `times` times: H(H(...H(first))). Each round copies a
 * pristine hash state into one reused instance (`_cloneInto`, part of noble's `Hash`
 * interface) and digests into one reused buffer: about 0.4 µs a round for SHA-1/SHA-256,
 * against 2 µs for a fresh instance (`sha256(a)`) or a `node:crypto` call. This loop dominates
 * opening a JDK keystore (10,000 rounds for its MAC).
 */
function iterateHash(hasher: Hasher, first: Uint8Array, times: number): Uint8Array {
  const pristine = hasher.create();
  const digest = first.slice();
  let state: HashState | undefined;
  for (let r = 0; r < times; r++) {
    state = pristine._cloneInto(state);
    state.update(digest).digestInto(digest);
  }
  return digest;
}

/** The password as a BMPString (UTF-16BE) with the two zero bytes PKCS#12 appends. */
function bmpPassword(password: string): Uint8Array {
  return concat([utf16be(password), new Uint8Array(2)]);
}

function checkIterations(iterations: number, max: number, budget: WorkBudget): void {
  if (iterations < 1) throw new DerError("iteration count below 1");
  if (iterations > max) {
    const count = Number.isFinite(iterations) ? String(iterations) : "an enormous number of";
    throw new StoreError(
      `${budget.subject} asks for ${count} key-derivation iterations, ` +
        `more than the ${max} this tool performs`,
      { code: "STORE_UNSUPPORTED", hint: HINT_UNSUPPORTED },
    );
  }
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

/** A copy backed by a plain ArrayBuffer (what WebCrypto's types ask for). */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
