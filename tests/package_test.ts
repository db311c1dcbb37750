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

/** The names `mod.ts` exports. */
function modExports(): Set<string> {
  const names = new Set<string>();
  for (const m of read("mod.ts").matchAll(/export (?:type )?\{([^}]*)\} from "[^"]+"/g)) {
    for (const name of m[1].split(",")) names.add(name.trim().replace(/^type /, ""));
  }
  return names;
}

/** Every TypeScript file under `lib/`, as a path relative to the root. */
function libFiles(dir = "lib"): string[] {
  return [...Deno.readDirSync(new URL(`${dir}/`, ROOT))].flatMap((entry) =>
    entry.isDirectory
      ? libFiles(`${dir}/${entry.name}`)
      : entry.name.endsWith(".ts")
      ? [`${dir}/${entry.name}`]
      : []
  );
}

Deno.test({
  name: "examples of the public API import it from mod.ts, as a user's program does",
  permissions,
}, () => {
  const exported = modExports();
  const isMod = (from: string): boolean =>
    from.endsWith("mod.ts") || /^(jsr:)?@c8y-mqtt-cert\/c8y-mqtt-cert$/.test(from);
  const wrong: string[] = [];
  for (const file of libFiles()) {
    // Each ```ts block of a doc comment; a block that also imports an internal helper (the
    // example of that helper) may import from its module.
    for (const block of read(file).matchAll(/^ \* ```ts[^\n]*\n([\s\S]*?)^ \* ```/gm)) {
      const imports = [...block[1].matchAll(/^ \* import (?:type )?\{([^}]*)\} from "([^"]+)";/gm)]
        .map((m) => ({
          names: m[1].split(",").map((n) => n.trim().replace(/^type /, "")).filter(Boolean),
          from: m[2],
        }));
      const internal = imports.some((i) => i.names.some((n) => !exported.has(n)));
      if (internal) continue;
      for (const i of imports) if (!isMod(i.from)) wrong.push(`${file}: ${i.names} from ${i.from}`);
    }
  }
  assert.deepEqual(wrong, []);
});
