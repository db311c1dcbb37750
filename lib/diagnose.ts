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

import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { equalBytes } from "./encoding/bytes.ts";
import { issuedBy as certIssuedBy, MAX_CHAIN_LENGTH } from "./x509/certificate.ts";
import { parseClientId } from "./client_id.ts";
import { describeKey, TLS_CLIENT_KEYS, tlsClientCanPresent } from "./x509/key_info.ts";
import { checkNumberOption } from "./check_option.ts";
import { UsageError } from "./errors.ts";
import type {
  Certificate,
  DeviceIdentity,
  Problem,
  Severity,
  TrustAnchors,
  TrustedCertificate,
} from "./types.ts";

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

const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const OID_ANY_EKU = "2.5.29.37.0";
const MIN_RSA_BITS = 2048;
/** A start date closer than this is more likely a wrong clock than a wrong certificate. */
const CLOCK_SKEW_MS = 2 * 24 * 3600_000;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

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
 * import { diagnose, hasErrors, type TrustAnchors } from "../mod.ts";
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
 * import { hasErrors, type Problem } from "../mod.ts";
 * const warning: Problem = { code: "CHAIN_ORDER", severity: "warning", message: "..." };
 * if (hasErrors([warning])) throw new Error("a warning is not an error");
 * ```
 */
export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === "error");
}

/**
 * Says a duration in the largest whole unit: `3 days`, `2 hours`, `1 minute`.
 *
 * @param ms The duration in milliseconds (the sign is ignored).
 * @returns A phrase such as `25 years`, `less than a second` below one second.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./diagnose.ts";
 * if (formatDuration(3 * 24 * 3600_000 + 5000) !== "3 days") throw new Error();
 * if (formatDuration(-60_000) !== "1 minute") throw new Error();
 * ```
 */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const units: [number, string][] = [
    [YEAR, "year"],
    [DAY, "day"],
    [HOUR, "hour"],
    [MINUTE, "minute"],
    [SECOND, "second"],
  ];
  for (const [size, name] of units) {
    const n = Math.floor(abs / size);
    if (n >= 1) return `${n} ${name}${n === 1 ? "" : "s"}`;
  }
  return "less than a second";
}

// ---- the device identity ---------------------------------------------------------------------

interface Node {
  cert: Certificate;
  /** `undefined` when node:crypto cannot parse the DER (then no relation can be checked). */
  x509: X509Certificate | undefined;
  /** `certificate 1 (CN=device-rsa-001)`. */
  label: string;
}

function checkIdentity(
  identity: DeviceIdentity,
  tenantTrust: TrustAnchors | undefined,
  clientId: string | undefined,
  now: Date,
  soonMs: number,
  out: Problem[],
): void {
  // Judge the order the store holds: other clients send the chain as stored.
  const chain = identity.chainAsStored ?? identity.chain;
  if (chain.length === 0) {
    out.push({
      code: "CHAIN_EMPTY",
      severity: "error",
      message: "The keystore entry has no certificate: there is nothing to present to the server.",
      hint: "Import the device certificate (and its chain) together with the private key.",
    });
    return;
  }
  const nodes: Node[] = chain.map((cert, i) => ({
    cert,
    x509: toX509(cert),
    label: `certificate ${i + 1} (${nameOf(cert)})`,
  }));

  // The key the TLS client must present is the leaf's (the key itself matches it, or
  // KEY_MISMATCH says otherwise).
  const leafKey = identity.chain[0]?.summary;
  if (leafKey !== undefined && !tlsClientCanPresent(leafKey)) {
    out.push({
      code: "KEY_TYPE_UNSUPPORTED",
      severity: "error",
      message: `The device certificate (${nameOf(identity.chain[0])}) has ${
        describeKey(leafKey)
      }, which Deno's TLS client cannot present; it can present ${TLS_CLIENT_KEYS}.`,
      hint: "Issue the device a certificate with an ECDSA P-256 key (or RSA 2048+) and use that.",
    });
  }

  if (chain.length > MAX_CHAIN_LENGTH) {
    out.push({
      code: "CHAIN_TOO_LONG",
      severity: "error",
      message: `The device chain has ${chain.length} certificates; the platform accepts at most ` +
        `${MAX_CHAIN_LENGTH} in the public cloud.`,
      hint: "Send a shorter chain: the leaf and the intermediates up to a CA the tenant trusts.",
    });
  }

  // Which certificate is the device's own: the one the private key belongs to.
  const key = matchKey(identity.privateKeyPem, nodes, out);
  const leafIndex = key ?? guessLeaf(nodes);
  const leaf = nodes[leafIndex];

  for (const node of nodes) checkValidity(node, now, soonMs, out);
  for (const node of nodes) checkVersionAndKeySize(node, out);
  checkLeaf(leaf, clientId, out);
  checkChain(nodes, leafIndex, key !== undefined, tenantTrust, out);
}

function matchKey(pem: string, nodes: Node[], out: Problem[]): number | undefined {
  if (pem === "") return undefined;
  let spki: Uint8Array;
  try {
    spki = createPublicKey(createPrivateKey(pem)).export({ type: "spki", format: "der" });
  } catch {
    // Never include the key or the dependency's message (it may quote the input).
    out.push({
      code: "KEY_INVALID",
      severity: "error",
      message: `The private key of the device cannot be read, so it cannot be matched with ` +
        `${nodes[0].label}.`,
      hint: "Give an unencrypted PKCS#8 key, or the keystore password that decrypts it.",
    });
    return undefined;
  }
  const index = nodes.findIndex((n) => sameKey(n.x509, spki));
  if (index >= 0) return index;
  out.push({
    code: "KEY_MISMATCH",
    severity: "error",
    message: `The private key does not belong to ${nodes[0].label}: their public keys differ.`,
    hint: "Use the key the certificate was issued for (another --alias or --key), or the " +
      "certificate issued for this key.",
  });
  return undefined;
}

function sameKey(x509: X509Certificate | undefined, spki: Uint8Array): boolean {
  if (!x509) return false;
  try {
    return equalBytes(x509.publicKey.export({ type: "spki", format: "der" }), spki);
  } catch {
    return false;
  }
}

/** Without a usable key: the only certificate that issues no other one, else the first. */
function guessLeaf(nodes: Node[]): number {
  const notIssuers = nodes
    .map((_, i) => i)
    .filter((i) => !nodes.some((child, j) => j !== i && issuedBy(child, nodes[i])));
  return notIssuers.length === 1 ? notIssuers[0] : 0;
}

function checkValidity(node: Node, now: Date, soonMs: number, out: Problem[]): void {
  const s = node.cert.summary;
  const notBefore = Date.parse(s.notBefore);
  const notAfter = Date.parse(s.notAfter);
  const t = now.getTime();
  const clock = `the local clock says ${now.toISOString()}`;
  if (t > notAfter) {
    const ago = t - notAfter;
    out.push({
      code: "CERT_EXPIRED",
      severity: "error",
      message: `${cap(node.label)} expired ${formatDuration(ago)} ago (valid until ` +
        `${s.notAfter}; ${clock}).`,
      hint: ago < CLOCK_SKEW_MS
        ? "The local clock may be ahead: check it (NTP). Otherwise renew the certificate."
        : "Renew the certificate. If it should still be valid, the local clock may be wrong: " +
          "check it (NTP).",
    });
  } else if (t < notBefore) {
    const ahead = notBefore - t;
    out.push({
      code: "CERT_NOT_YET_VALID",
      severity: "error",
      message:
        `${cap(node.label)} is not valid yet: it becomes valid in ${formatDuration(ahead)} ` +
        `(on ${s.notBefore}; ${clock}).`,
      hint: ahead < CLOCK_SKEW_MS
        ? `The local clock is probably behind by about ${formatDuration(ahead)}: set it (NTP) ` +
          "and try again."
        : "The certificate was issued with a start date in the future: reissue it (or check " +
          "the local clock).",
    });
  } else if (notAfter - t <= soonMs) {
    out.push({
      code: "CERT_EXPIRES_SOON",
      severity: "warning",
      message: `${cap(node.label)} expires in ${formatDuration(notAfter - t)} (on ${s.notAfter}).`,
      hint: "Renew it before then.",
    });
  }
}

function checkVersionAndKeySize(node: Node, out: Problem[]): void {
  const s = node.cert.summary;
  if (s.version < 3) {
    out.push({
      code: "CERT_V1",
      severity: "error",
      message: `${cap(node.label)} is an X.509 version ${s.version} certificate: ` +
        "TLS stacks based on rustls/webpki refuse it (UnsupportedCertVersion), and the " +
        "platform requires version 3 for trusted CA certificates. Whether Cumulocity itself " +
        "refuses a v1 device or intermediate certificate is unverified.",
      hint: "Reissue it as X.509 v3 with extensions (openssl x509 -req ... -extfile FILE " +
        "-extensions SECTION).",
    });
  }
  if (s.keyType === "rsa" && s.keySize !== undefined && s.keySize < MIN_RSA_BITS) {
    out.push({
      code: "RSA_KEY_TOO_SMALL",
      severity: "error",
      message: `${cap(node.label)} has a ${s.keySize}-bit RSA key; TLS libraries (Deno's ` +
        `node:tls, OpenSSL by default) refuse RSA keys under ${MIN_RSA_BITS} bits.`,
      hint: `Reissue it with an RSA key of at least ${MIN_RSA_BITS} bits, or an EC P-256 key.`,
    });
  }
}

function checkLeaf(leaf: Node, clientId: string | undefined, out: Problem[]): void {
  const s = leaf.cert.summary;
  const cn = s.commonName;
  if (cn === undefined || cn === "") {
    out.push({
      code: "CN_MISSING",
      severity: "error",
      message: `The device ${leaf.label} has no Common Name: the platform takes the device ` +
        "identifier from it.",
      hint: "Reissue the certificate with the device identifier as CN.",
    });
  } else if (cn.includes(":")) {
    out.push({
      code: "CN_COLON",
      severity: "error",
      message: `The device ${leaf.label} has a ':' in its Common Name "${cn}": ':' separates ` +
        "the parts of the MQTT client id, so the CN cannot be the device identifier.",
      hint: "Reissue the certificate with a CN without ':' (for example with '-' instead).",
    });
  }
  if (clientId !== undefined) {
    const usableCn = cn === undefined || cn === "" || cn.includes(":") ? undefined : cn;
    // An id that names no device is wrong whatever the certificate says: reported in any case.
    const device = deviceOfClientId(clientId, leaf, usableCn, out);
    if (usableCn !== undefined && device !== undefined && device !== usableCn) {
      out.push({
        code: "CLIENT_ID_MISMATCH",
        severity: "error",
        message: `The client id "${clientId}" names device "${device}", but ${leaf.label} is ` +
          `for "${usableCn}": the platform requires them to be equal.`,
        hint: `Use --client-id d:${usableCn}, or leave --client-id out.`,
      });
    }
  }
  const eku = s.extendedKeyUsage;
  if (eku !== undefined && !eku.includes(OID_CLIENT_AUTH) && !eku.includes(OID_ANY_EKU)) {
    out.push({
      code: "EKU_NO_CLIENT_AUTH",
      severity: "error",
      message: `The device ${leaf.label} has an extended key usage without clientAuth ` +
        `(${eku.length ? eku.map(ekuName).join(", ") : "empty"}): it may not be used as a TLS ` +
        "client certificate. OpenSSL-based servers refuse it (unsuitable certificate purpose); " +
        "whether Cumulocity does is unverified.",
      hint: "Reissue it with extendedKeyUsage = clientAuth (or without the extension).",
    });
  }
}

/**
 * The device identifier of a client id (`<id>`, `d:<id>` or `d:<id>:<template>`, read by
 * `parseClientId`). For any other id, pushes `CLIENT_ID_MISMATCH` and returns `undefined`.
 */
function deviceOfClientId(
  clientId: string,
  leaf: Node,
  cn: string | undefined,
  out: Problem[],
): string | undefined {
  const hint = cn === undefined
    ? "Leave --client-id out to use d:<certificate CN>, or give d:<CN>."
    : `Use --client-id d:${cn}, or leave --client-id out.`;
  let why: string;
  try {
    const parts = parseClientId(clientId);
    if (parts.connectionType === "d") return parts.deviceIdentifier;
    why = `its connection type "${parts.connectionType}" is not "d", the type of a device ` +
      "with a certificate";
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    why = "it is empty, has an empty part or more than three parts";
  }
  out.push({
    code: "CLIENT_ID_MISMATCH",
    severity: "error",
    message: `The client id "${clientId}" is not of the form <id>, d:<id> or d:<id>:<template> ` +
      `(${why}), so it cannot match ${leaf.label}.`,
    hint,
  });
  return undefined;
}

function ekuName(oid: string): string {
  const names: Record<string, string> = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
  };
  return names[oid] ?? oid;
}

function checkChain(
  nodes: Node[],
  leafIndex: number,
  keyKnown: boolean,
  tenantTrust: TrustAnchors | undefined,
  out: Problem[],
): void {
  // Walk from the leaf to its issuers among the given certificates, preferring the next one.
  const path = [leafIndex];
  for (let cur = leafIndex; !nodes[cur].cert.summary.selfSigned;) {
    const candidates = [cur + 1, ...nodes.keys()];
    const next = candidates.find((j) =>
      j < nodes.length && !path.includes(j) && issuedBy(nodes[cur], nodes[j])
    );
    if (next === undefined) break;
    path.push(next);
    cur = next;
  }

  // Every certificate that signs another one must be a CA.
  for (let k = 1; k < path.length; k++) {
    const issuer = nodes[path[k]];
    if (!issuer.cert.summary.isCA) {
      out.push({
        code: "CA_FLAG_MISSING",
        severity: "error",
        message: `${cap(issuer.label)} signs ${nodes[path[k - 1]].label} but is not a CA ` +
          "(basicConstraints CA:TRUE is missing).",
        hint: "Reissue the issuing certificate with basicConstraints = critical,CA:TRUE.",
      });
    }
  }

  const end = nodes[path[path.length - 1]];
  const endSelfSigned = end.cert.summary.selfSigned;
  const extras = [...nodes.keys()].filter((i) => !path.includes(i));
  const reached = tenantTrust ? reachesTrust(nodes, path, tenantTrust) : undefined;

  // Order: the path must be the certificates 1, 2, 3, ... in that order.
  const outOfOrder = path.findIndex((index, k) => index !== k);
  if (outOfOrder === 0) {
    out.push({
      code: "CHAIN_ORDER",
      severity: "warning",
      message: `The device chain starts with ${nodes[0].label}, but the device certificate is ` +
        `${leaf(nodes, leafIndex, keyKnown)}: it must come first, each certificate followed ` +
        `by its issuer (order: ${path.map((i) => i + 1).join(", ")}).`,
      hint: "Reorder the certificates: leaf first, then its issuer, up to the root.",
    });
  } else if (outOfOrder > 0) {
    out.push({
      code: "CHAIN_ORDER",
      severity: "warning",
      message: `${cap(nodes[outOfOrder].label)} does not issue ` +
        `${nodes[path[outOfOrder - 1]].label}: each certificate must be followed by its issuer ` +
        `(order: ${path.map((i) => i + 1).join(", ")}).`,
      hint: "Reorder the certificates: leaf first, then its issuer, up to the root.",
    });
  }

  if (extras.length > 0) {
    const names = listOf(extras.map((i) => nodes[i].label));
    if (!endSelfSigned && !reached) {
      out.push({
        code: "CHAIN_INCOMPLETE",
        severity: "warning",
        message: `The device chain has a gap: ${end.label} is issued by ` +
          `"${end.cert.summary.issuer}", which is not in the chain, so ${names} ` +
          `${extras.length === 1 ? "does" : "do"} not connect to the device certificate.`,
        hint: `Add the certificate of "${end.cert.summary.issuer}" to the chain after ` +
          `${end.label}, or upload it to the tenant's trusted certificates.`,
      });
    } else {
      out.push({
        code: "CHAIN_ORDER",
        severity: "warning",
        message: `${cap(names)} ${extras.length === 1 ? "is" : "are"} not part of the device ` +
          `certificate's chain (${extras.length === 1 ? "it issues" : "they issue"} none of ` +
          "its certificates).",
        hint: "Remove the unrelated certificates from the keystore entry.",
      });
    }
  }

  // What the tenant must trust.
  // Only CA certificates can anchor a chain (a CA_FLAG_MISSING issuer cannot).
  const cas = path.slice(1).map((i) => nodes[i]).filter((n) => n.cert.summary.isCA);
  const anchors = [
    ...cas.map((n) => `"${n.cert.summary.subject}"`),
    ...(endSelfSigned ? [] : [`"${end.cert.summary.issuer}"`]),
  ];
  if (reached === false) {
    out.push({
      code: "CHAIN_UNTRUSTED",
      severity: "warning",
      message: `The device chain (ending at ${end.label}) reaches none of the ` +
        `${tenantTrust!.certificates.length} tenant trusted certificates; the platform will ` +
        `refuse it unless ${anchors.length ? oneOf(anchors) : "one of its certificates"} ` +
        "is trusted.",
      hint: `Upload ${anchors.length ? anchors.at(-1) : "the issuing CA"} to the tenant's ` +
        "trusted certificates.",
    });
  } else if (reached === undefined && (extras.length === 0 || endSelfSigned)) {
    // A chain with a gap is CHAIN_INCOMPLETE (above), whose hint names the missing issuer: a
    // leaf followed by unconnected certificates is not a device sending "only its own".
    if (path.length === 1 && !endSelfSigned) {
      out.push({
        code: "CHAIN_LEAF_ONLY",
        severity: "info",
        message: `The device sends only its own ${end.label}: its immediate issuer ` +
          `"${end.cert.summary.issuer}" must be in the tenant's trusted certificates.`,
        hint: `Upload "${end.cert.summary.issuer}" to the tenant's trusted certificates, or put ` +
          "the issuer chain into the keystore entry.",
      });
    } else if (path.length === 1) {
      out.push({
        code: "CHAIN_ANCHOR",
        severity: "info",
        message: `The device ${end.label} is self-signed: the tenant must trust this very ` +
          "certificate.",
        hint: "Upload it to the tenant's trusted certificates unless it is there already.",
      });
    } else if (anchors.length > 0) {
      out.push({
        code: "CHAIN_ANCHOR",
        severity: "info",
        message: `The device chain ends at ${end.label}${endSelfSigned ? " (a root)" : ""}: ` +
          `the tenant must trust ${oneOf(anchors)}.`,
        hint: `Upload ${anchors.at(-1)} to the tenant's trusted certificates unless it is ` +
          "there already.",
      });
    }
  }
}

function leaf(nodes: Node[], leafIndex: number, keyKnown: boolean): string {
  return `${nodes[leafIndex].label}${keyKnown ? " (the private key belongs to it)" : ""}`;
}

/** Whether a CA of the path (or the leaf, if self-signed) is trusted, or a trusted CA issued the end. */
function reachesTrust(nodes: Node[], path: number[], trust: TrustAnchors): boolean {
  const trusted = new Set(trust.certificates.map((c) => c.summary.sha256));
  const inChain = (path.length === 1 ? path : path.slice(1))
    .some((i) => trusted.has(nodes[i].cert.summary.sha256));
  if (inChain) return true;
  const end = nodes[path[path.length - 1]];
  return trust.certificates.some((c) => issuedBy(end, { cert: c, x509: toX509(c), label: "" }));
}

/** Whether `parent` issued `child` (see certificate.ts); never for an unreadable certificate. */
function issuedBy(child: Node, parent: Node): boolean {
  return child.x509 !== undefined && parent.x509 !== undefined &&
    certIssuedBy(child.x509, parent.x509);
}

// ---- truststores -----------------------------------------------------------------------------

function checkTrust(trust: TrustAnchors, what: string, now: Date, out: Problem[]): void {
  trust.certificates.forEach((cert, i) => {
    const label = `${what} ${i + 1} (${nameOf(cert)}${aliasOf(cert)})`;
    const s = cert.summary;
    const t = now.getTime();
    if (!s.isCA) {
      out.push({
        code: "TRUST_CERT_NOT_CA",
        severity: "warning",
        message: `${cap(label)} is not a CA certificate (basicConstraints CA:TRUE is missing): ` +
          "it cannot vouch for other certificates.",
        hint: "Put the issuing CA certificate into the truststore instead.",
      });
    }
    if (t > Date.parse(s.notAfter)) {
      out.push({
        code: "TRUST_CERT_EXPIRED",
        severity: "warning",
        message: `${cap(label)} expired ${formatDuration(t - Date.parse(s.notAfter))} ago ` +
          `(valid until ${s.notAfter}; the local clock says ${now.toISOString()}).`,
        hint: "Replace it with the CA's current certificate.",
      });
    } else if (t < Date.parse(s.notBefore)) {
      out.push({
        code: "TRUST_CERT_NOT_YET_VALID",
        severity: "warning",
        message: `${cap(label)} is not valid yet: it becomes valid in ` +
          `${formatDuration(Date.parse(s.notBefore) - t)} (on ${s.notBefore}; the local clock ` +
          `says ${now.toISOString()}).`,
        hint: "Check the local clock (NTP), or replace the certificate.",
      });
    }
  });
}

// ---- helpers ---------------------------------------------------------------------------------

function toX509(cert: Certificate): X509Certificate | undefined {
  try {
    return new X509Certificate(cert.der);
  } catch {
    return undefined;
  }
}

function nameOf(cert: Certificate): string {
  const { commonName, subject } = cert.summary;
  if (commonName !== undefined && commonName !== "") return `CN=${commonName}`;
  return subject ? `subject "${subject}"` : "empty subject";
}

function aliasOf(cert: Certificate | TrustedCertificate): string {
  return "alias" in cert && cert.alias !== undefined ? `, alias "${cert.alias}"` : "";
}

/** `a, b, c, d and 5 more`: long chains would make unreadable messages. */
function listOf(items: string[]): string {
  return items.length <= 4
    ? items.join(", ")
    : `${items.slice(0, 3).join(", ")} and ${items.length - 3} more`;
}

function oneOf(items: string[]): string {
  return items.length === 1 ? items[0] : `one of ${items.join(", ")}`;
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
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
