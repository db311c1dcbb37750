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

import { createHmac, timingSafeEqual } from "node:crypto";
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
} from "./encoding/der.ts";
import { hex } from "./encoding/bytes.ts";
import { MAX_STORE_CERTIFICATES, tooManyCertificates } from "./x509/certificate.ts";
import { IssuerIndex } from "./x509/chain.ts";
import { pbeDecrypt, unsupported as unsupportedAlgorithm } from "./stores/pbe.ts";
import { DIGESTS, pkcs12MacKey, WorkBudget } from "./stores/kdf.ts";
import { StoreError } from "./errors.ts";
import { javaStoreType } from "./stores/jks.ts";
import type { RawEntry, RawStore } from "./types.ts";

/** Options of {@linkcode readPkcs12}. */
export interface ReadPkcs12Options {
  /** The store password: checks the integrity MAC and decrypts the certificates. */
  password: string;
  /**
   * The key-derivation work the whole store may ask for, in PBKDF2-iteration units (see
   * `kdf.ts`); a store asking for more is refused with `STORE_UNSUPPORTED` before the
   * derivation that would pass it starts.
   * @default MAX_STORE_WORK (40,000,000, about 6 s)
   */
  workLimit?: number;
  /**
   * How error messages name the store, usually its file name.
   * @default {"keystore"}
   */
  name?: string;
}

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

const HINT_CORRUPT = "Check that the file is a complete PKCS#12 (.p12/.pfx) keystore, " +
  "for example with `openssl pkcs12 -info -in FILE -noout`.";
const HINT_PASSWORD = "Check the password given with --keystore-password " +
  "(or --truststore-password for a truststore).";
const HINT_KEY_PASSWORD = "Give the key entry's own password with --key-password " +
  "(by default the keystore password is used for the key).";

/**
 * Reads a PKCS#12 keystore or truststore into one {@linkcode RawEntry} per key or certificate
 * entry.
 *
 * - Key entries come first, in store order. Each holds its key (an unencrypted key bag as
 *   `privateKeyPkcs8`; a shrouded one as `unlockKey`, which decrypts that one key on demand, as
 *   Java's `KeyStore.getKey(alias, password)` does) and its certificates: first those sharing its `localKeyId` (or, without one, its friendly
 *   name), then the chain certificates the store keeps without attributes of their own. With
 *   exactly one key entry every such certificate belongs to it (that is how OpenSSL and keytool
 *   store a chain); with several, each key takes the ones that continue its chain (issuer to
 *   subject), as the JDK does when it loads the store.
 * - Certificate-only entries follow: Java truststore entries (with Oracle's trusted-key-usage
 *   attribute), and certificates no key entry claimed. Their `privateKeyPkcs8` is `undefined`.
 * - Aliases come from the `friendlyName` bag attributes.
 *
 * Supported: every algorithm of `pbe.ts` (PBES2, the PKCS#12 PBEs of `-legacy`, PBES1),
 * unencrypted bags, and SHA-1/SHA-2 integrity MACs (checked when present). The work of the
 * whole store is bounded (`kdf.ts`'s budget); encrypted contents are decrypted one after the
 * other, and the first failure ends the reading. Bytes after the end of the PFX are ignored, as
 * OpenSSL and the JDK ignore them.
 *
 * @param bytes The file's contents (DER; BER with indefinite lengths is accepted too).
 * @param options Store password, key password and the name to use in messages.
 * @returns The entries of the store, with `format: "pkcs12"`.
 * @throws {StoreError} `KEYSTORE_PASSWORD` when the integrity check (or, without a MAC, the
 * decryption of the certificates) fails; `STORE_TOO_MANY_CERTIFICATES`; `STORE_CORRUPT` for anything that is not a well-formed PKCS#12 file; `STORE_UNSUPPORTED` for
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
  const name = options.name ?? "keystore";
  const ctx: Context = {
    name,
    password: options.password,
    macVerified: false,
    budget: new WorkBudget(`Keystore "${name}"`, options.workLimit),
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
    // Where bytes follow a structure that must end (inside the store), say so: the store is
    // not cut short, it has something extra.
    const extra = err instanceof DerError && /trailing bytes after (.*)$/.exec(err.message);
    throw corrupt(ctx, extra ? `extra bytes after the end of ${extra[1]}` : undefined, err);
  }
}

// ------------------------------------------------------------------------------------------
// The reading itself

interface Context {
  name: string;
  password: string;
  /** The key-derivation work of the whole store; stopped at the first failure. */
  budget: WorkBudget;
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
  // OpenSSL (d2i_PKCS12_bio) and the JDK read the PFX and ignore what follows it: a newline
  // picked up from a text channel, for example.
  const pfx = readDer(bytes, { allowTrailing: true });
  const parts = children(expectTag(pfx, 0x30, "PFX"));
  if (parts.length < 2 || parts.length > 3) {
    throw new DerError("PFX has the wrong number of parts");
  }
  if (readInt(parts[0]) !== 3) throw new DerError("PFX version is not 3");
  const [authSafeType, authSafeContent] = readContentInfo(parts[1]);
  if (authSafeType !== OID.data) {
    throw unsupportedAlgorithm(ctx.budget, "integrity mode", authSafeType);
  }
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
      ctx.budget.stop(err); // no further decryption starts
      await reading; // and none is left running behind the error
      throw err;
    }
  }
  const { bags, error } = await reading;
  if (!bags) throw error;
  return { format: "pkcs12", entries: group(bags, ctx.name) };
}

/**
 * Reads every SafeContents of the AuthenticatedSafe, decrypting them one after the other: the
 * first failure (a wrong password, corruption, the budget) ends the reading, so a store of many
 * encrypted bags costs at most the budget, and a wrong password costs one decryption.
 */
async function readSafes(authSafeBytes: Uint8Array, ctx: Context): Promise<Bags> {
  const authSafe = expectTag(
    readDer(authSafeBytes, { what: "the AuthenticatedSafe" }),
    0x30,
    "SEQUENCE",
  );
  const bags: Bags = { keys: [], certs: [] };
  try {
    for (const contentInfo of children(authSafe)) {
      const [type, content] = readContentInfo(contentInfo);
      if (content === undefined) throw new DerError("a ContentInfo has no content");
      if (type === OID.data) {
        collectBags(readOctets(content), bags, 0);
      } else if (type === OID.encryptedData) {
        collectBags(await decryptSafe(content, ctx), bags, 0);
      } else {
        throw unsupportedAlgorithm(ctx.budget, "content type", type);
      }
      if (bags.certs.length > MAX_STORE_CERTIFICATES) {
        throw tooManyCertificates(`Keystore "${ctx.name}"`);
      }
    }
  } catch (err) {
    ctx.budget.stop(err);
    throw err;
  }
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
  if (!hash) throw unsupportedAlgorithm(ctx.budget, "integrity (MAC) algorithm", digestOid);
  const expected = readOctets(expectTag(digestInfo[1], 0x04, "OCTET STRING"));
  const salt = readOctets(expectTag(parts[1], 0x04, "OCTET STRING"));
  const iterations = parts.length === 3 ? readInt(parts[2]) : 1;
  const key = await pkcs12MacKey(hash, ctx.password, salt, iterations, ctx.budget);
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
  const plain = await pbeDecrypt(eci[1], readOctets(eci[2]), ctx.password, ctx.budget);
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

/**
 * Decrypts a shrouded key bag with `password`; without one (none was given), with the empty
 * password, and when that fails the key needs a password (`KEY_PASSWORD_REQUIRED`, never
 * "wrong"). It has a budget of its own: it runs after the store was read, once, for the one
 * entry chosen.
 */
async function unlockShroudedKey(
  key: KeyBag,
  password: string | undefined,
  name: string,
): Promise<Uint8Array> {
  const encrypted = key.encrypted!;
  const which = key.friendlyName === undefined ? "" : ` "${key.friendlyName}"`;
  const budget = new WorkBudget(`The private key${which} in "${name}"`);
  let plain: Uint8Array | undefined;
  try {
    plain = await pbeDecrypt(encrypted.algorithm, encrypted.data, password ?? "", budget);
  } catch (cause) {
    if (cause instanceof StoreError) throw cause;
    throw new StoreError(`The private key${which} in "${name}" is damaged`, {
      code: "STORE_CORRUPT",
      hint: HINT_CORRUPT,
      cause,
    });
  }
  if (plain !== undefined && isPkcs8(plain)) return plain.slice();
  if (password === undefined) {
    throw new StoreError(
      `The private key${which} in "${name}" is encrypted and no password was given`,
      { code: "KEY_PASSWORD_REQUIRED", hint: "Give the key's password (keyPassword or password)." },
    );
  }
  throw new StoreError(
    `Cannot decrypt the private key${which} in "${name}": wrong key password`,
    { code: "KEY_PASSWORD", hint: HINT_KEY_PASSWORD },
  );
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
function group(bags: Bags, name: string): RawEntry[] {
  // Every lookup goes through a map, so grouping is linear in the number of bags.
  const keys = bags.keys.map((key) => ({ key, certs: [] as CertBag[] }));
  const byKeyId = new Map<string, typeof keys[number]>();
  const byName = new Map<string, typeof keys[number]>();
  for (const k of keys) {
    if (k.key.localKeyId !== undefined) {
      if (!byKeyId.has(k.key.localKeyId)) byKeyId.set(k.key.localKeyId, k);
    } else if (k.key.friendlyName !== undefined && !byName.has(k.key.friendlyName)) {
      byName.set(k.key.friendlyName, k);
    }
  }
  const pending: CertBag[] = [];
  const standalone: CertBag[] = [];
  for (const cert of bags.certs) {
    let owner = cert.localKeyId === undefined ? undefined : byKeyId.get(cert.localKeyId);
    if (!owner && cert.localKeyId === undefined && cert.friendlyName !== undefined) {
      owner = byName.get(cert.friendlyName);
    }
    if (owner) owner.certs.push(cert);
    else if (cert.trusted) standalone.push(cert);
    else pending.push(cert);
  }

  if (keys.length === 1) {
    keys[0].certs.push(...pending);
  } else if (keys.length > 1 && pending.length > 0) {
    // Each key's chain continues from its last certificate through the unclaimed ones.
    const index = new IssuerIndex(pending, (c) => c.der);
    const used = new Set<string>();
    for (const entry of keys) {
      const start = entry.certs.at(-1);
      if (start === undefined) continue;
      const path = index.path(start, {
        below: entry.certs.slice(0, -1),
        maxLength: MAX_ASSEMBLED_CHAIN_CERTS,
      });
      entry.certs.push(...path);
      for (const cert of path) used.add(hex(cert.der));
    }
    // A copy of a certificate some chain already holds (keytool stores one per key entry).
    for (const cert of pending) if (!used.has(hex(cert.der))) standalone.push(cert);
  } else {
    standalone.push(...pending);
  }
  const position = new Map(bags.certs.map((c, i) => [c, i]));
  standalone.sort((a, b) => position.get(a)! - position.get(b)!);

  return [
    ...keys.map(({ key, certs }): RawEntry => ({
      alias: key.friendlyName ?? certs[0]?.friendlyName,
      privateKeyPkcs8: key.der,
      ...(key.encrypted
        ? { unlockKey: (password?: string) => unlockShroudedKey(key, password, name) }
        : {}),
      certificates: certs.map((c) => c.der),
    })),
    ...standalone.map((cert) => ({
      alias: cert.friendlyName,
      privateKeyPkcs8: undefined,
      certificates: [cert.der],
    })),
  ];
}

// ------------------------------------------------------------------------------------------
// Errors

function corrupt(ctx: Context, detail?: string, cause?: unknown): StoreError {
  return new StoreError(
    `"${ctx.name}" is not a valid PKCS#12 keystore (${detail ?? "truncated or corrupt"})`,
    { code: "STORE_CORRUPT", hint: HINT_CORRUPT, cause },
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
