/**
 * Plain data types shared by the functional core. Everything here is serialisable except the
 * DER bytes, which the command line never prints.
 *
 * @module
 */

/** Store formats the readers understand; `der` is one DER certificate (a truststore only). */
export type StoreFormat = "jks" | "pkcs12" | "pem" | "der";

/** Public key algorithms of keys and certificates. */
export type KeyType = "rsa" | "rsa-pss" | "ec" | "ed25519" | "ed448" | "dsa" | "unknown";

/** The facts about one X.509 certificate the tool shows and checks. */
export interface CertificateSummary {
  /** Subject distinguished name, one `ATTR=value` per line joined with ", " (e.g. `CN=a, O=b`). */
  subject: string;
  /** Issuer distinguished name, same form as `subject`. */
  issuer: string;
  /** The subject's Common Name, or `undefined` when it has none. */
  commonName: string | undefined;
  /** Serial number, upper-case hex. */
  serialNumber: string;
  /** Start of validity, ISO 8601 (UTC). */
  notBefore: string;
  /** End of validity, ISO 8601 (UTC). */
  notAfter: string;
  /** SHA-256 fingerprint, upper-case hex pairs joined with ":". */
  sha256: string;
  /** Public key algorithm. */
  keyType: KeyType;
  /** Key size in bits (RSA modulus length; EC field size, e.g. 256 for P-256). */
  keySize: number | undefined;
  /** Named curve of an EC key in OpenSSL's names (e.g. `prime256v1`), otherwise `undefined`. */
  curve: string | undefined;
  /** Whether basicConstraints says CA:TRUE. */
  isCA: boolean;
  /** X.509 version: 1, 2 or 3. */
  version: number;
  /** Whether subject equals issuer and the certificate verifies with its own key. */
  selfSigned: boolean;
  /** Extended key usage OIDs, or `undefined` when the extension is absent (any use). */
  extendedKeyUsage: string[] | undefined;
}

/** A certificate as PEM and DER, with its summary. */
export interface Certificate {
  /** The certificate as one PEM block (ends with a newline). */
  pem: string;
  /** The certificate's DER bytes. */
  der: Uint8Array;
  /** Parsed facts. */
  summary: CertificateSummary;
}

/** A certificate from a truststore, with the alias it was stored under (if the format has one). */
export interface TrustedCertificate extends Certificate {
  /** The entry's alias (JKS, PKCS#12 friendly name); `undefined` for PEM files. */
  alias: string | undefined;
}

/**
 * A device's identity: its private key and certificate chain (leaf first), as read from a
 * keystore. This is what {@linkcode tlsOptions} and {@linkcode clientId} take.
 */
export interface DeviceIdentity {
  /** The format the keystore was read as. */
  format: StoreFormat;
  /** The alias of the key entry used (`undefined` for PEM). */
  alias: string | undefined;
  /** Every key entry alias in the store (to help choose with `--alias`). */
  aliases: string[];
  /** The private key, unencrypted PKCS#8 PEM. Never print it. */
  privateKeyPem: string;
  /** Algorithm of the private key. */
  keyType: KeyType;
  /** The certificate chain, leaf first, each certificate followed by its issuer. */
  chain: Certificate[];
  /**
   * The chain in the order the store holds it, present only when that order differs from
   * `chain` (so that checks can warn: other clients send the chain as stored).
   */
  chainAsStored?: Certificate[];
}

/** The CA certificates of a truststore. */
export interface TrustAnchors {
  /** The format the truststore was read as. */
  format: StoreFormat;
  /** The certificates, in store order. */
  certificates: TrustedCertificate[];
}

/**
 * One entry of a store as the format readers return it, before ordering and summarising.
 * Internal to the readers (`lib/stores/jks.ts`, `lib/stores/pkcs12/`, `lib/stores/pem.ts`) and
 * `lib/stores/load.ts`.
 */
export interface RawEntry {
  /** Alias / friendly name; `undefined` when the format has none. */
  alias: string | undefined;
  /**
   * Unencrypted PKCS#8 DER of the private key, when the store holds it unencrypted (PEM, a
   * PKCS#12 key bag); `undefined` for certificate-only entries and for encrypted keys.
   */
  privateKeyPkcs8: Uint8Array | undefined;
  /**
   * For an encrypted key: decrypts this entry's key alone (Java's `KeyStore.getKey(alias,
   * password)`), with `undefined` when no password was given. Rejects with `KEY_PASSWORD`
   * (wrong password given) or `KEY_PASSWORD_REQUIRED` (none given, and one is needed).
   */
  unlockKey?: (password: string | undefined) => Promise<Uint8Array>;
  /** DER certificates of the entry, in the order the store holds them. */
  certificates: Uint8Array[];
}

/** A store as the format readers return it. */
export interface RawStore {
  /** The format read. */
  format: StoreFormat;
  /** The entries, in store order. */
  entries: RawEntry[];
}

/** Severity of an offline problem: `error` stops `token`/`check` unless `--force`. */
export type Severity = "error" | "warning" | "info";

/** The code of an offline finding; `diagnose()` documents each with its severity. */
export type ProblemCode =
  | "CERT_EXPIRED"
  | "CERT_NOT_YET_VALID"
  | "CERT_EXPIRES_SOON"
  | "CN_MISSING"
  | "CN_COLON"
  | "CLIENT_ID_MISMATCH"
  | "CERT_V1"
  | "KEY_MISMATCH"
  | "KEY_INVALID"
  | "CA_FLAG_MISSING"
  | "CHAIN_TOO_LONG"
  | "EKU_NO_CLIENT_AUTH"
  | "RSA_KEY_TOO_SMALL"
  | "KEY_TYPE_UNSUPPORTED"
  | "CHAIN_EMPTY"
  | "CHAIN_ORDER"
  | "CHAIN_INCOMPLETE"
  | "CHAIN_UNTRUSTED"
  | "CHAIN_LEAF_ONLY"
  | "CHAIN_ANCHOR"
  | "TRUST_CERT_NOT_CA"
  | "TRUST_CERT_EXPIRED"
  | "TRUST_CERT_NOT_YET_VALID";

/** An offline finding about the stores or certificates. */
export interface Problem {
  /** Stable code, e.g. `CERT_EXPIRED`. */
  code: ProblemCode;
  /** How bad it is. */
  severity: Severity;
  /** One sentence naming the certificate (by CN or position) and what is wrong. */
  message: string;
  /** What to do about it, if there is something to do. */
  hint?: string;
}
