import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { tlsOptions } from "../../lib/connect/tls_options.ts";
import { parseBrokerUrl } from "../../lib/connect/broker_url.ts";
import { CertificateError, StoreError, UsageError } from "../../lib/errors.ts";
import { fixtureIdentity, fixtureText, fixtureTrust } from "../support/mosquitto.ts";

const rsa = await fixtureIdentity("devices/rsa");
const serverCa = await fixtureTrust("ca/server-ca.pem");

/** The subjects of the certificates in a PEM text, in order. */
function subjects(pem: string): string[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)]
    .map((m) => new X509Certificate(m[0]).subject);
}

Deno.test("tlsOptions() gives the key, the chain leaf first, the CA and the host as servername", async () => {
  const options = tlsOptions(rsa, serverCa, parseBrokerUrl("ssl://Example.com:1884"));
  assert.equal(options.host, "example.com");
  assert.equal(options.port, 1884);
  assert.equal(options.servername, "example.com");
  assert.equal(options.minVersion, "TLSv1.2");
  assert.equal(options.rejectUnauthorized, true);
  assert.equal(options.key, await fixtureText("devices/rsa.key"));
  assert.match(options.key, /^-----BEGIN PRIVATE KEY-----/);
  assert.deepEqual(subjects(options.cert), [
    "CN=device-rsa-001",
    "CN=c8y-mqtt-cert Test Device Intermediate CA",
  ]);
  assert.deepEqual(options.ca, [await fixtureText("ca/server-ca.pem")]);
});

Deno.test("tlsOptions() leaves ca out without a truststore, so the default root CAs apply", () => {
  const options = tlsOptions(rsa, undefined, parseBrokerUrl("example.com"));
  assert.ok(!("ca" in options));
  assert.equal(options.port, 8883);
});

Deno.test("tlsOptions() sets no servername for an IP address (SNI forbids it) unless given one", () => {
  for (const url of ["127.0.0.1:8883", "[::1]:8883"]) {
    const options = tlsOptions(rsa, serverCa, parseBrokerUrl(url));
    assert.ok(!("servername" in options), url);
  }
  const named = tlsOptions(rsa, serverCa, parseBrokerUrl("127.0.0.1"), { servername: "localhost" });
  assert.equal(named.servername, "localhost");
  assert.equal(named.host, "127.0.0.1");
});

Deno.test("tlsOptions() refuses an IP address as servername with SERVERNAME_IP", () => {
  assert.throws(
    () => tlsOptions(rsa, serverCa, parseBrokerUrl("localhost"), { servername: "10.0.0.1" }),
    (err: unknown) => err instanceof UsageError && err.code === "SERVERNAME_IP",
  );
});

Deno.test("tlsOptions() gives every trust anchor and returns a plain serialisable object", async () => {
  const trust = await fixtureTrust("ca/device-ca-chain.pem");
  const options = tlsOptions(rsa, trust, parseBrokerUrl("localhost"));
  assert.equal(options.ca?.length, 2);
  assert.deepEqual(JSON.parse(JSON.stringify(options)), options);
});

Deno.test("tlsOptions() refuses an empty chain with CHAIN_EMPTY and an empty truststore with TRUSTSTORE_EMPTY", () => {
  const broker = parseBrokerUrl("localhost");
  assert.throws(
    () => tlsOptions({ ...rsa, chain: [] }, serverCa, broker),
    (err: unknown) => err instanceof CertificateError && err.code === "CHAIN_EMPTY",
  );
  assert.throws(
    () => tlsOptions(rsa, { format: "pem", certificates: [] }, broker),
    (err: unknown) => err instanceof StoreError && err.code === "TRUSTSTORE_EMPTY",
  );
});
