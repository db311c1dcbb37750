import assert from "node:assert/strict";
import { clientId, parseClientId } from "../../lib/connect/client_id.ts";
import { CertificateError, UsageError } from "../../lib/errors.ts";
import type { DeviceIdentity } from "../../lib/types.ts";
import { fixtureIdentity } from "../support/mosquitto.ts";

const rsa = await fixtureIdentity("devices/rsa");
const ec256 = await fixtureIdentity("devices/ec256");
const colon = await fixtureIdentity("bad/colon");

/** A copy of an identity whose leaf has another common name. */
function withCommonName(identity: DeviceIdentity, commonName: string | undefined): DeviceIdentity {
  const [leaf, ...rest] = identity.chain;
  return {
    ...identity,
    chain: [{ ...leaf, summary: { ...leaf.summary, commonName } }, ...rest],
  };
}

const parsed: Array<
  [string, { connectionType: string; deviceIdentifier: string; template?: string }]
> = [
  ["device-001", { connectionType: "d", deviceIdentifier: "device-001" }],
  ["d:device-001", { connectionType: "d", deviceIdentifier: "device-001" }],
  ["d:device-001:tpl", { connectionType: "d", deviceIdentifier: "device-001", template: "tpl" }],
  ["x:device-001", { connectionType: "x", deviceIdentifier: "device-001" }],
];
for (const [input, expected] of parsed) {
  Deno.test(`parseClientId() splits "${input}"`, () => {
    assert.deepEqual(parseClientId(input), expected);
  });
}

for (const input of ["", ":", "d:", ":device", "d::tpl", "d:device:", "d:a:b:c"]) {
  Deno.test(`parseClientId() refuses "${input}" with CLIENT_ID_INVALID`, () => {
    assert.throws(
      () => parseClientId(input),
      (err: unknown) => err instanceof UsageError && err.code === "CLIENT_ID_INVALID",
    );
  });
}

Deno.test("clientId() is d:<CN of the first certificate> for the rsa and ec256 fixtures", () => {
  assert.equal(clientId(rsa), "d:device-rsa-001");
  assert.equal(clientId(ec256), "d:device-ec256-001");
});

const explicit: Array<[string, string]> = [
  ["device-rsa-001", "d:device-rsa-001"],
  ["d:device-rsa-001", "d:device-rsa-001"],
  ["d:device-rsa-001:myTemplate", "d:device-rsa-001:myTemplate"],
];
for (const [input, expected] of explicit) {
  Deno.test(`clientId() accepts the explicit id "${input}" as "${expected}"`, () => {
    assert.equal(clientId(rsa, { explicit: input }), expected);
  });
}

const refusedExplicit: Array<[string, typeof UsageError | typeof CertificateError, string]> = [
  ["device-ec256-001", CertificateError, "CLIENT_ID_MISMATCH"],
  ["d:DEVICE-RSA-001", CertificateError, "CLIENT_ID_MISMATCH"],
  ["d:device-rsa-001x:tpl", CertificateError, "CLIENT_ID_MISMATCH"],
  ["x:device-rsa-001", UsageError, "CLIENT_ID_TYPE"],
  ["d:device-rsa-001:a:b", UsageError, "CLIENT_ID_INVALID"],
  ["", UsageError, "CLIENT_ID_INVALID"],
];
for (const [input, type, code] of refusedExplicit) {
  Deno.test(`clientId() refuses the explicit id "${input}" with ${code}`, () => {
    assert.throws(
      () => clientId(rsa, { explicit: input }),
      (err: unknown) => {
        assert.ok(err instanceof type, `expected ${type.name}, got ${err}`);
        assert.equal(err.code, code);
        assert.ok(err.hint.length > 0);
        return true;
      },
    );
  });
}

Deno.test("clientId() names the CN and the right id in a CLIENT_ID_MISMATCH", () => {
  try {
    clientId(rsa, { explicit: "d:other" });
    assert.fail("expected a failure");
  } catch (err) {
    assert.ok(err instanceof CertificateError);
    assert.match(err.message, /"other"/);
    assert.match(err.message, /"device-rsa-001"/);
    assert.match(err.hint, /d:device-rsa-001/);
    assert.equal(err.exitCode, 4);
  }
});

Deno.test("clientId() refuses the fixture certificate whose CN contains ':' with CN_COLON", () => {
  assert.ok(colon.chain[0].summary.commonName?.includes(":"));
  assert.throws(
    () => clientId(colon),
    (err: unknown) => err instanceof CertificateError && err.code === "CN_COLON",
  );
});

Deno.test("clientId() refuses a certificate without a CN with CN_MISSING", () => {
  for (const cn of [undefined, ""]) {
    assert.throws(
      () => clientId(withCommonName(rsa, cn), { name: "device.p12" }),
      (err: unknown) =>
        err instanceof CertificateError && err.code === "CN_MISSING" &&
        err.message.includes('"device.p12"'),
    );
  }
});

Deno.test("clientId() refuses an identity without certificates with CN_MISSING", () => {
  assert.throws(
    () => clientId({ ...rsa, chain: [] }),
    (err: unknown) => err instanceof CertificateError && err.code === "CN_MISSING",
  );
});
