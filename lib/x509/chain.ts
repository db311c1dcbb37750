/**
 * Certificate chains: the one walker from a certificate up through its issuers, by issuer and
 * subject Name, with an optional "who issued whom" test on top (the signature, see
 * {@linkcode issuedBy}). The store readers use it to put a key entry's certificates leaf first
 * (`stores/load.ts`) and to give each key of a PKCS#12 file its chain (`stores/pkcs12/`).
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
import { certificateNames } from "./tbs.ts";

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
      const subject = namesHex(der(cert))?.subject;
      if (subject === undefined) continue;
      const list = this.#bySubject.get(subject);
      if (list) list.push(cert);
      else this.#bySubject.set(subject, [cert]);
    }
  }

  /**
   * The certificates of the pool whose subject Name is the issuer Name of `cert`, byte for byte,
   * in pool order.
   *
   * @param cert The certificate whose issuer is looked for.
   * @returns The candidates; empty when none matches or `cert`'s Names cannot be read.
   */
  candidates(cert: C): readonly C[] {
    const issuer = namesHex(this.#der(cert))?.issuer;
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
    const { issued, isRoot } = options;
    const below = options.below ?? [];
    const maxLength = options.maxLength ?? MAX_PATH_LENGTH;
    const seen = new Set([...below, start].map((c) => hex(this.#der(c))));
    const path: C[] = [];
    for (let current = start; below.length + 1 + path.length < maxLength;) {
      if (isRoot?.(current)) break;
      const next = this.candidates(current).find((c) =>
        !seen.has(hex(this.#der(c))) && (issued === undefined || issued(current, c))
      );
      if (next === undefined) break;
      path.push(next);
      seen.add(hex(this.#der(next)));
      current = next;
    }
    return path;
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

/** The certificate's issuer and subject Names as hex, or `undefined` when they cannot be read. */
function namesHex(der: Uint8Array): { issuer: string; subject: string } | undefined {
  try {
    const { issuer, subject } = certificateNames(der);
    return { issuer: hex(issuer), subject: hex(subject) };
  } catch {
    return undefined;
  }
}
