/**
 * Small helpers shared by several test files.
 *
 * @module
 */

/** Where JDK 17 packages put the JDK's own truststore (a JKS, password `changeit`). */
export const JDK_CACERTS: readonly string[] = [
  "/usr/lib/jvm/java-17-openjdk-amd64/lib/security/cacerts",
  "/etc/ssl/certs/java/cacerts",
];

/** The first of {@linkcode JDK_CACERTS} that is a file, or `undefined` when no JDK is installed. */
export function findJdkCacerts(): string | undefined {
  return JDK_CACERTS.find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}

/** Encodes one DER TLV (tag, minimal length, content) for building test inputs. */
export function encodeDer(tag: number, content: Uint8Array | number[]): Uint8Array {
  const n = content.length;
  const length = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : n < 0x10000
    ? [0x82, n >> 8, n & 0xff]
    : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(1 + length.length + n);
  out.set([tag, ...length]);
  out.set(content, 1 + length.length);
  return out;
}
