/**
 * A refused certificate explained from the offline findings of the same run
 * (`lib/diagnose/refusal.ts`), with findings made by `diagnose()` from the fixtures.
 */

import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { certificatesFromPem } from "../../lib/x509/certificate.ts";
import { diagnose } from "../../lib/diagnose/diagnose.ts";
import { explainRefusal, refusalExplanation } from "../../lib/diagnose/refusal.ts";
import { MqttError, TlsError } from "../../lib/errors.ts";
import type { DeviceIdentity, TrustAnchors } from "../../lib/types.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url);
const permissions = { read: [FIXTURES] };
const read = (path: string): string => Deno.readTextFileSync(new URL(path, FIXTURES));

function identity(key: string, ...files: string[]): DeviceIdentity {
  const chain = files.flatMap((f) => certificatesFromPem(read(f), { name: f }));
  return {
    format: "pem",
    alias: undefined,
    aliases: [],
    privateKeyPem: createPrivateKey(read(key)).export({ type: "pkcs8", format: "pem" }).toString(),
    keyType: chain[0].summary.keyType,
    chain,
  };
}

function trust(file: string): TrustAnchors {
  const certificates = certificatesFromPem(read(file)).map((c) => ({ ...c, alias: undefined }));
  return { format: "pem", certificates };
}

/** The hint of the platform's CONNACK 5 when nothing else is known (as the session builds it). */
const CONNACK5_HINT = "The client id must be d:<CN>; auto-registration may have failed, or a " +
  "device with this CN belongs to another tenant. It can be transient: retry a few times.";

function connack5(): MqttError {
  return new MqttError("mqtts://127.0.0.1:8883 refused the MQTT connection: CONNACK 5", {
    code: "MQTT_NOT_AUTHORIZED",
    returnCode: 5,
    hint: CONNACK5_HINT,
  });
}

Deno.test({
  name: "refusalExplanation() names an expired certificate first and does not suggest a retry",
  permissions,
}, () => {
  const findings = diagnose({ identity: identity("bad/expired.key", "bad/expired.chain.pem") });
  assert.ok(findings.some((p) => p.code === "CERT_EXPIRED"));
  for (const code of ["MQTT_NOT_AUTHORIZED", "TLS_CLIENT_CERT_REFUSED"] as const) {
    const { causes, hint } = refusalExplanation(code, findings);
    assert.equal(causes[0].code, "CERT_EXPIRED");
    assert.match(
      hint!,
      /^Most likely a certificate of the device chain has expired \(CERT_EXPIRED\)\. Renew/,
    );
    assert.doesNotMatch(hint!, /retry/i);
  }
});

Deno.test({
  name: "refusalExplanation() blames the missing intermediate of leaf + root (CHAIN_INCOMPLETE)",
  permissions,
}, () => {
  const findings = diagnose({
    identity: identity("devices/rsa.key", "devices/rsa.pem", "ca/device-root-ca.pem"),
  });
  const { causes, hint } = refusalExplanation("TLS_CLIENT_CERT_REFUSED", findings);
  assert.deepEqual(causes.map((p) => p.code), ["CHAIN_INCOMPLETE"]);
  assert.match(hint!, /^Most likely the device chain misses .* \(CHAIN_INCOMPLETE\)\. Add the/);
  assert.match(hint!, /"CN=c8y-mqtt-cert Test Device Intermediate CA"/);
  assert.doesNotMatch(hint!, /retry/i);
});

Deno.test({
  name: "refusalExplanation() names the CA to trust (CHAIN_ANCHOR) for a chain from an unknown CA",
  permissions,
}, () => {
  const findings = diagnose({
    identity: identity("bad/unknown-ca.key", "bad/unknown-ca.chain.pem"),
  });
  const { causes, hint } = refusalExplanation("MQTT_NOT_AUTHORIZED", findings);
  assert.deepEqual(causes.map((p) => p.code), ["CHAIN_ANCHOR"]);
  assert.match(
    hint!,
    /^Most likely the tenant does not trust the device chain's CA \(CHAIN_ANCHOR\)\. Upload "CN=c8y-mqtt-cert Unknown CA"/,
  );
  assert.match(hint!, /auto-registration may be off/);
  assert.doesNotMatch(hint!, /retry/i);
  // With what the tenant trusts known, the finding is CHAIN_UNTRUSTED, and it leads.
  const judged = diagnose({
    identity: identity("bad/unknown-ca.key", "bad/unknown-ca.chain.pem"),
    tenantTrust: trust("ca/device-ca-chain.pem"),
  });
  assert.match(
    refusalExplanation("TLS_CLIENT_CERT_REFUSED", judged).hint!,
    /^Most likely the device chain reaches none of the tenant's trusted certificates \(CHAIN_UNTRUSTED\)/,
  );
});

Deno.test({
  name: "refusalExplanation() puts the client id first for CONNACK 5, and leaves it out for TLS",
  permissions,
}, () => {
  const findings = diagnose({
    identity: identity("bad/expired.key", "bad/expired.chain.pem"),
    clientId: "d:someone-else",
  });
  const connack = refusalExplanation("MQTT_NOT_AUTHORIZED", findings);
  assert.deepEqual(connack.causes.map((p) => p.code), ["CLIENT_ID_MISMATCH", "CERT_EXPIRED"]);
  assert.match(connack.hint!, /^Most likely the client id does not name .*\(CLIENT_ID_MISMATCH\)/);
  assert.match(connack.hint!, /Also found offline: CERT_EXPIRED\.$/);
  // The TLS handshake never sees the client id.
  const tls = refusalExplanation("TLS_CLIENT_CERT_REFUSED", findings);
  assert.deepEqual(tls.causes.map((p) => p.code), ["CERT_EXPIRED"]);
});

Deno.test({
  name:
    "refusalExplanation() leaves the retry hint to the refusal when nothing offline explains it",
  permissions,
}, () => {
  // The tenant trusts the chain's CAs: the offline checks find nothing.
  const findings = diagnose({
    identity: identity("devices/rsa.key", "devices/rsa.chain.pem"),
    tenantTrust: trust("ca/device-ca-chain.pem"),
  });
  assert.deepEqual(findings, []);
  assert.deepEqual(refusalExplanation("MQTT_NOT_AUTHORIZED", findings), {
    causes: [],
    hint: undefined,
  });
  const explained = explainRefusal(connack5(), findings);
  assert.equal(explained.hint, CONNACK5_HINT);
  assert.deepEqual(explained.findings, []);
});

Deno.test({
  name: "explainRefusal() keeps the class, code, stage, message and return code, and adds findings",
  permissions,
}, () => {
  const findings = diagnose({ identity: identity("bad/expired.key", "bad/expired.chain.pem") });
  const refused = connack5();
  const explained = explainRefusal(refused, findings);
  assert.ok(explained instanceof MqttError);
  assert.equal(explained.returnCode, 5);
  assert.equal(explained.code, "MQTT_NOT_AUTHORIZED");
  assert.equal(explained.stage, "mqtt");
  assert.equal(explained.exitCode, 7);
  assert.equal(explained.message, refused.message);
  assert.match(explained.hint, /\(CERT_EXPIRED\)/);
  assert.deepEqual(explained.findings, findings);

  const alert = new TlsError("The server refused the device certificate (TLS alert)", {
    code: "TLS_CLIENT_CERT_REFUSED",
    hint: "Upload the CA.",
  });
  const tls = explainRefusal(alert, findings);
  assert.ok(tls instanceof TlsError);
  assert.equal(tls.exitCode, 6);
  assert.match(tls.hint, /^Most likely a certificate of the device chain has expired/);

  // Not a refusal: the hint stays, the findings travel along.
  const timeout = new TlsError("The TLS handshake took too long", {
    code: "TLS_TIMEOUT",
    hint: "Check the network.",
  });
  const same = explainRefusal(timeout, findings);
  assert.equal(same.hint, "Check the network.");
  assert.equal(same.findings?.length, findings.length);
});

Deno.test({
  name: "refusalExplanation() explains the REST endpoint's 401 like a TLS refusal: no client id",
  permissions,
}, () => {
  const findings = diagnose({
    identity: identity("bad/unknown-ca.key", "bad/unknown-ca.chain.pem"),
    clientId: "d:someone-else",
  });
  const { causes, hint } = refusalExplanation("HTTP_UNAUTHORIZED", findings);
  assert.deepEqual(causes.map((p) => p.code), ["CHAIN_ANCHOR"]);
  assert.match(
    hint!,
    /^Most likely the tenant does not trust the device chain's CA \(CHAIN_ANCHOR\)/,
  );
  assert.match(hint!, /the device may not be registered for certificate authentication\.$/);
});

Deno.test({
  name: "a local TLS rejection of the device's own key is explained by RSA_KEY_TOO_SMALL only",
  permissions,
}, () => {
  const findings = diagnose({ identity: identity("bad/rsa1024.key", "bad/rsa1024.chain.pem") });
  assert.ok(findings.some((p) => p.code === "RSA_KEY_TOO_SMALL"));
  assert.ok(findings.some((p) => p.code === "CHAIN_ANCHOR"), "an informational trust finding");
  const local = new TlsError(
    "This machine's TLS library refused the device's own key or certificate (OpenSSL: key too small)",
    { code: "TLS_LOCAL_CERT_REJECTED", hint: "generic" },
  );
  const explained = explainRefusal(local, findings);
  assert.equal(explained.code, "TLS_LOCAL_CERT_REJECTED");
  assert.match(explained.hint, /^Found offline: an RSA key .* too small .*\(RSA_KEY_TOO_SMALL\)\./);
  // The server never saw the certificate: trust and upload advice would mislead.
  assert.doesNotMatch(explained.hint, /CHAIN_ANCHOR|tenant|trusted/);
  // No key finding: the error's own hint stands.
  const good = diagnose({ identity: identity("devices/rsa.key", "devices/rsa.chain.pem") });
  assert.equal(explainRefusal(local, good).hint, "generic");
  assert.deepEqual(refusalExplanation("TLS_LOCAL_CERT_REJECTED", good).causes, []);
});
