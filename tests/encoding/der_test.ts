import assert from "node:assert/strict";
import { encodeDer } from "../support/stores.ts";
import { X509Certificate } from "node:crypto";
import {
  children,
  DerError,
  expectTag,
  explicit,
  MAX_DER_DEPTH,
  readDer,
} from "../../lib/encoding/der.ts";
import { readOctets, readOid, readSmallInt, readString } from "../../lib/encoding/der_values.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);

/** Encodes one TLV with a minimal (DER) length. */
function tlv(tag: number, ...content: (number[] | Uint8Array)[]): Uint8Array {
  return encodeDer(tag, content.flatMap((c) => [...c]));
}

/** `depth` SEQUENCEs nested inside each other around a NULL, definite lengths. */
function nested(depth: number): Uint8Array {
  let inner: Uint8Array = new Uint8Array([0x05, 0x00]);
  for (let i = 0; i < depth; i++) inner = tlv(0x30, inner);
  return inner;
}

/** The same with indefinite lengths. */
function nestedIndefinite(depth: number): Uint8Array {
  return new Uint8Array([
    ...Array(depth).fill([0x30, 0x80]).flat(),
    0x05,
    0x00,
    ...Array(depth).fill([0x00, 0x00]).flat(),
  ]);
}

/** Descends through single-child SEQUENCEs and returns how deep it got. */
function walk(bytes: Uint8Array): number {
  let node = readDer(bytes);
  let depth = 0;
  while (node.tag === 0x30) {
    node = children(node)[0];
    depth++;
  }
  return depth;
}

function throwsDer(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DerError, `expected a DerError, got ${err}`);
    assert.ok(err instanceof SyntaxError);
    assert.match(err.message, message);
    return true;
  });
}

Deno.test("readDer() reads a short-form length", () => {
  const node = readDer(new Uint8Array([0x04, 0x03, 1, 2, 3]));
  assert.equal(node.tag, 0x04);
  assert.deepEqual([...node.content], [1, 2, 3]);
  assert.equal(node.raw.length, 5);
  assert.equal(node.depth, 0);
  assert.equal(readDer(new Uint8Array([0x05, 0x00])).content.length, 0);
});

Deno.test("readDer() reads long-form lengths of one to four octets, minimal or not", () => {
  for (const size of [0x80, 0xff, 0x100, 0x1234, 0x10000]) {
    const bytes = tlv(0x04, new Uint8Array(size).fill(7));
    const node = readDer(bytes);
    assert.equal(node.content.length, size);
    assert.equal(node.raw.length, bytes.length);
  }
  // Non-minimal long forms are BER, accepted: 0x81 0x02, 0x82 0x00 0x02, 0x84 0 0 0 2.
  for (const header of [[0x81, 0x02], [0x82, 0x00, 0x02], [0x84, 0x00, 0x00, 0x00, 0x02]]) {
    const node = readDer(new Uint8Array([0x04, ...header, 0xaa, 0xbb]));
    assert.deepEqual([...node.content], [0xaa, 0xbb]);
  }
});

Deno.test("readDer() refuses lengths of five or more octets and 0xff", () => {
  throwsDer(() => readDer(new Uint8Array([0x04, 0x85, 0, 0, 0, 0, 1, 0])), /more than four/);
  throwsDer(() => readDer(new Uint8Array([0x04, 0xff, 0, 0])), /more than four/);
});

Deno.test("readDer() refuses lengths past the end without allocating them", () => {
  // 4 GiB - 1 announced, 2 bytes there: refused from the header, before reading any content.
  throwsDer(
    () => readDer(new Uint8Array([0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 1, 2])),
    /runs past the end/,
  );
  throwsDer(() => readDer(new Uint8Array([0x30, 0x7f, 0x05, 0x00])), /runs past the end/);
  throwsDer(() => readDer(new Uint8Array([0x04, 0x03, 1, 2])), /runs past the end/);
});

Deno.test("readDer() refuses every truncation of a valid encoding", () => {
  const bytes = tlv(0x30, tlv(0x02, [1]), tlv(0x04, new Uint8Array(300)), tlv(0x05));
  assert.equal(children(readDer(bytes)).length, 3);
  for (let length = 0; length < bytes.length; length++) {
    throwsDer(() => readDer(bytes.subarray(0, length)), /truncated|runs past|trailing/);
  }
  throwsDer(() => readDer(new Uint8Array([0x04, 0x82, 0x01])), /truncated length/);
  throwsDer(() => readDer(new Uint8Array([0x04])), /truncated header/);
  throwsDer(() => readDer(new Uint8Array()), /truncated header/);
});

Deno.test("readDer() refuses trailing bytes unless allowTrailing is set", () => {
  const bytes = new Uint8Array([0x05, 0x00, 0xde, 0xad]);
  throwsDer(() => readDer(bytes, { what: "the PFX" }), /trailing bytes after the PFX/);
  const first = readDer(bytes, { allowTrailing: true });
  assert.deepEqual([...first.raw], [0x05, 0x00]);
});

Deno.test("readDer() refuses high tag numbers and input that is not a Uint8Array", () => {
  throwsDer(() => readDer(new Uint8Array([0x1f, 0x81, 0x00, 0x00])), /tag numbers above 30/);
  throwsDer(() => readDer([0x05, 0x00] as unknown as Uint8Array), /not a Uint8Array/);
});

Deno.test("readDer() reads BER indefinite lengths, nested, up to the end-of-contents", () => {
  // SEQUENCE (indefinite) { INTEGER 5, SEQUENCE (indefinite) { NULL } } followed by nothing.
  const bytes = new Uint8Array([
    0x30,
    0x80,
    0x02,
    0x01,
    0x05,
    0x30,
    0x80,
    0x05,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
  ]);
  const outer = readDer(bytes);
  assert.equal(outer.raw.length, bytes.length);
  assert.equal(outer.content.length, bytes.length - 4); // header and end-of-contents left out
  const [int, inner] = children(outer);
  assert.equal(readSmallInt(int), 5);
  assert.deepEqual(children(inner).map((c) => c.tag), [0x05]);
  assert.equal(inner.raw.length, 6);
});

Deno.test("readDer() refuses an indefinite length without end-of-contents or on a primitive", () => {
  throwsDer(
    () => readDer(new Uint8Array([0x30, 0x80, 0x05, 0x00])),
    /missing end-of-contents/,
  );
  throwsDer(() => readDer(new Uint8Array([0x30, 0x80, 0x05, 0x00, 0x00])), /end-of-contents/);
  throwsDer(
    () => readDer(new Uint8Array([0x04, 0x80, 0x01, 0x00, 0x00])),
    /indefinite length on a primitive/,
  );
});

Deno.test("children() descends to MAX_DER_DEPTH and refuses one level more", () => {
  // nested(n): n SEQUENCEs around a NULL, which sits at depth n.
  assert.equal(walk(nested(MAX_DER_DEPTH)), MAX_DER_DEPTH);
  throwsDer(() => walk(nested(MAX_DER_DEPTH + 1)), /nested too deeply/);
});

Deno.test("readDer() bounds the recursion of indefinite lengths (no stack overflow)", () => {
  assert.equal(walk(nestedIndefinite(MAX_DER_DEPTH)), MAX_DER_DEPTH);
  throwsDer(() => readDer(nestedIndefinite(MAX_DER_DEPTH + 1)), /nested too deeply/);
  // 100,000 levels: refused after MAX_DER_DEPTH, not by a RangeError of the call stack.
  throwsDer(() => readDer(nestedIndefinite(100_000)), /nested too deeply/);
});

Deno.test("children() refuses a primitive value and malformed elements", () => {
  throwsDer(() => children(readDer(new Uint8Array([0x04, 0x00]))), /constructed/);
  // The SEQUENCE's length fits the input, but its element does not fit the SEQUENCE.
  throwsDer(
    () => children(readDer(new Uint8Array([0x30, 0x03, 0x04, 0x05, 0x00]))),
    /runs past the end/,
  );
});

Deno.test("expectTag() and explicit() check tags and the single element of [n]", () => {
  const seq = readDer(tlv(0x30));
  assert.equal(expectTag(seq, 0x30, "SEQUENCE"), seq);
  throwsDer(() => expectTag(seq, 0x31, "SET"), /expected SET/);
  throwsDer(() => expectTag(seq, 0x31), /expected tag 0x31/);
  const tagged = readDer(tlv(0xa3, tlv(0x05)));
  assert.equal(explicit(tagged, 3).tag, 0x05);
  throwsDer(() => explicit(tagged, 0), /expected \[0\]/);
  throwsDer(() => explicit(readDer(tlv(0xa0)), 0), /one value in \[0\]/);
  throwsDer(() => explicit(readDer(tlv(0xa0, tlv(0x05), tlv(0x05))), 0), /one value/);
});

Deno.test("readOctets() joins the segments of a constructed OCTET STRING", () => {
  assert.deepEqual([...readOctets(readDer(tlv(0x04, [1, 2])))], [1, 2]);
  assert.deepEqual([...readOctets(readDer(tlv(0x80, [3])))], [3]); // implicit [0]
  const constructed = tlv(0x24, tlv(0x04, [1]), tlv(0x24, tlv(0x04, [2, 3])));
  assert.deepEqual([...readOctets(readDer(constructed))], [1, 2, 3]);
  throwsDer(() => readOctets(readDer(tlv(0x24, tlv(0x02, [1])))), /holds something else/);
});

Deno.test("readOid() decodes OIDs, including arcs beyond 2^53", () => {
  const oid = (bytes: number[]): string => readOid(readDer(tlv(0x06, bytes)));
  assert.equal(oid([0x55, 0x04, 0x03]), "2.5.4.3");
  assert.equal(
    oid([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02]),
    [
      "1.2.840.113549.1.12.10.1.2",
    ].join(),
  );
  assert.equal(oid([0x00]), "0.0");
  assert.equal(oid([0x88, 0x37, 0x03]), "2.999.3");
  // 2.25.<UUID as a 128-bit integer>
  const uuid = 0xf81d4fae7dec11d0a76500a0c91e6bf6n;
  const arc: number[] = [];
  for (let v = uuid; v > 0n; v >>= 7n) arc.unshift(Number(v & 0x7fn) | (arc.length ? 0x80 : 0));
  assert.equal(oid([0x69, ...arc]), `2.25.${uuid}`);
});

Deno.test("readOid() refuses empty, truncated, overlong and mistagged OIDs", () => {
  throwsDer(() => readOid(readDer(tlv(0x06))), /empty/);
  throwsDer(() => readOid(readDer(tlv(0x06, [0x55, 0x84]))), /truncated/);
  throwsDer(() => readOid(readDer(tlv(0x06, new Uint8Array(129).fill(1)))), /too long/);
  throwsDer(() => readOid(readDer(tlv(0x04, [0x55]))), /expected OBJECT IDENTIFIER/);
});

Deno.test("readSmallInt() reads non-negative INTEGERs and gives Infinity beyond 48 bits", () => {
  const int = (bytes: number[]): number => readSmallInt(readDer(tlv(0x02, bytes)));
  assert.equal(int([0]), 0);
  assert.equal(int([0x00, 0x80]), 128);
  assert.equal(int([0x27, 0x10]), 10_000);
  assert.equal(int([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff]), 2 ** 47 - 1);
  assert.equal(int([0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]), 3); // leading zeros
  assert.equal(int([0x01, 0, 0, 0, 0, 0, 0]), Infinity);
  throwsDer(() => int([0xff]), /negative/);
  throwsDer(() => int([]), /empty/);
  throwsDer(() => readSmallInt(readDer(tlv(0x04, [1]))), /expected INTEGER/);
});

Deno.test("readString() decodes the string types and marks invalid characters", () => {
  const str = (tag: number, bytes: number[]): string => readString(readDer(tlv(tag, bytes)));
  assert.equal(str(0x0c, [0x64, 0xc3, 0xa9]), "dé");
  assert.equal(str(0x13, [0x41, 0x42]), "AB");
  assert.equal(str(0x16, [0x61]), "a");
  assert.equal(str(0x1e, [0x00, 0x72, 0x00, 0x73]), "rs");
  assert.equal(str(0x1c, [0x00, 0x01, 0xf6, 0x00]), "\u{1f600}");
  assert.equal(str(0x1c, [0x7f, 0xff, 0xff, 0xff]), "\ufffd"); // beyond U+10FFFF
  assert.equal(str(0x0c, [0xff]), "\ufffd");
  throwsDer(() => str(0x1e, [0x00]), /BMPString length/);
  throwsDer(() => str(0x1c, [0x00, 0x00, 0x00]), /UniversalString length/);
  throwsDer(() => str(0x04, [0x41]), /not a string type/);
});

Deno.test({
  name: "readDer() walks a real certificate like node:crypto sees it",
  permissions: { read: [fixtures] },
  fn: async () => {
    const pem = await Deno.readTextFile(new URL("devices/rsa.pem", fixtures));
    const der = new Uint8Array(new X509Certificate(pem).raw);
    const cert = readDer(der);
    assert.equal(cert.raw.length, der.length);
    const [tbs, algorithm, signature] = children(cert);
    assert.equal(tbs.tag, 0x30);
    assert.equal(readOid(children(algorithm)[0]), "1.2.840.113549.1.1.11"); // sha256WithRSA
    assert.equal(signature.tag, 0x03);
    const fields = children(tbs);
    assert.equal(readSmallInt(explicit(fields[0], 0)), 2); // v3
    const subject = children(fields[5]).map((rdn) => children(children(rdn)[0]));
    assert.deepEqual(subject.map(([t, v]) => `${readOid(t)}=${readString(v)}`), [
      "2.5.4.3=device-rsa-001",
    ]);
  },
});

Deno.test("the reader throws only DerError for random and mutated input", () => {
  // Deterministic xorshift32, so a failure can be replayed.
  let seed = 0x2545f491;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const base = tlv(
    0x30,
    tlv(0x02, [3]),
    tlv(0x06, [0x2a, 0x86, 0x48]),
    tlv(0x24, tlv(0x04, [1, 2])),
    tlv(0xa0, tlv(0x1e, [0, 0x41])),
  );
  const visit = (bytes: Uint8Array): void => {
    const stack = [readDer(bytes)];
    while (stack.length) {
      const node = stack.pop()!;
      if (node.tag & 0x20) stack.push(...children(node));
      for (const read of [readOid, readSmallInt, readString, readOctets]) {
        try {
          read(node);
        } catch (err) {
          if (!(err instanceof DerError)) throw err;
        }
      }
    }
  };
  for (let i = 0; i < 5000; i++) {
    const bytes = i % 2 === 0 ? base.slice() : new Uint8Array(next() % 24);
    for (let k = 0; k < bytes.length; k++) if (i % 2 === 1) bytes[k] = next();
    if (i % 2 === 0) bytes[next() % bytes.length] = next() & 0xff;
    try {
      visit(bytes);
    } catch (err) {
      assert.ok(err instanceof DerError, `input ${[...bytes]} threw ${err}`);
    }
  }
});
