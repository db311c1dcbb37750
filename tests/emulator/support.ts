/**
 * The emulator tests' shared setup: fixtures, an MQTT.js device, token checks, and
 * {@linkcode emulatorTest}, which runs a test against a fresh emulator with its events.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Emulator, EmulatorEvent, EmulatorOptions } from "../../lib/emulator/mod.ts";
import { loadJose } from "../../lib/deps.ts";
import { pemBlocks } from "../../lib/encoding/pem.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

/** MQTT.js: an independent, widely used client to test the emulator with. */
export function loadMqtt(): Promise<typeof import("npm:mqtt@5.16.0")> {
  return import("npm:mqtt@5.16.0");
}

export const fixtures = new URL("../../fixtures/", import.meta.url);
export const read = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));
export const ders = (path: string): Uint8Array[] =>
  pemBlocks(read(path)).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);

export const permissions: Deno.PermissionOptions = {
  read: true,
  net: ["127.0.0.1", "localhost"],
  env: true,
  sys: true,
};

export const ROOT = read("ca/device-root-ca.pem");
export const INTERMEDIATE = read("ca/device-intermediate-ca.pem");

export type MqttClient = import("npm:mqtt@5.16.0").MqttClient;

export interface Attempt {
  client: MqttClient;
  /** CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5) as the client saw it. */
  code: number | undefined;
  error: Error | undefined;
}

/** How a device connects, beyond its files and client id. */
export interface DeviceOptions {
  /** Present only the device certificate (`<files>.pem`), not its chain. */
  leafOnly?: boolean;
  /** @default 4 (MQTT 3.1.1) */
  protocolVersion?: 4 | 5;
  /** @default true */
  clean?: boolean;
}

/**
 * Connects with MQTT.js as the device of the fixtures `<files>.chain.pem` and `<files>.key`, and
 * resolves on CONNACK, refusal or close.
 */
export async function connectDevice(
  url: string,
  files: string,
  clientId: string,
  options: DeviceOptions = {},
): Promise<Attempt> {
  const { default: mqtt } = await loadMqtt();
  const client = mqtt.connect(url, {
    clientId,
    cert: read(options.leafOnly ? `${files}.pem` : `${files}.chain.pem`),
    key: read(`${files}.key`),
    ca: read("ca/server-ca.pem"),
    servername: "localhost",
    protocolVersion: options.protocolVersion ?? 4,
    clean: options.clean ?? true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  return await new Promise<Attempt>((resolve) => {
    client.once("connect", (connack) => {
      resolve({ client, code: connack.returnCode ?? connack.reasonCode ?? 0, error: undefined });
    });
    client.once("error", (error) => {
      const code = (error as Error & { code?: number }).code;
      resolve({ client, code: typeof code === "number" ? code : undefined, error });
    });
    client.once("close", () => resolve({ client, code: undefined, error: new Error("closed") }));
  });
}

/** Subscribes to s/dat, publishes an empty QoS 0 message on s/uat, returns every s/dat payload. */
export async function requestToken(client: MqttClient, settleMs = 300): Promise<string[]> {
  const received: string[] = [];
  let first: (() => void) | undefined;
  const arrived = new Promise<void>((resolve) => (first = resolve));
  client.on("message", (topic, payload) => {
    if (topic === "s/dat") {
      received.push(new TextDecoder().decode(payload));
      first?.();
    }
  });
  await client.subscribeAsync("s/dat", { qos: 0 });
  await client.publishAsync("s/uat", "", { qos: 0 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    arrived,
    new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
  ]);
  clearTimeout(timer);
  // Give a wrong second delivery the chance to show up.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return received;
}

export async function verifyToken(
  emulator: Emulator,
  line: string,
  alg: "RS256" | "ES256" = "RS256",
): Promise<Record<string, unknown>> {
  assert.match(line, /^71,[\w-]+\.[\w-]+\.[\w-]+$/);
  const jose = await loadJose();
  const key = await jose.importJWK(emulator.publicKeyJwk as Parameters<typeof jose.importJWK>[0]);
  const { payload, protectedHeader } = await jose.jwtVerify(line.slice(3), key, {
    issuer: emulator.issuer,
    audience: emulator.issuer,
  });
  assert.equal(protectedHeader.alg, alg);
  return payload as Record<string, unknown>;
}

/** A running emulator with its events and the devices connected to it. */
export interface EmulatorContext {
  emulator: Emulator;
  /** Every event so far, in order. */
  events: EmulatorEvent[];
  /** The first event (past or coming) that matches, or a rejection after `ms`. */
  waitFor(pred: (e: EmulatorEvent) => boolean, ms?: number): Promise<EmulatorEvent>;
  /** The reason of the `refused` event for `clientId`. */
  refusalReason(clientId: string): Promise<string>;
  /** Connects a device (see {@linkcode connectDevice}); it is ended at the latest at teardown. */
  connect(files: string, clientId: string, options?: DeviceOptions): Promise<Attempt>;
  /** Ends a device's client now. */
  end(attempt: Attempt): Promise<void>;
  /** Connects a device and ends its client at once: for refusals. */
  connectOnce(files: string, clientId: string, options?: DeviceOptions): Promise<Attempt>;
  /** Requests a token without settle time and returns the verified claims of the first one. */
  tokenClaims(attempt: Attempt): Promise<Record<string, unknown>>;
}

/** Options of {@linkcode withEmulator}. */
export type TestEmulatorOptions =
  & { trusted?: string[] }
  & Pick<
    EmulatorOptions,
    | "handshakeTimeoutMs"
    | "connectTimeoutMs"
    | "tenant"
    | "tokenLifetimeSeconds"
    | "restPort"
    | "maxPacketBytes"
    | "maxUnauthenticatedBytes"
    | "tokenAlgorithm"
  >;

/** Defines a test that runs `body` in {@linkcode withEmulator}. */
export function emulatorTest(
  name: string,
  options: TestEmulatorOptions,
  body: (context: EmulatorContext) => Promise<void>,
): void {
  Deno.test({ name, permissions }, () => withEmulator(options, body));
}

/**
 * Starts an emulator on the fixtures (trusting the device root and intermediate CA unless
 * `trusted` says otherwise), runs `body`, then ends every client still open and closes it.
 */
export async function withEmulator(
  { trusted, ...options }: TestEmulatorOptions,
  body: (context: EmulatorContext) => Promise<void>,
): Promise<void> {
  const events: EmulatorEvent[] = [];
  const waiters: { pred: (e: EmulatorEvent) => boolean; resolve: (e: EmulatorEvent) => void }[] =
    [];
  await using emulator = await startFixtureEmulator({
    ...options,
    trustedCaPems: trusted ?? [ROOT, INTERMEDIATE],
    log: (event) => {
      events.push(event);
      for (const w of [...waiters]) {
        if (w.pred(event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    },
  });
  const waitFor = (pred: (e: EmulatorEvent) => boolean, ms = 5000): Promise<EmulatorEvent> => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching event in ${ms} ms; got ${JSON.stringify(events)}`));
      }, ms);
      const waiter = {
        pred,
        resolve: (e: EmulatorEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      waiters.push(waiter);
    });
  };
  const open = new Set<Attempt>();
  const connect = async (
    files: string,
    clientId: string,
    options?: DeviceOptions,
  ): Promise<Attempt> => {
    const attempt = await connectDevice(emulator.url, files, clientId, options);
    open.add(attempt);
    return attempt;
  };
  const end = async (attempt: Attempt): Promise<void> => {
    open.delete(attempt);
    await attempt.client.endAsync(true);
  };
  try {
    await body({
      emulator,
      events,
      waitFor,
      refusalReason: async (clientId) =>
        (await waitFor((e) => e.kind === "refused" && e.clientId === clientId)).reason ?? "",
      connect,
      end,
      connectOnce: async (files, clientId, options) => {
        const attempt = await connect(files, clientId, options);
        await end(attempt);
        return attempt;
      },
      tokenClaims: async (attempt) =>
        await verifyToken(emulator, (await requestToken(attempt.client, 0))[0]),
    });
  } finally {
    // The clients end before the emulator closes (at the end of this scope).
    for (const attempt of [...open]) await end(attempt);
  }
}
