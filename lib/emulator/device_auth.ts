/**
 * Who a device is: the emulator's check of a device's certificate chain against the trusted CAs
 * (the tenant's "trusted certificates"), and of its MQTT client id against the certificate. The
 * MQTT and the REST endpoint both authenticate through {@linkcode DeviceAuthority}, so a device
 * is judged the same way on both.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type KeyObject, X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { certificatesFromPem, MAX_CHAIN_LENGTH, parseCertificate } from "../x509/certificate.ts";
import { parseClientId } from "../connect/client_id.ts";
import { IssuerIndex, validityAt } from "../x509/chain.ts";
import { UsageError } from "../errors.ts";
import type { Certificate } from "../types.ts";

/** The result of {@linkcode verifyDeviceChain}. */
export type ChainVerdict =
  | {
    /** The chain is accepted. */
    ok: true;
    /** Common Name of the first certificate. */
    commonName: string | undefined;
    /** Common Name (or subject) of the trusted CA the path ends at. */
    trustedBy: string;
  }
  | {
    /** The chain is refused. */
    ok: false;
    /** Common Name of the first certificate, when there is one. */
    commonName: string | undefined;
    /** Why, in one sentence. */
    reason: string;
  };

/** Options of {@linkcode verifyDeviceChain}. */
export interface VerifyDeviceChainOptions {
  /** The trusted CAs, DER. */
  trusted: Uint8Array[];
  /** The time to check validity at. @default new Date() */
  now?: Date;
}

interface Cert {
  der: Uint8Array;
  x509: X509Certificate;
  name: string;
  isCA: boolean;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** Its public key, made when it first checks a signature. */
  publicKey?: KeyObject;
}

/** How {@linkcode verifyChain} reads certificates and checks signatures (cached or not). */
interface ChainContext {
  /** The trusted CAs, by subject Name. */
  anchors: IssuerIndex<Cert>;
  /** Parses the presented certificate at `index` (0 = leaf). @throws when it is not one. */
  parse(der: Uint8Array, index: number): Cert;
  /** Whether `child` names `parent` as its issuer and its signature verifies with its key. */
  signed(child: Cert, parent: Cert): boolean;
}

function signedBy(child: Cert, parent: Cert): boolean {
  try {
    if (!child.x509.checkIssued(parent.x509)) return false;
    parent.publicKey ??= parent.x509.publicKey;
    return child.x509.verify(parent.publicKey);
  } catch {
    return false;
  }
}

const derOf = (cert: Cert): Uint8Array => cert.der;

/** A context without caches (for {@linkcode verifyDeviceChain}). */
function plainContext(trusted: Cert[]): ChainContext {
  return {
    anchors: new IssuerIndex(trusted, derOf),
    parse: (der, i) => toCert(parseCertificate(der, { name: `client certificate #${i + 1}` })),
    signed: signedBy,
  };
}

/** A parsed certificate (from `parseCertificate` or `certificatesFromPem`) as the checks need it. */
function toCert(parsed: Certificate): Cert {
  const { summary } = parsed;
  return {
    der: parsed.der,
    x509: new X509Certificate(parsed.der),
    name: summary.commonName ?? summary.subject,
    isCA: summary.isCA,
    fingerprint: summary.sha256,
    notBefore: new Date(summary.notBefore),
    notAfter: new Date(summary.notAfter),
  };
}

function validityProblem(cert: Cert, now: Date, role: string): string | undefined {
  switch (validityAt(cert, now)) {
    case "not-yet-valid":
      return `${role} "${cert.name}" is not valid before ${cert.notBefore.toISOString()}`;
    case "expired":
      return `${role} "${cert.name}" expired on ${cert.notAfter.toISOString()}`;
    case "valid":
      return undefined;
  }
}

/**
 * Verifies a device's certificate chain the way the emulator (and, as far as documented, the
 * platform) does: the path from the first certificate must end at a trusted CA, using the other
 * presented certificates as intermediates in any order; a device may send only its own
 * certificate when its immediate issuer is trusted. At most 10 certificates; every signing
 * certificate must have `CA:TRUE`; every certificate on the path must be valid at `now`.
 *
 * @param chain The certificates the device presented, DER, leaf first.
 * @param options The trusted CAs and the time.
 * @returns `{ ok: true, commonName, trustedBy }` or `{ ok: false, commonName, reason }`.
 *
 * @example An empty chain is refused
 * ```ts
 * import { verifyDeviceChain } from "./mod.ts";
 * const verdict = verifyDeviceChain([], { trusted: [] });
 * if (verdict.ok || !verdict.reason.includes("no client certificate")) throw new Error("unexpected");
 * ```
 */
export function verifyDeviceChain(
  chain: Uint8Array[],
  options: VerifyDeviceChainOptions,
): ChainVerdict {
  const trusted = options.trusted.map((der, i) =>
    toCert(parseCertificate(der, { name: `trusted CA #${i + 1}` }))
  );
  return verifyChain(chain, plainContext(trusted), options.now ?? new Date());
}

/** {@linkcode verifyDeviceChain} in a context (the emulator's: trusted CAs parsed once, caches). */
function verifyChain(chain: Uint8Array[], context: ChainContext, now: Date): ChainVerdict {
  if (chain.length === 0) {
    return { ok: false, commonName: undefined, reason: "the client sent no client certificate" };
  }
  let certs: Cert[];
  try {
    certs = chain.map((der, i) => context.parse(der, i));
  } catch (err) {
    return {
      ok: false,
      commonName: undefined,
      reason: `a client certificate cannot be parsed (${(err as Error).message})`,
    };
  }
  const leaf = certs[0];
  const refuse = (reason: string): ChainVerdict => ({ ok: false, commonName: leaf.name, reason });
  if (certs.length > MAX_CHAIN_LENGTH) {
    return refuse(
      `the chain has ${certs.length} certificates; at most ${MAX_CHAIN_LENGTH} are allowed`,
    );
  }
  const leafProblem = validityProblem(leaf, now, "device certificate");
  if (leafProblem) return refuse(leafProblem);

  // The path from the leaf through the presented certificates (the one chain walker, by issuer
  // Name and signature) up to the first certificate a trusted CA issued.
  const presented = new IssuerIndex(certs.slice(1), derOf);
  const walk = presented.pathToAnchor(leaf, context.anchors, {
    issued: context.signed,
    maxLength: MAX_CHAIN_LENGTH,
  });
  const path = [leaf, ...walk.path];
  for (let i = 1; i < path.length; i++) {
    const [child, issuer] = [path[i - 1], path[i]];
    if (!issuer.isCA) {
      return refuse(
        `"${issuer.name}" signs "${child.name}" but is not a CA (basicConstraints CA:TRUE missing)`,
      );
    }
    const problem = validityProblem(issuer, now, "intermediate CA");
    if (problem) return refuse(problem);
  }
  const top = path[path.length - 1];
  const anchor = walk.anchor;
  if (anchor) {
    const problem = validityProblem(anchor, now, "trusted CA");
    if (problem) return refuse(problem);
    return { ok: true, commonName: leaf.name, trustedBy: anchor.name };
  }
  if (path.length >= MAX_CHAIN_LENGTH) {
    return refuse(`the path to a trusted CA is longer than ${MAX_CHAIN_LENGTH} certificates`);
  }
  const named = presented.candidates(top).find((c) => !path.includes(c));
  if (named) {
    return refuse(`the signature of "${top.name}" does not verify with "${named.name}"`);
  }
  return refuse(
    `"${top.name}" is not issued by a trusted CA (its issuer is "${top.x509.issuer}")`,
  );
}

/**
 * The device identifier of an MQTT client id (`<id>`, `d:<id>` or `d:<id>:<template>`), or
 * `undefined` when the id has another form or another connection type than `d`.
 */
export function deviceIdentifierOf(clientId: string): string | undefined {
  try {
    const parts = parseClientId(clientId);
    return parts.connectionType === "d" ? parts.deviceIdentifier : undefined;
  } catch {
    return undefined;
  }
}

interface PeerCertificateLike {
  raw?: Uint8Array;
  fingerprint256?: string;
  issuerCertificate?: PeerCertificateLike;
}

/** The DER certificates a TLS peer presented, leaf first (at most MAX_CHAIN_LENGTH + 1). */
export function presentedChain(socket: TLSSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  let cert = socket.getPeerCertificate(true) as PeerCertificateLike | undefined;
  while (cert?.raw && out.length <= MAX_CHAIN_LENGTH) {
    const key = cert.fingerprint256 ?? String(out.length);
    if (seen.has(key)) break;
    seen.add(key);
    out.push(new Uint8Array(cert.raw));
    cert = cert.issuerCertificate;
  }
  return out;
}

/** Parses the trusted CAs once; each must be a CA. */
function parseTrusted(pems: string[]): Cert[] {
  const out: Cert[] = [];
  pems.forEach((pem, i) => {
    const certs = certificatesFromPem(pem, { name: `trusted CA #${i + 1}` });
    if (certs.length === 0) {
      throw new UsageError(`Trusted CA #${i + 1} holds no PEM certificate`, {
        code: "EMULATOR_TRUST",
        hint: "Give CA certificates as PEM (-----BEGIN CERTIFICATE-----).",
      });
    }
    for (const cert of certs) {
      if (!cert.summary.isCA) {
        throw new UsageError(
          `Trusted certificate "${cert.summary.commonName ?? cert.summary.subject}" is not a CA`,
          {
            code: "EMULATOR_TRUST",
            hint: "Trust only CA certificates (basicConstraints CA:TRUE, X.509 v3).",
          },
        );
      }
      out.push(toCert(cert));
    }
  });
  return out;
}

/** The most entries each cache of {@linkcode DeviceAuthority} holds. */
const MAX_CACHED = 1024;

/** Adds to a bounded cache (emptied when full: devices share few CAs). */
function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(key, value);
}

/** A device the emulator admitted: its certificate's Common Name is its device id. */
export interface AdmittedDevice {
  ok: true;
  /** The device identifier (the Common Name of its certificate). */
  deviceId: string;
  /** The Common Name of its certificate. */
  commonName: string;
}

/** A device the emulator refused, and why. */
export interface RefusedDevice {
  ok: false;
  /** The Common Name of its certificate, when it sent one. */
  commonName: string | undefined;
  /** Why, in one sentence (client-controlled parts cut short). */
  reason: string;
}

/** The shortened client id quoted in refusals. */
function shownId(clientId: string): string {
  return JSON.stringify(clientId.length > 64 ? `${clientId.slice(0, 64)}…` : clientId);
}

/**
 * The emulator's judge of devices: holds the trusted CAs (parsed once at start) and decides for
 * a presented chain, and for MQTT its client id, whether the device is admitted.
 */
export class DeviceAuthority {
  readonly #context: ChainContext;
  /** Parsed CA certificates a device presented (its intermediates), by their DER in base64. */
  readonly #cas = new Map<string, Cert>();
  /** Verified signatures of CA certificates: `<child sha256>><parent sha256>`. */
  readonly #links = new Map<string, boolean>();

  /**
   * @param trustedCaPems The trusted CAs, PEM; each string may hold several certificates.
   * @throws {UsageError} `EMULATOR_TRUST` when there is none, or one is not a CA certificate.
   */
  constructor(trustedCaPems: string[]) {
    if (trustedCaPems.length === 0) {
      throw new UsageError("The emulator needs at least one trusted CA", {
        code: "EMULATOR_TRUST",
        hint: "Pass the CA that issued the device certificates (trustedCaPems).",
      });
    }
    const trusted = parseTrusted(trustedCaPems);
    // Each device's own certificate is parsed and its signature checked on every connection;
    // what devices share (their intermediate CAs, and the signatures on them) only once.
    this.#context = {
      anchors: new IssuerIndex(trusted, derOf),
      parse: (der, i) => {
        const key = i === 0 ? "" : Buffer.from(der).toString("base64");
        const known = key ? this.#cas.get(key) : undefined;
        if (known) return known;
        const cert = toCert(parseCertificate(der, { name: `client certificate #${i + 1}` }));
        if (key && cert.isCA) remember(this.#cas, key, cert);
        return cert;
      },
      signed: (child, parent) => {
        if (!child.isCA) return signedBy(child, parent);
        const key = `${child.fingerprint}>${parent.fingerprint}`;
        const known = this.#links.get(key);
        if (known !== undefined) return known;
        const result = signedBy(child, parent);
        remember(this.#links, key, result);
        return result;
      },
    };
  }

  /** Judges a presented chain (DER, leaf first) at `now`. */
  verify(chain: Uint8Array[], now: Date = new Date()): AdmittedDevice | RefusedDevice {
    const verdict = verifyChain(chain, this.#context, now);
    if (!verdict.ok) {
      return {
        ok: false,
        commonName: verdict.commonName,
        reason: `device certificate refused: ${verdict.reason}`,
      };
    }
    if (!verdict.commonName) {
      return {
        ok: false,
        commonName: undefined,
        reason: "device certificate refused: it has no Common Name (the device id)",
      };
    }
    return { ok: true, deviceId: verdict.commonName, commonName: verdict.commonName };
  }

  /**
   * Judges an MQTT device: its chain, then its client id (`<id>`, `d:<id>` or
   * `d:<id>:<template>`, where `<id>` must be the certificate's Common Name).
   */
  verifyMqtt(chain: Uint8Array[], clientId: string): AdmittedDevice | RefusedDevice {
    const verdict = this.verify(chain);
    if (!verdict.ok) return verdict;
    const deviceId = deviceIdentifierOf(clientId);
    if (deviceId === undefined) {
      return {
        ok: false,
        commonName: verdict.commonName,
        reason: `client id ${
          shownId(clientId)
        } is not of the form <id>, d:<id> or d:<id>:<template>`,
      };
    }
    if (deviceId !== verdict.commonName) {
      return {
        ok: false,
        commonName: verdict.commonName,
        reason: `device identifier ${shownId(deviceId)} of client id ${shownId(clientId)} is not ` +
          `the certificate's Common Name ${shownId(verdict.commonName)}`,
      };
    }
    return verdict;
  }
}
