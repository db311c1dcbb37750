/**
 * The offline findings about a truststore (`TRUST_CERT_NOT_CA`, `TRUST_CERT_EXPIRED`,
 * `TRUST_CERT_NOT_YET_VALID`): each certificate on its own.
 *
 * @module
 */

import { validityAt } from "../x509/chain.ts";
import type { Problem, TrustAnchors } from "../types.ts";
import { aliasOf, cap, formatDuration, nameOf } from "./wording.ts";

/** Each certificate of a truststore on its own: a CA, and valid at `now`. */
export function checkTrust(trust: TrustAnchors, what: string, now: Date, out: Problem[]): void {
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
    const validity = validityAt(s, now);
    if (validity === "expired") {
      out.push({
        code: "TRUST_CERT_EXPIRED",
        severity: "warning",
        message: `${cap(label)} expired ${formatDuration(t - Date.parse(s.notAfter))} ago ` +
          `(valid until ${s.notAfter}; the local clock says ${now.toISOString()}).`,
        hint: "Replace it with the CA's current certificate.",
      });
    } else if (validity === "not-yet-valid") {
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
