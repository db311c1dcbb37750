import assert from "node:assert/strict";
import { equalBytes, hex } from "../../lib/encoding/bytes.ts";

Deno.test("hex() writes two lower-case digits per byte", () => {
  assert.equal(hex(new Uint8Array([0, 1, 0x7f, 0x80, 0xff])), "00017f80ff");
  assert.equal(hex(new Uint8Array()), "");
});

Deno.test("equalBytes() compares length and content, and never equals undefined", () => {
  assert.equal(equalBytes(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3])), true);
  assert.equal(equalBytes(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4])), false);
  assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])), false);
  assert.equal(equalBytes(new Uint8Array(), new Uint8Array()), true);
  assert.equal(equalBytes(undefined, new Uint8Array()), false);
  assert.equal(equalBytes(new Uint8Array(), undefined), false);
  // A view into a larger buffer compares by its own bytes.
  const buffer = new Uint8Array([9, 1, 2, 9]);
  assert.equal(equalBytes(buffer.subarray(1, 3), new Uint8Array([1, 2])), true);
});
