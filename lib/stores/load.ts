/**
 * Loading keystores and truststores: a store's bytes in, the device's identity or the trust
 * anchors out. The bytes are read by `read_store.ts` (format detection in `detect.ts`, the
 * format readers beside it), the key entry is chosen, unlocked and its chain ordered leaf first
 * by `key_entry.ts`.
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
import { createPrivateKey, type KeyObject } from "node:crypto";
import { equalBytes, hex } from "../encoding/bytes.ts";
import { toPem } from "../encoding/pem.ts";
import { parseCertificate } from "../x509/certificate.ts";
import { pkcs8Info } from "../x509/key_info.ts";
import { StoreError, UsageError } from "../errors.ts";
import { chooseKeyEntry, hasKey, orderChain, unlock, unlockChosen } from "./key_entry.ts";
import { FORMAT_LABEL } from "./detect.ts";
import { readStore } from "./read_store.ts";
import type {
  Certificate,
  DeviceIdentity,
  RawEntry,
  StoreFormat,
  TrustAnchors,
  TrustedCertificate,
} from "../types.ts";

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
  /** A separate PEM private key file's bytes, for a PEM keystore. */
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
 * import { loadKeyStore, StoreError } from "../../mod.ts";
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
        { code: "KEY_NOT_PEM", hint: "Leave out `key`: the keystore holds the key." },
      );
    }
    const keyStore = await readStore(options.key, { role: "keystore", name: keyName, type: "pem" });
    separateKey = keyStore.entries[0];
    if (!hasKey(separateKey)) {
      throw new StoreError(`Key file "${keyName}" holds no private key`, {
        code: "STORE_NO_KEY",
        hint: "Give the device's private key (-----BEGIN PRIVATE KEY-----) with `key`.",
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
        ? "Give the certificate (chain) file as the keystore (`loadKeyStore`) and the key file with " +
          "`key`."
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
 * import { listKeyStore, StoreError } from "../../mod.ts";
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
 * import { loadTrustStore, StoreError } from "../../mod.ts";
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
        ? "It holds only a private key; give the CA certificate(s) as the truststore " +
          "(`loadTrustStore`)."
        : "Import the server's CA certificate (keytool -importcert -trustcacerts).",
    });
  }
  return { format: store.format, certificates };
}

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
