import assert from "node:assert/strict";
import { isSelfIssued, IssuerIndex, orderLeafFirst, validityAt } from "../../lib/x509/chain.ts";
import { issuedBy, parseCertificate } from "../../lib/x509/certificate.ts";
import type { Certificate } from "../../lib/types.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const cert = (path: string): Certificate =>
  parseCertificate(Deno.readTextFileSync(new URL(path, fixtures)), { name: path });

/** The RSA device, its intermediate CA, the root CA, and the EC device (another leaf). */
function tiers(): {
  leaf: Certificate;
  intermediate: Certificate;
  root: Certificate;
  other: Certificate;
} {
  return {
    leaf: cert("devices/rsa.pem"),
    intermediate: cert("ca/device-intermediate-ca.pem"),
    root: cert("ca/device-root-ca.pem"),
    other: cert("devices/ec256.pem"),
  };
}

const der = (c: Certificate): Uint8Array => c.der;
const signed = (child: Certificate, parent: Certificate): boolean => issuedBy(child, parent);

Deno.test({
  name: "IssuerIndex.path() walks from a leaf to the root through a pool in any order",
  permissions: read,
  fn(): void {
    const { leaf, intermediate, root, other } = tiers();
    const index = new IssuerIndex([root, other, intermediate, leaf], der);
    assert.deepEqual(index.path(leaf), [intermediate, root]);
    assert.deepEqual(index.path(leaf, { issued: signed }), [intermediate, root]);
    assert.deepEqual(index.candidates(leaf), [intermediate]);
    // The root names itself, but its own bytes are never taken twice: the walk ends there.
    assert.deepEqual(index.candidates(root), [root]);
    assert.deepEqual(index.path(root), []);
    // isRoot ends the walk before looking.
    assert.deepEqual(index.path(leaf, { isRoot: (c) => c === intermediate }), [intermediate]);
  },
});

Deno.test({
  name: "IssuerIndex.path() stops at maxLength, counting the certificates below the start",
  permissions: read,
  fn(): void {
    const { leaf, intermediate, root, other } = tiers();
    const index = new IssuerIndex([intermediate, root], der);
    assert.deepEqual(index.path(leaf, { maxLength: 2 }), [intermediate]);
    assert.deepEqual(index.path(leaf, { maxLength: 3, below: [other] }), [intermediate]);
    assert.deepEqual(index.path(leaf, { maxLength: 1 }), []);
    // A certificate below the start is not taken again.
    assert.deepEqual(index.path(leaf, { below: [intermediate] }), []);
  },
});

Deno.test({
  name: "IssuerIndex: a certificate whose Names cannot be read issues nothing and has no issuer",
  permissions: read,
  fn(): void {
    const { leaf, intermediate } = tiers();
    const junk = { ...intermediate, der: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]) };
    const index = new IssuerIndex([junk, intermediate], der);
    assert.deepEqual(index.candidates(leaf), [intermediate]);
    assert.deepEqual(index.path(junk), []);
  },
});

Deno.test({
  name: "the issued test skips a certificate that has the issuer's name but not its key",
  permissions: { ...read, run: ["openssl"] },
  async fn(): Promise<void> {
    const { leaf, intermediate, root } = tiers();
    // A self-signed certificate named like the intermediate CA, made by openssl.
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "/dev/null",
        "-subj",
        `/CN=${intermediate.summary.commonName}`,
        "-days",
        "1",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const impostor = parseCertificate(new TextDecoder().decode(out.stdout), { name: "impostor" });
    assert.equal(impostor.summary.subject, intermediate.summary.subject);
    const index = new IssuerIndex([impostor, intermediate, root], der);
    // By name alone the first candidate wins; the signature test finds the real issuer.
    assert.deepEqual(index.candidates(leaf), [impostor, intermediate]);
    assert.deepEqual(index.path(leaf, { isRoot: isSelfIssued }), [impostor]);
    assert.deepEqual(index.path(leaf, { issued: signed }), [intermediate, root]);
    assert.ok(isSelfIssued(impostor) && isSelfIssued(root) && !isSelfIssued(leaf));
  },
});

Deno.test({
  name: "orderLeafFirst() puts the leaf and its issuers first, the rest after in their order",
  permissions: read,
  fn(): void {
    const { leaf, intermediate, root, other } = tiers();
    const certs = [root, other, intermediate, leaf];
    assert.deepEqual(orderLeafFirst(certs, 3, der, { issued: signed, isRoot: isSelfIssued }), [
      leaf,
      intermediate,
      root,
      other,
    ]);
    // The other leaf has its issuers in the list too; the RSA leaf is then left over.
    assert.deepEqual(orderLeafFirst(certs, 1, der), [other, intermediate, root, leaf]);
    // An order that is already right stays as it is.
    const ordered = [leaf, intermediate, root];
    assert.deepEqual(orderLeafFirst(ordered, 0, der, { isRoot: isSelfIssued }), ordered);
  },
});

Deno.test({
  name: "IssuerIndex.pathToAnchor() stops at the first certificate an anchor issued",
  permissions: read,
  fn(): void {
    const { leaf, intermediate, root, other } = tiers();
    const pool = new IssuerIndex([other, intermediate, leaf], der);
    // The root is the anchor: the path is the intermediate, then the root issued it.
    const anchored = pool.pathToAnchor(leaf, new IssuerIndex([root], der), { issued: signed });
    assert.deepEqual(anchored, { path: [intermediate], anchor: root });
    // The intermediate trusted: the leaf alone reaches it.
    const direct = pool.pathToAnchor(leaf, new IssuerIndex([intermediate], der), {
      issued: signed,
    });
    assert.deepEqual(direct, { path: [], anchor: intermediate });
    // No anchor issues anything here: the walk ends where the pool does, without one.
    const none = pool.pathToAnchor(leaf, new IssuerIndex([other], der), { issued: signed });
    assert.deepEqual(none, { path: [intermediate], anchor: undefined });
    // maxLength bounds the walk before the anchor is reached.
    const short = pool.pathToAnchor(leaf, new IssuerIndex([root], der), { maxLength: 1 });
    assert.deepEqual(short, { path: [], anchor: undefined });
  },
});

Deno.test({
  name: "IssuerIndex.path() tries the preferred candidate first",
  permissions: read,
  fn(): void {
    const { leaf, intermediate } = tiers();
    const copy = { ...intermediate, der: intermediate.der.slice() };
    const index = new IssuerIndex([intermediate, copy], der);
    assert.deepEqual(index.path(leaf, { maxLength: 2 }), [intermediate]);
    assert.deepEqual(index.path(leaf, { maxLength: 2, prefer: () => copy }), [copy]);
  },
});

Deno.test("validityAt() includes both ends of the validity window", () => {
  const cert = {
    notBefore: "2026-01-01T00:00:00.000Z",
    notAfter: new Date("2027-01-01T00:00:00Z"),
  };
  assert.equal(validityAt(cert, new Date("2025-12-31T23:59:59.999Z")), "not-yet-valid");
  assert.equal(validityAt(cert, new Date("2026-01-01T00:00:00.000Z")), "valid");
  assert.equal(validityAt(cert, new Date("2027-01-01T00:00:00.000Z")), "valid");
  assert.equal(validityAt(cert, new Date("2027-01-01T00:00:00.001Z")), "expired");
});
