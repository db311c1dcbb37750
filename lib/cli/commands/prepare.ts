/**
 * The preparation `token` and `check` share before connecting: the broker URL and timeout, the
 * stores, the offline certificate checks and the client id, each reported as a stage; then the
 * connection itself, whose stages are reported the same way.
 *
 * @module
 */

import { CertificateError, type Stage } from "../../errors.ts";
import { diagnose } from "../../diagnose/diagnose.ts";
import { problemsWithFlags } from "../flags.ts";
import { clientId as deviceClientId } from "../../connect/client_id.ts";
import type { BrokerAddress } from "../../connect/broker_url.ts";
import type { FetchTokenOptions } from "../../token/fetch_token.ts";
import type { DeviceToken } from "../../token/decode_token.ts";
import type { DeviceIdentity, Problem } from "../../types.ts";
import type { CommandContext } from "../context.ts";
import { type LoadedStores, loadStores } from "../load_stores.ts";
import { seconds, tokenRoute, tokenTarget } from "../option_values.ts";
import { describeKey, plural } from "../output.ts";
import { CONNECTION_STAGES, type StageLog } from "../stages.ts";

/** What {@linkcode prepare} hands to the command: everything needed to connect. */
export interface Prepared {
  /**
   * The broker from `--url`; `undefined` with `--via rest` when `--url` is left out or is the
   * `https://` REST address.
   */
  broker: BrokerAddress | undefined;
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
  /**
   * The options for `fetchToken`, all but `onStage`: the client id as settled (sent as given
   * with `--force`), the offline findings (a refusal is explained from them), the route.
   */
  connection: Omit<FetchTokenOptions, "onStage">;
}

/**
 * Prepares `token` or `check`: reads `--url` (or, with `--via rest`, the REST address) and
 * `--timeout`, loads the stores (stage `store`),
 * runs the offline checks and settles the client id (stage `certificate`).
 *
 * @throws {CertificateError} for the first problem of severity `error`, unless `--force`.
 */
export async function prepare(
  ctx: CommandContext,
  command: "token" | "check",
  log: StageLog,
): Promise<Prepared> {
  const { broker, rest } = tokenTarget(ctx.values, command);
  const timeoutMs = seconds(ctx.values.timeout, "--timeout", 20) * 1000;
  const stores = await loadStores(ctx.run, ctx.values, command);
  const identity = stores.identity!;
  log.end(
    "store",
    "ok",
    (stores.timings.keystore ?? 0) + (stores.timings.truststore ?? 0),
    [
      `keystore ${stores.keystorePath}: ${describeIdentity(identity)}`,
      stores.trust
        ? `truststore ${stores.truststorePath}: ${
          plural(stores.trust.certificates.length, `${stores.trust.format}, `, "certificate")
        }`
        : "default root CAs",
    ].join("; "),
  );

  log.begin("certificate");
  const explicit = ctx.values["client-id"];
  const force = ctx.values.force ?? false;
  const problems = problemsWithFlags(
    diagnose({ identity, trust: stores.trust, clientId: explicit }),
  );
  const clientId = connectClientId(identity, explicit, force);
  log.certificate(problems, clientId, { force, info: command === "check", given: explicit });
  const blocking = problems.find((p) => p.severity === "error");
  // --force needs a client id to connect with: one given, or the certificate's CN.
  const canForce = explicit !== undefined || Boolean(identity.chain[0]?.summary.commonName);
  if (blocking && (!force || clientId === undefined)) {
    throw certificateError(blocking, canForce && !force);
  }
  if (clientId === undefined) throw new Error("no client id, yet no finding says why");
  const route = tokenRoute(ctx.values);
  const restUrl = rest?.url;
  return {
    broker,
    stores,
    identity,
    problems,
    clientId,
    restUrl,
    connection: {
      url: broker?.url,
      identity,
      trust: stores.trust,
      clientId,
      checkClientId: !force,
      findings: problems,
      timeoutMs,
      ...route,
      restUrl,
    },
  };
}

/**
 * Connects with what {@linkcode prepare} found and fetches the token, reporting each connection
 * stage to `log`. The offline findings go along: a refused certificate is explained from them, and
 * the error carries them. With `--force` the client id is sent as given, even when it does not
 * name the certificate's CN. Over MQTT the stages are dns, tcp, tls, mqtt, subscribe, token; over
 * REST (`--via rest`) dns, tcp, tls, http, token.
 */
export async function connectAndFetch(
  prepared: Prepared,
  log: StageLog,
): Promise<DeviceToken & { clientId: string }> {
  const { fetchToken } = await import("../../token/fetch_token.ts");
  const via = prepared.connection.via ?? "mqtt";
  // Stage times are what `check` is for: MQTT.js loads before the dns stage starts, so that its
  // load (tens of milliseconds in a cold process) does not show as a slow lookup or connect.
  if (via === "mqtt") await (await import("../../deps.ts")).loadMqtt();
  const order = CONNECTION_STAGES[via];
  log.begin("dns");
  return await fetchToken({
    ...prepared.connection,
    onStage: (stage: Stage, elapsed: number, detail?: string, state?: "ok" | "warning") => {
      log.end(stage, state ?? "ok", elapsed, detail);
      log.begin(order[order.indexOf(stage) + 1] ?? stage);
    },
  });
}

function describeIdentity(identity: DeviceIdentity): string {
  const leaf = identity.chain[0]?.summary;
  return `${identity.format}${identity.alias ? ` alias "${identity.alias}"` : ""}, ${
    leaf ? describeKey(leaf) : identity.keyType
  }, chain of ${identity.chain.length}`;
}

/**
 * The client id to connect with. With `--force` it is the one given, or `d:<CN>`, even when the
 * offline checks object to it: the user wants to see what the broker says. `undefined` when no
 * client id can be built (no CN and none given): then not even `--force` can connect.
 */
function connectClientId(
  identity: DeviceIdentity,
  explicit: string | undefined,
  force: boolean,
): string | undefined {
  if (force && explicit !== undefined) return explicit;
  const cn = identity.chain[0]?.summary.commonName;
  if (force && cn) return `d:${cn}`;
  try {
    return deviceClientId(identity, { explicit });
  } catch (error) {
    // The same problem is among the findings, worded once by diagnose().
    if (error instanceof CertificateError) return undefined;
    throw error;
  }
}

/**
 * A finding of severity `error` as the run's failure; the hint offers `--force` only when a
 * client id exists to connect with.
 */
function certificateError(problem: Problem, canForce: boolean): CertificateError {
  const force = canForce ? " (--force connects anyway.)" : "";
  return new CertificateError(problem.message, {
    code: problem.code,
    hint: `${problem.hint ?? ""}${force}`.trim(),
  });
}
