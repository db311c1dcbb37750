/**
 * Checks a fleet of devices in one run: every device's keystore and certificates offline, then
 * (unless only offline checks are asked for) a connection and a token request per device, a
 * bounded number at a time.
 *
 * The run makes two passes over the device list. The first reads each keystore, runs the offline
 * checks and works out the client id, then lets the keystore go; once every client id is known,
 * devices sharing one are reported as a conflict (the platform admits one connection per client
 * id), before anything connects. The second pass reads the keystores of the devices that passed
 * again and connects them. So no more keystores are held at once than the concurrency, however
 * long the list: what grows with it is one small record per device between the passes.
 *
 * @module
 */

import { parseBrokerUrl } from "../connect/broker_url.ts";
import { clientId as buildClientId, parseClientId } from "../connect/client_id.ts";
import type { DeviceConnection } from "../connect/connection.ts";
import { CertificateError, StoreError } from "../errors.ts";
import type { TrustAnchors } from "../types.ts";
import { checkOffline, connectDevice, msSince as ms, readIdentity } from "./device_steps.ts";
import type { FleetDevice } from "./manifest.ts";
import { FleetCounters, type FleetSource, openList, pool } from "./pool.ts";
import {
  deviceLabel,
  type DeviceResult,
  deviceResult as result,
  type FleetSummary,
  type StageTime,
  SummaryBuilder,
} from "./result.ts";

export type { FleetSource } from "./pool.ts";

/**
 * What a fleet check does with each device: `offline` (keystore and certificate checks only),
 * `connect` (also connect, then disconnect), `token` (also fetch a JWT session token).
 */
export type FleetMode = "offline" | "connect" | "token";

/** Options of {@linkcode checkFleet}. */
export interface CheckFleetOptions {
  /**
   * Reads a keystore or key file named by the list (the caller's way to files; the library
   * touches none); `what` says which, for messages. A failure should be a `StoreError` naming the
   * path; it fails that device only.
   */
  readFile(path: string, what: "keystore" | "key file"): Promise<Uint8Array>;
  /**
   * Turns a device's password source (`env:NAME`, `file:PATH`, ...) into the password. A failure
   * fails that device only. @default only `pass:VALUE` and literal values are accepted
   */
  resolvePassword?(spec: string, device: FleetDevice): Promise<string>;
  /** What to do with each device. @default "token" */
  mode?: FleetMode;
  /** The broker URL (`ssl://host:port`, `mqtts://`, `tls://`, `host[:port]`); needed unless offline. */
  url?: string;
  /** The CAs that may sign the server's certificate (from `loadTrustStore`). @default the default root CAs */
  trust?: TrustAnchors;
  /** How many devices are worked on at once. @default 50 */
  concurrency?: number;
  /** Time allowed for connecting and for each token request, in milliseconds. @default as `fetchToken` */
  timeoutMs?: number;
  /** Token requests per device before giving up. @default as `fetchToken` (3) */
  attempts?: number;
  /** The clock of the offline checks. @default new Date() */
  now?: Date;
  /** Hears of every device as soon as it is finished (in the order they finish). */
  onResult?(result: DeviceResult): void;
  /**
   * In `connect` mode, runs while the device is connected (e.g. a publish and its echo); a
   * `C8yError` it throws fails the device. @default nothing: the device disconnects at once
   */
  whileConnected?(
    connection: DeviceConnection,
    device: { clientId: string; index: number },
  ): Promise<void>;
}

/** The default of {@linkcode CheckFleetOptions.concurrency}. */
export const DEFAULT_FLEET_CONCURRENCY = 50;

/** What the first pass keeps of a device that passed, until it connects. */
interface Passed {
  device: Pick<FleetDevice, "keystore" | "line">;
  clientId: string;
  label: string;
  stages: StageTime[];
  warnings: DeviceResult["warnings"];
  ms: number;
}

/**
 * Checks every device of a list: reads its keystore, runs the offline checks (as `diagnose`),
 * works out its client id, reports client ids used by more than one device, and then, unless
 * `mode` is `offline`, connects each device that passed and (in `token` mode) fetches its JWT
 * session token, `concurrency` devices at a time. A device's failure never stops the others.
 *
 * @param devices The devices: an array, or a function opening the list (see {@linkcode FleetSource}).
 * @param options How to read files and passwords, the mode, broker, trust, concurrency, timeouts,
 *   and a listener for each finished device.
 * @returns The summary: failure classes with counts and devices (most common first), duplicate
 *   client ids, the run's time and counters. Each device's result goes to `onResult`.
 * @throws {TypeError} for a missing `url` (unless offline) or a bad `concurrency`.
 * @throws {UsageError} for a bad `url`, and whatever reading the list throws (a malformed
 *   manifest line, from `readManifest`): the run stops there, before any device connects.
 *
 * @example Offline checks of two devices sharing one keystore (the files come from a map here)
 * ```ts
 * import { checkFleet, type DeviceResult } from "../../mod.ts";
 *
 * const files = new Map([["a.pem", new TextEncoder().encode("not a keystore")]]);
 * const results: DeviceResult[] = [];
 * const summary = await checkFleet([{ keystore: "a.pem" }, { keystore: "missing.p12" }], {
 *   mode: "offline",
 *   readFile: (path) => {
 *     const bytes = files.get(path);
 *     return bytes ? Promise.resolve(bytes) : Promise.reject(new Error(`no ${path}`));
 *   },
 *   onResult: (result) => results.push(result),
 * });
 * if (summary.failed !== 2 || results.length !== 2) throw new Error("two failures");
 * if (results.find((r) => r.keystore === "a.pem")?.error?.code !== "STORE_FORMAT") {
 *   throw new Error("a.pem is not a keystore");
 * }
 * ```
 *
 * @example Fetching a token for every device of a manifest (needs a broker, so not run here)
 * ```ts ignore
 * import { checkFleet, loadTrustStore, readManifest } from "../../mod.ts";
 *
 * const summary = await checkFleet(
 *   () => readManifest(Deno.openSync("fleet.csv").readable),
 *   {
 *     url: "ssl://mytenant.cumulocity.com:8883",
 *     trust: await loadTrustStore(await Deno.readFile("truststore.jks")),
 *     readFile: (path) => Deno.readFile(path),
 *     onResult: (r) => console.log(r.clientId, r.ok ? r.token?.expiresAt : r.error?.message),
 *   },
 * );
 * console.log(`${summary.passed} of ${summary.devices} devices passed`);
 * ```
 */
export async function checkFleet(
  devices: FleetSource,
  options: CheckFleetOptions,
): Promise<FleetSummary> {
  const mode = options.mode ?? "token";
  const concurrency = options.concurrency ?? DEFAULT_FLEET_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError(`The concurrency must be a whole number from 1, not ${concurrency}`);
  }
  let url: string | undefined;
  if (mode !== "offline") {
    if (options.url === undefined) throw new TypeError(`A ${mode} run needs a broker url`);
    url = parseBrokerUrl(options.url).url;
  }
  const started = performance.now();
  const counters = new FleetCounters();
  const summary = new SummaryBuilder();
  const finish = (result: DeviceResult): void => {
    summary.add(result);
    options.onResult?.(result);
  };

  // Pass 1: offline. Devices that pass wait (as a small record) until every client id is known.
  const passed = new Map<number, Passed>();
  const byIdentifier = new Map<string, number[]>();
  const firstSeen = new Map<string, { clientId: string; labels: string[] }>();
  await pool(openList(devices), concurrency, async (device, index) => {
    using _ = counters.working();
    const t0 = performance.now();
    const stages: StageTime[] = [];
    let clientId: string | undefined;
    try {
      // The keystore counts as held until its checks are done; only the client id is kept.
      const checked = await counters.holding(async () => {
        const identity = await readIdentity(device, options, stages);
        return checkOffline(identity, device, options.now, stages);
      });
      clientId = checked.clientId;
      const identifier = parseClientId(clientId).deviceIdentifier;
      const label = deviceLabel(device);
      const warnings = checked.warnings;
      if (mode === "offline") {
        // Nothing connects: a shared client id is a warning about the connection to come.
        const seen = firstSeen.get(identifier);
        if (seen === undefined) firstSeen.set(identifier, { clientId, labels: [label] });
        else {
          warnings.push(duplicateWarning(clientId, seen.labels[0]));
          seen.labels.push(label);
        }
        finish(result(device, index, { ok: true, clientId, stages, warnings, ms: ms(t0) }));
        return;
      }
      const where = { keystore: device.keystore, line: device.line };
      passed.set(index, { device: where, clientId, label, stages, warnings, ms: ms(t0) });
      counters.resultsHeld(passed.size);
      const indices = byIdentifier.get(identifier);
      if (indices === undefined) byIdentifier.set(identifier, [index]);
      else indices.push(index);
    } catch (error) {
      finish(result(device, index, { ok: false, clientId, stages, ms: ms(t0), error }));
    }
  });

  const offlineMs = ms(started);

  // Client ids used by more than one device: those devices fail before anything connects.
  const duplicates: FleetSummary["duplicates"] = [];
  for (const { clientId, labels } of firstSeen.values()) {
    if (labels.length > 1) duplicates.push({ clientId, devices: labels });
  }
  for (const indices of byIdentifier.values()) {
    if (indices.length < 2) continue;
    const labels = indices.map((i) => passed.get(i)!.label);
    duplicates.push({ clientId: passed.get(indices[0])!.clientId, devices: labels });
    for (const i of indices) {
      const entry = passed.get(i)!;
      passed.delete(i);
      const others = labels.filter((label) => label !== entry.label);
      // A few of the others by name: a device listed a thousand times is not named a million.
      const named = others.slice(0, 3).map((o) => `"${o}"`).join(", ") +
        (others.length > 3 ? ` and ${others.length - 3} more` : "");
      const error = new CertificateError(
        `Client id "${entry.clientId}" of "${entry.label}" is also the client id of ${named}`,
        {
          code: "CLIENT_ID_DUPLICATE",
          hint: "The platform admits one connection per client id (the certificate's CN): " +
            "give each device its own certificate, or list it once.",
        },
      );
      finish(result(entry.device, i, { ...entry, ok: false, error }));
    }
  }
  // Pass 2: connect the devices that passed, reading their keystores again.
  if (mode !== "offline" && passed.size > 0) {
    await pool(openList(devices), concurrency, async (device, index) => {
      const entry = passed.get(index);
      if (entry === undefined) return;
      using _ = counters.working();
      const t0 = performance.now();
      const stages = entry.stages;
      try {
        await counters.holding(async () => {
          const identity = await readIdentity(device, options, undefined);
          const clientId = buildClientId(identity, { explicit: device.clientId });
          if (clientId !== entry.clientId) {
            throw new StoreError(
              `The keystore "${device.keystore}" changed during the run (client id "${clientId}", ` +
                `was "${entry.clientId}")`,
              {
                code: "STORE_CHANGED",
                hint: "Run the check again once the keystores are written.",
              },
            );
          }
          await connectDevice(
            identity,
            entry.clientId,
            index,
            { ...options, url: url!, mode },
            stages,
          )
            .then((token) => {
              passed.delete(index);
              finish(result(device, index, {
                ...entry,
                ok: true,
                ms: entry.ms + ms(t0),
                ...(token ? { token } : {}),
              }));
            });
        });
      } catch (error) {
        passed.delete(index);
        finish(result(device, index, { ...entry, ok: false, ms: entry.ms + ms(t0), error }));
      }
    });
  }
  // Devices the second walk of the list did not reach (a list that can be walked only once, or
  // one that got shorter) still get their row.
  for (const [index, entry] of passed) {
    const error = new StoreError(
      `"${entry.label}" was not in the device list when the devices connected`,
      {
        code: "STORE_CHANGED",
        hint: "Give checkFleet an array or a function that opens the list (it is walked twice), " +
          "and leave the list unchanged during the run.",
      },
    );
    finish(result(entry.device, index, { ...entry, ok: false, error }));
  }

  return summary.build({
    duplicates,
    durationMs: ms(started),
    offlineMs,
    stats: counters.stats(),
  });
}

function duplicateWarning(clientId: string, other: string): { code: string; message: string } {
  return {
    code: "CLIENT_ID_DUPLICATE",
    message: `Client id "${clientId}" is also the client id of "${other}"`,
  };
}
