/**
 * Every failure of a public function is a `C8yError` with a code, also for option values that
 * cannot work: one table of calls through `mod.ts`, each with the code and a part of the message
 * it must give.
 */

import assert from "node:assert/strict";
import {
  C8yError,
  clientId,
  connect,
  type DeviceConnection,
  type DeviceIdentity,
  diagnose,
  fetchToken,
  parseBrokerUrl,
  parseClientId,
  requestToken,
  UsageError,
} from "../mod.ts";
import { checkNumberOption } from "../lib/check_option.ts";

/** A stand-in identity for the checks that only read the leaf's summary. */
const NO_CHAIN = { chain: [] } as unknown as DeviceIdentity;
/** A stand-in identity: the option checks come before its key and certificate are used. */
const DEVICE = {
  privateKeyPem: "",
  chain: [{ pem: "", summary: { commonName: "device-001" } }],
} as unknown as DeviceIdentity;
/**
 * A port nothing listens on: a call that got as far as connecting would fail with
 * NETWORK_REFUSED, so OPTION_INVALID proves the option is checked first.
 */
const CLOSED = (() => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return `ssl://127.0.0.1:${listener.addr.port}`;
})();

const cases: [string, () => unknown, string, RegExp][] = [
  [
    "fetchToken() with zero attempts",
    () => fetchToken({ url: CLOSED, identity: DEVICE, attempts: 0 }),
    "OPTION_INVALID",
    /^The option attempts must be a whole number 1 or more, not 0$/,
  ],
  [
    "fetchToken() with a zero timeoutMs",
    () => fetchToken({ url: CLOSED, identity: DEVICE, timeoutMs: 0 }),
    "OPTION_INVALID",
    /^The option timeoutMs must be a whole number 1 or more, not 0$/,
  ],
  [
    "connect() with a negative connectTimeoutMs",
    () => connect({ url: CLOSED, identity: DEVICE, connectTimeoutMs: -5 }),
    "OPTION_INVALID",
    /connectTimeoutMs must be a whole number 1 or more, not -5/,
  ],
  [
    "requestToken() with a NaN attemptTimeoutMs",
    () => requestToken({} as DeviceConnection, { attemptTimeoutMs: Number.NaN }),
    "OPTION_INVALID",
    /attemptTimeoutMs must be a whole number 1 or more, not NaN/,
  ],
  [
    "diagnose() with a negative expiresSoonDays",
    () => diagnose({ expiresSoonDays: -1 }),
    "OPTION_INVALID",
    /expiresSoonDays must be a number 0 or more, not -1/,
  ],
  [
    "diagnose() with an invalid date as now",
    () => diagnose({ now: new Date(Number.NaN) }),
    "OPTION_INVALID",
    /now is an invalid date/,
  ],
  [
    "parseBrokerUrl() of a web address",
    () => parseBrokerUrl("https://t.example.com"),
    "URL_HTTP",
    /ssl:\/\/t\.example\.com:8883/,
  ],
  ["parseClientId() of an empty id", () => parseClientId(""), "CLIENT_ID_INVALID", /./],
  [
    "clientId() of an identity without certificate",
    () => clientId(NO_CHAIN),
    "CN_MISSING",
    /holds no certificate/,
  ],
  [
    "checkNumberOption() of zero attempts",
    () => checkNumberOption("attempts", 0),
    "OPTION_INVALID",
    /^The option attempts must be a whole number 1 or more, not 0$/,
  ],
  [
    "checkNumberOption() of NaN milliseconds",
    () => checkNumberOption("timeoutMs", Number.NaN),
    "OPTION_INVALID",
    /timeoutMs must be a whole number 1 or more, not NaN/,
  ],
  [
    "checkNumberOption() of 1.5 attempts",
    () => checkNumberOption("attempts", 1.5),
    "OPTION_INVALID",
    /not 1\.5/,
  ],
];

for (const [name, call, code, message] of cases) {
  Deno.test(`${name} fails with a C8yError ${code}`, async () => {
    await assert.rejects(
      async () => await call(),
      (err: unknown) => {
        assert.ok(err instanceof C8yError, `not a C8yError: ${err}`);
        assert.equal(err.code, code);
        assert.match(err.message, message);
        assert.ok(err.hint.length > 0, "a hint says what to do");
        if (code === "OPTION_INVALID") assert.ok(err instanceof UsageError);
        return true;
      },
    );
  });
}

Deno.test("checkNumberOption() passes a value in range and undefined through", () => {
  assert.equal(checkNumberOption("attempts", 1), 1);
  assert.equal(checkNumberOption("attempts", undefined), undefined);
  assert.equal(checkNumberOption("expiresSoonDays", 0.5, { min: 0, integer: false }), 0.5);
  assert.throws(() => checkNumberOption("port", 70000, { max: 65535 }), /from 1 to 65535/);
});
