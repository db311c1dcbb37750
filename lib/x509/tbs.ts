/**
 * The fields of a certificate's TBSCertificate read from its DER (RFC 5280 §4.1) with the
 * project's DER reader: Names, validity, serial number, public key, version, the subject's CN,
 * basic constraints and extended key usage, and whether a public key verifies the signature.
 * node:crypto's `X509Certificate` does not give all of these, or not for every certificate (see
 * `certificate.ts`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPublicKey, verify } from "node:crypto";
import { hex } from "../encoding/bytes.ts";
import { children, DerError, expectTag, explicit, readDer, type Tlv } from "../encoding/der.ts";
import { readOid, readSmallInt, readString } from "../encoding/der_values.ts";

/** A serial number as upper-case hex without leading zeros (as node:crypto and keytool show it). */
export function serialHex(serial: Tlv): string {
  expectTag(serial, 0x02, "the serial number");
  return hex(serial.content).toUpperCase().replace(/^0+(?=.)/, "");
}

/** A UTCTime (years 1950-2049) or GeneralizedTime, as a Date. */
export function readTime(node: Tlv | undefined): Date {
  const text = new TextDecoder().decode(node?.content ?? new Uint8Array());
  const m = node?.tag === 0x17
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
    : node?.tag === 0x18
    ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text)
    : null;
  if (m === null) throw new DerError("a validity time is neither UTCTime nor GeneralizedTime");
  let year = Number(m[1]);
  if (node?.tag === 0x17) year += year < 50 ? 2000 : 1900;
  const date = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), +m[4], +m[5], +m[6]));
  if (Number.isNaN(date.getTime())) throw new DerError("an invalid validity time");
  return date;
}

/** Hash names of signature algorithms (`null`: the key type implies it, as for EdDSA). */
const SIGNATURE_HASHES: Record<string, string | null> = {
  "1.2.840.113549.1.1.5": "sha1",
  "1.2.840.113549.1.1.14": "sha224",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.10045.4.1": "sha1",
  "1.2.840.10045.4.3.1": "sha224",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.10040.4.3": "sha1",
  "2.16.840.1.101.3.4.3.2": "sha256",
  "1.3.101.112": null,
  "1.3.101.113": null,
};

/**
 * Whether the public key `spki` verifies the certificate's signature. `false` for a signature
 * algorithm not listed above (RSA-PSS signatures) or a key node:crypto cannot load.
 */
export function verifiesWith(der: Uint8Array, spki: Tlv): boolean {
  try {
    const [tbs, algorithm, signature] = children(readDer(der, { what: "the certificate" }));
    const oid = readOid(children(algorithm)[0]);
    if (!(oid in SIGNATURE_HASHES) || signature.content[0] !== 0) return false;
    const key = createPublicKey({ key: Buffer.from(spki.raw), format: "der", type: "spki" });
    return verify(SIGNATURE_HASHES[oid], tbs.raw, key, signature.content.subarray(1));
  } catch {
    return false;
  }
}

/**
 * The issuer and subject Names of a certificate as DER, read without node:crypto: comparing them
 * byte for byte tells which certificate names which as its issuer, even for certificates
 * node:crypto cannot parse.
 *
 * @param der The certificate, DER.
 * @returns The issuer and subject Names (each a DER `SEQUENCE`, tag and length included).
 * @throws {DerError} When the DER is not a certificate.
 *
 * @example A self-signed certificate names itself as issuer
 * ```ts
 * import { certificateNames } from "./tbs.ts";
 * import { pemBlocks } from "../encoding/pem.ts";
 * const [block] = pemBlocks(`-----BEGIN CERTIFICATE-----
 * MIIBrTCCAVOgAwIBAgIUOV7+rzqLpiGZaynDQOmw3m9MC3MwCgYIKoZIzj0EAwIw
 * KzEQMA4GA1UECgwHRXhhbXBsZTEXMBUGA1UEAwwOZXhhbXBsZS1kZXZpY2UwIBcN
 * MjYxMTI3MTczMjMyWhgPMjEyNjExMDMxNzMyMzJaMCsxEDAOBgNVBAoMB0V4YW1w
 * bGUxFzAVBgNVBAMMDmV4YW1wbGUtZGV2aWNlMFkwEwYHKoZIzj0CAQYIKoZIzj0D
 * AQcDQgAEoy6HToHXkhOvitVec/vfnADgeb+EzhfcJo7KILMtYSDlgvcrW75paNne
 * E/KMtznGNf79MlWJDtiIvldn40Y4TaNTMFEwHQYDVR0OBBYEFOCfAynSYPquIT4L
 * 9zVZ4MrVl0oyMB8GA1UdIwQYMBaAFOCfAynSYPquIT4L9zVZ4MrVl0oyMA8GA1Ud
 * EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgTNKF9V/yqEHT78HSQKg0nt3N
 * hxlKUi3uNAfdRxrgYqwCIQCk7iNeEmu6q3tSWiGjARKJl3VXLs00snm2+tC/Qf0w
 * gg==
 * -----END CERTIFICATE-----
 * `);
 * const { issuer, subject } = certificateNames(block.der);
 * if (issuer.length !== subject.length || !issuer.every((b, i) => b === subject[i])) {
 *   throw new Error("expected the issuer to be the subject");
 * }
 * ```
 */
export function certificateNames(der: Uint8Array): { issuer: Uint8Array; subject: Uint8Array } {
  const { issuer, subject } = tbsFields(der);
  return { issuer: issuer.raw, subject: subject.raw };
}

const OID_CN = "2.5.4.3";

const OID_EKU = "2.5.29.37";

const OID_BASIC_CONSTRAINTS = "2.5.29.19";

/** The parts of a TBSCertificate that are read from the DER. */
export interface TbsFields {
  /** The `[0] EXPLICIT Version` element; absent for v1 (its default). */
  version: Tlv | undefined;
  serial: Tlv;
  /** notBefore and notAfter. */
  validity: Tlv[];
  issuer: Tlv;
  subject: Tlv;
  /** The SubjectPublicKeyInfo. */
  spki: Tlv;
  /** The `[3] EXPLICIT Extensions` element, when there is one. */
  extensions: Tlv | undefined;
}

/** Walks the TBSCertificate: the one reader of its layout. */
export function tbsFields(der: Uint8Array): TbsFields {
  const [tbs] = children(readDer(der, { what: "the certificate" }));
  if (tbs === undefined) throw new DerError("empty certificate");
  const fields = children(tbs);
  const version = fields[0]?.tag === 0xa0 ? fields[0] : undefined; // DEFAULT v1
  const i = version ? 1 : 0;
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3]
  const serial = fields[i];
  const issuer = fields[i + 2];
  const validity = fields[i + 3];
  const subject = fields[i + 4];
  const spki = fields[i + 5];
  if (
    serial === undefined || issuer === undefined || validity === undefined ||
    subject === undefined || spki === undefined
  ) {
    throw new DerError("the certificate has no subject or no public key");
  }
  const extensions = fields.slice(i + 6).find((f) => f.tag === 0xa3);
  return {
    version,
    serial,
    validity: children(expectTag(validity, 0x30, "Validity")),
    issuer,
    subject,
    spki,
    extensions,
  };
}

/** Reads the version, the subject's first CN and the extended key usage from the DER. */
export function readTbs(
  der: Uint8Array,
): {
  version: number;
  commonName: string | undefined;
  extendedKeyUsage: string[] | undefined;
  isCA: boolean;
  fields: TbsFields;
} {
  const fields = tbsFields(der);
  const version = fields.version ? readSmallInt(explicit(fields.version, 0)) + 1 : 1;
  const { subject, extensions } = fields;
  let commonName: string | undefined;
  for (const rdn of children(expectTag(subject, 0x30, "the subject Name"))) {
    for (const atv of children(expectTag(rdn, 0x31, "a SET (RelativeDistinguishedName)"))) {
      const [type, value] = children(expectTag(atv, 0x30, "an AttributeTypeAndValue"));
      if (value === undefined) throw new DerError("an attribute of the subject has no value");
      if (commonName === undefined && readOid(type) === OID_CN) commonName = readString(value);
    }
  }
  let extendedKeyUsage: string[] | undefined;
  let isCA = false;
  if (extensions) {
    for (const ext of children(explicit(extensions, 3))) {
      const parts = children(ext);
      if (parts.length < 2) continue;
      const oid = readOid(parts[0]);
      const extnValue = parts[parts.length - 1];
      if (oid === OID_EKU) {
        const seq = readDer(extnValue.content, { allowTrailing: true });
        extendedKeyUsage = children(seq).map(readOid);
      } else if (oid === OID_BASIC_CONSTRAINTS) {
        // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint ... }
        const [ca] = children(readDer(extnValue.content, { allowTrailing: true }));
        isCA = ca?.tag === 0x01 && ca.content[0] !== 0;
      }
    }
  }
  return { version, commonName, extendedKeyUsage, isCA, fields };
}
