/**
 * `deno bench` for decoding a JWT session token with `decodeToken()`: a token shaped like the
 * platform's (RS256, the claims Cumulocity puts in), signed here with a throwaway key so that
 * its size is realistic. Run with `deno task bench` (nothing here asserts a duration).
 */
import assert from "node:assert/strict";
import { loadJose } from "../../lib/deps.ts";
import { decodeToken } from "../../lib/token/decode_token.ts";

const jose = await loadJose();
const { privateKey } = await jose.generateKeyPair("RS256");
const now = Math.floor(Date.now() / 1000);
const jwt = await new jose.SignJWT({
  ten: "t12345",
  tci: crypto.randomUUID(),
  xsrfToken: crypto.randomUUID(),
})
  .setProtectedHeader({ alg: "RS256" })
  .setIssuer("t12345.cumulocity.com")
  .setAudience("t12345.cumulocity.com")
  .setSubject("device_device-rsa-001")
  .setIssuedAt(now)
  .setNotBefore(now)
  .setExpirationTime(now + 3600)
  .sign(privateKey);

// Once, before benchmarking: the token decodes to what was signed.
const decoded = decodeToken(jwt);
assert.equal(decoded.tenant, "t12345");
assert.equal(decoded.subject, "device_device-rsa-001");

Deno.bench({
  name: "decodeToken() RS256 JWT (platform claims)",
  group: "token",
  baseline: true,
  fn(): void {
    decodeToken(jwt);
  },
});

Deno.bench({
  name: "decodeToken() the same JWT as a `71,<JWT>` line's payload, with surrounding space",
  group: "token",
  fn(): void {
    decodeToken(`  ${jwt}\n`);
  },
});
