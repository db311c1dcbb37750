/**
 * What `token` and `check` both do before connecting: load the stores, check the certificates
 * and settle the client id.
 *
 * @module
 */

import { CertificateError } from "../../errors.ts";
import { diagnose } from "../../diagnose.ts";
import { clientId as deviceClientId } from "../../client_id.ts";
import type { DeviceIdentity, Problem } from "../../types.ts";
import type { CommandContext } from "../context.ts";
import { type LoadedStores, loadStores } from "../load_stores.ts";

/** Runs the offline part of `token`/`check`: stores, then certificate checks. */
export async function offline(
  ctx: CommandContext,
  command: "token" | "check",
): Promise<{ stores: LoadedStores; identity: DeviceIdentity; problems: Problem[] }> {
  const stores = await loadStores(ctx.run, ctx.values, command);
  const identity = stores.identity!;
  const problems = diagnose({ identity, trust: stores.trust, clientId: ctx.values["client-id"] });
  return { stores, identity, problems };
}

/**
 * The client id to connect with. With `--force` it is the one given, or `d:<CN>`, even when the
 * offline checks object to it: the user wants to see what the broker says.
 */
export function connectClientId(
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
export function firstError(problems: Problem[]): CertificateError | undefined {
  const p = problems.find((x) => x.severity === "error");
  if (!p) return undefined;
  return new CertificateError(p.message, {
    code: p.code,
    hint: `${p.hint ? p.hint + " " : ""}(--force connects anyway.)`,
  });
}
