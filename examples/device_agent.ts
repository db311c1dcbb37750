/**
 * A device program on c8y-mqtt-cert: the Java example's device, grown up. It loads the device's
 * keystore and truststore, connects in one call (reconnecting when the connection drops), keeps
 * its JWT fresh, registers itself with the static template `100`, sends a temperature
 * measurement (`211`) every few seconds, and answers the operations the platform sends on `s/ds`:
 * a restart (`510`) is set to EXECUTING (`501`) and SUCCESSFUL (`503`), a shell command (`511`)
 * is set to EXECUTING and FAILED (`502`: this example runs no commands). Ctrl-C (SIGINT) or
 * SIGTERM disconnects cleanly and exits 0.
 *
 * ```sh
 * KEYSTORE_PASSWORD=changeit deno run --ignore-env --allow-env=KEYSTORE_PASSWORD \
 *   --allow-read=device.p12,truststore.jks --allow-net=mytenant.cumulocity.com:8883 \
 *   examples/device_agent.ts --url ssl://mytenant.cumulocity.com:8883 \
 *   --keystore device.p12 --truststore truststore.jks [--interval 5] [--name "My device"]
 * ```
 *
 * The keystore password comes from `KEYSTORE_PASSWORD` (and a truststore's, when it needs one,
 * from `TRUSTSTORE_PASSWORD`: add it to `--allow-env`). Each thing that happens is one line on
 * stdout; the token itself is never printed. A failure before the device runs (a store that does
 * not open, a refused connection) is one `error:` line with its hint, exit 1.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type C8yError, connect, keepToken, loadKeyStore, loadTrustStore } from "../mod.ts";

/** The operations this device answers, by SmartREST template: the fragment of the operation. */
const OPERATIONS: Record<string, string> = { "510": "c8y_Restart", "511": "c8y_Command" };

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    keystore: { type: "string" },
    truststore: { type: "string" },
    interval: { type: "string", default: "5" },
    name: { type: "string" },
  },
  strict: true,
});
if (!values.url || !values.keystore) {
  console.error(
    "usage: device_agent.ts --url URL --keystore PATH [--truststore PATH] [--interval S] [--name N]",
  );
  Deno.exit(2);
}
const url = values.url;
const keystore = values.keystore;
const intervalMs = Number(values.interval) * 1000;
const log = (line: string): void => console.log(`${new Date().toISOString()} ${line}`);

/**
 * The library's hints name its options in backticks (`` `password` ``, `` `trust` ``); this
 * program's user gives environment variables and flags instead. Each table turns the options of
 * one call into this program's inputs.
 */
type Words = Record<string, string>;
const KEYSTORE_WORDS: Words = {
  password: "KEYSTORE_PASSWORD",
  keyPassword: "a separate key password (this example takes none)",
  alias: "an alias (this example uses the keystore's only key entry)",
  type: "a keystore type (this example detects it from the file)",
  loadKeyStore: "--keystore",
  loadTrustStore: "--truststore",
};
const TRUSTSTORE_WORDS: Words = {
  password: "TRUSTSTORE_PASSWORD",
  type: "a truststore type (this example detects it from the file)",
  loadKeyStore: "--keystore",
  loadTrustStore: "--truststore",
};
const CONNECT_WORDS: Words = {
  trust: "--truststore",
  connectTimeoutMs: "a longer connect timeout (this example uses the default 10 s)",
  timeoutMs: "a longer timeout (this example uses the default)",
  clientId: "a client id (this example connects as d:<certificate CN>)",
  keyPassword: "a separate key password (this example takes none)",
};

/** The text with the options it names in backticks in this program's words. */
function ownWords(text: string, words: Words): string {
  return text.replace(
    /`([A-Za-z][A-Za-z0-9]*)(?:: "[^"`]*")?`/g,
    (whole, name: string) => Object.hasOwn(words, name) ? words[name] : whole,
  );
}

/** Runs a library call; its error's hint comes back in this program's words. */
async function inOwnWords<T>(words: Words, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const failure = err as { hint?: unknown };
    if (typeof failure.hint === "string") failure.hint = ownWords(failure.hint, words);
    throw err;
  }
}

/** Runs the device until SIGINT or SIGTERM. */
async function main(): Promise<void> {
  const identity = await inOwnWords(
    KEYSTORE_WORDS,
    async () =>
      loadKeyStore(await Deno.readFile(keystore), {
        password: Deno.env.get("KEYSTORE_PASSWORD"),
        name: keystore,
      }),
  );
  const truststore = values.truststore;
  const trust = truststore === undefined
    ? undefined
    : await inOwnWords(TRUSTSTORE_WORDS, async () =>
      loadTrustStore(await Deno.readFile(truststore), {
        password: Deno.env.get("TRUSTSTORE_PASSWORD"),
        name: truststore,
      }));
  const serial = identity.chain[0].summary.commonName!;
  const register = `100,${values.name ?? serial},c8y_MQTTDevice`;

  const connection = await inOwnWords(CONNECT_WORDS, () =>
    connect({
      url,
      identity,
      trust,
      reconnect: { initialDelayMs: 500, maxDelayMs: 10_000 },
      callbacks: {
        connectComplete(reconnect, url): void {
          log(`${reconnect ? "reconnected to" : "connected to"} ${url}`);
          // The platform ignores a second 100 for a known device; a new server (or a restarted
          // emulator) learns the device again.
          if (reconnect) publish(register, "registered again");
        },
        connectionLost: (cause) => log(`connection lost: ${cause.message}`),
        error: (err: C8yError) => log(`error ${err.code}: ${err.message}`),
        messageArrived(topic, payload): void {
          if (topic === "s/ds") operation(new TextDecoder().decode(payload));
        },
      },
    }));

  /** Publishes one SmartREST line on `s/us` (QoS 1: queued while offline, sent on reconnect). */
  function publish(line: string, what: string): void {
    connection.publish("s/us", line, { qos: 1 }).then(
      () => log(`${what}: ${line}`),
      (err: Error) => log(`not sent (${what}): ${err.message}`),
    );
  }

  /** Answers one operation line from `s/ds` (`<template>,<serial>,...`). */
  function operation(text: string): void {
    for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
      const [template] = line.split(",");
      const fragment = OPERATIONS[template];
      log(`operation received: ${line}`);
      if (fragment === undefined) continue; // not one this device supports
      publish(`501,${fragment}`, "operation executing");
      if (fragment === "c8y_Restart") publish(`503,${fragment}`, "operation successful");
      else publish(`502,${fragment},"this example runs no commands"`, "operation failed");
    }
  }

  const keeper = await keepToken(connection, {
    tokenRenewed: (token) => log(`token for ${token.subject}, expires ${token.expiresAt}`),
    error: (err) => log(`token renewal failed: ${err.message}`),
  });
  await connection.subscribe("s/ds", { qos: 1 });
  publish(register, "registered");
  const timer = setInterval(() => {
    const celsius = (20 + 5 * Math.sin(Date.now() / 60_000)).toFixed(1);
    publish(`211,${celsius}`, "measurement sent");
  }, intervalMs);

  const stopped = Promise.withResolvers<void>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stopped.resolve());
  }
  await stopped.promise;
  log("stopping");
  clearInterval(timer);
  keeper.stop();
  await connection.close();
  log("disconnected");
}

try {
  await main();
} catch (err) {
  console.error(`error: ${(err as Error).message}`);
  const hint = (err as Partial<C8yError>).hint;
  if (hint) console.error(`hint: ${hint}`);
  Deno.exit(1);
}
