/**
 * Offline checks of a device identity and its truststores: everything that can be found wrong
 * before a connection is attempted, as a list of {@linkcode Problem}s with a severity, a message
 * that names the certificate (`certificate 1 (CN=device-rsa-001)`) and a hint.
 *
 * The checks are pure and synchronous: certificate fields come from each certificate's
 * {@linkcode CertificateSummary}; the relations between certificates (who issued whom, whether
 * the private key belongs to a certificate) come from `node:crypto` (`X509Certificate.verify`,
 * `createPublicKey`).
 *
 * ## Severities
 *
 * `error` means the platform or the TLS stack will refuse the connection, so `token` and
 * `check` stop before connecting (unless `--force`). Per code:
 *
 * | Code | Severity | Why |
 * |---|---|---|
 * | `CERT_EXPIRED`, `CERT_NOT_YET_VALID` | error | Every TLS peer checks the validity window. |
 * | `CN_MISSING`, `CN_COLON` | error | The client id's device identifier must equal the leaf CN, and `:` separates the client id's parts (c8y-facts). |
 * | `CLIENT_ID_MISMATCH` | error | Same rule: the platform answers CONNACK 5 (c8y-facts). |
 * | `CERT_V1` | error | rustls/webpki refuse v1 (`UnsupportedCertVersion`); trusted CAs must be v3 (c8y-facts). Measured: an OpenSSL 3.0 `s_server` still accepts a v1 device leaf, so whether Cumulocity refuses a v1 *leaf* is *unverified*. |
 * | `KEY_MISMATCH`, `KEY_INVALID` | error | The TLS handshake cannot prove possession of the certificate's key. |
 * | `CA_FLAG_MISSING` | error | "Every signing certificate needs BasicConstraints CA:TRUE" (c8y-facts). |
 * | `CHAIN_TOO_LONG` | error | "Maximum chain length in the public cloud: 10" (c8y-facts; other instances may differ). |
 * | `EKU_NO_CLIENT_AUTH` | error | RFC 5280 §4.2.1.12: the certificate may only be used for the listed purposes. Measured: an OpenSSL 3.0 `s_server` refuses it ("unsuitable certificate purpose"; the client sees the alert `UnsupportedCertificate`). *Unverified* for Cumulocity itself. |
 * | `RSA_KEY_TOO_SMALL` | error | Measured: Deno 2.9.6's `node:tls` refuses a 1024-bit client key before connecting (`tls.connect` throws "key too small"); OpenSSL's default security level 2 refuses such keys too. |
 * | `CHAIN_EMPTY` | error | There is no certificate to present. |
 * | `KEY_TYPE_UNSUPPORTED` | error | Measured against mosquitto with `require_certificate true` (tests/keytypes_test.ts): Deno 2.9.6's TLS client presents only RSA, ECDSA on P-256/P-384/P-521 and Ed25519 keys; RSA-PSS, secp256k1, brainpool, Ed448 and DSA keys fail in the handshake ("unsupported protocol"). |
 * | `CHAIN_ORDER`, `CHAIN_INCOMPLETE`, `CHAIN_UNTRUSTED` | warning | The store readers order chains, and the platform may complete a chain from its trusted certificates, so these may still work (issue 2: "chain order and gaps (warning)"). |
 * | `CERT_EXPIRES_SOON` | warning | Works today. |
 * | `TRUST_CERT_NOT_CA`, `TRUST_CERT_EXPIRED`, `TRUST_CERT_NOT_YET_VALID` | warning | One bad entry of a truststore does not make the others useless. |
 * | `CHAIN_LEAF_ONLY`, `CHAIN_ANCHOR` | info | What the tenant must trust; nothing is wrong. |
 *
 * ## Which truststore is compared with the device chain
 *
 * The command line's `--truststore` holds the **server's** CA, which never issues device
 * certificates: it is checked on its own (`trust`) and never compared with the device chain. A
 * set of CAs the platform trusts for device certificates (the tenant's trusted certificates, or
 * the emulator's `--trust`) can be passed as `tenantTrust`; only then is `CHAIN_UNTRUSTED`
 * reported. Without it the chain is judged alone, and an `info` problem says which certificate
 * the tenant must trust.
 *
 * @module
 */

import { checkNumberOption } from "../check_option.ts";
import { UsageError } from "../errors.ts";
import type { DeviceIdentity, Problem, Severity, TrustAnchors } from "../types.ts";
import { checkIdentity } from "./identity.ts";
import { checkTrust } from "./trust.ts";
import { DAY } from "./wording.ts";

/** What {@linkcode diagnose} checks. Every field is optional; absent parts are not checked. */
export interface DiagnoseInput {
  /**
   * The device's private key and chain (leaf first). An empty `privateKeyPem` skips the key
   * check (for a chain without a key).
   */
  identity?: DeviceIdentity;
  /** A truststore checked on its own (normally the server's CA from `--truststore`). */
  trust?: TrustAnchors;
  /**
   * The CAs the platform trusts for device certificates (tenant trusted certificates, the
   * emulator's trust). When given, a device chain that reaches none of them is `CHAIN_UNTRUSTED`.
   */
  tenantTrust?: TrustAnchors;
  /** The MQTT client id the device will use (`--client-id`), checked against the leaf CN. */
  clientId?: string;
  /** The local clock. @default new Date() */
  now?: Date;
  /** A certificate expiring within this many days is `CERT_EXPIRES_SOON`. @default 30 */
  expiresSoonDays?: number;
}

/**
 * Runs every offline check on a device identity, a truststore and a client id.
 *
 * @param input The identity, truststores, client id and clock to check; see
 *   {@linkcode DiagnoseInput}.
 * @returns The problems found: errors first, then warnings, then info, each group in the order
 *   found; empty when nothing is wrong. Never throws for bad certificates.
 * @throws {UsageError} `OPTION_INVALID` for a negative `expiresSoonDays` or an invalid `now`.
 *
 * @example Nothing given, nothing wrong
 * ```ts
 * import { diagnose, hasErrors, type TrustAnchors } from "../../mod.ts";
 * const empty: TrustAnchors = { format: "pem", certificates: [] };
 * if (diagnose({ trust: empty }).length !== 0) throw new Error("an empty store has no problems");
 * if (hasErrors(diagnose())) throw new Error("nothing to check, nothing wrong");
 * ```
 */
export function diagnose(input: DiagnoseInput = {}): Problem[] {
  const now = input.now ?? new Date();
  if (Number.isNaN(now.getTime())) {
    throw new UsageError("The option now is an invalid date", {
      code: "OPTION_INVALID",
      hint: "Give now a valid Date, or leave it out for the current time.",
    });
  }
  const soonDays = checkNumberOption("expiresSoonDays", input.expiresSoonDays, {
    min: 0,
    integer: false,
  });
  const soonMs = (soonDays ?? 30) * DAY;
  const found: Problem[] = [];
  if (input.identity) {
    checkIdentity(input.identity, input.tenantTrust, input.clientId, now, soonMs, found);
  }
  if (input.trust) checkTrust(input.trust, "truststore certificate", now, found);
  if (input.tenantTrust && input.tenantTrust !== input.trust) {
    checkTrust(input.tenantTrust, "tenant trusted certificate", now, found);
  }
  return sortAndDedupe(found);
}

/**
 * Tells whether any problem has severity `error` (these stop `token` and `check`).
 *
 * @param problems Problems from {@linkcode diagnose}.
 * @returns `true` when at least one is an error.
 *
 * @example
 * ```ts
 * import { hasErrors, type Problem } from "../../mod.ts";
 * const warning: Problem = { code: "CHAIN_ORDER", severity: "warning", message: "..." };
 * if (hasErrors([warning])) throw new Error("a warning is not an error");
 * ```
 */
export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === "error");
}

const RANK: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

function sortAndDedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const key = `${p.code}\u0000${p.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => RANK[a.severity] - RANK[b.severity]);
}
