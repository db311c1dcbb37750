/**
 * Why the platform refused the device certificate, told from what the offline checks of the same
 * run found: a refusal (a TLS alert, a close right after a TLS 1.3 handshake, CONNACK 5) says
 * nothing about its reason, but an expired certificate, a gap in the chain or a client id that
 * does not name the CN, found before connecting, usually is the reason.
 *
 * The most likely cause comes first, named by its finding's code, followed by what to do about
 * it. Retrying is suggested only when no finding explains the refusal: Cumulocity's CONNACK 5 can
 * be transient (a failed auto-registration), an expired certificate is not.
 *
 * @module
 */

import { type C8yError, type C8yErrorOptions, type ErrorCode, MqttError } from "../errors.ts";
import type { Problem, ProblemCode } from "../types.ts";

/**
 * The error codes that mean "the platform refused the device certificate": in the TLS handshake,
 * as CONNACK 5, or as the REST token endpoint's 401/403.
 */
export const REFUSAL_CODES: readonly ErrorCode[] = [
  "TLS_CLIENT_CERT_REFUSED",
  "MQTT_NOT_AUTHORIZED",
  "HTTP_UNAUTHORIZED",
  "HTTP_FORBIDDEN",
];

/**
 * The error codes that mean "this machine's TLS library refused the device's own key or
 * certificate" before connecting (OpenSSL's "key too small", "ca md too weak"): explained from the
 * offline findings about the key, as a refusal is.
 */
export const LOCAL_REJECTION_CODES: readonly ErrorCode[] = ["TLS_LOCAL_CERT_REJECTED"];

/** Every error code {@linkcode explainRefusal} explains from the offline findings. */
export const EXPLAINED_CODES: readonly ErrorCode[] = [...REFUSAL_CODES, ...LOCAL_REJECTION_CODES];

/** What {@linkcode explainRefusal} found. */
export interface RefusalExplanation {
  /** The findings that explain the refusal, most likely first; empty when none does. */
  causes: Problem[];
  /**
   * The hint: the most likely cause, its code and what to do, then the other causes' codes.
   * `undefined` when no finding explains the refusal (keep the refusal's own hint).
   */
  hint: string | undefined;
}

/**
 * Findings that explain a refused certificate, in the order of their likelihood, each with the
 * reason in a few words. The TLS handshake judges the chain, its validity and the key; the client
 * id reaches the platform only in MQTT's CONNECT, so the CN rules explain a CONNACK only.
 */
const CHAIN_CAUSES: [ProblemCode, string][] = [
  ["CERT_EXPIRED", "a certificate of the device chain has expired"],
  ["CERT_NOT_YET_VALID", "a certificate of the device chain is not valid yet"],
  ["CHAIN_UNTRUSTED", "the device chain reaches none of the tenant's trusted certificates"],
  ["CHAIN_INCOMPLETE", "the device chain misses the certificate of an issuing CA"],
  ["CA_FLAG_MISSING", "a certificate that signs another one is not a CA"],
  ["EKU_NO_CLIENT_AUTH", "the device certificate may not be used for TLS client authentication"],
  ["CERT_V1", "a certificate of the chain is X.509 version 1"],
  ["CHAIN_TOO_LONG", "the device chain is longer than the platform accepts"],
  ["KEY_MISMATCH", "the private key does not belong to the device certificate"],
  ["KEY_INVALID", "the private key cannot be read"],
  ["RSA_KEY_TOO_SMALL", "an RSA key of the chain is too small"],
  ["KEY_TYPE_UNSUPPORTED", "the device key is of a type Deno's TLS client cannot present"],
  ["CHAIN_EMPTY", "the keystore entry has no certificate"],
];
const CLIENT_ID_CAUSES: [ProblemCode, string][] = [
  ["CLIENT_ID_MISMATCH", "the client id does not name the device certificate's CN"],
  ["CN_MISSING", "the device certificate has no Common Name"],
  ["CN_COLON", "the device certificate's Common Name contains ':'"],
];
/** Findings that explain OpenSSL refusing the device's own key or certificate. */
const LOCAL_CAUSES: [ProblemCode, string][] = [
  ["RSA_KEY_TOO_SMALL", "an RSA key of the device chain is too small for OpenSSL"],
  ["KEY_TYPE_UNSUPPORTED", "the device key is of a type Deno's TLS client cannot present"],
  ["KEY_MISMATCH", "the private key does not belong to the device certificate"],
  ["KEY_INVALID", "the private key cannot be read"],
];
/** Informational findings that name what the tenant must trust: the cause when nothing is wrong. */
const TRUST_CAUSES: [ProblemCode, string][] = [
  ["CHAIN_LEAF_ONLY", "the tenant does not trust the device certificate's issuer"],
  ["CHAIN_ANCHOR", "the tenant does not trust the device chain's CA"],
];

/**
 * Explains a refused device certificate from the offline findings of the same run.
 *
 * Errors and warnings that can cause a refusal come first, most likely first (for a CONNACK the
 * client id rules lead, for a TLS refusal they cannot apply); findings of severity `error` that
 * this function does not know follow. When none is found, the informational finding that names
 * what the tenant must trust (`CHAIN_ANCHOR`, `CHAIN_LEAF_ONLY`) is the cause. With no finding
 * at all, `hint` is `undefined`: the refusal's own hint (which may suggest retrying) stands.
 *
 * @param code The refusal's error code: `TLS_CLIENT_CERT_REFUSED`, `MQTT_NOT_AUTHORIZED`,
 *   `HTTP_UNAUTHORIZED` or `HTTP_FORBIDDEN` (the REST token endpoint sees no client id either);
 *   or `TLS_LOCAL_CERT_REJECTED` (OpenSSL refused the device's own key: only the key findings
 *   `RSA_KEY_TOO_SMALL`, `KEY_TYPE_UNSUPPORTED`, `KEY_MISMATCH`, `KEY_INVALID` explain it).
 * @param findings What `diagnose()` found for the identity and client id that were refused.
 * @returns The causes, most likely first, and the hint built from them.
 *
 * @example A refused certificate that had expired
 * ```ts
 * import { refusalExplanation } from "../../mod.ts";
 * const { causes, hint } = refusalExplanation("MQTT_NOT_AUTHORIZED", [
 *   { code: "CHAIN_ANCHOR", severity: "info", message: "…", hint: "Upload it." },
 *   { code: "CERT_EXPIRED", severity: "error", message: "…", hint: "Renew the certificate." },
 * ]);
 * if (causes[0].code !== "CERT_EXPIRED") throw new Error("the expiry comes first");
 * if (!hint?.startsWith("Most likely a certificate of the device chain has expired (CERT_EXPIRED)")) {
 *   throw new Error(hint);
 * }
 * if (/retry/i.test(hint)) throw new Error("an expired certificate is not transient");
 * ```
 */
export function refusalExplanation(
  code: ErrorCode,
  findings: readonly Problem[],
): RefusalExplanation {
  const ranked = (table: [ProblemCode, string][]): Problem[] =>
    table.flatMap(([c]) => findings.filter((p) => p.code === c && p.severity !== "info"));
  if (LOCAL_REJECTION_CODES.includes(code)) {
    // The server never saw the certificate: only findings about the key itself can explain it.
    const causes = ranked(LOCAL_CAUSES);
    if (causes.length === 0) return { causes, hint: undefined };
    const reasons = new Map<string, string>(LOCAL_CAUSES);
    const [first, ...others] = causes;
    let hint = `Found offline: ${reasons.get(first.code)} (${first.code}).`;
    if (first.hint) hint += ` ${first.hint}`;
    const rest = [...new Set(others.map((p) => p.code))];
    if (rest.length > 0) hint += ` Also found offline: ${rest.join(", ")}.`;
    return { causes, hint };
  }
  const known = code === "MQTT_NOT_AUTHORIZED"
    ? [...CLIENT_ID_CAUSES, ...CHAIN_CAUSES]
    : CHAIN_CAUSES;
  const reasons = new Map<string, string>(known);
  const causes = [
    ...ranked(known),
    // A finding of severity error this table does not know (a newer check) may explain it too.
    ...findings.filter((p) =>
      p.severity === "error" && !reasons.has(p.code) &&
      !CLIENT_ID_CAUSES.some(([c]) => c === p.code)
    ),
  ];
  if (causes.length === 0) {
    for (const [c, reason] of TRUST_CAUSES) {
      const p = findings.find((f) => f.code === c);
      if (p === undefined) continue;
      reasons.set(c, reason);
      causes.push(p);
    }
  }
  if (causes.length === 0) return { causes, hint: undefined };

  const [first, ...others] = causes;
  const reason = reasons.get(first.code) ?? lowerFirst(stripPeriod(first.message));
  let hint = `Most likely ${reason} (${first.code}).`;
  if (first.hint) hint += ` ${first.hint}`;
  if (TRUST_CAUSES.some(([c]) => c === first.code)) {
    if (code === "MQTT_NOT_AUTHORIZED") {
      hint += " If it is trusted: auto-registration may be off for it and the device not " +
        "registered, or a device with this CN may belong to another tenant.";
    } else if (code.startsWith("HTTP_")) {
      hint += " If it is trusted: the device may not be registered for certificate " +
        "authentication.";
    }
  }
  const rest = [...new Set(others.map((p) => p.code))];
  if (rest.length > 0) hint += ` Also found offline: ${rest.join(", ")}.`;
  return { causes, hint };
}

/**
 * The same refusal error with its hint rebuilt from the offline findings (see
 * {@linkcode refusalExplanation}) and the findings attached as `findings`. Any other error, and a
 * refusal no finding explains, comes back with the findings attached and its hint unchanged.
 *
 * @param error An error from `connect` or `fetchToken`.
 * @param findings What `diagnose()` found for the identity and client id used.
 * @returns An error of the same class, code, stage, message and cause.
 *
 * @example
 * ```ts
 * import { explainRefusal, MqttError } from "../../mod.ts";
 * const refused = new MqttError("The broker refused the connection: CONNACK 5 (not authorized)", {
 *   code: "MQTT_NOT_AUTHORIZED",
 *   returnCode: 5,
 *   hint: "It can be transient: retry a few times.",
 * });
 * const explained = explainRefusal(refused, [{
 *   code: "CLIENT_ID_MISMATCH",
 *   severity: "error",
 *   message: "The client id names another device.",
 *   hint: "Use d:device-001.",
 * }]);
 * if (!(explained instanceof MqttError) || explained.returnCode !== 5) throw new Error();
 * if (!explained.hint.includes("(CLIENT_ID_MISMATCH). Use d:device-001.")) throw new Error();
 * if (explained.findings?.length !== 1) throw new Error("the findings travel with the error");
 * ```
 */
export function explainRefusal(error: C8yError, findings: readonly Problem[]): C8yError {
  const hint = EXPLAINED_CODES.includes(error.code)
    ? refusalExplanation(error.code, findings).hint
    : undefined;
  const Class = error.constructor as new (
    message: string,
    options: C8yErrorOptions & { returnCode?: number },
  ) => C8yError;
  const explained = new Class(error.message, {
    code: error.code,
    stage: error.stage,
    hint: hint ?? error.hint,
    cause: error.cause,
    findings: [...findings],
    returnCode: error instanceof MqttError ? error.returnCode : undefined,
  });
  if (error.stack !== undefined) explained.stack = error.stack;
  return explained;
}

function stripPeriod(text: string): string {
  return text.endsWith(".") ? text.slice(0, -1) : text;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
