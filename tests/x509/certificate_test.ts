import assert from "node:assert/strict";
import { assertStoreErrorSync } from "../support/stores.ts";
import { createHash, X509Certificate } from "node:crypto";
import {
  certificatesFromPem,
  issuedBy,
  MAX_CHAIN_LENGTH,
  parseCertificate,
  toKeyType,
} from "../../lib/x509/certificate.ts";
import { pemBlocks, toPem } from "../../lib/encoding/pem.ts";
import type { CertificateSummary } from "../../lib/types.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const text = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));
const bytes = (path: string): Uint8Array => Deno.readFileSync(new URL(path, fixtures));
const summary = (path: string): CertificateSummary => parseCertificate(text(path)).summary;

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

/** Self-signed P-256, subject C=DE, O="Acme, Inc", serialNumber=42 + CN=Gerät-ü (UTF-8). */
const UTF8_MULTI_RDN = `-----BEGIN CERTIFICATE-----
MIIB2DCCAX2gAwIBAgIUbvcf28CSf53KJUi44FTYhAiY/lwwCgYIKoZIzj0EAwIw
QDELMAkGA1UEBhMCREUxEjAQBgNVBAoMCUFjbWUsIEluYzEdMAkGA1UEBRMCNDIw
EAYDVQQDDAlHZXLDpHQtw7wwIBcNMjYxMTI3MTczMzAxWhgPMjEyNjExMDMxNzMz
MDFaMEAxCzAJBgNVBAYTAkRFMRIwEAYDVQQKDAlBY21lLCBJbmMxHTAJBgNVBAUT
AjQyMBAGA1UEAwwJR2Vyw6R0LcO8MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
zSML/UmFpUff9aYae+SY9Mz+dJG5r45zpb05+jCKiWybzgrfl+/AEb5AcYnrXIS9
B06M+3Ly9IyuF/PCEqvIaaNTMFEwHQYDVR0OBBYEFBxlVg9juDkBtpEw/4CBEfa1
o25FMB8GA1UdIwQYMBaAFBxlVg9juDkBtpEw/4CBEfa1o25FMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAOuxlf3ydGqmbYyw08fA/1enM+8Cguft
X3Y/bIbw/fJgAiEApBsNGp8bvjHH9oeOYiptj4JO0Xd6xLRWAkdDn8kfvHc=
-----END CERTIFICATE-----
`;

function assertCertParse(fn: () => unknown, name: string): void {
  const error = assertStoreErrorSync(fn, { code: "CERT_PARSE", name });
  assert.ok(error.cause !== undefined, "the underlying error is kept as cause");
}

Deno.test({
  name: "parseCertificate() summarises an RSA device certificate",
  permissions: read,
  fn(): void {
    const pem = text("devices/rsa.pem");
    const cert = parseCertificate(pem, { name: "rsa.pem" });
    const s = cert.summary;
    assert.equal(s.subject, "CN=device-rsa-001");
    assert.equal(s.issuer, "CN=c8y-mqtt-cert Test Device Intermediate CA");
    assert.equal(s.commonName, "device-rsa-001");
    assert.equal(s.keyType, "rsa");
    assert.equal(s.keySize, 2048);
    assert.equal(s.curve, undefined);
    assert.equal(s.isCA, false);
    assert.equal(s.version, 3);
    assert.equal(s.selfSigned, false);
    assert.deepEqual(s.extendedKeyUsage, [CLIENT_AUTH]);
    // Cross-check against an independent computation over the DER.
    const der = pemBlocks(pem)[0].der;
    assert.deepEqual(cert.der, der);
    assert.equal(cert.pem, pem);
    const sha = createHash("sha256").update(der).digest("hex").toUpperCase();
    assert.equal(s.sha256, sha.match(/../g)!.join(":"));
    const x = new X509Certificate(pem);
    assert.equal(s.serialNumber, x.serialNumber.toUpperCase());
    assert.equal(s.notBefore, new Date(x.validFrom).toISOString());
    assert.match(s.notAfter, /^21\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
  },
});

Deno.test({
  name: "parseCertificate() reads EC P-256 and P-384 curves and sizes",
  permissions: read,
  fn(): void {
    const p256 = summary("devices/ec256.pem");
    assert.equal(p256.keyType, "ec");
    assert.equal(p256.curve, "prime256v1");
    assert.equal(p256.keySize, 256);
    assert.equal(p256.commonName, "device-ec256-001");
    const p384 = summary("devices/ec384.pem");
    assert.equal(p384.curve, "secp384r1");
    assert.equal(p384.keySize, 384);
  },
});

Deno.test({
  name: "parseCertificate() gives the same result for DER, PEM text and PEM bytes",
  permissions: read,
  fn(): void {
    const pem = text("devices/ec384.pem");
    const fromText = parseCertificate(pem);
    const fromDer = parseCertificate(fromText.der);
    const fromPemBytes = parseCertificate(bytes("devices/ec384.pem"));
    assert.deepEqual(fromDer, fromText);
    assert.deepEqual(fromPemBytes, fromText);
  },
});

Deno.test({
  name: "parseCertificate() recognises a self-signed root CA",
  permissions: read,
  fn(): void {
    const s = summary("ca/device-root-ca.pem");
    assert.equal(s.isCA, true);
    assert.equal(s.selfSigned, true);
    assert.equal(s.subject, s.issuer);
    assert.equal(s.extendedKeyUsage, undefined);
    const intermediate = summary("ca/device-intermediate-ca.pem");
    assert.equal(intermediate.isCA, true);
    assert.equal(intermediate.selfSigned, false);
  },
});

Deno.test({
  name: "parseCertificate() reports X.509 version 1 and no extended key usage",
  permissions: read,
  fn(): void {
    const s = summary("bad/v1.pem");
    assert.equal(s.version, 1);
    assert.equal(s.extendedKeyUsage, undefined);
    assert.equal(s.isCA, false);
  },
});

Deno.test({
  name: "parseCertificate() reads the extended key usage (serverAuth only)",
  permissions: read,
  fn(): void {
    assert.deepEqual(summary("bad/serverauth.pem").extendedKeyUsage, [SERVER_AUTH]);
  },
});

Deno.test({
  name: "parseCertificate() gives validity dates as ISO 8601 (expired certificate)",
  permissions: read,
  fn(): void {
    const s = summary("bad/expired.pem");
    assert.equal(s.notBefore, "2000-01-01T00:00:00.000Z");
    assert.equal(s.notAfter, "2001-01-01T00:00:00.000Z");
  },
});

Deno.test("parseCertificate() keeps RDN order, multi-valued RDNs and UTF-8 common names", () => {
  const s = parseCertificate(UTF8_MULTI_RDN).summary;
  assert.equal(s.subject, "C=DE, O=Acme, Inc, serialNumber=42 + CN=Gerät-ü");
  assert.equal(s.commonName, "Gerät-ü");
  assert.equal(s.selfSigned, true);
});

Deno.test({
  name: "certificatesFromPem() reads every certificate of a chain file in order",
  permissions: read,
  fn(): void {
    const chain = certificatesFromPem(text("devices/rsa.fullchain.pem"), { name: "fullchain" });
    assert.deepEqual(chain.map((c) => c.summary.commonName), [
      "device-rsa-001",
      "c8y-mqtt-cert Test Device Intermediate CA",
      "c8y-mqtt-cert Test Device Root CA",
    ]);
    for (let i = 0; i + 1 < chain.length; i++) {
      assert.equal(chain[i].summary.issuer, chain[i + 1].summary.subject);
    }
    assert.deepEqual(certificatesFromPem(text("devices/rsa.key")), []);
  },
});

Deno.test("parseCertificate() refuses random bytes with CERT_PARSE naming the input", () => {
  assertCertParse(
    () => parseCertificate(new Uint8Array([0x30, 0x03, 1, 2, 3]), { name: "junk.der" }),
    "junk.der",
  );
  assertCertParse(() => parseCertificate(new Uint8Array(), { name: "empty.der" }), "empty.der");
});

Deno.test({
  name: "parseCertificate() refuses a truncated certificate and a PEM key",
  permissions: read,
  fn(): void {
    const der = parseCertificate(text("devices/rsa.pem")).der;
    assertCertParse(
      () => parseCertificate(der.subarray(0, der.length - 10), { name: "cut.der" }),
      "cut.der",
    );
    assertCertParse(
      () => parseCertificate(text("devices/rsa.key"), { name: "rsa.key" }),
      "rsa.key",
    );
  },
});

Deno.test("certificatesFromPem() names the block that does not parse", () => {
  const bad = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
  assertCertParse(() => certificatesFromPem(bad + bad, { name: "bundle.pem" }), "bundle.pem #1");
});

Deno.test("toKeyType() maps node:crypto key types", () => {
  assert.equal(toKeyType("rsa"), "rsa");
  assert.equal(toKeyType("rsa-pss"), "rsa-pss");
  assert.equal(toKeyType("ec"), "ec");
  assert.equal(toKeyType("ed25519"), "ed25519");
  assert.equal(toKeyType(undefined), "unknown");
});

Deno.test({
  name: "certificatesFromPem() reads an OpenSSL TRUSTED CERTIFICATE like parseCertificate() does",
  permissions: read,
  fn(): void {
    const der = parseCertificate(text("ca/device-root-ca.pem")).der;
    // openssl x509 -trustout: the certificate followed by its trust settings (here serverAuth).
    const trust = new Uint8Array([0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x2b, 6, 1, 5, 5, 7]);
    const trustedPem = toPem(new Uint8Array([...der, ...trust]), "TRUSTED CERTIFICATE");
    const bundle = text("devices/rsa.pem") + trustedPem;
    const all = certificatesFromPem(bundle, { name: "bundle.pem" });
    assert.equal(all.length, 2);
    assert.deepEqual(all[1].der, der);
    assert.equal(all[1].summary.commonName, "c8y-mqtt-cert Test Device Root CA");
    assert.deepEqual(parseCertificate(trustedPem).der, der);
  },
});

Deno.test({
  name: "issuedBy() follows a chain by name and signature, and never throws",
  permissions: read,
  fn(): void {
    const [leaf, intermediate, root] = certificatesFromPem(text("devices/rsa.fullchain.pem"));
    assert.equal(issuedBy(leaf, intermediate), true);
    assert.equal(issuedBy(intermediate, root), true);
    assert.equal(issuedBy(root, root), true);
    assert.equal(issuedBy(leaf, root), false);
    assert.equal(issuedBy(intermediate, leaf), false);
    assert.equal(issuedBy(leaf, leaf), false);
    // node:crypto objects and parsed certificates mix.
    assert.equal(issuedBy(new X509Certificate(leaf.der), intermediate), true);
    assert.equal(issuedBy(leaf, new X509Certificate(intermediate.der)), true);
    assert.equal(issuedBy(leaf, parseCertificate(text("ca/unknown-ca.pem"))), false);
    // An issuer that is no CA still issued (diagnose reports CA_FLAG_MISSING from this).
    const [noca, nocaIssuer] = certificatesFromPem(text("bad/noca.chain.pem"));
    assert.equal(nocaIssuer.summary.isCA, false);
    assert.equal(issuedBy(noca, nocaIssuer), true);
    // Unreadable DER gives false, not an exception.
    const broken = { ...leaf, der: new Uint8Array([0x30, 0x03, 1, 2, 3]) };
    assert.equal(issuedBy(broken, intermediate), false);
    assert.equal(issuedBy(leaf, broken), false);
  },
});

Deno.test("MAX_CHAIN_LENGTH is the public cloud's limit of 10 certificates", () => {
  assert.equal(MAX_CHAIN_LENGTH, 10);
});
