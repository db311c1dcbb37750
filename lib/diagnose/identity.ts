/**
 * The offline findings about a device identity: its key and certificates one by one (key type,
 * validity, version, key size, CN, client id, extended key usage), before the chain as a whole
 * (`chain.ts`).
 *
 * @module
 */

import { createPrivateKey, createPublicKey, type X509Certificate } from "node:crypto";
import { equalBytes } from "../encoding/bytes.ts";
import { MAX_CHAIN_LENGTH } from "../x509/certificate.ts";
import { validityAt } from "../x509/chain.ts";
import { parseClientId } from "../connect/client_id.ts";
import { describeKey, TLS_CLIENT_KEYS, tlsClientCanPresent } from "../x509/key_info.ts";
import { UsageError } from "../errors.ts";
import type { DeviceIdentity, Problem, TrustAnchors } from "../types.ts";
import { checkChain, issuedBy, type Node, toX509 } from "./chain.ts";
import { cap, formatDuration, nameOf } from "./wording.ts";

const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

const OID_ANY_EKU = "2.5.29.37.0";

const MIN_RSA_BITS = 2048;

/** A start date closer than this is more likely a wrong clock than a wrong certificate. */
const CLOCK_SKEW_MS = 2 * 24 * 3600_000;

/**
 * The device identity: its key type, chain length, which certificate the key belongs to, each
 * certificate's validity, version and key size, the leaf's CN, client id and EKU, then the chain.
 */
export function checkIdentity(
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
    hint: "Use the key the certificate was issued for (another `alias` or `key`), or the " +
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
  const validity = validityAt(s, now);
  if (validity === "expired") {
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
  } else if (validity === "not-yet-valid") {
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
        hint: `Use \`clientId: "d:${usableCn}"\`, or leave \`clientId\` out.`,
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
    ? "Leave `clientId` out to use d:<certificate CN>, or give d:<CN>."
    : `Use \`clientId: "d:${cn}"\`, or leave \`clientId\` out.`;
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
