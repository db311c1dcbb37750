/**
 * The preparation `token` and `check` share before connecting: the broker URL and timeout, the
 * stores, the offline certificate checks, and the client id to connect with.
 *
 * @module
 */

import { CertificateError } from "../../errors.ts";
import { diagnose } from "../../diagnose.ts";
import { clientId as deviceClientId } from "../../client_id.ts";
import { type BrokerAddress, parseBrokerUrl } from "../../broker_url.ts";
import { parseRestUrl, restUrlOf } from "../../token/rest_url.ts";
import type { FetchTokenOptions } from "../../token/fetch_token.ts";
import type { DeviceIdentity, Problem } from "../../types.ts";
import type { CommandContext } from "../context.ts";
import { type LoadedStores, loadStores } from "../load_stores.ts";
import { required, seconds, tokenRoute } from "../options.ts";

/** What {@linkcode prepare} hands to the command: everything needed to connect. */
export interface Prepared {
  /** The broker from `--url`. */
  broker: BrokerAddress;
  /** The stores loaded, with their load times. */
  stores: LoadedStores;
  /** The device's key and chain (the keystore is required for `token` and `check`). */
  identity: DeviceIdentity;
  /** What the offline checks found; none of severity `error` unless `--force` was given. */
  problems: Problem[];
  /** The client id to connect with. */
  clientId: string;
  /** With `--via rest`: the REST address the token is requested from (`https://host:port`). */
  restUrl: string | undefined;
  /** The options for `fetchToken`, all but `onStage`. */
  connection: Omit<FetchTokenOptions, "onStage">;
}

/** Hooks through which `check` reports the preparation as stages; each is optional. */
export interface PrepareHooks {
  /** A store was loaded (the keystore first). */
  onLoaded?(kind: "keystore" | "truststore", stores: LoadedStores): void;
  /** The stores are loaded; the certificate checks start. */
  onChecking?(): void;
  /** The certificate checks found `problems` (heard before an error among them is thrown). */
  onDiagnosed?(problems: Problem[]): void;
}

/**
 * Prepares `token` or `check`: reads `--url` and `--timeout`, loads the stores, runs the offline
 * checks and settles the client id.
 *
 * @throws {CertificateError} for the first problem of severity `error`, unless `--force`.
 */
export async function prepare(
  ctx: CommandContext,
  command: "token" | "check",
  hooks: PrepareHooks = {},
): Promise<Prepared> {
  const broker = parseBrokerUrl(required(ctx.values, "url", command));
  const timeoutMs = seconds(ctx.values.timeout, "--timeout", 20) * 1000;
  const stores = await loadStores(
    ctx.run,
    ctx.values,
    command,
    (kind, loaded) => hooks.onLoaded?.(kind, loaded),
  );
  const identity = stores.identity!;
  hooks.onChecking?.();
  const explicit = ctx.values["client-id"];
  const problems = diagnose({ identity, trust: stores.trust, clientId: explicit });
  hooks.onDiagnosed?.(problems);
  const blocking = ctx.values.force ? undefined : firstError(problems);
  if (blocking) throw blocking;
  const clientId = connectClientId(identity, explicit, ctx.values.force);
  const route = tokenRoute(ctx.values);
  const restUrl = route.via !== "rest"
    ? undefined
    : (route.restUrl === undefined ? restUrlOf(broker) : parseRestUrl(route.restUrl)).url;
  return {
    broker,
    restUrl,
    stores,
    identity,
    problems,
    clientId,
    connection: {
      url: broker.url,
      identity,
      trust: stores.trust,
      clientId,
      timeoutMs,
      ...route,
    },
  };
}

/**
 * The client id to connect with. With `--force` it is the one given, or `d:<CN>`, even when the
 * offline checks object to it: the user wants to see what the broker says.
 */
function connectClientId(
  identity: DeviceIdentity,
  explicit: string | undefined,
  force: boolean | undefined,
): string {
  if (!force) return deviceClientId(identity, { explicit });
  if (explicit !== undefined) return explicit;
  const cn = identity.chain[0]?.summary.commonName;
  return cn === undefined ? deviceClientId(identity) : `d:${cn}`;
}

/** The first error-severity problem as a `CertificateError` that names `--force`. */
function firstError(problems: Problem[]): CertificateError | undefined {
  const p = problems.find((x) => x.severity === "error");
  if (!p) return undefined;
  return new CertificateError(p.message, {
    code: p.code,
    hint: `${p.hint ? p.hint + " " : ""}(--force connects anyway.)`,
  });
}
