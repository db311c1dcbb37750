/**
 * Reading a PKCS#12 keystore (`.p12`, `.pfx`) as OpenSSL 3, `openssl pkcs12 -legacy` and the
 * JDK's keytool write them: the PFX and its AuthenticatedSafe, from which `bags.ts` takes the
 * bags, `decrypt.ts` checks the MAC and decrypts, and `entries.ts` groups the entries.
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

import { children, DerError, expectTag, explicit, readDer, type Tlv } from "../../encoding/der.ts";
import { readOctets, readOid, readSmallInt as readInt } from "../../encoding/der_values.ts";
import { MAX_STORE_CERTIFICATES, tooManyCertificates } from "../../x509/certificate.ts";
import { unsupported as unsupportedAlgorithm } from "../pbe.ts";
import { WorkBudget } from "../kdf.ts";
import { StoreError } from "../../errors.ts";
import { javaStoreType } from "../jks.ts";
import type { RawStore } from "../../types.ts";
import { type Bags, collectBags, OID } from "./bags.ts";
import { type Context, decryptSafe, HINT_CORRUPT, verifyMac } from "./decrypt.ts";
import { group } from "./entries.ts";

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

/**
 * Reads a PKCS#12 keystore or truststore into one `RawEntry` per key or certificate
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
 * import { readPkcs12 } from "./read.ts";
 * import { StoreError } from "../../errors.ts";
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
        hint: "Give the right `type`, or leave it out to detect it.",
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
