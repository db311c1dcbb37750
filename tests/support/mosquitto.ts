/**
 * Test helpers: a real mosquitto broker (Debian package `mosquitto`) with
 * `require_certificate true` on a free port of 127.0.0.1, and device identities / trust anchors
 * built from the fixture PEM files.
 *
 * Tests that need mosquitto use {@linkcode mosquittoTest}: when the binary is missing they are
 * ignored with a visible warning, unless `REQUIRE_MOSQUITTO=1` (set by `.ci/run`), in which case
 * they run and fail.
 *
 * @module
 */

import { certificatesFromPem } from "../../lib/x509/certificate.ts";
import type { DeviceIdentity, TrustAnchors } from "../../lib/types.ts";

/** The fixtures directory. */
export const FIXTURES: URL = new URL("../../fixtures/", import.meta.url);

const CANDIDATES = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto"];

/**
 * The path of the mosquitto binary, or `undefined` when it is not installed. The environment
 * variable `MOSQUITTO` names another binary (and lets the "not installed" path be tried).
 */
export async function mosquittoPath(): Promise<string | undefined> {
  const override = Deno.env.get("MOSQUITTO");
  for (const path of override ? [override] : CANDIDATES) {
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** Whether the mosquitto binary is installed. */
export async function mosquittoAvailable(): Promise<boolean> {
  return (await mosquittoPath()) !== undefined;
}

const available = await mosquittoAvailable();
const required = Deno.env.get("REQUIRE_MOSQUITTO") === "1";
if (!available && !required) {
  console.warn(
    "WARNING: mosquitto is not installed (apt-get install mosquitto): tests against a real " +
      "broker are IGNORED. Set REQUIRE_MOSQUITTO=1 to make them fail instead.",
  );
}

/**
 * Defines a test that needs mosquitto (ignored, visibly, when it is missing and
 * `REQUIRE_MOSQUITTO` is not `1`).
 */
export function mosquittoTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !available && !required, fn });
}

/** Options of {@linkcode startMosquitto}; paths are relative to the fixtures directory. */
export interface MosquittoOptions {
  /** The CAs that may sign device certificates. @default "ca/device-ca-chain.pem" */
  cafile?: string;
  /** The server's certificate. @default "server/server.pem" */
  certfile?: string;
  /** The server's key. @default "server/server.key" */
  keyfile?: string;
  /** Restrict the TLS version (mosquitto's `tls_version`). @default TLS 1.2 and 1.3 */
  tlsVersion?: "tlsv1.2" | "tlsv1.3";
  /** More lines for its configuration file, e.g. `max_queued_messages 0`. */
  extraConfig?: string[];
}

/**
 * A running mosquitto. Disposing of it stops it, so `await using mosquitto = await
 * startMosquitto()` stops the broker when the test's scope ends, pass or fail.
 */
export interface Mosquitto extends AsyncDisposable {
  /** Its TLS port on 127.0.0.1. */
  port: number;
  /** Its log so far (for failure messages). */
  log(): Promise<string>;
  /** Stops it and removes its temporary directory; a second call waits for the first. */
  stop(): Promise<void>;
}

/** Picks a free TCP port on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Starts mosquitto with TLS and `require_certificate true` on a free port of 127.0.0.1 and waits
 * until it accepts connections.
 */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const binary = await mosquittoPath();
  if (binary === undefined) {
    throw new Error(
      "mosquitto is not installed (apt-get install mosquitto), but REQUIRE_MOSQUITTO=1",
    );
  }
  // The port is picked free, closed, then handed to mosquitto: another process may take it in
  // between, and mosquitto then exits at start. A few attempts, each on a new port, make that
  // (rare) race harmless.
  for (let attempt = 1;; attempt++) {
    try {
      return await startMosquittoOnce(binary, options);
    } catch (err) {
      if (!(err instanceof ExitedAtStart) || attempt === 3) throw err;
    }
  }
}

/** mosquitto exited before it accepted a connection. */
class ExitedAtStart extends Error {}

async function startMosquittoOnce(
  binary: string,
  options: MosquittoOptions,
): Promise<Mosquitto> {
  const dir = await Deno.makeTempDir({ prefix: "c8y-mosquitto-" });
  const fixture = (p: string): string => new URL(p, FIXTURES).pathname;
  const port = freePort();
  const logFile = `${dir}/mosquitto.log`;
  const lines = [
    `listener ${port} 127.0.0.1`,
    `cafile ${fixture(options.cafile ?? "ca/device-ca-chain.pem")}`,
    `certfile ${fixture(options.certfile ?? "server/server.pem")}`,
    `keyfile ${fixture(options.keyfile ?? "server/server.key")}`,
    "require_certificate true",
    "use_identity_as_username true",
    "allow_anonymous true",
    "persistence false",
    // Without it, Nagle's algorithm on the broker delays each CONNACK by ~40 ms (delayed ACK).
    "set_tcp_nodelay true",
    `log_dest file ${logFile}`,
    "log_type all",
  ];
  if (options.tlsVersion) lines.push(`tls_version ${options.tlsVersion}`);
  lines.push(...options.extraConfig ?? []);
  // Started as root, mosquitto switches to the user "mosquitto", which cannot read the fixture
  // keys (mode 0600). "user root" keeps it as it is.
  if (Deno.uid() === 0) lines.push("user root");
  await Deno.writeTextFile(`${dir}/mosquitto.conf`, lines.join("\n") + "\n");

  const child = new Deno.Command(binary, {
    args: ["-c", `${dir}/mosquitto.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const log = async (): Promise<string> => {
    try {
      return await Deno.readTextFile(logFile);
    } catch {
      return "";
    }
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= (async (): Promise<void> => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
      }
      await status;
      await Deno.remove(dir, { recursive: true });
    })();

  const start = Date.now();
  for (;;) {
    if (exited) {
      const text = await log();
      await stop();
      throw new ExitedAtStart(`mosquitto exited at start:\n${text}`);
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      break;
    } catch {
      if (Date.now() - start > 5000) {
        const text = await log();
        await stop();
        throw new Error(`mosquitto did not listen on port ${port} within 5 s:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return { port, log, stop, [Symbol.asyncDispose]: stop };
}

/** Reads a fixture as text. */
export function fixtureText(path: string): Promise<string> {
  return Deno.readTextFile(new URL(path, FIXTURES));
}

/**
 * A device identity from the fixture PEM files `devices/<name>.key` and
 * `devices/<name>.chain.pem` (or any `<base>.key` / `<base>.chain.pem` under the fixtures).
 */
export async function fixtureIdentity(base: string): Promise<DeviceIdentity> {
  const key = await fixtureText(`${base}.key`);
  const chain = certificatesFromPem(await fixtureText(`${base}.chain.pem`), { name: base });
  const keyType = chain[0].summary.keyType;
  return { format: "pem", alias: undefined, aliases: [], privateKeyPem: key, keyType, chain };
}

/** Trust anchors from a fixture PEM file. */
export async function fixtureTrust(path: string): Promise<TrustAnchors> {
  const certificates = certificatesFromPem(await fixtureText(path), { name: path }).map((c) => ({
    ...c,
    alias: undefined,
  }));
  return { format: "pem", certificates };
}
