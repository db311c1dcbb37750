import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { certificatesFromPem, parseCertificate } from "../../lib/x509/certificate.ts";
import { certificateNames } from "../../lib/x509/tbs.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const text = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));

Deno.test({
  name: "certificateNames() gives the issuer and subject Names as DER",
  permissions: read,
  fn(): void {
    const [leaf, intermediate] = certificatesFromPem(text("devices/rsa.chain.pem"));
    const l = certificateNames(leaf.der);
    const i = certificateNames(intermediate.der);
    assert.deepEqual(l.issuer, i.subject);
    assert.notDeepEqual(l.subject, l.issuer);
    assert.equal(l.subject[0], 0x30);
    // A v1 certificate has no version field: the Names are found all the same.
    const v1 = parseCertificate(text("bad/v1.pem"));
    assert.equal(v1.summary.version, 1);
    const names = certificateNames(v1.der);
    const x509 = new X509Certificate(v1.der);
    assert.ok(new TextDecoder().decode(names.subject).includes("device-v1"));
    assert.ok(x509.subject.includes("device-v1"));
    assert.throws(() => certificateNames(new Uint8Array([0x30, 0x00])), SyntaxError);
  },
});
