import assert from "node:assert/strict";
import { startFixtureEmulator } from "./support/emulator.ts";

const root = new URL("../", import.meta.url);
const fixtures = new URL("fixtures/", root);

/** Serves the checkout's TypeScript sources read-only over HTTP on loopback. */
function serveCheckout(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    async (req): Promise<Response> => {
      const path = new URL(req.url).pathname;
      // mod.ts and lib/**/*.ts (no dots in folder names: nothing outside lib/ can be named).
      if (!/^\/(mod\.ts|lib\/(?:\w+\/)*\w+\.ts)$/.test(path)) {
        return new Response("not found", { status: 404 });
      }
      try {
        const body = await Deno.readFile(new URL(`.${path}`, root));
        return new Response(body, { headers: { "content-type": "application/typescript" } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
}

Deno.test("mod.ts imported from a URL by a script without our deno.json fetches a token", async () => {
  await using server = serveCheckout();
  await using emulator = await startFixtureEmulator();
  const dir = await Deno.makeTempDir({ prefix: "c8y-remote-" });
  try {
    const origin = `127.0.0.1:${server.addr.port}`;
    const keystore = new URL("devices/ec256.jdk.p12", fixtures).pathname;
    const truststore = new URL("server/server-truststore.jks", fixtures).pathname;
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `import { fetchToken, loadKeyStore, loadTrustStore } from "http://${origin}/mod.ts";
const identity = await loadKeyStore(await Deno.readFile(${JSON.stringify(keystore)}), {
  password: "changeit",
});
const trust = await loadTrustStore(await Deno.readFile(${JSON.stringify(truststore)}));
const result = await fetchToken({ url: Deno.args[0]!, identity, trust });
console.log(JSON.stringify({ clientId: result.clientId, subject: result.subject }));
`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        // --ignore-env as the README says: MQTT.js's dependencies look up variables when they
        // load; the library itself reads none (no --allow-env).
        "--ignore-env",
        `--allow-import=${origin}`,
        `--allow-read=${keystore},${truststore}`,
        `--allow-net=127.0.0.1:${emulator.port}`,
        "main.ts",
        emulator.url,
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    const out = JSON.parse(new TextDecoder().decode(stdout));
    assert.deepEqual(out, { clientId: "d:device-ec256-001", subject: "device_device-ec256-001" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("importing mod.ts needs no permission and does no I/O", async () => {
  const dir = await Deno.makeTempDir({ prefix: "c8y-import-" });
  try {
    await Deno.writeTextFile(
      `${dir}/i.ts`,
      `import * as m from ${
        JSON.stringify(new URL("mod.ts", root).href)
      };\nconsole.log(Object.keys(m).length);\n`,
    );
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `${dir}/i.ts`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.ok(Number(new TextDecoder().decode(r.stdout)) > 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
