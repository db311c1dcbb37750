/**
 * Reading keystores and truststores: format detection, the size and emptiness checks, dispatch
 * to the format readers (JKS, PKCS#12, PEM), choosing the key entry, and ordering the
 * certificate chain leaf first.
 *
 * - {@linkcode loadKeyStore} returns the device's {@linkcode DeviceIdentity} (private key and
 *   chain).
 * - {@linkcode loadTrustStore} returns the {@linkcode TrustAnchors} (every certificate of the
 *   store). A JKS truststore may be read without a password, as Java does: its integrity
 *   digest is then not checked. A single DER certificate (`server.cer`) is a truststore too.
 * - {@linkcode listKeyStore} lists every entry of a store without choosing one or decrypting
 *   any key (what `inspect` shows for a store of several key entries).
 *
 * Only the chosen key entry's key is decrypted (Java's `KeyStore.getKey(alias, password)`), so
 * other entries may have other key passwords. When a file's name and content disagree (a
 * `truststore.jks` that is PKCS#12, as keytool writes it since JDK 9), errors say what the file
 * really is.
 *
 * Every failure is a {@linkcode StoreError} whose message names the store by the `name` option
 * (the command line passes the file path); passwords never appear in messages or hints.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { equalBytes, hex } from "./encoding/bytes.ts";
import {
  certificateNames,
  issuedBy,
  MAX_STORE_CERTIFICATES,
  parseCertificate,
  tooManyCertificates,
} from "./x509/certificate.ts";
import { isSelfIssued, orderLeafFirst } from "./x509/chain.ts";
import { readDer } from "./encoding/der.ts";
import { C8yError, StoreError, UsageError } from "./errors.ts";
import { pkcs8Info } from "./x509/key_info.ts";
import { javaStoreType, readJks } from "./jks.ts";
import { readPem } from "./stores/pem.ts";
import { toPem } from "./encoding/pem.ts";
import { readPkcs12 } from "./pkcs12.ts";
import type {
  Certificate,
  DeviceIdentity,
  RawEntry,
  RawStore,
  StoreFormat,
  TrustAnchors,
  TrustedCertificate,
} from "./types.ts";

/** The largest store accepted, in bytes (1 MiB). Larger inputs are refused before parsing. */
export const MAX_STORE_BYTES: number = 1024 * 1024;

const FORMAT_LABEL: Record<StoreFormat | "jceks", string> = {
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
 * import { detectFormat } from "../mod.ts";
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

/** Options of {@linkcode loadKeyStore}. */
export interface LoadKeyStoreOptions {
  /**
   * Store password (JKS, PKCS#12); for a PEM keystore, the passphrase of an encrypted key when
   * `keyPassword` is not given. @default undefined
   */
  password?: string;
  /** Password of the key entry when it differs from the store password. @default password */
  keyPassword?: string;
  /** Alias of the key entry to use; needed when the store has several. @default undefined */
  alias?: string;
  /** The store format; detected from the content when left out. @default undefined */
  type?: StoreFormat;
  /** Label of the keystore in messages (the command line passes the path). @default "keystore" */
  name?: string;
  /** A separate PEM private key file's bytes (`--key PATH`), for a PEM keystore. */
  key?: Uint8Array;
  /** Label of the separate key file in messages. @default "key file" */
  keyName?: string;
}

/** Options of {@linkcode loadTrustStore}. */
export interface LoadTrustStoreOptions {
  /**
   * Store password. A JKS truststore can be read without one (its integrity is then not
   * checked); PKCS#12 is tried with the empty password. @default undefined
   */
  password?: string;
  /** The store format; detected from the content when left out. @default undefined */
  type?: StoreFormat;
  /** Label of the truststore in messages. @default "truststore" */
  name?: string;
}

type Role = "keystore" | "truststore";

interface ReadOptions {
  role: Role;
  name: string;
  password?: string;
  type?: StoreFormat;
}

/**
 * Reads a keystore and returns the device identity: the private key and the certificate chain,
 * leaf (the certificate of the private key) first, then its issuers by issuer links, then any
 * other certificate of the entry.
 *
 * @param bytes The keystore's bytes (JKS, PKCS#12 or PEM).
 * @param options Passwords, alias, format, labels, and an optional separate PEM key.
 * @returns The device identity.
 * @throws {StoreError} `STORE_EMPTY`, `STORE_TOO_LARGE`, `STORE_FORMAT`, `STORE_JCEKS`,
 *   `STORE_CORRUPT`, `KEYSTORE_PASSWORD`, `KEYSTORE_PASSWORD_REQUIRED`, `KEY_PASSWORD`,
 *   `KEY_PASSWORD_REQUIRED`, `STORE_NO_KEY`, `STORE_ALIAS_REQUIRED`, `STORE_ALIAS_UNKNOWN`,
 *   `STORE_NO_CERTIFICATE`, `KEY_CONFLICT`, `CERT_PARSE`.
 * @throws {UsageError} `KEY_NOT_PEM` when `key` is given for a JKS or PKCS#12 keystore.
 *
 * @example Errors name the store
 * ```ts
 * import { loadKeyStore, StoreError } from "../mod.ts";
 * try {
 *   await loadKeyStore(new Uint8Array(), { name: "device.p12" });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof StoreError) || err.code !== "STORE_EMPTY") throw err;
 *   if (!err.message.includes("device.p12")) throw err;
 * }
 * ```
 */
export async function loadKeyStore(
  bytes: Uint8Array,
  options: LoadKeyStoreOptions = {},
): Promise<DeviceIdentity> {
  const name = options.name ?? "keystore";
  const store = await readStore(bytes, {
    role: "keystore",
    name,
    password: options.password,
    type: options.type,
  });

  let extraCertificates: Uint8Array[] = [];
  let separateKey: RawEntry | undefined;
  if (options.key !== undefined) {
    const keyName = options.keyName ?? "key file";
    if (store.format !== "pem") {
      throw new UsageError(
        `A separate key file ("${keyName}") only goes with a PEM keystore; "${name}" is ` +
          FORMAT_LABEL[store.format],
        { code: "KEY_NOT_PEM", hint: "Leave out --key: the keystore holds the key." },
      );
    }
    const keyStore = await readStore(options.key, { role: "keystore", name: keyName, type: "pem" });
    separateKey = keyStore.entries[0];
    if (!hasKey(separateKey)) {
      throw new StoreError(`Key file "${keyName}" holds no private key`, {
        code: "STORE_NO_KEY",
        hint: "Give the device's private key (-----BEGIN PRIVATE KEY-----) with --key.",
      });
    }
    extraCertificates = separateKey.certificates;
  }

  const own = store.entries[0];
  const entry = separateKey !== undefined
    ? chooseKeyEntry(
      {
        format: store.format,
        entries: [{
          ...own,
          privateKeyPkcs8: separateKey.privateKeyPkcs8,
          unlockKey: separateKey.unlockKey,
        }],
      },
      name,
      options.alias,
    )
    : chooseKeyEntry(store, name, options.alias);
  const pkcs8 = await unlockChosen(entry, store.format, name, options);
  if (separateKey !== undefined && hasKey(own)) {
    const ownKey = await unlock(own, options.password ?? options.keyPassword);
    if (!equalBytes(ownKey, pkcs8)) {
      const keyName = options.keyName ?? "key file";
      throw new StoreError(`Both "${name}" and "${keyName}" hold a private key, and they differ`, {
        code: "KEY_CONFLICT",
        hint: "Keep the key in one file only.",
      });
    }
  }
  let keyType: DeviceIdentity["keyType"];
  try {
    keyType = pkcs8Info(pkcs8).keyType;
  } catch (cause) {
    throw new StoreError(`The private key in "${name}" cannot be read`, {
      code: "STORE_CORRUPT",
      hint: "Export the key entry again from the tool that made the keystore.",
      cause,
    });
  }
  // node:crypto loads the common key types; for the others (brainpool, RSA-PSS, ...) the leaf is
  // the first certificate, and the offline checks name the key type.
  let privateKey: KeyObject | undefined;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" });
  } catch {
    privateKey = undefined;
  }

  const entryLabel = entry.alias === undefined ? "" : `entry ${entry.alias}, `;
  const ders = uniqueBy([...entry.certificates, ...extraCertificates], hex);
  const certificates = ders.map((der, i) =>
    parseCertificate(der, { name: `${name} (${entryLabel}certificate #${i + 1})` })
  );
  if (certificates.length === 0) {
    const where = entry.alias === undefined ? "" : ` (entry "${entry.alias}")`;
    throw new StoreError(`Keystore "${name}"${where} holds a private key but no certificate`, {
      code: "STORE_NO_CERTIFICATE",
      hint: store.format === "pem"
        ? "Give the certificate (chain) file as --keystore and the key file with --key."
        : "Import the device certificate into the key entry (keytool -importcert -alias ...).",
    });
  }

  const chain = orderChain(certificates, privateKey);
  const reordered = chain.some((c, i) => c !== certificates[i]);
  return {
    format: store.format,
    alias: entry.alias,
    aliases: store.entries.filter(hasKey).map((e) => e.alias)
      .filter((a): a is string => a !== undefined),
    privateKeyPem: toPem(pkcs8, "PRIVATE KEY"),
    keyType,
    chain,
    ...(reordered ? { chainAsStored: certificates } : {}),
  };
}

/** One entry of a store as {@linkcode listKeyStore} shows it. */
export interface ListedEntry {
  /** The alias (JKS, PKCS#12 friendly name); `undefined` for PEM. */
  alias: string | undefined;
  /** Whether the entry holds a private key (encrypted or not; no key is decrypted to list). */
  hasKey: boolean;
  /** The entry's certificates, in store order. */
  certificates: Certificate[];
}

/** What {@linkcode listKeyStore} returns. */
export interface StoreListing {
  /** The format the store was read as. */
  format: StoreFormat;
  /** Every entry, key entries first as the readers give them. */
  entries: ListedEntry[];
}

/**
 * Lists every entry of a keystore without choosing a key entry and without decrypting any
 * key: what an exploration tool shows for a store of several key entries.
 *
 * @param bytes The store's bytes (JKS, PKCS#12, PEM or one DER certificate).
 * @param options The store password (to check the integrity and decrypt the certificates),
 *   format and label; `alias`, `keyPassword` and `key` are not used.
 * @returns The entries with their aliases and parsed certificates.
 * @throws {StoreError} As {@linkcode loadKeyStore} before a key entry is chosen.
 *
 * @example
 * ```ts
 * import { listKeyStore, StoreError } from "../mod.ts";
 * try {
 *   await listKeyStore(new Uint8Array([1, 2, 3]), { name: "x.bin" });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof StoreError) || err.code !== "STORE_FORMAT") throw err;
 * }
 * ```
 */
export async function listKeyStore(
  bytes: Uint8Array,
  options: LoadKeyStoreOptions = {},
): Promise<StoreListing> {
  const name = options.name ?? "keystore";
  const store = await readStore(bytes, {
    role: "keystore",
    name,
    password: options.password,
    type: options.type,
  });
  return {
    format: store.format,
    entries: store.entries.map((entry, e) => ({
      alias: entry.alias,
      hasKey: hasKey(entry),
      certificates: entry.certificates.map((der, i) =>
        parseCertificate(der, {
          name: `${name} (${entry.alias ?? `entry #${e + 1}`}, certificate #${i + 1})`,
        })
      ),
    })),
  };
}

/**
 * Reads a truststore and returns all of its certificates, in store order (JKS trusted and key
 * entries' certificates, PKCS#12 certificate bags, PEM certificate blocks). Identical
 * certificates are listed once.
 *
 * @param bytes The truststore's bytes (JKS, PKCS#12 or PEM).
 * @param options Password, format and label.
 * @returns The trust anchors.
 * @throws {StoreError} `STORE_EMPTY`, `STORE_TOO_LARGE`, `STORE_FORMAT`, `STORE_JCEKS`,
 *   `STORE_CORRUPT`, `KEYSTORE_PASSWORD`, `KEYSTORE_PASSWORD_REQUIRED`, `STORE_NO_CERTIFICATE`,
 *   `CERT_PARSE`.
 *
 * @example An input that is no store
 * ```ts
 * import { loadTrustStore, StoreError } from "../mod.ts";
 * try {
 *   await loadTrustStore(new TextEncoder().encode("hello"), { name: "ca.txt" });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof StoreError) || err.code !== "STORE_FORMAT") throw err;
 * }
 * ```
 */
export async function loadTrustStore(
  bytes: Uint8Array,
  options: LoadTrustStoreOptions = {},
): Promise<TrustAnchors> {
  const name = options.name ?? "truststore";
  const store = await readStore(bytes, {
    role: "truststore",
    name,
    password: options.password,
    type: options.type,
  });
  const stored = store.entries.flatMap(({ alias, certificates }) =>
    certificates.map((der) => ({ alias, der }))
  );
  const certificates: TrustedCertificate[] = uniqueBy(stored, (c) => hex(c.der)).map(
    ({ alias, der }, i) => {
      const label = alias === undefined
        ? `${name} (certificate #${i + 1})`
        : `${name} (entry ${alias})`;
      return { ...parseCertificate(der, { name: label }), alias };
    },
  );
  if (certificates.length === 0) {
    const hasKey = store.entries.some((e) => e.privateKeyPkcs8 !== undefined);
    throw new StoreError(`Truststore "${name}" holds no certificate`, {
      code: "STORE_NO_CERTIFICATE",
      hint: hasKey
        ? "It holds only a private key; give the CA certificate(s) as --truststore."
        : "Import the server's CA certificate (keytool -importcert -trustcacerts).",
    });
  }
  return { format: store.format, certificates };
}

// ---- Reading -------------------------------------------------------------------------------

async function readStore(bytes: Uint8Array, opts: ReadOptions): Promise<RawStore> {
  const { role, name } = opts;
  const Role = role === "keystore" ? "Keystore" : "Truststore";
  const typeFlag = role === "keystore" ? "--keystore-type" : "--truststore-type";
  if (bytes.length === 0) {
    throw new StoreError(`${Role} "${name}" is empty`, {
      code: "STORE_EMPTY",
      hint: "The file has no content; copy or export it again.",
    });
  }
  if (bytes.length > MAX_STORE_BYTES) {
    throw new StoreError(
      `${Role} "${name}" is too large (${bytes.length} bytes; the limit is ${MAX_STORE_BYTES})`,
      { code: "STORE_TOO_LARGE", hint: `Check that "${name}" is really a ${role}.` },
    );
  }
  const detected = detectFormat(bytes);
  let format: StoreFormat;
  if (detected === "jceks") {
    format = "jks"; // readJks refuses it with the conversion command
  } else if (opts.type !== undefined) {
    if (detected !== undefined && detected !== opts.type) {
      throw new StoreError(
        `${Role} "${name}" is not a ${FORMAT_LABEL[opts.type]} store: ` +
          `its content is ${FORMAT_LABEL[detected]}`,
        {
          code: "STORE_FORMAT",
          hint: `Use ${typeFlag} ${detected}, or leave the option out to detect the format.`,
        },
      );
    }
    format = opts.type;
  } else if (detected === undefined) {
    throw new StoreError(
      `${Role} "${name}" is not a keystore: its content is neither JKS, PKCS#12, PEM nor a ` +
        "DER certificate",
      {
        code: "STORE_FORMAT",
        hint: `Check the file; if it is a store, give its format with ${typeFlag}.`,
      },
    );
  } else {
    format = detected;
  }

  let store: RawStore;
  try {
    store = await readFormat(bytes, format, opts);
  } catch (cause) {
    const error = cause instanceof C8yError ? cause : new StoreError(
      `${Role} "${name}" is not a valid ${FORMAT_LABEL[format]} ${role} ` +
        `(${describeDerError(cause)})`,
      {
        code: "STORE_CORRUPT",
        hint: "Copy the file again (in binary mode) or export it again.",
        cause,
      },
    );
    throw withContentNote(error, name, format);
  }
  const certificateCount = store.entries.reduce((n, e) => n + e.certificates.length, 0);
  if (certificateCount > MAX_STORE_CERTIFICATES) throw tooManyCertificates(`${Role} "${name}"`);
  return store;
}

async function readFormat(
  bytes: Uint8Array,
  format: StoreFormat,
  opts: ReadOptions,
): Promise<RawStore> {
  switch (format) {
    case "jks":
      return await readJks(bytes, { password: opts.password, name: opts.name });
    case "pkcs12":
      return await readP12(bytes, opts);
    case "pem":
      return readPem(new TextDecoder().decode(bytes), {
        name: opts.name,
        keys: opts.role === "keystore",
      });
    case "der": {
      // One certificate; what follows it is ignored, as openssl x509 -inform DER and keytool
      // -printcert ignore it.
      const der = readDer(bytes, { allowTrailing: true }).raw.slice();
      return {
        format: "der",
        entries: [{ alias: undefined, privateKeyPkcs8: undefined, certificates: [der] }],
      };
    }
  }
}

/** A DER reader's complaint in the words of a store message ("truncated", "extra bytes"). */
function describeDerError(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : "";
  if (/trailing bytes/.test(message)) {
    return `extra bytes after the end of ${message.replace(/^.*trailing bytes after /, "")}`;
  }
  return "truncated or corrupt";
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
 * import { contentNote } from "./keystore.ts";
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
function withContentNote(error: C8yError, name: string, format: StoreFormat): C8yError {
  const note = contentNote(name, format);
  if (note === undefined || !(error instanceof StoreError)) return error;
  return new StoreError(`${error.message}. ${note}`, {
    code: error.code,
    hint: error.hint,
    cause: error.cause,
    stage: error.stage,
  });
}

async function readP12(bytes: Uint8Array, opts: ReadOptions): Promise<RawStore> {
  try {
    return await readPkcs12(bytes, { password: opts.password ?? "", name: opts.name });
  } catch (err) {
    if (
      opts.password === undefined && err instanceof StoreError && err.code === "KEYSTORE_PASSWORD"
    ) {
      const flag = opts.role === "keystore" ? "--keystore-password" : "--truststore-password";
      throw new StoreError(`PKCS#12 ${opts.role} "${opts.name}" needs a password`, {
        code: "KEYSTORE_PASSWORD_REQUIRED",
        hint: `Give it with ${flag}.`,
        cause: err,
      });
    }
    throw err;
  }
}

function hasKey(entry: RawEntry): boolean {
  return entry.privateKeyPkcs8 !== undefined || entry.unlockKey !== undefined;
}

/**
 * The chosen entry's key. A JKS or PKCS#12 key opened with no password at all needs the store
 * password (the key password defaults to it): `KEYSTORE_PASSWORD_REQUIRED`, so that a prompt
 * asks for the store password; a wrong password is only ever reported when one was given.
 */
async function unlockChosen(
  entry: RawEntry,
  format: StoreFormat,
  name: string,
  options: LoadKeyStoreOptions,
): Promise<Uint8Array> {
  try {
    return await unlock(entry, options.keyPassword ?? options.password);
  } catch (err) {
    const noneGiven = options.keyPassword === undefined && options.password === undefined;
    if (
      noneGiven && format !== "pem" && err instanceof StoreError &&
      err.code === "KEY_PASSWORD_REQUIRED"
    ) {
      const which = entry.alias === undefined ? "its key" : `key "${entry.alias}"`;
      throw new StoreError(`Keystore "${name}" needs a password to decrypt ${which}`, {
        code: "KEYSTORE_PASSWORD_REQUIRED",
        hint: "Give the store password with --keystore-password.",
        cause: err,
      });
    }
    throw err;
  }
}

/** The entry's key, decrypting it (with `password`, or none given) when it is encrypted. */
async function unlock(entry: RawEntry, password: string | undefined): Promise<Uint8Array> {
  if (entry.privateKeyPkcs8 !== undefined) return entry.privateKeyPkcs8;
  return await entry.unlockKey!(password);
}

function chooseKeyEntry(store: RawStore, name: string, alias: string | undefined): RawEntry {
  const keyEntries = store.entries.filter(hasKey);
  const list = (entries: RawEntry[]): string =>
    entries.map((e) => e.alias === undefined ? "(no alias)" : `"${e.alias}"`).join(", ");

  if (keyEntries.length === 0) {
    const certCount = store.entries.reduce((n, e) => n + e.certificates.length, 0);
    throw new StoreError(
      certCount > 0
        ? `Keystore "${name}" holds ${certCount} certificate(s) but no private key: ` +
          "it looks like a truststore"
        : `Keystore "${name}" holds no private key`,
      {
        code: "STORE_NO_KEY",
        hint: store.format === "pem"
          ? "Give the private key with --key PATH, or use this file as --truststore."
          : "Use it as --truststore, and give the device's keystore as --keystore.",
      },
    );
  }
  if (alias !== undefined && (store.format === "pem" || store.format === "der")) {
    throw new UsageError(
      `An alias ("${alias}") was given, but "${name}" is a ${
        FORMAT_LABEL[store.format]
      } file, which has no aliases`,
      {
        code: "ALIAS_NOT_APPLICABLE",
        hint: "Leave --alias out for PEM files.",
      },
    );
  }
  if (alias !== undefined) {
    const found = keyEntries.find((e) => e.alias === alias) ??
      keyEntries.find((e) => e.alias?.toLowerCase() === alias.toLowerCase());
    if (found) return found;
    const certOnly = store.entries.some((e) =>
      !hasKey(e) && e.alias?.toLowerCase() === alias.toLowerCase()
    );
    throw new StoreError(
      `Keystore "${name}" has no key entry "${alias}"` +
        (certOnly ? " (it is a certificate entry)" : "") + `; key entries: ${list(keyEntries)}`,
      { code: "STORE_ALIAS_UNKNOWN", hint: "Give one of the listed aliases with --alias." },
    );
  }
  if (keyEntries.length > 1) {
    throw new StoreError(
      `Keystore "${name}" holds ${keyEntries.length} key entries (${list(keyEntries)}); choose one`,
      { code: "STORE_ALIAS_REQUIRED", hint: "Give the alias of the device's key with --alias." },
    );
  }
  return keyEntries[0];
}

// ---- Chain ordering ------------------------------------------------------------------------

/**
 * Orders certificates leaf first (see {@linkcode orderLeafFirst}): the leaf is the certificate
 * whose public key is the private key's; without one (or with a key node:crypto cannot load),
 * the first certificate. A certificate issues the next one when the names match and the
 * signature verifies; the path ends at a self-issued certificate.
 */
function orderChain(certificates: Certificate[], privateKey: KeyObject | undefined): Certificate[] {
  const x509 = new Map(certificates.map((c) => {
    try {
      return [c, new X509Certificate(c.der)];
    } catch {
      return [c, undefined];
    }
  }));
  const spki = privateKey === undefined ? undefined : spkiHex(createPublicKey(privateKey));
  let leaf = spki === undefined ? -1 : certificates.findIndex((c) => {
    const x = x509.get(c);
    return x !== undefined && publicKeyHex(x) === spki;
  });
  if (leaf < 0) leaf = 0;
  return orderLeafFirst(certificates, leaf, (c) => c.der, {
    isRoot: (c) => {
      const x = x509.get(c);
      return x === undefined || isSelfIssued(x);
    },
    issued: (child, parent) => {
      const c = x509.get(child);
      const p = x509.get(parent);
      return c !== undefined && p !== undefined && issuedBy(c, p);
    },
  });
}

/** The certificate's SPKI as hex, or "" when node:crypto cannot load its key (RSA-PSS). */
function publicKeyHex(x: X509Certificate): string {
  try {
    return spkiHex(x.publicKey);
  } catch {
    return "";
  }
}

function spkiHex(key: KeyObject): string {
  try {
    return hex(key.export({ type: "spki", format: "der" }));
  } catch {
    return "";
  }
}

// ---- Small helpers -------------------------------------------------------------------------

/** The items in order, without those whose key an earlier item has. */
function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
