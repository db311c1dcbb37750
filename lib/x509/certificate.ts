/**
 * X.509 certificates: parsing DER or PEM into a {@linkcode Certificate} (PEM, DER and a
 * {@linkcode CertificateSummary}).
 *
 * The summary is read from the DER with the project's small bounds-checked DER reader
 * (`der.ts`, which says why it is not a library), names with `names.ts` and key kinds with
 * `key_info.ts`, so that parsing stays synchronous and every certificate the real tools read is
 * read here too: Deno 2.9.6's `X509Certificate` refuses a name holding a Latin-1
 * TeletexString ("invalid attributes"), cannot load RSA-PSS or brainpool public keys, does not
 * expose the X.509 version, returns key usage bits for the extended key usage, and shows a
 * repeated attribute once. It is still used where it is right: signature checks and
 * `checkIssued` in {@linkcode issuedBy} for the certificates it reads.
 *
 @module
 */

import { createHash, X509Certificate } from "node:crypto";
import { equalBytes } from "../encoding/bytes.ts";
import { readDer } from "../encoding/der.ts";
import { readTbs, readTime, serialHex, tbsFields, verifiesWith } from "./tbs.ts";
import { StoreError } from "../errors.ts";
import { spkiInfo } from "./key_info.ts";
import { formatName } from "./names.ts";
import { type PemBlock, pemBlocks, toPem } from "../encoding/pem.ts";
import type { Certificate, CertificateSummary, KeyType } from "../types.ts";
/**
 * The most certificates a device chain may have: Cumulocity public cloud: at most 10
 * certificates, see c8y-facts ("Maximum chain length in the public cloud: 10"; other instances
 * may differ). The offline checks and the emulator both use it.
 *
 * @example
 * ```ts
 * import { MAX_CHAIN_LENGTH } from "./certificate.ts";
 * const chain = new Array(11).fill("certificate");
 * if (chain.length <= MAX_CHAIN_LENGTH) throw new Error("11 certificates are too many");
 * ```
 */
export const MAX_CHAIN_LENGTH = 10;

/**
 * The most certificates one keystore or truststore may carry. The JDK's `cacerts` and the
 * Debian CA bundle hold about 150; a store with more is refused (`STORE_TOO_MANY_CERTIFICATES`)
 * before its certificates are parsed, so that reading and ordering stay bounded.
 */
export const MAX_STORE_CERTIFICATES = 1000;

/**
 * The error for a store that carries more than {@linkcode MAX_STORE_CERTIFICATES}.
 *
 * @param subject How the message names the store, e.g. `Truststore "ca.pem"`.
 * @returns A `STORE_TOO_MANY_CERTIFICATES` {@linkcode StoreError}.
 *
 * @example
 * ```ts
 * import { tooManyCertificates } from "./certificate.ts";
 * if (!tooManyCertificates('Truststore "ca.pem"').message.includes("1000")) throw new Error();
 * ```
 */
export function tooManyCertificates(subject: string): StoreError {
  return new StoreError(
    `${subject} holds more than ${MAX_STORE_CERTIFICATES} certificates, the most this tool reads ` +
      "from one store",
    {
      code: "STORE_TOO_MANY_CERTIFICATES",
      hint: "Keep only the certificates that are needed (the device chain, or the server's CA).",
    },
  );
}

/** Options of {@linkcode parseCertificate} and {@linkcode certificatesFromPem}. */
export interface ParseCertificateOptions {
  /** Label of the certificate or file in error messages. @default "certificate" */
  name?: string;
}

/**
 * Parses one certificate given as DER bytes or as one PEM block (text or bytes).
 *
 * @param input DER bytes, or PEM text (only its first `CERTIFICATE` block is used).
 * @param options The label used in error messages.
 * @returns The certificate's PEM, DER and summary.
 * @throws {StoreError} `CERT_PARSE` when the input is not a certificate.
 *
 * @example Reading the facts of a certificate
 * ```ts
 * import { parseCertificate } from "../../mod.ts";
 * const pem = `-----BEGIN CERTIFICATE-----
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
 * -----END CERTIFICATE-----`;
 * const { summary } = parseCertificate(pem, { name: "example.pem" });
 * if (summary.subject !== "O=Example, CN=example-device") throw new Error(summary.subject);
 * if (summary.commonName !== "example-device" || summary.curve !== "prime256v1") throw new Error();
 * if (summary.version !== 3 || !summary.selfSigned || !summary.isCA) throw new Error();
 * ```
 *
 * @example Input that is not a certificate
 * ```ts
 * import { parseCertificate, StoreError } from "../../mod.ts";
 * try {
 *   parseCertificate(new Uint8Array([1, 2, 3]), { name: "device.pem" });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof StoreError) || err.code !== "CERT_PARSE") throw err;
 * }
 * ```
 */
export function parseCertificate(
  input: Uint8Array | string,
  options: ParseCertificateOptions = {},
): Certificate {
  const name = options.name ?? "certificate";
  let der: Uint8Array;
  try {
    der = toDer(input);
  } catch (cause) {
    throw parseError(name, cause);
  }
  let summary: CertificateSummary;
  try {
    summary = summarise(der);
  } catch (cause) {
    throw parseError(name, cause);
  }
  return { pem: toPem(der, "CERTIFICATE"), der, summary };
}

/**
 * Parses every certificate block of a PEM text (`CERTIFICATE`, `X509 CERTIFICATE`, and OpenSSL's
 * `TRUSTED CERTIFICATE`, whose trust settings are dropped), in order; other blocks are skipped.
 *
 * @param text PEM text (a chain file or a bundle of CAs).
 * @param options The label used in error messages (`name #2` for the second block).
 * @returns The certificates; empty when the text has no certificate block.
 * @throws {StoreError} `CERT_PARSE` when a block is not a certificate.
 *
 * @example
 * ```ts
 * import { certificatesFromPem } from "../../mod.ts";
 * if (certificatesFromPem("no blocks here").length !== 0) throw new Error("unexpected");
 * ```
 */
export function certificatesFromPem(
  text: string,
  options: ParseCertificateOptions = {},
): Certificate[] {
  const name = options.name ?? "certificate";
  let blocks;
  try {
    blocks = pemBlocks(text);
  } catch (cause) {
    throw parseError(name, cause);
  }
  return blocks.map(certificateDer).filter((der) => der !== undefined)
    .map((der, i, all) =>
      parseCertificate(der, { name: all.length > 1 ? `${name} #${i + 1}` : name })
    );
}

function parseError(name: string, cause: unknown): StoreError {
  return new StoreError(`Cannot parse "${name}" as an X.509 certificate`, {
    code: "CERT_PARSE",
    hint: "Give a DER or PEM (-----BEGIN CERTIFICATE-----) certificate.",
    cause,
  });
}

/** Labels of blocks holding an X.509 certificate. */
const CERT_LABELS = new Set(["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"]);

/**
 * The certificate of a PEM block, when the block holds one: `CERTIFICATE`, `X509 CERTIFICATE`,
 * or OpenSSL's `TRUSTED CERTIFICATE` (the certificate followed by trust settings, which are
 * dropped here). Every reader of certificates from PEM goes through this, so they all accept the
 * same blocks.
 *
 * @param block A block from {@linkcode pemBlocks}.
 * @returns The certificate's DER, or `undefined` for a block of another kind (a key, a CRL).
 *   A body that is not DER is returned unchanged, for the certificate parser to name the problem.
 *
 * @example
 * ```ts
 * import { certificateDer } from "./certificate.ts";
 * import { pemBlocks, toPem } from "../encoding/pem.ts";
 * // A TRUSTED CERTIFICATE is an element (here the stand-in 30 00) followed by trust settings.
 * const text = toPem(new Uint8Array([0x30, 0x00, 0x30, 0x00]), "TRUSTED CERTIFICATE") +
 *   toPem(new Uint8Array([1]), "PRIVATE KEY");
 * const [trusted, key] = pemBlocks(text);
 * if (certificateDer(trusted)?.length !== 2) throw new Error("trust settings expected dropped");
 * if (certificateDer(key) !== undefined) throw new Error("a key is no certificate");
 * ```
 */
export function certificateDer(block: PemBlock): Uint8Array | undefined {
  if (!CERT_LABELS.has(block.label)) return undefined;
  return block.label === "TRUSTED CERTIFICATE" ? firstElement(block.der) : block.der;
}

/**
 * The first DER element of `der` (an OpenSSL `TRUSTED CERTIFICATE` is the certificate followed
 * by trust settings). Returns `der` unchanged when it cannot be measured.
 */
function firstElement(der: Uint8Array): Uint8Array {
  try {
    return readDer(der, { allowTrailing: true }).raw;
  } catch {
    return der; // Not DER: the certificate parser names the problem.
  }
}

function toDer(input: Uint8Array | string): Uint8Array {
  let text: string;
  if (typeof input === "string") {
    text = input;
  } else {
    const head = new TextDecoder().decode(input.subarray(0, 256));
    if (!head.includes("-----BEGIN ")) return input;
    text = new TextDecoder().decode(input);
  }
  const der = pemBlocks(text).map(certificateDer).find((d) => d !== undefined);
  if (!der) throw new SyntaxError("no CERTIFICATE block");
  // Only the certificate itself, without anything after it.
  return readDer(der, { allowTrailing: true }).raw;
}

/**
 * The summary, read from the DER alone: node:crypto's `X509Certificate` refuses certificates
 * whose names hold a Latin-1 TeletexString ("invalid attributes") and cannot load every public
 * key, and such certificates must still be shown, named and checked.
 */
function summarise(der: Uint8Array): CertificateSummary {
  const tbs = readTbs(der);
  const subject = formatName(tbs.fields.subject);
  const issuer = formatName(tbs.fields.issuer);
  const { keyType, curve, keySize } = spkiInfo(tbs.fields.spki);
  const selfSigned = subject === issuer && verifiesWith(der, tbs.fields.spki);
  return {
    subject,
    issuer,
    commonName: tbs.commonName,
    serialNumber: serialHex(tbs.fields.serial),
    notBefore: readTime(tbs.fields.validity[0]).toISOString(),
    notAfter: readTime(tbs.fields.validity[1]).toISOString(),
    sha256: createHash("sha256").update(der).digest("hex").toUpperCase().match(/../g)!.join(":"),
    keyType,
    keySize,
    curve,
    isCA: tbs.isCA,
    version: tbs.version,
    selfSigned,
    extendedKeyUsage: tbs.extendedKeyUsage,
  };
}

/**
 * Tells whether `parent` issued `child`: `child` names `parent` as its issuer (node:crypto's
 * `checkIssued`) and `parent`'s public key verifies `child`'s signature. Give a certificate the
 * same object twice to ask whether it is self-issued. The one "who issued whom" test of the
 * project: chain ordering (keystore), the offline checks (diagnose) and the emulator use it.
 *
 * @param child The certificate that may have been issued, parsed or as node:crypto object.
 * @param parent The possible issuer, parsed or as node:crypto object.
 * @returns `true` when both tests pass; `false` otherwise, also when either certificate cannot be
 *   read by node:crypto. Never throws.
 *
 * @example A self-signed certificate issued itself
 * ```ts
 * import { issuedBy, parseCertificate } from "./certificate.ts";
 * const ca = parseCertificate(`-----BEGIN CERTIFICATE-----
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
 * -----END CERTIFICATE-----`);
 * if (!issuedBy(ca, ca)) throw new Error("a self-signed certificate issued itself");
 * const broken = { ...ca, der: new Uint8Array([0x30, 0x00]) };
 * if (issuedBy(broken, ca)) throw new Error("an unreadable certificate is issued by nobody");
 * ```
 */
export function issuedBy(
  child: Certificate | X509Certificate,
  parent: Certificate | X509Certificate,
): boolean {
  let c: X509Certificate;
  let p: X509Certificate;
  try {
    c = toX509(child);
    p = parent === child ? c : toX509(parent);
  } catch {
    // node:crypto cannot read one of them (a Latin-1 TeletexString in a name): the names and
    // the signature are compared from the DER.
    return issuedByDer(derOf(child), derOf(parent));
  }
  try {
    return c.checkIssued(p) && c.verify(p.publicKey);
  } catch {
    return false;
  }
}

function derOf(cert: Certificate | X509Certificate): Uint8Array {
  return cert instanceof X509Certificate ? new Uint8Array(cert.raw) : cert.der;
}

/** `issuedBy()` from the DER: the child names the parent's subject, and the parent's key signed it. */
function issuedByDer(child: Uint8Array, parent: Uint8Array): boolean {
  try {
    const c = tbsFields(child);
    const p = tbsFields(parent);
    const sameName = equalBytes(c.issuer.raw, p.subject.raw) ||
      formatName(c.issuer) === formatName(p.subject);
    return sameName && verifiesWith(child, p.spki);
  } catch {
    return false;
  }
}

function toX509(cert: Certificate | X509Certificate): X509Certificate {
  return cert instanceof X509Certificate ? cert : new X509Certificate(cert.der);
}

/**
 * Maps `KeyObject.asymmetricKeyType` to a {@linkcode KeyType}.
 *
 * @param type The `asymmetricKeyType` of a key (`rsa`, `rsa-pss`, `ec`, ...).
 * @returns The key type, `unknown` for anything else.
 *
 * @example
 * ```ts
 * import { toKeyType } from "./certificate.ts";
 * if (toKeyType("rsa-pss") !== "rsa-pss" || toKeyType("x25519") !== "unknown") throw new Error();
 * ```
 */
export function toKeyType(type: string | undefined): KeyType {
  switch (type) {
    case "rsa":
    case "rsa-pss":
    case "ec":
    case "ed25519":
    case "ed448":
    case "dsa":
      return type;
    default:
      return "unknown";
  }
}
