import assert from "node:assert/strict";
import { pemBlocks, toPem } from "../../lib/encoding/pem.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const text = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));

Deno.test({
  name: "pemBlocks() splits a chain and toPem() writes it back byte for byte",
  permissions: read,
  fn(): void {
    const chain = text("devices/rsa.fullchain.pem");
    const blocks = pemBlocks(chain);
    assert.equal(blocks.length, 3);
    assert.ok(blocks.every((b) => b.label === "CERTIFICATE"));
    assert.equal(blocks.map((b) => toPem(b.der, b.label)).join(""), chain);
    assert.equal(blocks.map((b) => b.text).join(""), chain);
  },
});

Deno.test({
  name: "pemBlocks() reads the Proc-Type and DEK-Info headers of a legacy encrypted key",
  permissions: read,
  fn(): void {
    const [block] = pemBlocks(text("devices/rsa.key.legacy-enc.pem"));
    assert.equal(block.label, "RSA PRIVATE KEY");
    assert.equal(block.headers["Proc-Type"], "4,ENCRYPTED");
    assert.match(block.headers["DEK-Info"], /^AES-256-CBC,[0-9A-F]{32}$/);
  },
});

Deno.test({
  name: "pemBlocks() accepts CRLF line ends and ignores text between blocks",
  permissions: read,
  fn(): void {
    const pem = text("devices/ec256.pem");
    const crlf = "Bag Attributes\r\n    friendlyName: x\r\n" + pem.replaceAll("\n", "\r\n");
    const [block] = pemBlocks(crlf);
    assert.deepEqual(block.der, pemBlocks(pem)[0].der);
    assert.equal(block.text, pem);
  },
});

Deno.test("pemBlocks() rejects a missing or mismatched end line and bad base64", () => {
  assert.throws(() => pemBlocks("-----BEGIN CERTIFICATE-----\nMAA=\n"), SyntaxError);
  assert.throws(
    () => pemBlocks("-----BEGIN CERTIFICATE-----\nMAA=\n-----END PRIVATE KEY-----\n"),
    SyntaxError,
  );
  assert.throws(
    () => pemBlocks("-----BEGIN CERTIFICATE-----\nM*A=\n-----END CERTIFICATE-----\n"),
    SyntaxError,
  );
});

Deno.test("pemBlocks() names the culprit: the open block and its line, the END that does not match", () => {
  const cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
  assert.throws(
    () => pemBlocks(cert + "-----BEGIN PRIVATE KEY-----\nMAA=\n" + cert),
    /PEM block "PRIVATE KEY" \(line 4\) has no end line: line 6 begins another block/,
  );
  assert.throws(
    () => pemBlocks("-----BEGIN CERTIFICATE-----\nMAA=\n-----END PRIVATE KEY-----\n"),
    /"CERTIFICATE" \(line 1\) ends with "-----END PRIVATE KEY-----" \(line 3\)/,
  );
  assert.throws(
    () => pemBlocks(cert + cert.replace("MAA=", "MA*A")),
    /\(line 4\) is not valid base64/,
  );
  // Lax framing: whitespace at line ends, CR line ends, base64 in lines of any width.
  const lax = "-----BEGIN CERTIFICATE----- \t\r  MA\r A=\t\r-----END CERTIFICATE-----  ";
  assert.deepEqual([...pemBlocks(lax)[0].der], [0x30, 0x00]);
});
