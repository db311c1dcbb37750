/**
 * PKCS#12 bags grouped into store entries: each key with its certificates (by `localKeyId`,
 * friendly name, or issuer chain), then the certificate-only entries.
 *
 * @module
 */

import { hex } from "../../encoding/bytes.ts";
import { IssuerIndex } from "../../x509/chain.ts";
import type { RawEntry } from "../../types.ts";
import type { Bags, CertBag } from "./bags.ts";
import { unlockShroudedKey } from "./decrypt.ts";

/**
 * The most certificates `group` puts into one key entry's chain when it assembles chains by
 * issuer name (a bound on that loop, not the platform's chain limit).
 */
const MAX_ASSEMBLED_CHAIN_CERTS = 16;

/** Groups key and certificate bags into entries (see {@linkcode readPkcs12}). */
export function group(bags: Bags, name: string): RawEntry[] {
  // Every lookup goes through a map, so grouping is linear in the number of bags.
  const keys = bags.keys.map((key) => ({ key, certs: [] as CertBag[] }));
  const byKeyId = new Map<string, typeof keys[number]>();
  const byName = new Map<string, typeof keys[number]>();
  for (const k of keys) {
    if (k.key.localKeyId !== undefined) {
      if (!byKeyId.has(k.key.localKeyId)) byKeyId.set(k.key.localKeyId, k);
    } else if (k.key.friendlyName !== undefined && !byName.has(k.key.friendlyName)) {
      byName.set(k.key.friendlyName, k);
    }
  }
  const pending: CertBag[] = [];
  const standalone: CertBag[] = [];
  for (const cert of bags.certs) {
    let owner = cert.localKeyId === undefined ? undefined : byKeyId.get(cert.localKeyId);
    if (!owner && cert.localKeyId === undefined && cert.friendlyName !== undefined) {
      owner = byName.get(cert.friendlyName);
    }
    if (owner) owner.certs.push(cert);
    else if (cert.trusted) standalone.push(cert);
    else pending.push(cert);
  }

  if (keys.length === 1) {
    keys[0].certs.push(...pending);
  } else if (keys.length > 1 && pending.length > 0) {
    // Each key's chain continues from its last certificate through the unclaimed ones.
    const index = new IssuerIndex(pending, (c) => c.der);
    const used = new Set<string>();
    for (const entry of keys) {
      const start = entry.certs.at(-1);
      if (start === undefined) continue;
      const path = index.path(start, {
        below: entry.certs.slice(0, -1),
        maxLength: MAX_ASSEMBLED_CHAIN_CERTS,
      });
      entry.certs.push(...path);
      for (const cert of path) used.add(hex(cert.der));
    }
    // A copy of a certificate some chain already holds (keytool stores one per key entry).
    for (const cert of pending) if (!used.has(hex(cert.der))) standalone.push(cert);
  } else {
    standalone.push(...pending);
  }
  const position = new Map(bags.certs.map((c, i) => [c, i]));
  standalone.sort((a, b) => position.get(a)! - position.get(b)!);

  return [
    ...keys.map(({ key, certs }): RawEntry => ({
      alias: key.friendlyName ?? certs[0]?.friendlyName,
      privateKeyPkcs8: key.der,
      ...(key.encrypted
        ? { unlockKey: (password?: string) => unlockShroudedKey(key, password, name) }
        : {}),
      certificates: certs.map((c) => c.der),
    })),
    ...standalone.map((cert) => ({
      alias: cert.friendlyName,
      privateKeyPkcs8: undefined,
      certificates: [cert.der],
    })),
  ];
}
