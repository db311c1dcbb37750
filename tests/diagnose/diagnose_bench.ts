/**
 * `deno bench` for the offline certificate checks: `diagnose()` on good device chains and on bad
 * ones (each bad one is checked once, before benchmarking, to really have an error or a
 * warning), and
 * `parseCertificate()` on DER and PEM input. Run with `deno task bench` (nothing here asserts a
 * duration).
 */
import assert from "node:assert/strict";
import { parseCertificate } from "../../lib/x509/certificate.ts";
import { diagnose, hasErrors } from "../../lib/diagnose/diagnose.ts";
import { loadKeyStore, loadTrustStore } from "../../lib/stores/load.ts";
import type { DeviceIdentity } from "../../lib/types.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = (file: string): Promise<Uint8Array> => Deno.readFile(new URL(file, fixtures));
const PASSWORD = "changeit";

const trust = await loadTrustStore(await read("server/server-truststore.jks"));
const tenantTrust = await loadTrustStore(await read("devices/truststore.jks"));

async function identity(file: string, key?: string): Promise<DeviceIdentity> {
  return await loadKeyStore(await read(file), {
    password: PASSWORD,
    key: key === undefined ? undefined : await read(key),
    name: file,
  });
}

// ---- diagnose() on good chains --------------------------------------------------------------

for (const device of ["rsa", "ec256", "ec384"]) {
  const file = `devices/${device}.jdk.p12`;
  const id = await identity(file);
  const clientId = `d:device-${device}-001`;
  const input = { identity: id, trust, tenantTrust, clientId };
  assert.equal(hasErrors(diagnose(input)), false, `${file} should have no errors`);
  Deno.bench({
    name: `diagnose() good chain ${file} (+ truststore, tenant trust, client id)`,
    group: "diagnose-good",
    baseline: device === "rsa",
    fn(): void {
      diagnose(input);
    },
  });
}

// ---- diagnose() on bad chains ---------------------------------------------------------------

const BAD: { label: string; file: string; key?: string }[] = [
  { label: "expired leaf", file: "bad/expired.p12" },
  { label: "issuer not a CA", file: "bad/noca.p12" },
  { label: "unknown CA", file: "bad/unknown-ca.p12" },
  { label: "CN with a colon", file: "bad/colon.p12" },
  { label: "RSA 1024", file: "bad/rsa1024.p12" },
  { label: "key does not match", file: "bad/mismatch.chain.pem", key: "bad/mismatch.key" },
];
for (const [i, bad] of BAD.entries()) {
  const id = await identity(bad.file, bad.key);
  const input = { identity: id, trust, tenantTrust };
  const problems = diagnose(input);
  assert.ok(problems.some((p) => p.severity !== "info"), `${bad.file} should have a problem`);
  Deno.bench({
    name: `diagnose() bad chain ${bad.file} (${bad.label})`,
    group: "diagnose-bad",
    baseline: i === 0,
    fn(): void {
      diagnose(input);
    },
  });
}

// ---- parseCertificate() ---------------------------------------------------------------------

const leafPem = new TextDecoder().decode(await read("devices/rsa.pem"));
const leafDer = parseCertificate(leafPem).der;
const ecLeafDer = parseCertificate(await read("devices/ec384.pem")).der;
const caDer = parseCertificate(await read("ca/device-root-ca.pem")).der;

const PARSE: { label: string; input: Uint8Array | string; name: string }[] = [
  { label: "RSA device leaf, DER", input: leafDer, name: "devices/rsa.pem" },
  { label: "RSA device leaf, PEM text", input: leafPem, name: "devices/rsa.pem" },
  { label: "EC P-384 device leaf, DER", input: ecLeafDer, name: "devices/ec384.pem" },
  { label: "self-signed root CA, DER", input: caDer, name: "ca/device-root-ca.pem" },
];
for (const [i, { label, input, name }] of PARSE.entries()) {
  Deno.bench({
    name: `parseCertificate() ${label}`,
    group: "certificate",
    baseline: i === 0,
    fn(): void {
      parseCertificate(input, { name });
    },
  });
}
