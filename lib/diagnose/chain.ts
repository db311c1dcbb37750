/**
 * The device chain judged as a whole (`CA_FLAG_MISSING`, `CHAIN_ORDER`, `CHAIN_INCOMPLETE`,
 * `CHAIN_UNTRUSTED`, `CHAIN_LEAF_ONLY`, `CHAIN_ANCHOR`), walked with the project's one chain
 * walker (`x509/chain.ts`).
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { issuedBy as certIssuedBy } from "../x509/certificate.ts";
import { IssuerIndex } from "../x509/chain.ts";
import type { Certificate, Problem, TrustAnchors } from "../types.ts";
import { cap, listOf, oneOf } from "./wording.ts";

/** A certificate of the device chain as the findings name it. */
export interface Node {
  cert: Certificate;
  /** `undefined` when node:crypto cannot parse the DER (then no relation can be checked). */
  x509: X509Certificate | undefined;
  /** `certificate 1 (CN=device-rsa-001)`. */
  label: string;
}

/**
 * The device chain as a whole: the path from the leaf to its issuers, their CA flags, the order,
 * gaps and unrelated certificates, and what the tenant must trust.
 */
export function checkChain(
  nodes: Node[],
  leafIndex: number,
  keyKnown: boolean,
  tenantTrust: TrustAnchors | undefined,
  out: Problem[],
): void {
  // Walk from the leaf to its issuers among the given certificates, preferring the next one.
  const position = new Map(nodes.map((node, i) => [node, i]));
  const issuers = new IssuerIndex(nodes, (node) => node.cert.der).path(nodes[leafIndex], {
    issued: issuedBy,
    isRoot: (node) => node.cert.summary.selfSigned,
    prefer: (node) => nodes[position.get(node)! + 1],
    maxLength: nodes.length,
  });
  const path = [leafIndex, ...issuers.map((node) => position.get(node)!)];

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
  const anchors = new IssuerIndex<Certificate>(trust.certificates, (c) => c.der);
  return anchors.candidates(end.cert)
    .some((c) => issuedBy(end, { cert: c, x509: toX509(c), label: "" }));
}

/** Whether `parent` issued `child` (see certificate.ts); never for an unreadable certificate. */
export function issuedBy(child: Node, parent: Node): boolean {
  return child.x509 !== undefined && parent.x509 !== undefined &&
    certIssuedBy(child.x509, parent.x509);
}

/** The certificate as node:crypto reads it, or `undefined` when it cannot. */
export function toX509(cert: Certificate): X509Certificate | undefined {
  try {
    return new X509Certificate(cert.der);
  } catch {
    return undefined;
  }
}
