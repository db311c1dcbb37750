/**
 * The steps of one fleet device: reading its keystore, the offline checks that decide its client
 * id, and its connection (with a token request, or a caller's work while connected).
 *
 * @module
 */

import { clientId as buildClientId } from "../connect/client_id.ts";
import { connect, type DeviceConnection } from "../connect/connection.ts";
import { diagnose } from "../diagnose/diagnose.ts";
import { CertificateError, type Stage, UsageError } from "../errors.ts";
import { loadKeyStore } from "../stores/load.ts";
import { parsePasswordSpec } from "../stores/password_spec.ts";
import { fetchToken } from "../token/fetch_token.ts";
import type { DeviceIdentity, Problem, TrustAnchors } from "../types.ts";
import type { FleetDevice } from "./manifest.ts";
import type { DeviceResult, StageTime } from "./result.ts";

/** How a fleet reads files and passwords (see `CheckFleetOptions`). */
export interface ReadIdentityOptions {
  /** Reads a keystore or key file; `what` says which, for messages. */
  readFile(path: string, what: "keystore" | "key file"): Promise<Uint8Array>;
  /** Turns a password source into the password. @default only `pass:` and literal values */
  resolvePassword?(spec: string, device: FleetDevice): Promise<string>;
}

/** Work done while a device is connected (see `CheckFleetOptions.whileConnected`). */
export type WhileConnected = (
  connection: DeviceConnection,
  device: { clientId: string; index: number },
) => Promise<void>;

/** How a fleet device connects. */
export interface ConnectDeviceOptions {
  /** The broker URL. */
  url: string;
  /** `token`: fetch a token; `connect`: connect, run `whileConnected`, disconnect. */
  mode: "connect" | "token";
  /** The server's CAs. */
  trust?: TrustAnchors;
  /** Time allowed for connecting and for each token request, in milliseconds. */
  timeoutMs?: number;
  /** Token requests before giving up. */
  attempts?: number;
  /** Work done while connected, in `connect` mode. */
  whileConnected?: WhileConnected;
}

/** Milliseconds since `t0` (from `performance.now()`). */
export function msSince(t0: number): number {
  return performance.now() - t0;
}

/** Reads a device's keystore (and key file) with its password; records the `store` stage. */
export async function readIdentity(
  device: FleetDevice,
  options: ReadIdentityOptions,
  stages: StageTime[] | undefined,
): Promise<DeviceIdentity> {
  const t0 = performance.now();
  const password = device.password === undefined
    ? undefined
    : await (options.resolvePassword ?? literalPassword)(device.password, device);
  const bytes = await options.readFile(device.keystore, "keystore");
  const key = device.key === undefined ? undefined : await options.readFile(device.key, "key file");
  const identity = await loadKeyStore(bytes, {
    password,
    alias: device.alias,
    name: device.keystore,
    key,
    keyName: device.key,
  });
  stages?.push({ stage: "store", ms: msSince(t0) });
  return identity;
}

function literalPassword(spec: string): Promise<string> {
  const parsed = parsePasswordSpec(spec, "password");
  if (parsed.kind !== "pass") {
    return Promise.reject(
      new UsageError(`The password source "${parsed.kind}:" needs a resolvePassword function`, {
        code: "PASSWORD_SOURCE",
        hint: "Give checkFleet a resolvePassword option that reads env: and file: sources.",
      }),
    );
  }
  return Promise.resolve(parsed.value);
}

/** The offline checks: the first error fails the device, warnings go into its result. */
export function checkOffline(
  identity: DeviceIdentity,
  device: FleetDevice,
  now: Date | undefined,
  stages: StageTime[],
): { clientId: string; warnings: DeviceResult["warnings"] } {
  const t0 = performance.now();
  const problems: Problem[] = diagnose({ identity, clientId: device.clientId, now });
  const error = problems.find((p) => p.severity === "error");
  if (error) {
    throw new CertificateError(error.message, { code: error.code, hint: error.hint });
  }
  const clientId = buildClientId(identity, { explicit: device.clientId });
  stages.push({ stage: "certificate", ms: msSince(t0) });
  const warnings = problems.filter((p) => p.severity === "warning")
    .map(({ code, message }) => ({ code, message }));
  return { clientId, warnings };
}

/** Connects one device (and fetches its token in `token` mode); records each stage. */
export async function connectDevice(
  identity: DeviceIdentity,
  clientId: string,
  index: number,
  options: ConnectDeviceOptions,
  stages: StageTime[],
): Promise<DeviceResult["token"] | undefined> {
  const onStage = (stage: Stage, elapsed: number): void => {
    stages.push({ stage, ms: elapsed });
  };
  const { url } = options;
  if (options.mode === "token") {
    const token = await fetchToken({
      url,
      identity,
      trust: options.trust,
      clientId,
      timeoutMs: options.timeoutMs,
      attempts: options.attempts,
      onStage,
    });
    return { subject: token.subject, expiresAt: token.expiresAt, tenant: token.tenant };
  }
  const connection = await connect({
    url,
    identity,
    trust: options.trust,
    clientId,
    connectTimeoutMs: options.timeoutMs,
    onStage,
  });
  try {
    await options.whileConnected?.(connection, { clientId, index });
  } finally {
    await connection.close();
  }
  return undefined;
}
