/**
 * Password-based key derivations with bounded work: PBKDF2 (RFC 8018 §5.2), scrypt (RFC 7914),
 * PBKDF1 (RFC 8018 §5.1) and the PKCS#12 key derivation (RFC 7292 appendix B.2), for the
 * decryptions of `pbe.ts` and the PKCS#12 integrity MAC.
 *
 * **Bounded work.** Every derivation is checked against a per-derivation cap *before* it starts
 * (iteration counts, scrypt's cost) and charged to a {@linkcode WorkBudget} that belongs to one
 * store or key file: a store may carry many encrypted bags, and the budget bounds their sum.
 *
 * PBKDF2 runs natively (WebCrypto, `node:crypto` for the hashes WebCrypto lacks), scrypt on
 * `node:crypto`, the PKCS#12 key derivation on `@noble/hashes` (loaded only when needed).
 *
 * @module
 */

import { createHash, pbkdf2 as nodePbkdf2, scrypt as nodeScrypt } from "node:crypto";
import { concat, own, utf16be } from "../encoding/bytes.ts";
import { children, DerError, expectTag, type Tlv } from "../encoding/der.ts";
import { readOctets, readSmallInt } from "../encoding/der_values.ts";
import { loadNobleHashes, type NobleHashes } from "../deps.ts";
import { StoreError } from "../errors.ts";

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

/** The hint of every `STORE_UNSUPPORTED` error about algorithms and work. */
export const HINT_UNSUPPORTED = "Re-export it with OpenSSL 3 defaults, e.g. " +
  "`openssl pkcs12 -in old.p12 -nodes -legacy | openssl pkcs12 -export -out new.p12` or " +
  "`openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.key -out new.key`.";

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
/** SHA-1: the digest of the PKCS#12 PBEs and the default PBKDF2 PRF. */
export const SHA1: HashInfo = { node: "sha1", webcrypto: "SHA-1", noble: "sha1", u: 20, v: 64 };
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

/** PBKDF2 pseudo-random functions (by OID). */
export const PRFS: Record<string, HashInfo> = {
  "1.2.840.113549.2.7": SHA1,
  "1.2.840.113549.2.8": SHA224,
  "1.2.840.113549.2.9": SHA256,
  "1.2.840.113549.2.10": SHA384,
  "1.2.840.113549.2.11": SHA512,
  "1.2.840.113549.2.12": SHA512_224,
  "1.2.840.113549.2.13": SHA512_256,
};

/** scrypt (RFC 7914) with its parameters checked against the caps before it runs. */
export async function scryptKey(
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
export async function pbkdf2(
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
export function pbkdf1(
  hash: "md5" | "sha1",
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Uint8Array {
  let t = new Uint8Array(createHash(hash).update(password).update(salt).digest());
  for (let i = 1; i < iterations; i++) t = new Uint8Array(createHash(hash).update(t).digest());
  return t;
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
export interface KdfOptions {
  /** 1 for keys, 2 for IVs, 3 for MAC keys. */
  id: 1 | 2 | 3;
  iterations: number;
  /** Bytes to derive. */
  length: number;
}

/** The PKCS#12 key derivation function (RFC 7292 appendix B.2). */
export async function pkcs12Kdf(
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
export function bmpPassword(password: string): Uint8Array {
  return concat([utf16be(password), new Uint8Array(2)]);
}

/**
 * Checks an iteration count against its cap before any work starts.
 *
 * @throws {DerError} For a count below 1.
 * @throws {StoreError} `STORE_UNSUPPORTED` above `max`.
 */
export function checkIterations(iterations: number, max: number, budget: WorkBudget): void {
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
