/**
 * X.501 distinguished names as text, read from the DER: every attribute in order, every
 * directory string type (UTF8String, PrintableString, TeletexString as Latin-1 as OpenSSL and
 * Java read it, BMPString, UniversalString, IA5String, ...), multi-valued RDNs joined with
 * ` + `, and any other value as `#` and its DER in hex (RFC 4514). `node:crypto` in Deno 2.9.6
 * refuses a whole certificate whose name holds a TeletexString with a Latin-1 byte ("invalid
 * attributes"), and shows a repeated attribute (two `OU`) once: names are therefore always
 * formatted here.
 *
 * @module
 */

import { hex } from "../encoding/bytes.ts";
import { children, expectTag, type Tlv } from "../encoding/der.ts";
import { readOid, readString } from "../encoding/der_values.ts";

/** Short names of attribute types, as OpenSSL and node:crypto print them. */
const ATTRIBUTE_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "surname",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "streetAddress",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.17": "postalCode",
  "2.5.4.41": "name",
  "2.5.4.42": "givenName",
  "2.5.4.43": "initials",
  "2.5.4.44": "generationQualifier",
  "2.5.4.46": "dnQualifier",
  "2.5.4.65": "pseudonym",
  "2.5.4.97": "organizationIdentifier",
  "0.9.2342.19200300.100.1.1": "uid",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.2.840.113549.1.9.1": "emailAddress",
};

/** One attribute of a name: its type's OID and short name, and its value as text. */
export interface NameAttribute {
  /** The attribute type, dotted. */
  oid: string;
  /** The short name (`CN`, `O`, ...), or the dotted OID for a type without one. */
  type: string;
  /** The value as text; values that are no string are `#` and their DER in hex. */
  value: string;
}

/**
 * The attributes of a Name, in DER order (the order OpenSSL's `-nameopt oneline` and Java's
 * `X500Principal` show reversed or not; this project shows it as stored), RDN by RDN.
 *
 * @param name The Name (a `SEQUENCE` of RDN `SET`s).
 * @returns One array per RDN, each with its attributes.
 * @throws {DerError} When the structure is not a Name.
 *
 * @example
 * ```ts
 * import { nameAttributes } from "./names.ts";
 * import { readDer } from "../encoding/der.ts";
 * // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, T61String "G\xe4" } } }
 * const der = new Uint8Array([0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03,
 *   0x14, 0x02, 0x47, 0xe4]);
 * if (nameAttributes(readDer(der))[0][0].value !== "Gä") throw new Error();
 * ```
 */
export function nameAttributes(name: Tlv): NameAttribute[][] {
  return children(expectTag(name, 0x30, "a Name")).map((rdn) =>
    children(expectTag(rdn, 0x31, "a SET (RelativeDistinguishedName)")).map((atv) => {
      const [type, value] = children(expectTag(atv, 0x30, "an AttributeTypeAndValue"));
      const oid = readOid(type);
      return { oid, type: ATTRIBUTE_NAMES[oid] ?? oid, value: attributeValue(value) };
    })
  );
}

/**
 * A Name as one line: `TYPE=value` per attribute in DER order, RDNs joined with `, `, the
 * attributes of a multi-valued RDN with ` + ` (e.g. `O=Acme, CN=device-01`).
 *
 * @param name The Name.
 * @returns The text; empty for an empty Name.
 * @throws {DerError} When the structure is not a Name.
 *
 * @example
 * ```ts
 * import { formatName } from "./names.ts";
 * import { readDer } from "../encoding/der.ts";
 * // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String "a" } } }
 * const der = new Uint8Array([0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03,
 *   0x0c, 0x01, 0x61]);
 * if (formatName(readDer(der)) !== "CN=a") throw new Error();
 * ```
 */
export function formatName(name: Tlv): string {
  return nameAttributes(name).map((rdn) => rdn.map((a) => `${a.type}=${a.value}`).join(" + "))
    .join(", ");
}

/** A value as text: a directory string decoded, anything else as `#` and its DER in hex. */
function attributeValue(value: Tlv | undefined): string {
  if (value === undefined) return "";
  try {
    return readString(value);
  } catch {
    return `#${hex(value.raw)}`;
  }
}
