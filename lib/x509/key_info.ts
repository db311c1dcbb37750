/**
 * What kind of key a certificate or a private key holds, read from the DER (the
 * AlgorithmIdentifier of a SubjectPublicKeyInfo or PKCS#8 PrivateKeyInfo), so that every key a
 * store can hold is named, also those `node:crypto` cannot load (RSA-PSS keys, brainpool and
 * other curves), and which of them Deno's TLS client can present.
 *
 * @module
 */

import { children, expectTag, readDer, type Tlv } from "../encoding/der.ts";
import { readOid } from "../encoding/der_values.ts";
import type { KeyType } from "../types.ts";

/** The kind of a key: algorithm, named curve and size. */
export interface KeyInfo {
  /** The algorithm. */
  keyType: KeyType;
  /** The named curve of an EC key, in OpenSSL's names (`prime256v1`, `brainpoolP256r1`). */
  curve: string | undefined;
  /** Size in bits: RSA and DSA modulus, EC field size, 256 for Ed25519, 456 for Ed448. */
  keySize: number | undefined;
}

const ALGORITHMS: Record<string, KeyType> = {
  "1.2.840.113549.1.1.1": "rsa",
  "1.2.840.113549.1.1.10": "rsa-pss",
  "1.2.840.10045.2.1": "ec",
  "1.3.101.112": "ed25519",
  "1.3.101.113": "ed448",
  "1.2.840.10040.4.1": "dsa",
};

const CURVES: Record<string, { name: string; bits: number }> = {
  "1.2.840.10045.3.1.7": { name: "prime256v1", bits: 256 },
  "1.3.132.0.34": { name: "secp384r1", bits: 384 },
  "1.3.132.0.35": { name: "secp521r1", bits: 521 },
  "1.3.132.0.10": { name: "secp256k1", bits: 256 },
  "1.3.132.0.33": { name: "secp224r1", bits: 224 },
  "1.2.840.10045.3.1.1": { name: "prime192v1", bits: 192 },
  "1.3.36.3.3.2.8.1.1.7": { name: "brainpoolP256r1", bits: 256 },
  "1.3.36.3.3.2.8.1.1.11": { name: "brainpoolP384r1", bits: 384 },
  "1.3.36.3.3.2.8.1.1.13": { name: "brainpoolP512r1", bits: 512 },
  "1.2.156.10197.1.301": { name: "SM2", bits: 256 },
};

/**
 * The key types and curves Deno 2.9.6's TLS client can present as a client certificate,
 * measured against mosquitto with `require_certificate true` (tests/keytypes_test.ts): RSA
 * (`rsaEncryption`; under 2,048 bits `node:tls` refuses the key, see `RSA_KEY_TOO_SMALL`),
 * ECDSA on P-256, P-384 and P-521, and Ed25519. RSA-PSS keys (`id-RSASSA-PSS`), secp256k1,
 * brainpool curves, Ed448 and DSA fail in the handshake ("unsupported protocol").
 */
export const TLS_CLIENT_KEYS = "RSA 2048+, ECDSA on P-256/P-384/P-521, Ed25519";

/**
 * Whether Deno's TLS client can present a key of this kind (see {@linkcode TLS_CLIENT_KEYS}).
 *
 * @param info The key's kind.
 * @returns `true` for RSA, ECDSA on P-256/P-384/P-521 and Ed25519.
 *
 * @example
 * ```ts
 * import { tlsClientCanPresent } from "./key_info.ts";
 * if (!tlsClientCanPresent({ keyType: "ec", curve: "prime256v1", keySize: 256 })) throw new Error();
 * if (tlsClientCanPresent({ keyType: "ed448", curve: undefined, keySize: 456 })) throw new Error();
 * ```
 */
export function tlsClientCanPresent(info: KeyInfo): boolean {
  switch (info.keyType) {
    case "rsa":
    case "ed25519":
      return true;
    case "ec":
      return ["prime256v1", "secp384r1", "secp521r1"].includes(info.curve ?? "");
    default:
      return false;
  }
}

/**
 * A key's kind in words, e.g. `an EC key on brainpoolP256r1`, `a 2048-bit RSA-PSS key`.
 *
 * @param info The key's kind.
 * @returns The description with its article.
 *
 * @example
 * ```ts
 * import { describeKey } from "./key_info.ts";
 * if (describeKey({ keyType: "ed448", curve: undefined, keySize: 456 }) !== "an Ed448 key") {
 *   throw new Error();
 * }
 * ```
 */
export function describeKey(info: KeyInfo): string {
  switch (info.keyType) {
    case "rsa":
      return `a ${info.keySize ?? "?"}-bit RSA key`;
    case "rsa-pss":
      return `a ${info.keySize ?? "?"}-bit RSA-PSS key (id-RSASSA-PSS)`;
    case "dsa":
      return `a ${info.keySize ?? "?"}-bit DSA key`;
    case "ec":
      return `an EC key on ${info.curve ?? "an unnamed curve"}`;
    case "ed25519":
      return "an Ed25519 key";
    case "ed448":
      return "an Ed448 key";
    default:
      return "a key of an unknown type";
  }
}

/**
 * The kind of a public key, from its SubjectPublicKeyInfo.
 *
 * @param spki The SubjectPublicKeyInfo, as DER bytes or a decoded value.
 * @returns The key's kind; `unknown` for an algorithm not listed here.
 * @throws {DerError} When the structure is not a SubjectPublicKeyInfo.
 *
 * @example
 * ```ts
 * import { spkiInfo } from "./key_info.ts";
 * // SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (33 bytes) }
 * const spki = new Uint8Array([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21,
 *   0x00, ...new Uint8Array(32)]);
 * if (spkiInfo(spki).keyType !== "ed25519") throw new Error();
 * ```
 */
export function spkiInfo(spki: Uint8Array | Tlv): KeyInfo {
  const node = spki instanceof Uint8Array ? readDer(spki, { what: "the public key" }) : spki;
  const [algorithm, key] = children(expectTag(node, 0x30, "SubjectPublicKeyInfo"));
  if (key === undefined) throw new SyntaxError("SubjectPublicKeyInfo without a key");
  // BIT STRING: an unused-bits octet, then the key.
  return infoOf(algorithm, () => readDer(key.content.subarray(1), { allowTrailing: true }));
}

/**
 * The kind of a private key, from its PKCS#8 PrivateKeyInfo.
 *
 * @param pkcs8 The unencrypted PrivateKeyInfo, DER.
 * @returns The key's kind; `unknown` for an algorithm not listed here.
 * @throws {DerError} When the structure is not a PrivateKeyInfo.
 *
 * @example
 * ```ts
 * import { pkcs8Info } from "./key_info.ts";
 * // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.113 }, OCTET STRING { OCTET STRING (57) } }
 * const key = new Uint8Array([0x30, 0x47, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
 *   0x71, 0x04, 0x3b, 0x04, 0x39, ...new Uint8Array(57)]);
 * if (pkcs8Info(key).keyType !== "ed448") throw new Error();
 * ```
 */
export function pkcs8Info(pkcs8: Uint8Array): KeyInfo {
  const parts = children(expectTag(readDer(pkcs8, { what: "the private key" }), 0x30, "SEQUENCE"));
  const [, algorithm, key] = parts;
  if (key === undefined) throw new SyntaxError("PrivateKeyInfo without a key");
  // RSAPrivateKey { version, modulus, ... }: the modulus is the second element.
  return infoOf(algorithm, () => children(readDer(key.content))[1], true);
}

function infoOf(algorithm: Tlv, rsaModulus: () => Tlv | undefined, isPrivate = false): KeyInfo {
  const parts = children(expectTag(algorithm, 0x30, "AlgorithmIdentifier"));
  const keyType = ALGORITHMS[readOid(parts[0])] ?? "unknown";
  const params = parts[1];
  switch (keyType) {
    case "rsa":
    case "rsa-pss": {
      let keySize: number | undefined;
      try {
        const inner = rsaModulus();
        // Public key: RSAPublicKey { modulus, exponent }, the modulus is its first element.
        const modulus = isPrivate ? inner : inner && children(inner)[0];
        keySize = modulus && bitLength(modulus.content);
      } catch {
        keySize = undefined;
      }
      return { keyType, curve: undefined, keySize };
    }
    case "ec": {
      const curve = params?.tag === 0x06 ? CURVES[readOid(params)] : undefined;
      const named = params?.tag === 0x06 ? (curve?.name ?? readOid(params)) : undefined;
      return { keyType, curve: named, keySize: curve?.bits };
    }
    case "dsa": {
      const p = params?.tag === 0x30 ? children(params)[0] : undefined;
      return { keyType, curve: undefined, keySize: p && bitLength(p.content) };
    }
    case "ed25519":
      return { keyType, curve: undefined, keySize: 256 };
    case "ed448":
      return { keyType, curve: undefined, keySize: 456 };
    default:
      return { keyType, curve: undefined, keySize: undefined };
  }
}

/** The bit length of a non-negative INTEGER's content octets. */
function bitLength(content: Uint8Array): number {
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  const rest = content.length - i;
  return rest === 0 ? 0 : (rest - 1) * 8 + (32 - Math.clz32(content[i]));
}
