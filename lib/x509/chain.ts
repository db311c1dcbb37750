/**
 * Certificate chains: the one walker from a certificate up through its issuers, by issuer and
 * subject Name, with an optional "who issued whom" test on top (the signature, see
 * {@linkcode issuedBy}), up to a trust anchor; and validity at an instant. The store readers use
 * it to put a key entry's certificates leaf first (`stores/key_entry.ts`) and to give each key of
 * a PKCS#12 file its chain (`stores/pkcs12/`), the offline checks to judge the device chain
 * (`diagnose/chain.ts`), and the emulator to verify the chain a device presents.
 *
 * Names are compared as OpenSSL compares them for chain building: by their text, ignoring case
 * and runs of white space, so that an issuer Name written as a UTF8String matches a subject
 * written as a PrintableString.
 *
 * Linear in the number of certificates: the candidates for an issuer are found by subject Name
 * in a map, never by comparing every pair, and a path is at most {@linkcode MAX_PATH_LENGTH}
 * long, so a store of many certificates with the same name is checked at most that many times
 * each.
 *
 * @module
 */

import { hex } from "../encoding/bytes.ts";
import { issuedBy } from "./certificate.ts";
import { formatName } from "./names.ts";
import { tbsFields } from "./tbs.ts";

/** The longest path the walker follows, in certificates (the platform accepts 10). */
export const MAX_PATH_LENGTH = 16;

/** Options of {@linkcode IssuerIndex.path} and {@linkcode orderLeafFirst}. */
export interface IssuerPathOptions<C> {
  /**
   * Whether `parent`, which `child` names as its issuer, really issued it (e.g. the signature
   * verifies with `parent`'s key).
   * @default the names alone decide
   */
  issued?: (child: C, parent: C) => boolean;
  /**
   * Whether the walk ends at a certificate even if an issuer could be found (a self-issued root).
   * @default never: the walk ends when no new issuer is found
   */
  isRoot?: (cert: C) => boolean;
  /**
   * Certificates already below the start of the walk: their bytes are not taken again, and they
   * count towards `maxLength`.
   * @default []
   */
  below?: readonly C[];
  /**
   * The longest whole chain, in certificates: `below`, the start and the path found.
   * @default MAX_PATH_LENGTH
   */
  maxLength?: number;
  /**
   * A certificate to try before the other candidates, e.g. the one after `cert` in the list.
   * @default none: pool order
   */
  prefer?: (cert: C) => C | undefined;
}

/** Where a walk to a trust anchor ended: the issuers found, and the anchor if one was reached. */
export interface AnchoredPath<C> {
  /** The issuers found in the pool, nearest first (the start not included). */
  path: C[];
  /** The anchor that issued the last certificate of the path (or the start). */
  anchor: C | undefined;
}

/**
 * A pool of certificates that can issue others, indexed by subject Name: the issuer lookup of
 * every chain walk.
 *
 * @typeParam C How the caller holds a certificate (DER bytes, a parsed certificate, ...).
 *
 * @example Certificates whose Names cannot be read issue nothing
 * ```ts
 * import { IssuerIndex } from "./chain.ts";
 * const junk = new Uint8Array([0x30, 0x00]);
 * const index = new IssuerIndex([junk], (der) => der);
 * if (index.candidates(junk).length !== 0 || index.path(junk).length !== 0) throw new Error();
 * ```
 */
export class IssuerIndex<C> {
  readonly #der: (cert: C) => Uint8Array;
  readonly #bySubject = new Map<string, C[]>();

  /**
   * Indexes `pool` by subject Name; certificates whose Names cannot be read are left out.
   *
   * @param pool The certificates that may issue others, in order of preference.
   * @param der The DER of a certificate.
   */
  constructor(pool: readonly C[], der: (cert: C) => Uint8Array) {
    this.#der = der;
    for (const cert of pool) {
      const subject = nameKeys(der(cert))?.subject;
      if (subject === undefined) continue;
      const list = this.#bySubject.get(subject);
      if (list) list.push(cert);
      else this.#bySubject.set(subject, [cert]);
    }
  }

  /**
   * The certificates of the pool whose subject Name is the issuer Name of `cert`, in pool order.
   *
   * @param cert The certificate whose issuer is looked for.
   * @returns The candidates; empty when none matches or `cert`'s Names cannot be read.
   */
  candidates(cert: C): readonly C[] {
    const issuer = nameKeys(this.#der(cert))?.issuer;
    return issuer === undefined ? [] : this.#bySubject.get(issuer) ?? [];
  }

  /**
   * Walks from `start` to its issuer in the pool, that one's issuer, and so on: at each step the
   * first candidate (pool order) that `options.issued` accepts and whose bytes are not on the
   * path yet.
   *
   * @param start The certificate to start from (in the pool or not).
   * @param options The issued test, where to stop, what is below `start`, the longest chain.
   * @returns The issuers found, nearest first; `start` itself is not included.
   */
  path(start: C, options: IssuerPathOptions<C> = {}): C[] {
    return this.#walk(start, options, undefined).path;
  }

  /**
   * Walks like {@linkcode IssuerIndex.path}, but first asks at each step whether a certificate of
   * `anchors` issued the current one, and stops there.
   *
   * @param start The certificate to start from.
   * @param anchors The trust anchors, indexed.
   * @param options The issued test (for anchors too), where to stop, the longest chain.
   * @returns The issuers found and the anchor reached, if any.
   */
  pathToAnchor(
    start: C,
    anchors: IssuerIndex<C>,
    options: IssuerPathOptions<C> = {},
  ): AnchoredPath<C> {
    return this.#walk(start, options, anchors);
  }

  #walk(
    start: C,
    options: IssuerPathOptions<C>,
    anchors: IssuerIndex<C> | undefined,
  ): AnchoredPath<C> {
    const { issued, isRoot, prefer } = options;
    const accepts = (child: C, parent: C): boolean => issued === undefined || issued(child, parent);
    const below = options.below ?? [];
    const maxLength = options.maxLength ?? MAX_PATH_LENGTH;
    const seen = new Set([...below, start].map((c) => hex(this.#der(c))));
    const path: C[] = [];
    for (let current = start;;) {
      const anchor = anchors?.candidates(current).find((a) => accepts(current, a));
      if (anchor !== undefined) return { path, anchor };
      if (below.length + 1 + path.length >= maxLength || isRoot?.(current)) break;
      const candidates = this.candidates(current);
      const first = prefer?.(current);
      const ordered = first !== undefined && candidates.includes(first)
        ? [first, ...candidates.filter((c) => c !== first)]
        : candidates;
      const next = ordered.find((c) => !seen.has(hex(this.#der(c))) && accepts(current, c));
      if (next === undefined) break;
      path.push(next);
      seen.add(hex(this.#der(next)));
      current = next;
    }
    return { path, anchor: undefined };
  }
}

/**
 * Orders certificates leaf first: the leaf, its issuer, that one's issuer, and so on;
 * certificates not on that path keep their relative order at the end.
 *
 * @param certificates The certificates, without duplicates.
 * @param leaf The index of the leaf in `certificates`.
 * @param der The DER of a certificate.
 * @param options The issued test and where to stop (see {@linkcode IssuerPathOptions}).
 * @returns The same certificates, reordered.
 *
 * @example Without a certificate that issues another, the order stays
 * ```ts
 * import { orderLeafFirst } from "./chain.ts";
 * const certs = [new Uint8Array([1]), new Uint8Array([2])];
 * if (orderLeafFirst(certs, 1, (c) => c)[0] !== certs[1]) throw new Error("the leaf comes first");
 * ```
 */
export function orderLeafFirst<C>(
  certificates: readonly C[],
  leaf: number,
  der: (cert: C) => Uint8Array,
  options: IssuerPathOptions<C> = {},
): C[] {
  const path = [
    certificates[leaf],
    ...new IssuerIndex(certificates, der).path(certificates[leaf], options),
  ];
  const onPath = new Set(path);
  return [...path, ...certificates.filter((c) => !onPath.has(c))];
}

/**
 * Whether a certificate issued itself: it names itself as issuer and its own key verifies its
 * signature (see {@linkcode issuedBy}).
 *
 * @param cert The certificate, parsed or as a node:crypto object.
 * @returns `true` for a self-issued (self-signed) certificate; never throws.
 */
export function isSelfIssued(cert: Parameters<typeof issuedBy>[0]): boolean {
  return issuedBy(cert, cert);
}

/** The dates a certificate is valid between (ISO strings, as in a summary, or Dates). */
export interface ValidityWindow {
  /** The first instant it is valid. */
  notBefore: string | Date;
  /** The last instant it is valid. */
  notAfter: string | Date;
}

/**
 * Whether a certificate is valid at an instant: `notBefore <= at <= notAfter` (RFC 5280
 * §4.1.2.5, both ends included).
 *
 * @param cert Its validity window.
 * @param at The instant.
 * @returns `valid`, `not-yet-valid` (before `notBefore`) or `expired` (after `notAfter`).
 *
 * @example
 * ```ts
 * import { validityAt } from "./chain.ts";
 * const cert = { notBefore: "2026-01-01T00:00:00.000Z", notAfter: "2027-01-01T00:00:00.000Z" };
 * if (validityAt(cert, new Date("2028-01-01")) !== "expired") throw new Error();
 * if (validityAt(cert, new Date("2026-06-01")) !== "valid") throw new Error();
 * ```
 */
export function validityAt(
  cert: ValidityWindow,
  at: Date,
): "valid" | "not-yet-valid" | "expired" {
  const t = at.getTime();
  if (t < new Date(cert.notBefore).getTime()) return "not-yet-valid";
  if (t > new Date(cert.notAfter).getTime()) return "expired";
  return "valid";
}

/**
 * The certificate's issuer and subject Names as comparison keys (their text, lower case, runs of
 * white space as one space), or `undefined` when they cannot be read.
 */
function nameKeys(der: Uint8Array): { issuer: string; subject: string } | undefined {
  try {
    const { issuer, subject } = tbsFields(der);
    return { issuer: nameKey(formatName(issuer)), subject: nameKey(formatName(subject)) };
  } catch {
    return undefined;
  }
}

function nameKey(text: string): string {
  return text.toLowerCase().replace(/\s+/g, " ").trim();
}
