/**
 * Helpers of the store, certificate and encoding tests: the JDK's cacerts, DER building,
 * assertions on `StoreError`s, an entry's key, and what real tools recorded about the fixtures.
 *
 * @module
 */

import assert from "node:assert/strict";
import { StoreError } from "../../lib/errors.ts";
import type { RawEntry } from "../../lib/types.ts";

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

/**
 * The JDK's cacerts path, or `undefined` after a visible warning that `test` checks nothing here
 * (no JDK installed).
 */
export function jdkCacertsOrWarn(test: string): string | undefined {
  const path = findJdkCacerts();
  if (path === undefined) {
    console.warn(`${test}: cacerts not found at ${JDK_CACERTS.join(" or ")}: nothing checked here`);
  }
  return path;
}

/** What a {@linkcode StoreError} must be: its code, the label its message names, absent secrets. */
export interface ExpectedStoreError {
  code: string;
  name: string;
  secrets?: string[];
}

/** Asserts that `error` is the expected {@linkcode StoreError}, and returns it. */
export function checkStoreError(error: unknown, expected: ExpectedStoreError): StoreError {
  assert.ok(error instanceof StoreError, `expected a StoreError, got ${error}`);
  assert.equal(error.code, expected.code, error.message);
  assert.ok(error.message.includes(expected.name), `message names the store: ${error.message}`);
  for (const secret of expected.secrets ?? []) {
    assert.ok(!error.message.includes(secret), "no password in the message");
    assert.ok(!error.hint.includes(secret), "no password in the hint");
  }
  return error;
}

/** Asserts that `promise` rejects with the expected {@linkcode StoreError}. */
export async function assertStoreError(
  promise: Promise<unknown>,
  expected: ExpectedStoreError,
): Promise<StoreError> {
  try {
    await promise;
  } catch (error) {
    return checkStoreError(error, expected);
  }
  return checkStoreError(undefined, expected);
}

/** Asserts that `fn` throws the expected {@linkcode StoreError}. */
export function assertStoreErrorSync(fn: () => unknown, expected: ExpectedStoreError): StoreError {
  try {
    fn();
  } catch (error) {
    return checkStoreError(error, expected);
  }
  return checkStoreError(undefined, expected);
}

/**
 * The key of a store entry as `loadKeyStore` gets it: the plain PKCS#8, or the encrypted key
 * decrypted with `password` (for that entry alone).
 */
export async function entryKey(
  entry: RawEntry,
  password: string | undefined,
): Promise<Uint8Array | undefined> {
  if (entry.privateKeyPkcs8 !== undefined) return entry.privateKeyPkcs8;
  return await entry.unlockKey?.(password);
}

let toolResults: Map<string, string> | undefined;

/**
 * What a real tool (openssl, keytool) made of a fixture, as `fixtures/make.sh` recorded it in
 * `fixtures/interop/tools.tsv` when it wrote the fixture: the value tests compare with.
 */
export function tool(file: string, name: string): string {
  toolResults ??= new Map(
    Deno.readTextFileSync(new URL("../../fixtures/interop/tools.tsv", import.meta.url)).split("\n")
      .slice(1).filter((l) => l !== "").map((line) => {
        const [f, t, result] = line.split("\t");
        return [`${f}\t${t}`, result ?? ""];
      }),
  );
  const result = toolResults.get(`${file}\t${name}`);
  if (result === undefined) {
    throw new Error(`fixtures/interop/tools.tsv has no ${name} for ${file}`);
  }
  return result;
}
