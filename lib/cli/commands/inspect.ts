/**
 * The `inspect` command: what the stores hold and what is wrong with them, offline.
 *
 * @module
 */

import { CertificateError, ExitCode } from "../../errors.ts";
import { diagnose, hasErrors } from "../../diagnose/diagnose.ts";
import { problemsWithFlags } from "../flags.ts";
import { clientId as deviceClientId } from "../../connect/client_id.ts";
import { contentNote } from "../../stores/detect.ts";
import type { DeviceIdentity, StoreFormat } from "../../types.ts";
import type { CommandContext } from "../context.ts";
import { loadStores } from "../load_stores.ts";
import { printCertificate, printProblems } from "../output.ts";

function tryClientId(identity: DeviceIdentity, explicit: string | undefined): string | undefined {
  try {
    return deviceClientId(identity, { explicit });
  } catch (error) {
    if (error instanceof CertificateError) return undefined;
    throw error;
  }
}

/** Says what a store really is when its name promises another format (`truststore.jks`). */
function printContentNote(
  ctx: CommandContext,
  path: string | undefined,
  format: StoreFormat,
): void {
  const note = path === undefined ? undefined : contentNote(path, format);
  if (note !== undefined) ctx.io.out(`  note: ${note}`);
}

/** `inspect`: the stores, their certificates and the problems found, offline. */
export async function inspectCommand(ctx: CommandContext): Promise<number> {
  const stores = await loadStores(ctx.run, ctx.values, "inspect");
  const { identity, trust, listing } = stores;
  const clientId = identity ? tryClientId(identity, ctx.values["client-id"]) : undefined;
  const problems = problemsWithFlags(
    diagnose({ identity, trust, clientId: ctx.values["client-id"] }),
  );
  const exit = hasErrors(problems) ? ExitCode.CERTIFICATE : ExitCode.OK;
  if (ctx.json) {
    // "ok" as in every command's JSON: false when a problem of severity error is found (exit 4).
    const out: Record<string, unknown> = { ok: exit === ExitCode.OK };
    if (identity) {
      out.keystore = {
        path: stores.keystorePath,
        format: identity.format,
        alias: identity.alias,
        aliases: identity.aliases,
        keyType: identity.keyType,
        chain: identity.chain.map((c) => c.summary),
      };
    }
    if (listing) {
      out.keystore = {
        path: stores.keystorePath,
        format: listing.format,
        entries: listing.entries.map((e) => ({
          alias: e.alias,
          keyEntry: e.hasKey,
          chain: e.certificates.map((c) => c.summary),
        })),
      };
    }
    if (trust) {
      out.truststore = {
        path: stores.truststorePath,
        format: trust.format,
        certificates: trust.certificates.map((c) => ({
          alias: c.alias,
          ...c.summary,
        })),
      };
    }
    if (clientId) out.clientId = clientId;
    out.problems = problems;
    ctx.io.out(JSON.stringify(out, null, 2));
    return exit;
  }
  if (identity) {
    const alias = identity.alias === undefined ? "" : `, alias "${identity.alias}"`;
    ctx.io.out(
      `keystore ${stores.keystorePath}: ${identity.format}${alias}, ${identity.keyType.toUpperCase()} private key`,
    );
    printContentNote(ctx, stores.keystorePath, identity.format);
    if (identity.aliases.length > 1) ctx.io.out(`  key entries: ${identity.aliases.join(", ")}`);
    const n = identity.chain.length;
    ctx.io.out(`chain (leaf first, ${n} certificate${n === 1 ? "" : "s"}):`);
    identity.chain.forEach((c, i) => printCertificate(ctx.io, i, c.summary));
    ctx.io.out(`client id: ${clientId ?? "(none: see problems)"}`);
  }
  if (listing) {
    const keys = listing.entries.filter((e) => e.hasKey);
    ctx.io.out(
      `keystore ${stores.keystorePath}: ${listing.format}, ${keys.length} key entries ` +
        "(token and check need --alias):",
    );
    for (const entry of listing.entries) {
      const kind = entry.hasKey ? "key entry" : "certificate entry";
      ctx.io.out(`entry "${entry.alias ?? ""}" (${kind}):`);
      entry.certificates.forEach((c, i) => printCertificate(ctx.io, i, c.summary));
    }
  }
  if (trust) {
    const n = trust.certificates.length;
    ctx.io.out(
      `truststore ${stores.truststorePath}: ${trust.format}, ${n} certificate${n === 1 ? "" : "s"}`,
    );
    printContentNote(ctx, stores.truststorePath, trust.format);
    trust.certificates.forEach((c, i) => printCertificate(ctx.io, i, c.summary, c.alias));
  }
  printProblems(ctx.io, problems);
  return exit;
}
