/**
 * The key entry of a keystore: choosing it (by alias, or the only one), unlocking its key, and
 * ordering its certificate chain leaf first.
 *
 * @module
 */

import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { hex } from "../encoding/bytes.ts";
import { issuedBy } from "../x509/certificate.ts";
import { isSelfIssued, orderLeafFirst } from "../x509/chain.ts";
import { StoreError, UsageError } from "../errors.ts";
import { FORMAT_LABEL } from "./detect.ts";
import type { Certificate, RawEntry, RawStore, StoreFormat } from "../types.ts";

/** Whether an entry holds a private key (plain or encrypted). */
export function hasKey(entry: RawEntry): boolean {
  return entry.privateKeyPkcs8 !== undefined || entry.unlockKey !== undefined;
}

/**
 * The chosen entry's key. A JKS or PKCS#12 key opened with no password at all needs the store
 * password (the key password defaults to it): `KEYSTORE_PASSWORD_REQUIRED`, so that a prompt
 * asks for the store password; a wrong password is only ever reported when one was given.
 */
export async function unlockChosen(
  entry: RawEntry,
  format: StoreFormat,
  name: string,
  options: { password?: string; keyPassword?: string },
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
        hint: "Give the store password with `password`.",
        cause: err,
      });
    }
    throw err;
  }
}

/** The entry's key, decrypting it (with `password`, or none given) when it is encrypted. */
export async function unlock(entry: RawEntry, password: string | undefined): Promise<Uint8Array> {
  if (entry.privateKeyPkcs8 !== undefined) return entry.privateKeyPkcs8;
  return await entry.unlockKey!(password);
}

/**
 * The key entry to use: the one named by `alias` (exact, else ignoring case), or the only one.
 *
 * @throws {StoreError} `STORE_NO_KEY`, `STORE_ALIAS_UNKNOWN`, `STORE_ALIAS_REQUIRED`.
 * @throws {UsageError} `ALIAS_NOT_APPLICABLE` for an alias with a PEM or DER file.
 */
export function chooseKeyEntry(store: RawStore, name: string, alias: string | undefined): RawEntry {
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
          ? "Give the private key with `key`, or use this file as the truststore (`loadTrustStore`)."
          : "Use it as the truststore (`loadTrustStore`) and the device's keystore as the keystore " +
            "(`loadKeyStore`).",
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
        hint: "Leave `alias` out for PEM files.",
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
      { code: "STORE_ALIAS_UNKNOWN", hint: "Give one of the listed aliases with `alias`." },
    );
  }
  if (keyEntries.length > 1) {
    throw new StoreError(
      `Keystore "${name}" holds ${keyEntries.length} key entries (${list(keyEntries)}); choose one`,
      { code: "STORE_ALIAS_REQUIRED", hint: "Give the alias of the device's key with `alias`." },
    );
  }
  return keyEntries[0];
}

/**
 * Orders certificates leaf first (see {@linkcode orderLeafFirst}): the leaf is the certificate
 * whose public key is the private key's; without one (or with a key node:crypto cannot load),
 * the first certificate. A certificate issues the next one when the names match and the
 * signature verifies; the path ends at a self-issued certificate.
 */
export function orderChain(
  certificates: Certificate[],
  privateKey: KeyObject | undefined,
): Certificate[] {
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
