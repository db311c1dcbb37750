/**
 * What the package declares about itself: the MIT licence (file and `license` field), the gate
 * that simulates publishing, and the README's word on how a refused certificate arrives.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const permissions = { read: [ROOT] };
const read = (path: string): string => Deno.readTextFileSync(new URL(path, ROOT));

Deno.test({ name: "the package is MIT-licensed, in LICENSE and in deno.json", permissions }, () => {
  const license = read("LICENSE");
  assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 the c8y-mqtt-cert authors\n/);
  assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
  const config = JSON.parse(read("deno.json"));
  assert.equal(config.license, "MIT");
  // The gate simulates publishing (which checks the license field, slow types and the files).
  assert.match(config.tasks.ok, /deno publish --dry-run/);
});

Deno.test({
  name: "README's exit codes say a refused certificate is a TLS alert (6) or CONNACK 5 (7)",
  permissions,
}, () => {
  const section = read("README.md").split(/^## /m).find((s) => s.startsWith("Exit codes\n"))!;
  assert.match(section, /^\| 6 +\| TLS +\| .*device certificate refused as a TLS alert/m);
  assert.match(section, /^\| 7 +\| MQTT +\| .*CONNACK 1-5; 5 can be a refused certificate/m);
  assert.match(
    section,
    /exit 6 with `TLS_CLIENT_CERT_REFUSED`, or as CONNACK 5 "not\s+authorized",\s+exit\s+7/,
  );
});
