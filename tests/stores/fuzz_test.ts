/**
 * Fuzzing the store readers (issue 4): every keystore and truststore fixture is mutated a fixed
 * number of times (bit flips, truncations, and corrupted length fields: DER lengths of PKCS#12
 * and of the DER inside PEM blocks, the length and count fields of JKS/JCEKS), and each mutant
 * goes through `loadKeyStore()` and `loadTrustStore()` with the right passwords (and, for JKS,
 * `loadTrustStore()` without a password too: that skips the integrity digest, so the damaged
 * bytes reach the parser). Every failure must be a `C8yError`, and every call must finish
 * within {@linkcode TIME_BOUND_MS}.
 *
 * The PRNG is seeded per file from {@linkcode SEED} and the file name, so each file's mutants
 * are the same on every run and in any order; a failure message names the mutation, and a
 * failing input is added to {@linkcode REGRESSIONS} once the reader is fixed.
 */

import assert from "node:assert/strict";
import { C8yError } from "../../lib/errors.ts";
import { loadKeyStore, loadTrustStore } from "../../lib/stores/load.ts";
import { children, readDer, type Tlv } from "../../lib/encoding/der.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const permissions = { read: [fixtures] };

/** The fixed seed of the whole run. */
const SEED = 0xc8_7e_57_01;
/** Mutants per fixture file. */
const MUTATIONS_PER_FILE = 48;
/** The longest one `loadKeyStore()` or `loadTrustStore()` call may take, in milliseconds. */
const TIME_BOUND_MS = 2000;
const DIRECTORIES = ["devices", "server", "bad", "interop", "keytypes"];
const STORE_FILE = /\.(p12|jks|jceks|pem|key|cer)$/;
/**
 * Files left out: NSS's and GnuTLS's stores and certtool's 3DES-PKCS#12 key use 600,000
 * iterations per derivation (0.5 to 1 s a call, several seconds on a loaded machine), too slow for
 * 48 mutants; their reading paths (BER, one encrypted bag per certificate, the PKCS#12 PBE in
 * PKCS#8) are fuzzed through the other stores and keys, and bounded by the budget
 * (bounds_test.ts).
 */
const SLOW = /^interop\/(nss|gnutls|certtool-3des)/;
const PASSWORD = "changeit";

// ---- Deterministic randomness ------------------------------------------------------------

/** mulberry32: a small, fast, well-distributed 32-bit PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string, to derive a per-file seed. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// ---- Mutations ---------------------------------------------------------------------------

/** One mutation, as data, so that a failure can be written down and replayed. */
type Mutation =
  | { kind: "flip"; bits: number[] }
  | { kind: "truncate"; length: number }
  /** Overwrites bytes at `offset` (a length field, `why` says which). */
  | { kind: "set"; offset: number; bytes: number[]; why: string }
  /** Overwrites bytes of the DER inside PEM block `block`, then encodes the block again. */
  | { kind: "pem-der"; block: number; offset: number; bytes: number[]; why: string };

function describe(m: Mutation): string {
  switch (m.kind) {
    case "flip":
      return `flip bits ${m.bits.join(",")}`;
    case "truncate":
      return `truncate to ${m.length} bytes`;
    case "set":
      return `set ${m.why} at ${m.offset} to [${m.bytes.join(",")}]`;
    case "pem-der":
      return `set ${m.why} at DER offset ${m.offset} of PEM block ${m.block} to [${m.bytes}]`;
  }
}

function apply(original: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case "flip": {
      const out = original.slice();
      for (const bit of m.bits) out[bit >> 3] ^= 1 << (bit & 7);
      return out;
    }
    case "truncate":
      return original.slice(0, m.length);
    case "set": {
      const out = original.slice();
      out.set(m.bytes.slice(0, out.length - m.offset), m.offset);
      return out;
    }
    case "pem-der": {
      const text = new TextDecoder().decode(original);
      const block = pemBlocksWithOffsets(text)[m.block];
      const der = block.der.slice();
      der.set(m.bytes.slice(0, der.length - m.offset), m.offset);
      const mutated = text.slice(0, block.start) + pem(block.label, der) + text.slice(block.end);
      return new TextEncoder().encode(mutated);
    }
  }
}

/** A length field of the input: where it is, how many bytes, and what format it belongs to. */
interface LengthField {
  offset: number;
  size: number;
  kind: "der-short" | "der-long" | "jks-u16" | "jks-u32";
}

/** The length octets of every TLV, descending into constructed values and DER in OCTET STRINGs. */
function derLengthFields(bytes: Uint8Array): LengthField[] {
  const fields: LengthField[] = [];
  const base = bytes.byteOffset;
  const visit = (node: Tlv, nesting: number): void => {
    const at = node.raw.byteOffset - base + 1;
    const size = node.content.byteOffset - node.raw.byteOffset - 1;
    fields.push({ offset: at, size, kind: size === 1 ? "der-short" : "der-long" });
    if (node.tag & 0x20) {
      for (const child of children(node)) visit(child, nesting);
    } else if (node.tag === 0x04 && nesting < 4) {
      try {
        visit(readDer(node.content), nesting + 1); // PKCS#12 wraps DER in OCTET STRINGs
      } catch {
        // not DER inside
      }
    }
  };
  try {
    visit(readDer(bytes, { allowTrailing: true }), 0);
  } catch {
    // keep what was found before the failure
  }
  return fields;
}

/** The length and count fields of a JKS (or JCEKS) store, in order, until the walk fails. */
function jksLengthFields(bytes: Uint8Array): LengthField[] {
  const fields: LengthField[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  const field = (size: 2 | 4): number => {
    if (off + size > bytes.length) throw new RangeError("end");
    fields.push({ offset: off, size, kind: size === 2 ? "jks-u16" : "jks-u32" });
    const value = size === 2 ? view.getUint16(off) : view.getUint32(off);
    off += size;
    return value;
  };
  const skip = (n: number): void => {
    if (off + n > bytes.length) throw new RangeError("end");
    off += n;
  };
  try {
    skip(4); // magic
    const version = field(4);
    const count = field(4);
    const cert = (): void => {
      if (version === 2) skip(field(2));
      skip(field(4));
    };
    for (let i = 0; i < count; i++) {
      const tag = field(4);
      skip(field(2)); // alias
      skip(8); // date
      if (tag === 1) {
        skip(field(4)); // protected key
        const n = field(4);
        for (let j = 0; j < n; j++) cert();
      } else if (tag === 2) {
        cert();
      } else {
        break; // JCEKS secret key entries: a serialized Java object
      }
    }
  } catch {
    // truncated or unknown: keep what was found
  }
  return fields;
}

interface PemBlockAt {
  label: string;
  der: Uint8Array;
  start: number;
  end: number;
}

/** PEM blocks without RFC 1421 headers, with their position in the text. */
function pemBlocksWithOffsets(text: string): PemBlockAt[] {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1-----\r?\n?/g;
  return [...text.matchAll(re)].map((m) => {
    const bin = atob(m[2].replace(/\s+/g, ""));
    const der = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return { label: m[1], der, start: m.index, end: m.index + m[0].length };
  });
}

function pem(label: string, der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der));
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)?.join("\n") ?? ""}\n` +
    `-----END ${label}-----\n`;
}

/** New values for a length field: zero, 0x7f, 0xff-filled ("huge"), and format specials. */
function corruptions(field: LengthField, current: Uint8Array): { bytes: number[]; why: string }[] {
  const fill = (v: number): number[] => Array(field.size).fill(v);
  switch (field.kind) {
    case "der-short":
      return [
        { bytes: [0x00], why: "DER length := 0" },
        { bytes: [0x7f], why: "DER length := 0x7f" },
        { bytes: [0xff], why: "DER length := 0xff (127 length octets)" },
        { bytes: [0x80], why: "DER length := indefinite" },
        { bytes: [0x84], why: "DER length := huge (4 length octets from the content)" },
      ];
    case "der-long":
      return [
        { bytes: [current[0], ...fill(0).slice(1)], why: "DER long length := 0" },
        { bytes: [current[0], ...fill(0xff).slice(1)], why: "DER long length := huge" },
        { bytes: [0x7f], why: "DER length := 0x7f" },
        { bytes: [0xff], why: "DER length := 0xff (127 length octets)" },
        { bytes: [0x80], why: "DER length := indefinite" },
        { bytes: [0x84, 0x7f, 0xff, 0xff, 0xff], why: "DER length := 2^31-1" },
      ];
    case "jks-u16":
      return [
        { bytes: fill(0), why: "JKS u16 length := 0" },
        { bytes: [0x00, 0x7f], why: "JKS u16 length := 0x7f" },
        { bytes: [0x00, 0xff], why: "JKS u16 length := 0xff" },
        { bytes: fill(0xff), why: "JKS u16 length := 0xffff" },
      ];
    case "jks-u32":
      return [
        { bytes: fill(0), why: "JKS u32 length := 0" },
        { bytes: [0, 0, 0, 0x7f], why: "JKS u32 length := 0x7f" },
        { bytes: [0, 0, 0, 0xff], why: "JKS u32 length := 0xff" },
        { bytes: [0x7f, 0xff, 0xff, 0xff], why: "JKS u32 length := 2^31-1" },
        { bytes: fill(0xff), why: "JKS u32 length := 2^32-1" },
      ];
  }
}

/** The mutants of one file: about a quarter bit flips, a sixth truncations, the rest lengths. */
function mutationsFor(name: string, original: Uint8Array): Mutation[] {
  const random = prng(SEED ^ fnv1a(name));
  const pick = (n: number): number => Math.floor(random() * n);
  const text = new TextDecoder().decode(original);
  const isPem = text.includes("-----BEGIN ");
  const binaryFields = isPem
    ? []
    : original[0] === 0x30
    ? derLengthFields(original)
    : jksLengthFields(original);
  const pemFields = isPem
    ? pemBlocksWithOffsets(text).flatMap((block, index) =>
      derLengthFields(block.der).map((field) => ({ index, field, der: block.der }))
    )
    : [];

  const mutations: Mutation[] = [];
  for (let i = 0; i < MUTATIONS_PER_FILE; i++) {
    const roll = i % 12;
    if (roll < 3) {
      const count = 1 + pick(3);
      mutations.push({
        kind: "flip",
        bits: Array.from({ length: count }, () => pick(original.length * 8)),
      });
    } else if (roll < 5) {
      mutations.push({ kind: "truncate", length: pick(original.length) });
    } else if (binaryFields.length > 0) {
      const field = binaryFields[pick(binaryFields.length)];
      const options = corruptions(field, original.subarray(field.offset));
      mutations.push({ kind: "set", offset: field.offset, ...options[pick(options.length)] });
    } else if (pemFields.length > 0) {
      const { index, field, der } = pemFields[pick(pemFields.length)];
      const options = corruptions(field, der.subarray(field.offset));
      mutations.push({
        kind: "pem-der",
        block: index,
        offset: field.offset,
        ...options[pick(options.length)],
      });
    } else {
      mutations.push({ kind: "flip", bits: [pick(original.length * 8)] });
    }
  }
  return mutations;
}

// ---- Running -----------------------------------------------------------------------------

interface Target {
  /** Path below fixtures/, e.g. `devices/rsa.jdk.p12`. */
  path: string;
  keyStore: Parameters<typeof loadKeyStore>[1];
  /** Options of each `loadTrustStore()` call. */
  trustStores: Parameters<typeof loadTrustStore>[1][];
}

function targets(): Target[] {
  const result: Target[] = [];
  for (const dir of DIRECTORIES) {
    const names = [...Deno.readDirSync(new URL(`${dir}/`, fixtures))]
      .filter((e) => e.isFile && STORE_FILE.test(e.name)).map((e) => e.name).sort();
    for (const name of names) {
      const path = `${dir}/${name}`;
      if (SLOW.test(path)) continue;
      const keyStore: Target["keyStore"] = { password: PASSWORD, name: path };
      if (name === "two-keypass.jks") {
        Object.assign(keyStore, { alias: "device-a", keyPassword: "passwordA" });
      }
      if (name.includes(".keypass.")) keyStore.keyPassword = "keysecret";
      if (name.startsWith("multi.")) keyStore.alias = "rsa";
      // A certificate (chain) file goes with its key file, to reach the chain checks.
      const base = name.replace(/(\.chain|\.fullchain)?\.pem$/, "");
      if (name.endsWith(".pem") && !/\.key\b/.test(name) && names.includes(`${base}.key`)) {
        keyStore.key = Deno.readFileSync(new URL(`${dir}/${base}.key`, fixtures));
        keyStore.keyName = `${dir}/${base}.key`;
      }
      const trustStores = [{ password: PASSWORD, name: path }];
      if (/\.(jks|jceks)$/.test(name)) trustStores.push({ name: path } as typeof trustStores[0]);
      result.push({ path, keyStore, trustStores });
    }
  }
  return result;
}

/** An error and its causes, outermost first. */
function causeChain(err: unknown): unknown[] {
  const chain = [err];
  for (let e = err; e instanceof Error && e.cause !== undefined && chain.length < 10;) {
    e = e.cause;
    chain.push(e);
  }
  return chain;
}

/**
 * Runs the loaders on `bytes`; returns a description of each violation. With `strict`, a
 * TypeError or RangeError anywhere in the cause chain is a violation too (a reader bug that
 * a catch-all wrapped).
 */
async function check(
  target: Target,
  bytes: Uint8Array,
  { label, strict = false }: { label: string; strict?: boolean },
): Promise<string[]> {
  const problems: string[] = [];
  const calls: [string, () => Promise<unknown>][] = [
    ["loadKeyStore", () => loadKeyStore(bytes, target.keyStore)],
    ...target.trustStores.map((options): [string, () => Promise<unknown>] => [
      `loadTrustStore(password ${options?.password === undefined ? "none" : "given"})`,
      () => loadTrustStore(bytes, options),
    ]),
  ];
  for (const [fn, call] of calls) {
    const start = performance.now();
    try {
      await call();
    } catch (err) {
      if (!(err instanceof C8yError)) {
        problems.push(
          `${fn}(${target.path}, ${label}) threw a non-C8yError: ${(err as Error)?.stack ?? err}`,
        );
      }
      const raw = causeChain(err).find((e) => e instanceof TypeError || e instanceof RangeError);
      if (strict && raw) {
        problems.push(`${fn}(${target.path}, ${label}) failed on a ${(raw as Error).stack}`);
      }
    }
    const elapsed = performance.now() - start;
    if (elapsed > TIME_BOUND_MS) {
      problems.push(`${fn}(${target.path}, ${label}) took ${elapsed.toFixed(0)} ms`);
    }
  }
  return problems;
}

const ALL = targets();

Deno.test({
  name: "the fuzz targets cover every keystore and truststore fixture",
  permissions,
  fn(): void {
    const formats = new Set(ALL.map((t) => t.path.split(".").pop()));
    assert.deepEqual([...formats].sort(), ["cer", "jceks", "jks", "key", "p12", "pem"]);
    for (const dir of DIRECTORIES) {
      assert.ok(ALL.filter((t) => t.path.startsWith(`${dir}/`)).length > 0, dir);
    }
    // The targeted mutations really find length fields in each binary format.
    const lengths = (path: string): Mutation[] =>
      mutationsFor(path, Deno.readFileSync(new URL(path, fixtures)))
        .filter((m) => m.kind === "set" || m.kind === "pem-der");
    for (const path of ["devices/rsa.jdk.p12", "devices/rsa.jks", "devices/rsa.key"]) {
      assert.ok(lengths(path).length >= MUTATIONS_PER_FILE / 2, path);
    }
    assert.ok(lengths("devices/rsa.jks").some((m) => m.kind === "set" && /JKS/.test(m.why)));
  },
});

for (const target of ALL) {
  Deno.test({
    name: `loadKeyStore() and loadTrustStore() throw only C8yError, in time, for ` +
      `${MUTATIONS_PER_FILE} mutants of ${target.path}`,
    permissions,
    async fn(): Promise<void> {
      const original = await Deno.readFile(new URL(target.path, fixtures));
      const problems = await check(target, original, { label: "unmutated" });
      for (const mutation of mutationsFor(target.path, original)) {
        const label = describe(mutation);
        problems.push(...await check(target, apply(original, mutation), { label }));
      }
      assert.deepEqual(problems, [], problems.join("\n\n"));
    },
  });
}

/**
 * Inputs that once broke a reader: the fixture, the mutation, and what went wrong before the
 * fix. Each is replayed in strict mode: no TypeError or RangeError even as a cause.
 */
const REGRESSIONS: { path: string; mutation: Mutation; was: string }[] = [
  {
    // A SET tag of the leaf's subject flipped to 0x29: Deno's X509Certificate accepts the
    // certificate but its `subject` is undefined, and the summary called undefined.split().
    path: "devices/ec256.fullchain.pem",
    mutation: { kind: "flip", bits: [1739, 11475] },
    was: "a TypeError on the undefined subject, wrapped as CERT_PARSE",
  },
];

for (const { path, mutation, was } of REGRESSIONS) {
  Deno.test({
    name: `loadKeyStore() and loadTrustStore() throw only C8yError for ${path} with ` +
      `${describe(mutation)} (was: ${was})`,
    permissions,
    async fn(): Promise<void> {
      const target = ALL.find((t) => t.path === path);
      assert.ok(target, path);
      const original = await Deno.readFile(new URL(path, fixtures));
      const label = describe(mutation);
      const problems = await check(target, apply(original, mutation), { label, strict: true });
      assert.deepEqual(problems, [], problems.join("\n\n"));
    },
  });
}
