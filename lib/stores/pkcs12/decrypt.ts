/**
 * The password side of a PKCS#12 store: the integrity MAC (RFC 7292 §5.1), the decryption of
 * encrypted SafeContents and of shrouded key bags, each telling a wrong password from damage.
 *
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { children, DerError, expectTag, type Tlv } from "../../encoding/der.ts";
import { readOctets, readOid, readSmallInt as readInt } from "../../encoding/der_values.ts";
import { StoreError } from "../../errors.ts";
import { pbeDecrypt, unsupported as unsupportedAlgorithm } from "../pbe.ts";
import { DIGESTS, pkcs12MacKey, WorkBudget } from "../kdf.ts";
import { isPkcs8, isSingleSequence, type KeyBag, OID } from "./bags.ts";

/** The hint of every `STORE_CORRUPT` error about a PKCS#12 file. */
export const HINT_CORRUPT = "Check that the file is a complete PKCS#12 (.p12/.pfx) keystore, " +
  "for example with `openssl pkcs12 -info -in FILE -noout`.";

const HINT_PASSWORD = "Check the store password (`password`).";

const HINT_KEY_PASSWORD = "Give the key entry's own password with `keyPassword` " +
  "(by default the keystore password is used for the key).";

/** The reading of one store: its name, password, work budget and MAC state. */
export interface Context {
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

/** Checks the MacData against the store password. */
export async function verifyMac(node: Tlv, authSafeBytes: Uint8Array, ctx: Context): Promise<void> {
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
export async function decryptSafe(node: Tlv, ctx: Context): Promise<Uint8Array> {
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
export async function unlockShroudedKey(
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
      {
        code: "KEY_PASSWORD_REQUIRED",
        hint: "Give the key's password (`keyPassword` or `password`).",
      },
    );
  }
  throw new StoreError(
    `Cannot decrypt the private key${which} in "${name}": wrong key password`,
    { code: "KEY_PASSWORD", hint: HINT_KEY_PASSWORD },
  );
}
