/**
 * PKCS#12 SafeBags (RFC 7292 §4.2): SafeContents parsed into key bags (plain and shrouded) and
 * X.509 certificate bags with the attributes this reader uses (`friendlyName`, `localKeyId`,
 * Oracle's trusted-key-usage).
 *
 * @module
 */

import { children, DerError, expectTag, explicit, readDer, type Tlv } from "../../encoding/der.ts";
import { readOctets, readOid, readString } from "../../encoding/der_values.ts";
import { hex } from "../../encoding/bytes.ts";

/** Deepest nesting of SafeContents bags inside each other. */
const MAX_BAG_NESTING = 4;

/** Object identifiers of the PKCS#12 and PKCS#7 structures read here. */
export const OID = {
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

/** The bag attributes this reader uses. */
export interface Attributes {
  friendlyName: string | undefined;
  localKeyId: string | undefined;
  trusted: boolean;
}

/** A key bag: unencrypted (`der`) or shrouded (`encrypted`). */
export interface KeyBag extends Attributes {
  /** PKCS#8 DER, once known. */
  der: Uint8Array | undefined;
  /** For shrouded keys: the EncryptedPrivateKeyInfo's algorithm and ciphertext. */
  encrypted: { algorithm: Tlv; data: Uint8Array } | undefined;
}

/** An X.509 certificate bag. */
export interface CertBag extends Attributes {
  der: Uint8Array;
}

/** The key and certificate bags of a store, in store order. */
export interface Bags {
  keys: KeyBag[];
  certs: CertBag[];
}

/** Parses SafeContents and adds its key and certificate bags to `bags`. */
export function collectBags(safeContents: Uint8Array, bags: Bags, nesting: number): void {
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

/** Whether `bytes` is exactly one SEQUENCE. */
export function isSingleSequence(bytes: Uint8Array): boolean {
  try {
    return readDer(bytes).tag === 0x30;
  } catch {
    return false;
  }
}

/** Whether `bytes` is a PrivateKeyInfo: SEQUENCE { INTEGER, AlgorithmIdentifier, OCTET STRING }. */
export function isPkcs8(bytes: Uint8Array): boolean {
  try {
    const parts = children(expectTag(readDer(bytes, { what: "PrivateKeyInfo" }), 0x30, "SEQUENCE"));
    return parts.length >= 3 && parts[0].tag === 0x02 && parts[1].tag === 0x30 &&
      parts[2].tag === 0x04;
  } catch {
    return false;
  }
}
