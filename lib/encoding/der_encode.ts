/**
 * Writes one DER value from its contents: the only DER this project writes (the store readers
 * wrap a PKCS#1 or SEC1 key into PKCS#8 with it). Reading is `der.ts`.
 *
 * @module
 */

import { concat } from "./bytes.ts";

/**
 * Encodes one DER value: the identifier, the minimal length and the contents. The readers wrap
 * keys with it (a PKCS#1 or SEC1 key into PKCS#8); there is no other DER writing.
 *
 * @param tag The identifier octet, e.g. `0x30` (SEQUENCE).
 * @param parts The contents, concatenated.
 * @returns The encoding.
 *
 * @example
 * ```ts
 * import { encodeDer } from "./der_encode.ts";
 * if (encodeDer(0x30, [new Uint8Array([5, 0])]).join() !== "48,2,5,0") throw new Error();
 * ```
 */
export function encodeDer(tag: number, parts: Uint8Array[]): Uint8Array {
  const content = concat(parts);
  const n = content.length;
  const length: number[] = [];
  if (n < 0x80) {
    length.push(n);
  } else {
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) length.unshift(rest & 0xff);
    length.unshift(0x80 | length.length);
  }
  return concat([new Uint8Array([tag, ...length]), content]);
}
