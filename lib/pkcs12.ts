/**
 * Reader for PKCS#12 keystores (`.p12`, `.pfx`) as OpenSSL 3, `openssl pkcs12 -legacy` and the
 * JDK's keytool write them.
 *
 * The ASN.1 structure is walked with the project's small bounds-checked DER/BER reader
 * (`der.ts`, which says why it is not a library), so that RSA and EC keys and certificates come
 * out as the exact DER bytes the store holds. The modern algorithms run natively: PBES2 (PBKDF2
 * + AES-CBC) on WebCrypto, the integrity MAC's HMAC and 3DES on `node:crypto`. The PKCS#12 key
 * derivation (thousands of rounds of hashing a digest) runs on `@noble/hashes`, loaded only for
 * stores with a MAC or PKCS#12 PBE encryption; `node-forge` is loaded only for the legacy RC2
 * encryption (`openssl pkcs12 -legacy` certificates).
 *
 * @module
 */

import { createDecipheriv, createHmac, pbkdf2 as nodePbkdf2, timingSafeEqual } from "node:crypto";
import {
  children,
  DerError,
  expectTag,
  explicit,
  readDer,
  readOctets,
  readOid,
  readSmallInt as readInt,
  readString,
  type Tlv,
} from "./der.ts";
import { loadForge, loadNobleHashes, type NobleHashes } from "./deps.ts";
import { binaryString, concat, equalBytes, fromBinaryString, hex, utf16be } from "./bytes.ts";
import { certificateNames } from "./certificate.ts";
import { StoreError } from "./errors.ts";
import { javaStoreType } from "./jks.ts";
import type { RawEntry, RawStore } from "./types.ts";

/** Options of {@linkcode readPkcs12}. */
export interface ReadPkcs12Options {
  /** The store password: checks the integrity MAC and decrypts the certificates. */
  password: string;
  /**
   * The password of the private keys, when it differs from the store password.
   * @default {options.password}
   */
  keyPassword?: string;
  /**
   * How error messages name the store, usually its file name.
   * @default {"keystore"}
   */
  name?: string;
}

/**
 * The most PBKDF2 iterations (PBES2 encryption) this reader performs (about 1.5 s natively).
 * Real tools use 2,048 (OpenSSL) to 10,000 (JDK); more is refused with `STORE_UNSUPPORTED`.
 */
const MAX_PBKDF2_ITERATIONS = 10_000_000;
/**
 * The most iterations of the PKCS#12 key derivation (MAC and legacy encryption). Its loop runs
 * one JavaScript hash per iteration (about 0.4 µs), so the cap is lower than PBKDF2's.
 */
const MAX_PKCS12_KDF_ITERATIONS = 1_000_000;
/** Deepest nesting of SafeContents bags inside each other. */
const MAX_BAG_NESTING = 4;
/**
 * The most certificates `group` puts into one key entry's chain when it assembles chains by
 * issuer name (a bound on that loop, not the platform's chain limit).
 */
const MAX_ASSEMBLED_CHAIN_CERTS = 16;

const OID = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  envelopedData: "1.2.840.113549.1.7.3",
  encryptedData: "1.2.840.113549.1.7.6",
  keyBag: "1.2.840.113549.1.12.10.1.1",
  shroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  safeContentsBag: "1.2.840.113549.1.12.10.1.6",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
  oracleTrustedKeyUsage: "2.16.840.1.113894.746875.1.1",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  pbmac1: "1.2.840.113549.1.5.14",
  desEde3Cbc: "1.2.840.113549.3.7",
} as const;

/** Names of algorithms, for messages about unsupported ones. */
const OID_NAMES: Record<string, string> = {
  "1.2.840.113549.1.12.1.1": "pbeWithSHAAnd128BitRC4",
  "1.2.840.113549.1.12.1.2": "pbeWithSHAAnd40BitRC4",
  "1.2.840.113549.1.5.3": "pbeWithMD5AndDES-CBC",
  "1.2.840.113549.1.5.10": "pbeWithSHA1AndDES-CBC",
  "1.3.6.1.4.1.11591.4.11": "scrypt",
  [OID.pbmac1]: "PBMAC1",
  [OID.signedData]: "signedData (public-key integrity mode)",
  [OID.envelopedData]: "envelopedData (public-key privacy mode)",
};

/** PKCS#12 PBE algorithms (RFC 7292 appendix C) this reader decrypts. */
const PKCS12_PBE: Record<string, { cipher: "3des" | "rc2"; keyLength: number }> = {
  "1.2.840.113549.1.12.1.3": { cipher: "3des", keyLength: 24 },
  "1.2.840.113549.1.12.1.4": { cipher: "3des", keyLength: 16 },
  "1.2.840.113549.1.12.1.5": { cipher: "rc2", keyLength: 16 },
  "1.2.840.113549.1.12.1.6": { cipher: "rc2", keyLength: 5 },
};

/**
 * Hash functions: their names in node:crypto, WebCrypto and `@noble/hashes`, digest length `u`
 * and block length `v` in bytes.
 */
interface HashInfo {
  node: string;
  webcrypto: string | undefined;
  noble: NobleName;
  u: number;
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

/** Digest algorithms of the MAC. */
const DIGESTS: Record<string, HashInfo> = {
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
const PBES2_CIPHERS: Record<string, { cipher: "aes" | "3des"; keyLength: number; iv: number }> = {
  "2.16.840.1.101.3.4.1.2": { cipher: "aes", keyLength: 16, iv: 16 },
  "2.16.840.1.101.3.4.1.22": { cipher: "aes", keyLength: 24, iv: 16 },
  "2.16.840.1.101.3.4.1.42": { cipher: "aes", keyLength: 32, iv: 16 },
  [OID.desEde3Cbc]: { cipher: "3des", keyLength: 24, iv: 8 },
};

const HINT_CORRUPT = "Check that the file is a complete PKCS#12 (.p12/.pfx) keystore, " +
  "for example with `openssl pkcs12 -info -in FILE -noout`.";
const HINT_PASSWORD = "Check the password given with --keystore-password " +
  "(or --truststore-password for a truststore).";
const HINT_KEY_PASSWORD = "Give the key entry's own password with --key-password " +
  "(by default the keystore password is used for the key).";
const HINT_UNSUPPORTED = "Re-export the keystore with OpenSSL 3 defaults, e.g. " +
  "`openssl pkcs12 -in old.p12 -nodes -legacy | openssl pkcs12 -export -out new.p12`.";

/**
 * Reads a PKCS#12 keystore or truststore into one {@linkcode RawEntry} per key or certificate
 * entry.
 *
 * - Key entries come first, in store order. Each holds the unencrypted PKCS#8 DER of its key
 *   and its certificates: first those sharing its `localKeyId` (or, without one, its friendly
 *   name), then the chain certificates the store keeps without attributes of their own. With
 *   exactly one key entry every such certificate belongs to it (that is how OpenSSL and keytool
 *   store a chain); with several, each key takes the ones that continue its chain (issuer to
 *   subject), as the JDK does when it loads the store.
 * - Certificate-only entries follow: Java truststore entries (with Oracle's trusted-key-usage
 *   attribute), and certificates no key entry claimed. Their `privateKeyPkcs8` is `undefined`.
 * - Aliases come from the `friendlyName` bag attributes.
 *
 * Supported: PBES2 (PBKDF2 with HMAC-SHA-1/-224/-256/-384/-512, AES-128/192/256-CBC or
 * 3DES-CBC), the PKCS#12 PBE algorithms with 3DES and RC2 (`-legacy`), unencrypted bags, and
 * SHA-1/SHA-2 integrity MACs (checked when present).
 *
 * @param bytes The file's contents (DER; BER with indefinite lengths is accepted too).
 * @param options Store password, key password and the name to use in messages.
 * @returns The entries of the store, with `format: "pkcs12"`.
 * @throws {StoreError} `KEYSTORE_PASSWORD` when the integrity check (or, without a MAC, the
 * decryption of the certificates) fails; `KEY_PASSWORD` when a private key cannot be decrypted;
 * `STORE_CORRUPT` for anything that is not a well-formed PKCS#12 file; `STORE_UNSUPPORTED` for
 * algorithms this reader lacks or absurd iteration counts; `DEPENDENCY_LOAD` when
 * `@noble/hashes` (needed for a MAC or PKCS#12 PBE encryption) or `node-forge` (needed for RC2
 * only) cannot be loaded.
 * @throws {TypeError} When `bytes` is not a `Uint8Array` or `password` is not a string.
 *
 * @example Reading a keystore and telling a corrupt file apart
 * ```ts
 * import { readPkcs12 } from "./pkcs12.ts";
 * import { StoreError } from "./errors.ts";
 *
 * // Normally: const bytes = await Deno.readFile("device.p12");
 * const bytes = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x03]);
 * try {
 *   const store = await readPkcs12(bytes, { password: "changeit", name: "device.p12" });
 *   for (const { alias, privateKeyPkcs8, certificates } of store.entries) {
 *     // alias: the friendly name; privateKeyPkcs8: DER or undefined; certificates: DER[]
 *     if (certificates.length === 0 && !privateKeyPkcs8) throw new Error(`empty ${alias}`);
 *   }
 * } catch (err) {
 *   if (!(err instanceof StoreError) || err.code !== "STORE_CORRUPT") throw err;
 *   // err.message: '"device.p12" is not a valid PKCS#12 keystore (truncated or corrupt)'
 * }
 * ```
 */
export async function readPkcs12(bytes: Uint8Array, options: ReadPkcs12Options): Promise<RawStore> {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("readPkcs12() expects the keystore's bytes as a Uint8Array");
  }
  if (typeof options?.password !== "string") {
    throw new TypeError("readPkcs12() expects options.password to be a string");
  }
  if (options.keyPassword !== undefined && typeof options.keyPassword !== "string") {
    throw new TypeError("readPkcs12() expects options.keyPassword to be a string when given");
  }
  const ctx: Context = {
    name: options.name ?? "keystore",
    password: options.password,
    keyPassword: options.keyPassword ?? options.password,
    macVerified: false,
  };
  if (bytes.length === 0) throw corrupt(ctx, "the file is empty");
  const other = sniffOtherFormat(bytes);
  if (other) {
    throw new StoreError(
      `"${ctx.name}" is not a valid PKCS#12 keystore (it looks like ${other})`,
      {
        code: "STORE_CORRUPT",
        hint:
          "Give the right --keystore-type (or --truststore-type), or leave it out to detect it.",
      },
    );
  }
  try {
    return await read(bytes, ctx);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw corrupt(ctx, undefined, err);
  }
}

// ------------------------------------------------------------------------------------------
// The reading itself

interface Context {
  name: string;
  password: string;
  keyPassword: string;
  /**
   * Whether the store has a MAC. Results are used only once it verified, so a decryption
   * that then yields garbage means corruption rather than a wrong password.
   */
  macVerified: boolean;
}

interface Attributes {
  friendlyName: string | undefined;
  localKeyId: string | undefined;
  trusted: boolean;
}

interface KeyBag extends Attributes {
  /** PKCS#8 DER, once known. */
  der: Uint8Array | undefined;
  /** For shrouded keys: the EncryptedPrivateKeyInfo's algorithm and ciphertext. */
  encrypted: { algorithm: Tlv; data: Uint8Array } | undefined;
}

interface CertBag extends Attributes {
  der: Uint8Array;
}

interface Bags {
  keys: KeyBag[];
  certs: CertBag[];
}

async function read(bytes: Uint8Array, ctx: Context): Promise<RawStore> {
  const pfx = readDer(bytes, { what: "PFX" });
  const parts = children(expectTag(pfx, 0x30, "PFX"));
  if (parts.length < 2 || parts.length > 3) {
    throw new DerError("PFX has the wrong number of parts");
  }
  if (readInt(parts[0]) !== 3) throw new DerError("PFX version is not 3");
  const [authSafeType, authSafeContent] = readContentInfo(parts[1]);
  if (authSafeType !== OID.data) throw unsupported(ctx, "integrity mode", authSafeType);
  if (authSafeContent === undefined) throw new DerError("the AuthenticatedSafe is missing");
  const authSafeBytes = readOctets(authSafeContent);

  // The decryption starts first: its PBKDF2 runs on WebCrypto's threads while the MAC (its key
  // derivation is plain JavaScript) is checked here. The MAC's verdict still comes first.
  ctx.macVerified = parts.length === 3;
  const reading = readSafes(authSafeBytes, ctx).then(
    (bags) => ({ bags, error: undefined }),
    (error: unknown) => ({ bags: undefined, error }),
  );
  if (parts.length === 3) {
    try {
      await verifyMac(parts[2], authSafeBytes, ctx);
    } catch (err) {
      await reading; // leave no crypto operation running behind the error
      throw err;
    }
  }
  const { bags, error } = await reading;
  if (!bags) throw error;
  return { format: "pkcs12", entries: group(bags) };
}

/** Reads every SafeContents of the AuthenticatedSafe, decrypting them and their keys. */
async function readSafes(authSafeBytes: Uint8Array, ctx: Context): Promise<Bags> {
  const authSafe = expectTag(
    readDer(authSafeBytes, { what: "AuthenticatedSafe" }),
    0x30,
    "SEQUENCE",
  );
  const settled = await Promise.allSettled(children(authSafe).map((ci) => readSafe(ci, ctx)));
  const failures = settled.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
  if (failures.length > 0) {
    // The same error whatever finished first: the first in store order, and a store-level
    // error (wrong store password, corruption) before a key password one.
    throw failures.find((e) => !(e instanceof StoreError && e.code === "KEY_PASSWORD")) ??
      failures[0];
  }
  const bags: Bags = { keys: [], certs: [] };
  for (const result of settled) {
    if (result.status === "fulfilled") {
      bags.keys.push(...result.value.keys);
      bags.certs.push(...result.value.certs);
    }
  }
  return bags;
}

/** Reads one ContentInfo of the AuthenticatedSafe into bags, with its keys decrypted. */
async function readSafe(contentInfo: Tlv, ctx: Context): Promise<Bags> {
  const [type, content] = readContentInfo(contentInfo);
  if (content === undefined) throw new DerError("a ContentInfo has no content");
  const bags: Bags = { keys: [], certs: [] };
  if (type === OID.data) {
    collectBags(readOctets(content), bags, 0);
  } else if (type === OID.encryptedData) {
    collectBags(await decryptSafe(content, ctx), bags, 0);
  } else {
    throw unsupported(ctx, "content type", type);
  }
  const keys = await Promise.allSettled(bags.keys.map((key) => decryptKey(key, ctx)));
  for (const result of keys) if (result.status === "rejected") throw result.reason;
  return bags;
}

/** Reads a ContentInfo: its type and the explicit `[0]` content (if any). */
function readContentInfo(node: Tlv): [string, Tlv | undefined] {
  const parts = children(expectTag(node, 0x30, "ContentInfo"));
  if (parts.length < 1 || parts.length > 2) throw new DerError("bad ContentInfo");
  const type = readOid(parts[0]);
  if (parts.length === 1) return [type, undefined];
  return [type, explicit(parts[1], 0)];
}

/** Checks the MacData against the store password. */
async function verifyMac(node: Tlv, authSafeBytes: Uint8Array, ctx: Context): Promise<void> {
  const parts = children(expectTag(node, 0x30, "MacData"));
  if (parts.length < 2 || parts.length > 3) throw new DerError("bad MacData");
  const digestInfo = children(expectTag(parts[0], 0x30, "DigestInfo"));
  if (digestInfo.length !== 2) throw new DerError("bad DigestInfo");
  const algorithm = children(expectTag(digestInfo[0], 0x30, "AlgorithmIdentifier"));
  if (algorithm.length < 1) throw new DerError("bad AlgorithmIdentifier");
  const digestOid = readOid(algorithm[0]);
  const hash = DIGESTS[digestOid];
  if (!hash) throw unsupported(ctx, "integrity (MAC) algorithm", digestOid);
  const expected = readOctets(expectTag(digestInfo[1], 0x04, "OCTET STRING"));
  const salt = readOctets(expectTag(parts[1], 0x04, "OCTET STRING"));
  const iterations = parts.length === 3 ? readInt(parts[2]) : 1;
  checkIterations(iterations, MAX_PKCS12_KDF_ITERATIONS, ctx);

  const key = await pkcs12Kdf(hash, bmpPassword(ctx.password), salt, {
    id: 3,
    iterations,
    length: hash.u,
    ctx,
  });
  const actual = createHmac(hash.node, key).update(authSafeBytes).digest();
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    throw new StoreError(
      `Cannot open the PKCS#12 store "${ctx.name}": wrong password (the integrity check failed)`,
      { code: "KEYSTORE_PASSWORD", hint: HINT_PASSWORD },
    );
  }
}

/** Decrypts an EncryptedData content into SafeContents bytes. */
async function decryptSafe(node: Tlv, ctx: Context): Promise<Uint8Array> {
  const parts = children(expectTag(node, 0x30, "EncryptedData"));
  if (parts.length < 2) throw new DerError("bad EncryptedData");
  const eci = children(expectTag(parts[1], 0x30, "EncryptedContentInfo"));
  if (eci.length !== 3) throw new DerError("EncryptedContentInfo without content");
  if (readOid(eci[0]) !== OID.data) throw new DerError("encrypted content is not data");
  if ((eci[2].tag & 0xdf) !== 0x80) throw new DerError("encryptedContent is not [0]");
  const plain = await decrypt(eci[1], readOctets(eci[2]), ctx.password, ctx);
  const valid = plain !== undefined && isSingleSequence(plain);
  if (!valid) {
    if (ctx.macVerified && plain !== undefined) throw new DerError("decrypted data is garbage");
    throw new StoreError(
      `Cannot open the PKCS#12 store "${ctx.name}": wrong password (the certificates could not be decrypted)`,
      { code: "KEYSTORE_PASSWORD", hint: HINT_PASSWORD },
    );
  }
  return plain;
}

/** Decrypts a shrouded key bag in place (sets `der`). */
async function decryptKey(key: KeyBag, ctx: Context): Promise<void> {
  if (!key.encrypted) return;
  const plain = await decrypt(key.encrypted.algorithm, key.encrypted.data, ctx.keyPassword, ctx);
  if (plain === undefined || !isPkcs8(plain)) {
    const which = key.friendlyName === undefined ? "" : ` "${key.friendlyName}"`;
    throw new StoreError(
      `Cannot decrypt the private key${which} in "${ctx.name}": wrong key password`,
      { code: "KEY_PASSWORD", hint: HINT_KEY_PASSWORD },
    );
  }
  key.der = plain;
}

/** Parses SafeContents and adds its key and certificate bags to `bags`. */
function collectBags(safeContents: Uint8Array, bags: Bags, nesting: number): void {
  if (nesting > MAX_BAG_NESTING) throw new DerError("SafeContents nested too deeply");
  const seq = expectTag(readDer(safeContents, { what: "SafeContents" }), 0x30, "SafeContents");
  for (const bag of children(seq)) {
    const parts = children(expectTag(bag, 0x30, "SafeBag"));
    if (parts.length < 2 || parts.length > 3) throw new DerError("bad SafeBag");
    const type = readOid(parts[0]);
    const value = explicit(parts[1], 0);
    const attributes = parts.length === 3 ? readAttributes(parts[2]) : noAttributes();
    switch (type) {
      case OID.keyBag:
        if (!isPkcs8(value.raw)) throw new DerError("keyBag is not PKCS#8");
        bags.keys.push({ ...attributes, der: value.raw.slice(), encrypted: undefined });
        break;
      case OID.shroudedKeyBag: {
        const epki = children(expectTag(value, 0x30, "EncryptedPrivateKeyInfo"));
        if (epki.length !== 2) throw new DerError("bad EncryptedPrivateKeyInfo");
        const data = readOctets(expectTag(epki[1], 0x04, "OCTET STRING"));
        bags.keys.push({ ...attributes, der: undefined, encrypted: { algorithm: epki[0], data } });
        break;
      }
      case OID.certBag: {
        const certBag = children(expectTag(value, 0x30, "CertBag"));
        if (certBag.length !== 2) throw new DerError("bad CertBag");
        // SDSI certificates and other kinds are not X.509: skip them.
        if (readOid(certBag[0]) !== OID.x509Certificate) break;
        const der = readOctets(expectTag(explicit(certBag[1], 0), 0x04, "OCTET STRING"));
        if (!isSingleSequence(der)) throw new DerError("certificate is not DER");
        bags.certs.push({ ...attributes, der: der.slice() });
        break;
      }
      case OID.safeContentsBag:
        collectBags(value.raw, bags, nesting + 1);
        break;
      default:
        // CRL bags, secret bags (JDK secret keys): nothing this tool uses.
        break;
    }
  }
}

function noAttributes(): Attributes {
  return { friendlyName: undefined, localKeyId: undefined, trusted: false };
}

/** Reads the bag attributes this reader uses. */
function readAttributes(node: Tlv): Attributes {
  const result = noAttributes();
  for (const attribute of children(expectTag(node, 0x31, "SET"))) {
    const parts = children(expectTag(attribute, 0x30, "Attribute"));
    if (parts.length !== 2) throw new DerError("bad Attribute");
    const type = readOid(parts[0]);
    const values = children(expectTag(parts[1], 0x31, "SET"));
    if (values.length === 0) continue;
    if (type === OID.friendlyName) {
      result.friendlyName = readString(values[0]);
    } else if (type === OID.localKeyId) {
      result.localKeyId = hex(readOctets(expectTag(values[0], 0x04, "OCTET STRING")));
    } else if (type === OID.oracleTrustedKeyUsage) {
      result.trusted = true;
    }
  }
  return result;
}

/** Groups key and certificate bags into entries (see {@linkcode readPkcs12}). */
function group(bags: Bags): RawEntry[] {
  const keys = bags.keys.map((key) => ({ key, certs: [] as CertBag[] }));
  const pending: CertBag[] = [];
  const standalone: CertBag[] = [];
  for (const cert of bags.certs) {
    let owner = cert.localKeyId === undefined
      ? undefined
      : keys.find((k) => k.key.localKeyId === cert.localKeyId);
    if (!owner && cert.localKeyId === undefined && cert.friendlyName !== undefined) {
      owner = keys.find((k) =>
        k.key.localKeyId === undefined && k.key.friendlyName === cert.friendlyName
      );
    }
    if (owner) owner.certs.push(cert);
    else if (cert.trusted) standalone.push(cert);
    else pending.push(cert);
  }

  if (keys.length === 1) {
    keys[0].certs.push(...pending);
  } else if (keys.length > 1 && pending.length > 0) {
    const used = new Set<CertBag>();
    const pendingNames = pending.map((c) => certNames(c.der));
    for (const entry of keys) {
      let current = entry.certs.at(-1);
      while (current && entry.certs.length < MAX_ASSEMBLED_CHAIN_CERTS) {
        const issuer = certNames(current.der)?.issuer;
        if (!issuer) break;
        const inChain = new Set(entry.certs.map((c) => hex(c.der)));
        const index = pending.findIndex((c, i) =>
          !inChain.has(hex(c.der)) && equalBytes(pendingNames[i]?.subject, issuer)
        );
        if (index < 0) break;
        current = pending[index];
        entry.certs.push(current);
        used.add(current);
      }
    }
    // A copy of a certificate some chain already holds (keytool stores one per key entry).
    const usedDer = new Set([...used].map((c) => hex(c.der)));
    for (const cert of pending) if (!usedDer.has(hex(cert.der))) standalone.push(cert);
  } else {
    standalone.push(...pending);
  }
  standalone.sort((a, b) => bags.certs.indexOf(a) - bags.certs.indexOf(b));

  return [
    ...keys.map(({ key, certs }) => ({
      alias: key.friendlyName ?? certs[0]?.friendlyName,
      privateKeyPkcs8: key.der,
      certificates: certs.map((c) => c.der),
    })),
    ...standalone.map((cert) => ({
      alias: cert.friendlyName,
      privateKeyPkcs8: undefined,
      certificates: [cert.der],
    })),
  ];
}

/** The raw issuer and subject Names of a certificate, or `undefined` if it does not parse. */
function certNames(der: Uint8Array): { issuer: Uint8Array; subject: Uint8Array } | undefined {
  try {
    return certificateNames(der);
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------------------
// Decryption

/**
 * Decrypts `data` with the algorithm `algorithm` (an AlgorithmIdentifier).
 * @returns The plaintext, or `undefined` when the padding is wrong (a wrong password).
 */
async function decrypt(
  algorithm: Tlv,
  data: Uint8Array,
  password: string,
  ctx: Context,
): Promise<Uint8Array | undefined> {
  const parts = children(expectTag(algorithm, 0x30, "AlgorithmIdentifier"));
  if (parts.length !== 2) throw new DerError("encryption algorithm without parameters");
  const oid = readOid(parts[0]);
  if (oid === OID.pbes2) return await decryptPbes2(parts[1], data, password, ctx);
  const pbe = PKCS12_PBE[oid];
  if (!pbe) throw unsupported(ctx, "encryption algorithm", oid);

  const params = children(expectTag(parts[1], 0x30, "PBEParameter"));
  if (params.length !== 2) throw new DerError("bad PBEParameter");
  const salt = readOctets(expectTag(params[0], 0x04, "OCTET STRING"));
  const iterations = readInt(params[1]);
  checkIterations(iterations, MAX_PKCS12_KDF_ITERATIONS, ctx);
  if (data.length === 0 || data.length % 8 !== 0) throw new DerError("bad ciphertext length");
  const bmp = bmpPassword(password);
  const key = await pkcs12Kdf(SHA1, bmp, salt, {
    id: 1,
    iterations,
    length: pbe.keyLength,
    ctx,
  });
  const iv = await pkcs12Kdf(SHA1, bmp, salt, { id: 2, iterations, length: 8, ctx });
  if (pbe.cipher === "3des") {
    const key3 = key.length === 16 ? concat([key, key.subarray(0, 8)]) : key;
    return desEde3Cbc(key3, iv, data);
  }
  return await rc2Cbc(key, iv, data, ctx);
}

/** PBES2 (RFC 8018): PBKDF2 and AES-CBC (WebCrypto) or 3DES-CBC. */
async function decryptPbes2(
  paramsNode: Tlv,
  data: Uint8Array,
  password: string,
  ctx: Context,
): Promise<Uint8Array | undefined> {
  const params = children(expectTag(paramsNode, 0x30, "PBES2-params"));
  if (params.length !== 2) throw new DerError("bad PBES2-params");
  const kdf = children(expectTag(params[0], 0x30, "AlgorithmIdentifier"));
  const scheme = children(expectTag(params[1], 0x30, "AlgorithmIdentifier"));
  if (kdf.length !== 2 || scheme.length !== 2) throw new DerError("bad PBES2 algorithms");
  const kdfOid = readOid(kdf[0]);
  if (kdfOid !== OID.pbkdf2) throw unsupported(ctx, "key derivation function", kdfOid);
  const schemeOid = readOid(scheme[0]);
  const cipher = PBES2_CIPHERS[schemeOid];
  if (!cipher) throw unsupported(ctx, "encryption algorithm", schemeOid);
  const iv = readOctets(expectTag(scheme[1], 0x04, "OCTET STRING"));
  if (iv.length !== cipher.iv) throw new DerError("bad IV length");

  const kdfParams = children(expectTag(kdf[1], 0x30, "PBKDF2-params"));
  if (kdfParams.length < 2 || kdfParams.length > 4) throw new DerError("bad PBKDF2-params");
  if (kdfParams[0].tag !== 0x04) throw unsupported(ctx, "PBKDF2 salt source", "otherSource");
  const salt = readOctets(kdfParams[0]);
  const iterations = readInt(kdfParams[1]);
  checkIterations(iterations, MAX_PBKDF2_ITERATIONS, ctx);
  let prf = SHA1;
  for (const optional of kdfParams.slice(2)) {
    if (optional.tag === 0x02) {
      if (readInt(optional) !== cipher.keyLength) throw new DerError("bad PBKDF2 key length");
    } else {
      const prfOid = readOid(children(expectTag(optional, 0x30, "AlgorithmIdentifier"))[0]);
      const found = PRFS[prfOid];
      if (!found) throw unsupported(ctx, "PBKDF2 pseudo-random function", prfOid);
      prf = found;
    }
  }

  // OpenSSL and the JDK both feed PBKDF2 the UTF-8 bytes of the password.
  const key = await pbkdf2(
    new TextEncoder().encode(password),
    salt,
    iterations,
    prf,
    cipher.keyLength,
  );
  if (cipher.cipher === "3des") {
    if (data.length === 0 || data.length % 8 !== 0) throw new DerError("bad ciphertext length");
    return desEde3Cbc(key, iv, data);
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

/** 3DES-CBC with strict PKCS#7 unpadding. */
function desEde3Cbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array | undefined {
  const decipher = createDecipheriv("des-ede3-cbc", key, iv);
  decipher.setAutoPadding(false);
  const padded = concat([decipher.update(data), decipher.final()]);
  return unpad(padded, 8);
}

/** RC2-CBC via node-forge (WebCrypto and Deno's node:crypto lack RC2). */
async function rc2Cbc(
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
  ctx: Context,
): Promise<Uint8Array | undefined> {
  let forge;
  try {
    forge = await loadForge();
  } catch (cause) {
    throw new StoreError(
      `Cannot load node-forge, which is needed for the legacy RC2 encryption of "${ctx.name}"`,
      {
        code: "DEPENDENCY_LOAD",
        hint: "Let Deno fetch npm:node-forge once (network access or a filled DENO_DIR cache), " +
          "or re-export the keystore without -legacy.",
        cause,
      },
    );
  }
  const { util } = forge;
  const cipher = forge.rc2.createDecryptionCipher(
    util.createBuffer(binaryString(key)),
    key.length * 8,
  );
  cipher.start(util.createBuffer(binaryString(iv)));
  cipher.update(util.createBuffer(binaryString(data)));
  if (!cipher.finish(() => true)) return undefined; // keep padding: unpad() checks it
  return unpad(fromBinaryString(cipher.output.getBytes()), 8);
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
async function hashes(ctx: Context): Promise<NobleHashes> {
  nobleHashes ??= loadNobleHashes();
  try {
    return await nobleHashes;
  } catch (cause) {
    nobleHashes = undefined;
    throw new StoreError(
      `Cannot load @noble/hashes, which is needed for the key derivation of "${ctx.name}"`,
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
  ctx: Context;
}

/** The PKCS#12 key derivation function (RFC 7292 appendix B.2). */
async function pkcs12Kdf(
  hash: HashInfo,
  password: Uint8Array,
  salt: Uint8Array,
  { id, iterations, length, ctx }: KdfOptions,
): Promise<Uint8Array> {
  const hasher: Hasher = (await hashes(ctx))[hash.noble];
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

function checkIterations(iterations: number, max: number, ctx: Context): void {
  if (iterations < 1) throw new DerError("iteration count below 1");
  if (iterations > max) {
    const count = Number.isFinite(iterations) ? String(iterations) : "an enormous number of";
    throw new StoreError(
      `Keystore "${ctx.name}" asks for ${count} key-derivation iterations, ` +
        `more than the ${max} this tool performs`,
      { code: "STORE_UNSUPPORTED", hint: HINT_UNSUPPORTED },
    );
  }
}

// ------------------------------------------------------------------------------------------
// Errors

function corrupt(ctx: Context, detail?: string, cause?: unknown): StoreError {
  return new StoreError(
    `"${ctx.name}" is not a valid PKCS#12 keystore (${detail ?? "truncated or corrupt"})`,
    { code: "STORE_CORRUPT", hint: HINT_CORRUPT, cause },
  );
}

function unsupported(ctx: Context, what: string, oid: string): StoreError {
  const known = OID_NAMES[oid];
  return new StoreError(
    `Keystore "${ctx.name}" uses an unsupported ${what} (OID ${oid}${known ? `, ${known}` : ""})`,
    { code: "STORE_UNSUPPORTED", hint: HINT_UNSUPPORTED },
  );
}

/** Recognises the other store formats, for a clearer message. */
function sniffOtherFormat(bytes: Uint8Array): string | undefined {
  const java = javaStoreType(bytes);
  if (java === "jks") return "a JKS keystore";
  if (java === "jceks") return "a JCEKS keystore";
  const head = new TextDecoder().decode(bytes.subarray(0, 64));
  if (/^\s*-----BEGIN /.test(head)) return "a PEM file";
  return undefined;
}

// ------------------------------------------------------------------------------------------
// DER helpers specific to PKCS#12

/** Whether `bytes` is exactly one SEQUENCE. */
function isSingleSequence(bytes: Uint8Array): boolean {
  try {
    return readDer(bytes).tag === 0x30;
  } catch {
    return false;
  }
}

/** Whether `bytes` is a PrivateKeyInfo: SEQUENCE { INTEGER, AlgorithmIdentifier, OCTET STRING }. */
function isPkcs8(bytes: Uint8Array): boolean {
  try {
    const parts = children(expectTag(readDer(bytes, { what: "PrivateKeyInfo" }), 0x30, "SEQUENCE"));
    return parts.length >= 3 && parts[0].tag === 0x02 && parts[1].tag === 0x30 &&
      parts[2].tag === 0x04;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------
// Bytes

/** A copy backed by a plain ArrayBuffer (what WebCrypto's types ask for). */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
