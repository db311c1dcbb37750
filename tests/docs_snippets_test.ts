/**
 * What the README, the doc comments and the examples show a new user: snippets that are safe to
 * copy (no JWT printed) and commands that work as written.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const permissions = { read: [ROOT], run: [Deno.execPath()] };

/** README.md, every .ts under lib/ and examples/: the texts a user copies from. */
function texts(): Map<string, string> {
  const found = new Map<string, string>();
  found.set("README.md", Deno.readTextFileSync(new URL("README.md", ROOT)));
  const visit = (dir: string): void => {
    for (const entry of Deno.readDirSync(new URL(dir, ROOT))) {
      const path = `${dir}${entry.name}`;
      if (entry.isDirectory) visit(`${path}/`);
      else if (path.endsWith(".ts")) found.set(path, Deno.readTextFileSync(new URL(path, ROOT)));
    }
  };
  visit("lib/");
  visit("examples/");
  return found;
}

Deno.test({
  name: "no snippet logs every message: s/dat carries the JWT on each token request",
  permissions,
}, () => {
  const unsafe: string[] = [];
  let logging = 0;
  for (const [path, text] of texts()) {
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      if (!/messageArrived[(:]/.test(line) || /messageArrived\?/.test(line)) return;
      const handler = lines.slice(i, i + 4).join("\n");
      if (!/console\.|log\(/.test(handler)) return;
      logging++;
      // A handler that logs must pick its topic (s/ds) or leave s/dat out.
      if (!/topic === "s\/ds"|!== "s\/dat"/.test(handler)) unsafe.push(`${path}:${i + 1}`);
    });
  }
  assert.ok(logging >= 2, "the README and connect()'s doc show a logging messageArrived");
  assert.deepEqual(unsafe, [], "messageArrived handlers that would print 71,<JWT>");
});

Deno.test({
  name: "every `deno doc` command the README names runs as written",
  permissions,
}, async () => {
  const readme = Deno.readTextFileSync(new URL("README.md", ROOT));
  const commands = [...readme.matchAll(/`deno doc ([^`]+)`/g)].map((m) => m[1]);
  assert.ok(commands.some((c) => c.includes("--filter connect")), commands.join("; "));
  for (const command of commands) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["doc", ...command.split(" ")],
      cwd: ROOT,
      stdout: "null",
    }).output();
    assert.equal(code, 0, `deno doc ${command}: ${new TextDecoder().decode(stderr)}`);
  }
});
