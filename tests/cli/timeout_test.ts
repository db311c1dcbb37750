/**
 * `--timeout` bounds every wait of `token` and `check`: a broker that accepts the connection
 * (CONNACK 0) and then never answers the SUBSCRIBE ends the command with a timeout error naming
 * the SUBACK, instead of waiting for the keepalive (90 s or more).
 */

import assert from "node:assert/strict";
import { runCli } from "../support/cli.ts";

const fixture = (path: string): string =>
  Deno.readTextFileSync(new URL(`../../fixtures/${path}`, import.meta.url));

/** A TLS broker on 127.0.0.1 that accepts every CONNECT and then only reads. */
function silentBroker(): { port: number; packets: () => number } & AsyncDisposable {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: fixture("server/server.pem"),
    key: fixture("server/server.key"),
  });
  let packets = 0;
  const conns = new Set<Deno.Conn>();
  const served = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buffer = new Uint8Array(4096);
        try {
          await conn.read(buffer); // CONNECT
          await conn.write(new Uint8Array([0x20, 0x02, 0x00, 0x00]));
          while ((await conn.read(buffer)) !== null) packets++;
        } catch {
          // the client reset the connection
        } finally {
          conns.delete(conn);
          conn.close();
        }
      })();
    }
  })();
  return {
    port: listener.addr.port,
    packets: () => packets,
    async [Symbol.asyncDispose](): Promise<void> {
      listener.close();
      await served.catch(() => {});
      for (const conn of conns) conn.close();
    },
  };
}

for (const command of ["token", "check"]) {
  Deno.test(`${command} --timeout 1 against a broker that never answers SUBSCRIBE ends with MQTT_SUBACK_TIMEOUT (exit 7)`, async () => {
    await using broker = silentBroker();
    const keystore = "fixtures/devices/rsa.chain.pem";
    const key = "fixtures/devices/rsa.key";
    const truststore = "fixtures/ca/server-ca.pem";
    const r = await runCli(
      [
        command,
        "--url",
        `ssl://localhost:${broker.port}`,
        "--keystore",
        keystore,
        "--key",
        key,
        "--truststore",
        truststore,
        "--timeout",
        "1",
        "--json",
      ],
      { read: [keystore, key, truststore], net: [`localhost:${broker.port}`] },
    );
    assert.equal(r.code, 7, r.stderr);
    const { ok, error } = JSON.parse(r.stdout);
    assert.equal(ok, false);
    assert.equal(error.code, "MQTT_SUBACK_TIMEOUT", r.stdout);
    assert.equal(error.stage, "subscribe");
    assert.equal(error.exitCode, 7);
    assert.match(error.message, /sent no SUBACK for the subscription to "s\/dat" within 1 s/);
    assert.ok(broker.packets() >= 1, "the SUBSCRIBE reached the broker");
  });
}
