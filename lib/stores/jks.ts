/**
 * Java KeyStore (JKS) reading, on top of `npm:jks-js` (loaded only when a JKS is read).
 *
 * `jks-js` parses the entries. Three things are done here instead:
 * - **Sun's key protector**, undone for the one entry chosen (`unlockKey`), so that the key
 *   comes out exactly as stored whatever its type (jks-js re-encodes it through node-forge,
 *   which fails for Ed25519/Ed448 and turns RSA-PSS into plain RSA).
 * - **The integrity digest** (SHA-1 over the password as UTF-16BE, the string
 *   `"Mighty Aphrodite"` and the store body, stored as the trailing 20 bytes). `jks-js` checks it
 *   only for a non-empty password, and reports a store cut inside its digest as a wrong password.
 *   So we walk the store's length fields ourselves to find where the body ends, tell
 *   truncation from a wrong password, and check the digest for every given password.
 * - **JCEKS** (`CECECECE` magic), which `jks-js` cannot read (its key protector is
 *   PBEWithMD5AndTripleDES): it is refused with the `keytool` command that converts it.
 *
 * Without a store password the digest is not checked (as Java's `KeyStore.load(in, null)` does),
 * which is how a public truststore such as the JDK's `cacerts` can be read.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { equalBytes, utf16be } from "../encoding/bytes.ts";
import { type JksJs, loadJks } from "../deps.ts";
import { StoreError } from "../errors.ts";
import { pkcs8Info } from "../x509/key_info.ts";
import { children, DerError, readDer } from "../encoding/der.ts";
import { readOctets, readOid } from "../encoding/der_values.ts";
import type { RawEntry, RawStore } from "../types.ts";

/** Options of {@linkcode readJks}. */
export interface ReadJksOptions {
  /** Store password. When `undefined`, the integrity digest is not checked. */
  password?: string;
  /** Label of the store in messages (the CLI passes the path). @default "keystore" */
  name?: string;
}

/** The JKS magic number. */
export const JKS_MAGIC = 0xfeedfeed;
/** The JCEKS magic number (Sun JCE's keystore, not supported). */
export const JCEKS_MAGIC = 0xcececece;

/**
 * Which Java keystore a store's magic number (its first four bytes) announces. The one reader of
 * the magic: format detection (`detect.ts`) and the PKCS#12 reader's message for a store of
 * another format use it too.
 *
 * @param bytes The store's bytes.
 * @returns `"jks"` for `FEEDFEED`, `"jceks"` for `CECECECE`, `undefined` for anything else
 *   (also for fewer than four bytes).
 *
 * @example
 * ```ts
 * import { javaStoreType } from "./jks.ts";
 * if (javaStoreType(new Uint8Array([0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2])) !== "jks") {
 *   throw new Error("expected JKS");
 * }
 * if (javaStoreType(new Uint8Array([0xfe, 0xed])) !== undefined) throw new Error("too short");
 * ```
 */
export function javaStoreType(bytes: Uint8Array): "jks" | "jceks" | undefined {
  if (bytes.length < 4) return undefined;
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  if (magic === JKS_MAGIC) return "jks";
  if (magic === JCEKS_MAGIC) return "jceks";
  return undefined;
}

const DIGEST_LEN = 20;

/**
 * Reads a JKS keystore or truststore.
 *
 * @param bytes The store's bytes.
 * @param options Passwords and the label used in messages.
 * @returns The entries in store order: key entries with their chain and `unlockKey`, which
 *   decrypts that entry's key alone with its key password (Java's `KeyStore.getKey(alias,
 *   password)`: other entries may have other key passwords); trusted certificate entries with
 *   one certificate and no key.
 * @throws {StoreError} `STORE_JCEKS`, `STORE_FORMAT` (no JKS magic), `STORE_CORRUPT`
 *   (truncated, bad structure), `KEYSTORE_PASSWORD` (digest mismatch), `DEPENDENCY_LOAD`
 *   (`npm:jks-js` cannot be loaded). `unlockKey` rejects with `KEY_PASSWORD` (wrong key
 *   password), `KEY_PASSWORD_REQUIRED` (no password given) or `KEY_UNSUPPORTED`.
 * @throws {Deno.errors.NotCapable} Or `PermissionDenied`, unchanged, when Deno's permissions
 *   stop `npm:jks-js` from loading.
 *
 * @example A JCEKS store is refused with the conversion command
 * ```ts
 * import { readJks } from "./jks.ts";
 * import { StoreError } from "../errors.ts";
 * const jceks = new Uint8Array([0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2, 0, 0, 0, 0]);
 * try {
 *   await readJks(jceks, { password: "changeit", name: "device.jceks" });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof StoreError) || err.code !== "STORE_JCEKS") throw err;
 *   if (!err.hint.includes("keytool -importkeystore")) throw err;
 * }
 * ```
 */
export async function readJks(bytes: Uint8Array, options: ReadJksOptions = {}): Promise<RawStore> {
  const name = options.name ?? "keystore";
  const type = javaStoreType(bytes);
  if (type === "jceks") {
    throw new StoreError(`Cannot read "${name}": it is a JCEKS keystore, which is not supported`, {
      code: "STORE_JCEKS",
      hint: `Convert it to PKCS#12 with: keytool -importkeystore -srckeystore ${shellWord(name)} ` +
        `-srcstoretype JCEKS -destkeystore ${shellWord(name.replace(/\.jceks$/i, "") + ".p12")} ` +
        "-deststoretype PKCS12",
    });
  }
  if (type !== "jks") {
    throw new StoreError(`Cannot read "${name}": it is not a JKS keystore (no FEEDFEED magic)`, {
      code: "STORE_FORMAT",
      hint: "Check `type`, or leave it out to detect the format.",
    });
  }

  let bodyEnd: number;
  try {
    bodyEnd = jksBodyLength(bytes);
  } catch (cause) {
    throw corrupt(name, cause);
  }
  if (bytes.length < bodyEnd + DIGEST_LEN) {
    throw corrupt(name, new RangeError("the integrity digest is missing or cut short"));
  }
  if (options.password !== undefined) {
    const expected = jksDigest(options.password, bytes.subarray(0, bodyEnd));
    const actual = bytes.subarray(bodyEnd, bodyEnd + DIGEST_LEN);
    if (!equalBytes(expected, actual)) {
      throw new StoreError(
        `Cannot read the JKS store "${name}": integrity check failed (wrong password?)`,
        {
          code: "KEYSTORE_PASSWORD",
          hint: "Check the store password (`password`).",
        },
      );
    }
  }

  const jks = await loadDependency(name);
  let parsed: ReturnType<JksJs["parseJks"]>;
  try {
    // Digest already checked above: an empty password makes jks-js skip its own check.
    parsed = jks.parseJks(Buffer.from(bytes.subarray(0, bodyEnd + DIGEST_LEN)), "");
  } catch (cause) {
    throw corrupt(name, cause);
  }

  const entries: RawEntry[] = [];
  for (const entry of parsed) {
    if ("protectedPrivateKey" in entry) {
      const { alias, protectedPrivateKey } = entry;
      entries.push({
        alias,
        privateKeyPkcs8: undefined,
        unlockKey: (password) => {
          if (password === undefined) {
            return Promise.reject(
              new StoreError(
                `The private key "${alias}" in "${name}" is encrypted and no password was given`,
                { code: "KEY_PASSWORD_REQUIRED", hint: "Give the key entry's password." },
              ),
            );
          }
          try {
            return Promise.resolve(recoverKey(protectedPrivateKey, password, { name, alias }));
          } catch (err) {
            return Promise.reject(err);
          }
        },
        certificates: entry.chain.map((c) => new Uint8Array(c.value)),
      });
    } else {
      entries.push({
        alias: entry.alias,
        privateKeyPkcs8: undefined,
        certificates: [new Uint8Array(entry.cert.value)],
      });
    }
  }
  return { format: "jks", entries };
}

/**
 * Loads jks-js. A failure to load it is not the store's fault: it becomes `DEPENDENCY_LOAD`,
 * except Deno's permission errors, which are re-thrown unchanged for the caller to map.
 */
async function loadDependency(name: string): Promise<JksJs> {
  try {
    return await loadJks();
  } catch (cause) {
    if (cause instanceof Deno.errors.NotCapable || cause instanceof Deno.errors.PermissionDenied) {
      throw cause;
    }
    throw new StoreError(`Cannot load jks-js, which is needed to read the JKS keystore "${name}"`, {
      code: "DEPENDENCY_LOAD",
      hint: "Let Deno fetch npm:jks-js once (network access or a filled DENO_DIR cache), or " +
        "convert the store to PKCS#12 with keytool -importkeystore.",
      cause,
    });
  }
}

/** The OID of Sun's JKS key protector (`1.3.6.1.4.1.42.2.17.1.1`). */
const SUN_KEY_PROTECTOR = "1.3.6.1.4.1.42.2.17.1.1";
const SALT_LEN = 20;

/**
 * Undoes Sun's JKS key protector (`sun.security.provider.KeyProtector`): the stored
 * EncryptedPrivateKeyInfo holds salt (20 bytes), the key XORed with a SHA-1 keystream
 * (`H(password || salt)`, then `H(password || previous)`), and `H(password || key)` to check it;
 * the password is UTF-16BE. Done here rather than by jks-js, which re-encodes the key through
 * node-forge and fails for Ed25519/Ed448 and turns an RSA-PSS key into a plain RSA one: the
 * PKCS#8 comes out exactly as stored, whatever its type. One pass over the key, no iterations.
 */
function recoverKey(
  protectedKey: Uint8Array,
  password: string,
  ctx: { name: string; alias: string },
): Uint8Array {
  let data: Uint8Array;
  try {
    const [algorithm, encrypted] = children(readDer(protectedKey, { what: "the protected key" }));
    const oid = readOid(children(algorithm)[0]);
    if (oid !== SUN_KEY_PROTECTOR) {
      throw new StoreError(
        `Cannot read key "${ctx.alias}" of keystore "${ctx.name}": it is protected with ` +
          `OID ${oid}, not Sun's JKS key protector`,
        {
          code: "KEY_UNSUPPORTED",
          hint: "Convert the store to PKCS#12 with keytool -importkeystore.",
        },
      );
    }
    data = readOctets(encrypted);
    if (data.length <= 2 * SALT_LEN) throw new DerError("the protected key is too short");
  } catch (cause) {
    if (cause instanceof StoreError) throw cause;
    throw new StoreError(`Key "${ctx.alias}" of keystore "${ctx.name}" is damaged`, {
      code: "STORE_CORRUPT",
      hint: "Export the key entry again from the source keystore.",
      cause,
    });
  }
  const secret = utf16be(password);
  const salt = data.subarray(0, SALT_LEN);
  const encrypted = data.subarray(SALT_LEN, data.length - SALT_LEN);
  const check = data.subarray(data.length - SALT_LEN);
  const plain = new Uint8Array(encrypted.length);
  let digest: Uint8Array = salt;
  for (let offset = 0; offset < encrypted.length; offset += SALT_LEN) {
    digest = new Uint8Array(createHash("sha1").update(secret).update(digest).digest());
    for (let i = 0; i < SALT_LEN && offset + i < encrypted.length; i++) {
      plain[offset + i] = encrypted[offset + i] ^ digest[i];
    }
  }
  const expected = new Uint8Array(createHash("sha1").update(secret).update(plain).digest());
  if (!equalBytes(expected, check)) {
    throw new StoreError(
      `Cannot decrypt key "${ctx.alias}" of keystore "${ctx.name}": wrong key password`,
      {
        code: "KEY_PASSWORD",
        hint: "Check the key password: a JKS key entry may have its own (keytool -keypass), " +
          "given with `keyPassword`; the keystore password is used without it.",
      },
    );
  }
  try {
    pkcs8Info(plain);
    return plain;
  } catch (cause) {
    throw new StoreError(`Key "${ctx.alias}" of keystore "${ctx.name}" is damaged`, {
      code: "STORE_CORRUPT",
      hint: "Export the key entry again from the source keystore.",
      cause,
    });
  }
}

/** Quotes a file name for a shell command line when it needs it. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

function corrupt(name: string, cause: unknown): StoreError {
  return new StoreError(`"${name}" is not a valid JKS keystore (truncated or corrupt)`, {
    code: "STORE_CORRUPT",
    hint: "Copy the file again (binary mode) or export it again with keytool.",
    cause,
  });
}

/**
 * The JKS integrity digest: SHA-1(password as UTF-16BE || "Mighty Aphrodite" || body).
 */
function jksDigest(password: string, body: Uint8Array): Uint8Array {
  const hash = createHash("sha1").update(utf16be(password)).update("Mighty Aphrodite", "utf8");
  return new Uint8Array(hash.update(body).digest());
}

/**
 * Walks the length fields of a JKS store and returns the offset where the body (everything the
 * digest covers) ends. Throws a RangeError when a field runs past the end of the bytes.
 */
function jksBodyLength(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  const need = (n: number): number => {
    if (n < 0 || off + n > bytes.length) throw new RangeError("the store is cut short");
    const at = off;
    off += n;
    return at;
  };
  const int = (): number => view.getUint32(need(4));
  const utf = (): void => void need(view.getUint16(need(2)));
  int(); // magic
  const version = int();
  if (version !== 1 && version !== 2) throw new RangeError(`unknown JKS version ${version}`);
  const count = int();
  const cert = (): void => {
    if (version === 2) utf(); // certificate type
    need(int());
  };
  for (let i = 0; i < count; i++) {
    const tag = int();
    utf(); // alias
    need(8); // timestamp
    if (tag === 1) {
      need(int()); // protected key
      const n = int();
      for (let j = 0; j < n; j++) cert();
    } else if (tag === 2) {
      cert();
    } else {
      throw new RangeError(`unknown JKS entry tag ${tag}`);
    }
  }
  return off;
}
