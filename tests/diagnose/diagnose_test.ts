import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { certificatesFromPem } from "../../lib/x509/certificate.ts";
import { diagnose, type DiagnoseInput, hasErrors } from "../../lib/diagnose/diagnose.ts";
import { formatDuration } from "../../lib/diagnose/wording.ts";
import type {
  Certificate,
  DeviceIdentity,
  Problem,
  Severity,
  TrustAnchors,
} from "../../lib/types.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url);
const permissions = { read: [FIXTURES] };
const DAY = 24 * 3600_000;

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, FIXTURES));
}

function certs(...files: string[]): Certificate[] {
  return files.flatMap((f) => certificatesFromPem(read(f), { name: f }));
}

/** A DeviceIdentity built straight from PEM fixtures (no keystore reader involved). */
function identity(chain: Certificate[], keyFile?: string): DeviceIdentity {
  const privateKeyPem = keyFile === undefined ? "" : createPrivateKey(read(keyFile))
    .export({ type: "pkcs8", format: "pem" }).toString();
  return {
    format: "pem",
    alias: undefined,
    aliases: [],
    privateKeyPem,
    keyType: chain[0]?.summary.keyType ?? "unknown",
    chain,
  };
}

function device(name: string, chain = `devices/${name}.chain.pem`): DeviceIdentity {
  return identity(certs(chain), `devices/${name}.key`);
}

function bad(name: string): DeviceIdentity {
  return identity(certs(`bad/${name}.chain.pem`), `bad/${name}.key`);
}

function anchors(...files: string[]): TrustAnchors {
  return { format: "pem", certificates: certs(...files).map((c) => ({ ...c, alias: undefined })) };
}

const RANK: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Runs diagnose() and checks what holds for every result: sorted by severity, no duplicates. */
function run(input: DiagnoseInput): Problem[] {
  const problems = diagnose(input);
  for (let i = 1; i < problems.length; i++) {
    assert.ok(
      RANK[problems[i - 1].severity] <= RANK[problems[i].severity],
      `not sorted: ${JSON.stringify(problems)}`,
    );
  }
  const keys = problems.map((p) => `${p.code}|${p.message}`);
  assert.equal(new Set(keys).size, keys.length, "duplicates");
  for (const p of problems) {
    assert.match(p.message, /^[A-Z]/, `message in sentence case: ${p.message}`);
    assert.ok(p.hint === undefined || p.hint.length > 0);
  }
  return problems;
}

function only(problems: Problem[], code: string): Problem {
  const matching = problems.filter((p) => p.code === code);
  assert.equal(matching.length, 1, `one ${code} in ${JSON.stringify(problems, null, 1)}`);
  return matching[0];
}

function codes(problems: Problem[], severity?: Severity): string[] {
  return problems.filter((p) => !severity || p.severity === severity).map((p) => p.code);
}

/** The one `code` problem, checked to be an error and the only error found. */
function onlyError(problems: Problem[], code: string): Problem {
  const p = only(problems, code);
  assert.equal(p.severity, "error");
  assert.deepEqual(codes(problems, "error"), [code]);
  return p;
}

/** The one `code` problem, checked to be a warning, with no error found. */
function onlyWarning(problems: Problem[], code: string): Problem {
  const p = only(problems, code);
  assert.equal(p.severity, "warning");
  assert.deepEqual(codes(problems, "error"), []);
  return p;
}

// ---- good devices ---------------------------------------------------------------------------

for (const name of ["rsa", "ec256", "ec384"]) {
  Deno.test({
    name: `diagnose() finds no error or warning for the good ${name} device chain`,
    permissions,
  }, () => {
    const id = device(name);
    const cn = id.chain[0].summary.commonName!;
    const problems = run({ identity: id, clientId: `d:${cn}`, trust: anchors("ca/server-ca.pem") });
    assert.deepEqual(codes(problems, "error"), []);
    assert.deepEqual(codes(problems, "warning"), []);
    // Only the note on what the tenant must trust: the root, the chain's last issuer.
    const anchor = only(problems, "CHAIN_ANCHOR");
    assert.equal(anchor.severity, "info");
    assert.match(anchor.message, /certificate 2 \(CN=c8y-mqtt-cert Test Device Intermediate CA\)/);
    assert.match(anchor.message, /CN=c8y-mqtt-cert Test Device Root CA/);
    assert.equal(problems.length, 1);
    assert.equal(hasErrors(problems), false);
  });
}

Deno.test({
  name: "diagnose() accepts a full chain that includes the root, as info only",
  permissions,
}, () => {
  const problems = run({ identity: device("ec256", "devices/ec256.fullchain.pem") });
  assert.deepEqual(codes(problems), ["CHAIN_ANCHOR"]);
  assert.match(
    problems[0].message,
    /certificate 3 \(CN=c8y-mqtt-cert Test Device Root CA\) \(a root\)/,
  );
});

Deno.test({
  name: "diagnose() reports nothing when the tenant trusts the device chain's root",
  permissions,
}, () => {
  const tenantTrust = anchors("ca/device-root-ca.pem");
  assert.deepEqual(run({ identity: device("rsa"), tenantTrust }), []);
  // The intermediate alone is enough too, also for a leaf-only chain.
  const leafOnly = identity(certs("devices/rsa.pem"), "devices/rsa.key");
  assert.deepEqual(
    run({ identity: leafOnly, tenantTrust: anchors("ca/device-intermediate-ca.pem") }),
    [],
  );
});

// ---- bad fixtures ---------------------------------------------------------------------------

Deno.test({
  name: "diagnose() reports an expired certificate with how long ago, as an error",
  permissions,
}, () => {
  const now = new Date("2101-01-01T00:00:00Z");
  const problems = run({ identity: bad("expired"), now });
  const p = onlyError(problems, "CERT_EXPIRED");
  assert.match(p.message, /^Certificate 1 \(CN=device-expired\) expired 100 years ago/);
  assert.match(p.message, /2001-01-01T00:00:00\.000Z/);
  assert.match(p.message, /local clock says 2101-01-01T00:00:00\.000Z/);
  assert.match(p.hint!, /Renew/);
  assert.match(p.hint!, /clock/);
  assert.equal(hasErrors(problems), true);
});

Deno.test({
  name: "diagnose() reports a certificate valid only in the future with how far, as an error",
  permissions,
}, () => {
  const problems = run({ identity: bad("notyetvalid"), now: new Date("2100-01-01T00:00:00Z") });
  const p = onlyError(problems, "CERT_NOT_YET_VALID");
  assert.match(
    p.message,
    /^Certificate 1 \(CN=device-notyetvalid\) is not valid yet: it becomes valid in 20 years \(on 2120-01-01T00:00:00\.000Z;/,
  );
  assert.match(p.hint!, /reissue/);
});

Deno.test({
  name: "diagnose() blames the clock when a certificate becomes valid in a few minutes",
  permissions,
}, () => {
  const id = device("rsa");
  const notBefore = Date.parse(id.chain[0].summary.notBefore);
  // Five minutes before the leaf's start; the intermediate was made seconds earlier.
  const problems = run({ identity: id, now: new Date(notBefore - 5 * 60_000) });
  const leaf = problems.find((p) =>
    p.code === "CERT_NOT_YET_VALID" && p.message.includes("CN=device-rsa-001")
  );
  assert.ok(leaf, JSON.stringify(problems));
  assert.equal(leaf.severity, "error");
  assert.match(leaf.message, /becomes valid in 5 minutes/);
  assert.match(leaf.hint!, /clock is probably behind by about 5 minutes/);
});

Deno.test({
  name: "diagnose() blames the clock when a certificate expired an hour ago",
  permissions,
}, () => {
  const id = device("ec384");
  const notAfter = Date.parse(id.chain[0].summary.notAfter);
  const problems = run({ identity: id, now: new Date(notAfter + 3600_000) });
  const leaf = problems.find((p) =>
    p.code === "CERT_EXPIRED" && p.message.includes("certificate 1 (CN=device-ec384-001)".slice(1))
  );
  assert.ok(leaf, JSON.stringify(problems));
  assert.match(leaf.message, /expired 1 hour ago/);
  assert.match(leaf.hint!, /clock may be ahead/);
});

Deno.test({
  name: "diagnose() warns about a certificate that expires within 30 days",
  permissions,
}, () => {
  const id = device("ec256");
  const notAfter = Date.parse(id.chain[0].summary.notAfter);
  const now = new Date(notAfter - 10 * DAY);
  const problems = run({ identity: id, now });
  const leaf = problems.filter((p) =>
    p.code === "CERT_EXPIRES_SOON" && p.message.includes("CN=device-ec256-001")
  );
  assert.equal(leaf.length, 1, JSON.stringify(problems));
  assert.equal(leaf[0].severity, "warning");
  assert.match(leaf[0].message, /^Certificate 1 \(CN=device-ec256-001\) expires in 10 days/);
  assert.equal(hasErrors(problems), false);
  // 31 days before: nothing about the leaf; a custom threshold of 60 days: a warning again.
  const early = new Date(notAfter - 31 * DAY);
  const leafSoon = (ps: Problem[]) =>
    ps.some((p) => p.code === "CERT_EXPIRES_SOON" && p.message.includes("CN=device-ec256-001"));
  assert.equal(leafSoon(run({ identity: id, now: early })), false);
  assert.equal(leafSoon(run({ identity: id, now: early, expiresSoonDays: 60 })), true);
});

Deno.test({ name: "diagnose() refuses a CN with ':' as an error", permissions }, () => {
  const problems = run({ identity: bad("colon"), clientId: "d:device:colon" });
  // The only error: the root cause is reported once, not again as a client id mismatch.
  const p = onlyError(problems, "CN_COLON");
  assert.match(p.message, /certificate 1 \(CN=device:colon\)/);
  assert.match(p.message, /separates/);
});

Deno.test({ name: "diagnose() refuses an X.509 v1 certificate as an error", permissions }, () => {
  const problems = run({ identity: bad("v1") });
  const p = onlyError(problems, "CERT_V1");
  assert.match(p.message, /^Certificate 1 \(CN=device-v1\) is an X\.509 version 1 certificate/);
  assert.match(p.message, /rustls/);
  assert.match(p.message, /Whether Cumulocity itself refuses .* is unverified/);
  assert.match(p.hint!, /v3/);
});

Deno.test({
  name: "diagnose() reports a private key that does not belong to the certificate",
  permissions,
}, () => {
  const problems = run({ identity: bad("mismatch") });
  const p = onlyError(problems, "KEY_MISMATCH");
  assert.match(p.message, /certificate 1 \(CN=device-mismatch\)/);
  // The same certificate with its own key has no such problem (mismatch.pem + rsa.key differ).
  const right = run({ identity: device("rsa") });
  assert.equal(codes(right).includes("KEY_MISMATCH"), false);
});

Deno.test({
  name: "diagnose() reports a key that cannot be read without quoting it",
  permissions,
}, () => {
  const id = { ...device("rsa"), privateKeyPem: "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n" };
  const p = only(run({ identity: id }), "KEY_INVALID");
  assert.equal(p.severity, "error");
  assert.match(p.message, /CN=device-rsa-001/);
  assert.equal(p.message.includes("c2VjcmV0"), false);
});

Deno.test({ name: "diagnose() refuses an RSA key under 2048 bits", permissions }, () => {
  const problems = run({ identity: bad("rsa1024") });
  const p = onlyError(problems, "RSA_KEY_TOO_SMALL");
  assert.match(p.message, /^Certificate 1 \(CN=device-rsa1024\) has a 1024-bit RSA key/);
});

Deno.test({
  name: "diagnose() refuses a leaf whose extended key usage excludes clientAuth",
  permissions,
}, () => {
  const problems = run({ identity: bad("serverauth") });
  const p = onlyError(problems, "EKU_NO_CLIENT_AUTH");
  assert.match(p.message, /certificate 1 \(CN=device-serverauth\)/);
  assert.match(p.message, /\(serverAuth\)/);
  assert.match(p.message, /OpenSSL-based servers refuse it/);
  assert.match(p.message, /whether Cumulocity does is unverified/);
});

Deno.test({
  name: "diagnose() accepts anyExtendedKeyUsage and refuses an empty extended key usage",
  permissions,
}, () => {
  const id = bad("serverauth");
  const withEku = (eku: string[]): DeviceIdentity => ({
    ...id,
    chain: [
      { ...id.chain[0], summary: { ...id.chain[0].summary, extendedKeyUsage: eku } },
      ...id.chain.slice(1),
    ],
  });
  const any = run({ identity: withEku(["1.3.6.1.5.5.7.3.1", "2.5.29.37.0"]) });
  assert.equal(codes(any).includes("EKU_NO_CLIENT_AUTH"), false);
  const both = run({ identity: withEku(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]) });
  assert.equal(codes(both).includes("EKU_NO_CLIENT_AUTH"), false);
  assert.match(only(run({ identity: withEku([]) }), "EKU_NO_CLIENT_AUTH").message, /\(empty\)/);
});

Deno.test({
  name: "diagnose() reports an issuing certificate without CA:TRUE as an error",
  permissions,
}, () => {
  const problems = run({ identity: bad("noca") });
  const p = onlyError(problems, "CA_FLAG_MISSING");
  assert.match(
    p.message,
    /^Certificate 2 \(CN=c8y-mqtt-cert Test Non-CA Intermediate\) signs certificate 1 \(CN=device-noca\)/,
  );
  // A certificate that is not a CA is not offered as a trust anchor.
  const anchor = only(problems, "CHAIN_ANCHOR");
  assert.match(anchor.message, /must trust "CN=c8y-mqtt-cert Test Device Root CA"\.$/);
});

Deno.test({
  name: "diagnose() warns about a chain that is not leaf first, and finds the leaf by its key",
  permissions,
}, () => {
  const problems = run({
    identity: identity(certs("bad/misordered.chain.pem"), "devices/rsa.key"),
    clientId: "d:device-rsa-001",
  });
  // No error: the key matches the device certificate, and the CN checks look at it, not the
  // intermediate.
  const p = onlyWarning(problems, "CHAIN_ORDER");
  assert.match(
    p.message,
    /starts with certificate 1 \(CN=c8y-mqtt-cert Test Device Intermediate CA\)/,
  );
  assert.match(p.message, /certificate 2 \(CN=device-rsa-001\) \(the private key belongs to it\)/);
  assert.match(p.message, /order: 2, 1/);
});

Deno.test({
  name: "diagnose() finds the leaf of a misordered chain without a key",
  permissions,
}, () => {
  const problems = run({ identity: identity(certs("bad/misordered.chain.pem")) });
  assert.match(only(problems, "CHAIN_ORDER").message, /certificate 2 \(CN=device-rsa-001\):/);
  assert.deepEqual(codes(problems, "error"), []);
});

Deno.test({
  name: "diagnose() warns when a certificate does not issue the one before it",
  permissions,
}, () => {
  const chain = certs("devices/rsa.pem", "ca/device-root-ca.pem", "ca/device-intermediate-ca.pem");
  const problems = run({ identity: identity(chain, "devices/rsa.key") });
  const p = only(problems, "CHAIN_ORDER");
  assert.match(
    p.message,
    /^Certificate 2 \(CN=c8y-mqtt-cert Test Device Root CA\) does not issue certificate 1 \(CN=device-rsa-001\)/,
  );
  assert.match(p.message, /order: 1, 3, 2/);
  assert.deepEqual(codes(problems, "error"), []);
});

Deno.test({
  name: "diagnose() warns about a gap in the chain and names the missing issuer",
  permissions,
}, () => {
  const chain = certs("devices/rsa.pem", "ca/device-root-ca.pem");
  const problems = run({ identity: identity(chain, "devices/rsa.key") });
  const p = onlyWarning(problems, "CHAIN_INCOMPLETE");
  assert.match(
    p.message,
    /certificate 1 \(CN=device-rsa-001\) is issued by "CN=c8y-mqtt-cert Test Device Intermediate CA"/,
  );
  assert.match(
    p.message,
    /certificate 2 \(CN=c8y-mqtt-cert Test Device Root CA\) does not connect/,
  );
  assert.match(p.hint!, /CN=c8y-mqtt-cert Test Device Intermediate CA/);
});

Deno.test({
  name: "diagnose() tells which certificate to upload for a chain from an unknown CA",
  permissions,
}, () => {
  // Judged alone, the chain is fine: the tenant must trust its root.
  const alone = run({ identity: bad("unknown-ca") });
  assert.deepEqual(codes(alone), ["CHAIN_ANCHOR"]);
  assert.match(alone[0].message, /CN=c8y-mqtt-cert Unknown CA/);
  // Against what the tenant (here: the emulator) trusts, it is untrusted.
  const problems = run({
    identity: bad("unknown-ca"),
    tenantTrust: anchors("ca/device-ca-chain.pem"),
  });
  const p = only(problems, "CHAIN_UNTRUSTED");
  assert.equal(p.severity, "warning");
  assert.match(p.message, /certificate 2 \(CN=c8y-mqtt-cert Unknown CA\)/);
  assert.match(p.message, /none of the 2 tenant trusted certificates/);
  assert.match(p.hint!, /Upload "CN=c8y-mqtt-cert Unknown CA"/);
  assert.deepEqual(codes(problems), ["CHAIN_UNTRUSTED"]);
});

Deno.test({
  name: "diagnose() does not compare the device chain with the server truststore",
  permissions,
}, () => {
  const problems = run({ identity: device("rsa"), trust: anchors("server/server-truststore.pem") });
  assert.deepEqual(codes(problems), ["CHAIN_ANCHOR"]);
});

Deno.test({
  name: "diagnose() names the issuer to upload when the device sends only its own certificate",
  permissions,
}, () => {
  const problems = run({ identity: identity(certs("devices/rsa.pem"), "devices/rsa.key") });
  const p = only(problems, "CHAIN_LEAF_ONLY");
  assert.equal(p.severity, "info");
  assert.match(p.message, /only its own certificate 1 \(CN=device-rsa-001\)/);
  assert.match(p.message, /"CN=c8y-mqtt-cert Test Device Intermediate CA" must be in the tenant/);
  assert.equal(problems.length, 1);
});

Deno.test({
  name: "diagnose() reports leaf + root without the intermediate as a gap, not as a lone leaf",
  permissions,
}, () => {
  for (
    const order of [["devices/rsa.pem", "ca/device-root-ca.pem"], [
      "ca/device-root-ca.pem",
      "devices/rsa.pem",
    ]]
  ) {
    const problems = run({ identity: identity(certs(...order), "devices/rsa.key") });
    assert.ok(codes(problems).includes("CHAIN_INCOMPLETE"), JSON.stringify(codes(problems)));
    assert.equal(codes(problems).includes("CHAIN_LEAF_ONLY"), false, order.join(" + "));
    assert.equal(codes(problems).includes("CHAIN_ANCHOR"), false, order.join(" + "));
  }
});

/**
 * Findings that cannot both be true of one chain: a lone leaf has nothing beside it, a chain
 * ending at an anchor has no gap, and an untrusted chain has no anchor the tenant trusts.
 */
const CONTRADICTIONS: [string, string][] = [
  ["CHAIN_LEAF_ONLY", "CHAIN_INCOMPLETE"],
  ["CHAIN_LEAF_ONLY", "CHAIN_ORDER"],
  ["CHAIN_LEAF_ONLY", "CHAIN_ANCHOR"],
  ["CHAIN_LEAF_ONLY", "CHAIN_UNTRUSTED"],
  ["CHAIN_ANCHOR", "CHAIN_INCOMPLETE"],
  ["CHAIN_ANCHOR", "CHAIN_UNTRUSTED"],
];

Deno.test({
  name: "diagnose() never reports contradicting chain findings, for every chain shape and trust",
  permissions,
}, () => {
  const leaf = "devices/rsa.pem";
  const inter = "ca/device-intermediate-ca.pem";
  const root = "ca/device-root-ca.pem";
  const other = "ca/server-ca.pem";
  const shapes = [
    [leaf],
    [leaf, inter],
    [leaf, inter, root],
    [leaf, root],
    [root, leaf],
    [inter, leaf],
    [leaf, root, inter],
    [leaf, other],
    [leaf, inter, other],
    [leaf, inter, root, other],
  ];
  const trusts = [
    undefined,
    anchors(root),
    anchors(inter),
    anchors("ca/device-ca-chain.pem"),
    anchors("ca/unknown-ca.pem"),
  ];
  for (const shape of shapes) {
    for (const [t, tenantTrust] of trusts.entries()) {
      for (const key of ["devices/rsa.key", undefined]) {
        const found = codes(run({ identity: identity(certs(...shape), key), tenantTrust }));
        const what = `${shape.join(" + ")}, trust ${t}, key ${key !== undefined}: ${found}`;
        for (const [a, b] of CONTRADICTIONS) {
          assert.ok(!(found.includes(a) && found.includes(b)), `${a} beside ${b} for ${what}`);
        }
        if (found.includes("CHAIN_LEAF_ONLY")) assert.equal(shape.length, 1, what);
        // A lone leaf, judged alone, is told what its issuer must be.
        if (shape.length === 1 && tenantTrust === undefined) {
          assert.deepEqual(found, ["CHAIN_LEAF_ONLY"], what);
        }
      }
    }
  }
  // The self-signed case: a lone CA certificate as device certificate is its own anchor.
  const self = codes(run({ identity: identity(certs(other), "ca/server-ca.key") }));
  assert.deepEqual(self, ["CHAIN_ANCHOR"]);
});

Deno.test({ name: "diagnose() refuses a chain longer than 10 certificates", permissions }, () => {
  const chain = certs("devices/rsa.fullchain.pem");
  const padding = certs(...Array(8).fill("ca/server-ca.pem"));
  const problems = run({ identity: identity([...chain, ...padding], "devices/rsa.key") });
  const p = only(problems, "CHAIN_TOO_LONG");
  assert.equal(p.severity, "error");
  assert.match(
    p.message,
    /has 11 certificates; the platform accepts at most 10 in the public cloud/,
  );
  // The server CA copies are not part of the device's chain: one warning lists them.
  const extra = only(problems, "CHAIN_ORDER");
  assert.match(
    extra.message,
    /^Certificate 4 \(CN=c8y-mqtt-cert Test Server CA\), certificate 5 .*, certificate 6 .* and 5 more are not part/,
  );
  // Ten certificates are fine.
  const ten = run({ identity: identity([...chain, ...padding.slice(1)], "devices/rsa.key") });
  assert.equal(codes(ten).includes("CHAIN_TOO_LONG"), false);
});

Deno.test({
  name: "diagnose() reports certificates after a chain's last issuer as not connected",
  permissions,
}, () => {
  const chain = certs("devices/rsa.chain.pem", "ca/server-ca.pem");
  const problems = run({ identity: identity(chain, "devices/rsa.key") });
  const p = onlyWarning(problems, "CHAIN_INCOMPLETE");
  assert.match(p.message, /certificate 3 \(CN=c8y-mqtt-cert Test Server CA\) does not connect/);
});

Deno.test({ name: "diagnose() reports a leaf without a Common Name", permissions }, () => {
  const id = device("rsa");
  const leaf = id.chain[0];
  const noCn = { ...leaf, summary: { ...leaf.summary, commonName: undefined, subject: "O=acme" } };
  const problems = run({ identity: { ...id, chain: [noCn, id.chain[1]] }, clientId: "d:x" });
  const p = onlyError(problems, "CN_MISSING");
  assert.match(p.message, /certificate 1 \(subject "O=acme"\) has no Common Name/);
});

Deno.test({ name: "diagnose() reports an identity without certificates", permissions }, () => {
  const problems = run({ identity: { ...device("rsa"), chain: [] } });
  assert.deepEqual(codes(problems), ["CHAIN_EMPTY"]);
  assert.equal(problems[0].severity, "error");
});

// ---- client id ------------------------------------------------------------------------------

Deno.test({
  name: "diagnose() accepts the client id forms <CN>, d:<CN> and d:<CN>:<template>",
  permissions,
}, () => {
  const id = device("rsa");
  for (const clientId of ["device-rsa-001", "d:device-rsa-001", "d:device-rsa-001:tpl1"]) {
    assert.deepEqual(codes(run({ identity: id, clientId }), "error"), [], clientId);
  }
});

Deno.test({
  name: "diagnose() refuses a client id whose device identifier is not the CN",
  permissions,
}, () => {
  const id = device("ec256");
  for (const clientId of ["d:device-rsa-001", "device-ec256-00", "d:other:device-ec256-001", ""]) {
    const p = only(run({ identity: id, clientId }), "CLIENT_ID_MISMATCH");
    assert.equal(p.severity, "error");
    assert.ok(p.message.includes(`"${clientId}"`), p.message);
    assert.match(p.message, /certificate 1 \(CN=device-ec256-001\)/);
    assert.equal(p.hint, 'Use `clientId: "d:device-ec256-001"`, or leave `clientId` out.');
  }
  for (const clientId of ["x:device-ec256-001", "d:device-ec256-001:t:extra"]) {
    const p = only(run({ identity: id, clientId }), "CLIENT_ID_MISMATCH");
    assert.match(p.message, /is not of the form <id>, d:<id> or d:<id>:<template>/);
  }
});

Deno.test({
  name: "diagnose() refuses a client id that parseClientId() cannot read, whatever the CN",
  permissions,
}, () => {
  const id = device("ec256");
  for (const clientId of ["", "d::x", "d:", ":device-ec256-001", "d:device-ec256-001:"]) {
    const p = only(run({ identity: id, clientId }), "CLIENT_ID_MISMATCH");
    assert.equal(p.severity, "error");
    assert.equal(
      p.message,
      `The client id "${clientId}" is not of the form <id>, d:<id> or d:<id>:<template> ` +
        "(it is empty, has an empty part or more than three parts), so it cannot match " +
        "certificate 1 (CN=device-ec256-001).",
    );
    assert.equal(p.hint, 'Use `clientId: "d:device-ec256-001"`, or leave `clientId` out.');
  }
  const typed = only(run({ identity: id, clientId: "x:device-ec256-001" }), "CLIENT_ID_MISMATCH");
  assert.match(typed.message, /its connection type "x" is not "d"/);
  // Without a usable CN the id is still refused (next to CN_MISSING), with a generic hint.
  const leaf = id.chain[0];
  const noCn = { ...leaf, summary: { ...leaf.summary, commonName: undefined } };
  const problems = run({ identity: { ...id, chain: [noCn, ...id.chain.slice(1)] }, clientId: "" });
  assert.deepEqual(codes(problems, "error"), ["CN_MISSING", "CLIENT_ID_MISMATCH"]);
  assert.match(only(problems, "CLIENT_ID_MISMATCH").hint!, /Leave `clientId` out/);
});

// ---- truststores ----------------------------------------------------------------------------

Deno.test({
  name: "diagnose() finds nothing wrong with the server and device CA truststores",
  permissions,
}, () => {
  assert.deepEqual(run({ trust: anchors("ca/server-ca.pem") }), []);
  assert.deepEqual(run({ trust: anchors("ca/device-ca-chain.pem", "ca/unknown-ca.pem") }), []);
});

Deno.test({
  name: "diagnose() warns about truststore entries that are not CAs or are expired",
  permissions,
}, () => {
  const trust = anchors("ca/server-ca.pem", "devices/rsa.pem", "bad/expired.pem");
  trust.certificates[1].alias = "rsa";
  const problems = run({ trust, now: new Date("2101-01-01T00:00:00Z") });
  assert.deepEqual(codes(problems), [
    "TRUST_CERT_NOT_CA",
    "TRUST_CERT_NOT_CA",
    "TRUST_CERT_EXPIRED",
  ]);
  assert.ok(problems.every((p) => p.severity === "warning"));
  assert.match(problems[0].message, /^Truststore certificate 2 \(CN=device-rsa-001, alias "rsa"\)/);
  assert.match(problems[1].message, /^Truststore certificate 3 \(CN=device-expired\)/);
  assert.match(
    problems[2].message,
    /^Truststore certificate 3 \(CN=device-expired\) expired 100 years ago/,
  );
});

Deno.test({
  name: "diagnose() warns about a truststore certificate that is not valid yet",
  permissions,
}, () => {
  const trust = anchors("ca/device-root-ca.pem");
  const notBefore = Date.parse(trust.certificates[0].summary.notBefore);
  const p = only(
    run({ trust, now: new Date(notBefore - 3 * 3600_000) }),
    "TRUST_CERT_NOT_YET_VALID",
  );
  assert.equal(p.severity, "warning");
  assert.match(
    p.message,
    /CN=c8y-mqtt-cert Test Device Root CA\) is not valid yet: it becomes valid in 3 hours/,
  );
});

// ---- ordering and helpers -------------------------------------------------------------------

Deno.test({
  name: "diagnose() lists errors, then warnings, then info, each in the order found",
  permissions,
}, () => {
  // Leaf only (info), expiring soon (warning), client id mismatch and v1 (errors).
  const id = identity(certs("bad/v1.pem"), "bad/v1.key");
  const now = new Date(Date.parse(id.chain[0].summary.notAfter) - DAY);
  const problems = run({ identity: id, clientId: "d:someone-else", now });
  assert.deepEqual(problems.map((p) => [p.code, p.severity]), [
    ["CERT_V1", "error"],
    ["CLIENT_ID_MISMATCH", "error"],
    ["CERT_EXPIRES_SOON", "warning"],
    ["CHAIN_LEAF_ONLY", "info"],
  ]);
  assert.equal(hasErrors(problems), true);
});

Deno.test("diagnose() with nothing to check finds nothing", () => {
  assert.deepEqual(diagnose({}), []);
});

Deno.test("hasErrors() is true only when some problem is an error", () => {
  const p = (severity: Severity): Problem => ({ code: "CHAIN_ORDER", severity, message: "X." });
  assert.equal(hasErrors([]), false);
  assert.equal(hasErrors([p("info"), p("warning")]), false);
  assert.equal(hasErrors([p("info"), p("error")]), true);
});

Deno.test("formatDuration() says a duration in its largest whole unit", () => {
  assert.equal(formatDuration(0), "less than a second");
  assert.equal(formatDuration(999), "less than a second");
  assert.equal(formatDuration(1000), "1 second");
  assert.equal(formatDuration(59_999), "59 seconds");
  assert.equal(formatDuration(5 * 60_000), "5 minutes");
  assert.equal(formatDuration(-2 * 3600_000), "2 hours");
  assert.equal(formatDuration(DAY), "1 day");
  assert.equal(formatDuration(364 * DAY), "364 days");
  assert.equal(formatDuration(25 * 365 * DAY + 10 * DAY), "25 years");
});
