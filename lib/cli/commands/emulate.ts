/**
 * The `emulate` command: a local stand-in for Cumulocity's MQTT certificate endpoint.
 *
 * @module
 */

import { ExitCode } from "../../errors.ts";
import type { CommandContext } from "../context.ts";
import { readStoreFile } from "../files.ts";
import { readTrustStore } from "../load_stores.ts";
import { emulatorSettings, required, storeType } from "../options.ts";

/** `emulate`: run the emulator until SIGINT or SIGTERM. */
export async function emulateCommand(ctx: CommandContext): Promise<number> {
  const trustPaths = ctx.values.trust ?? [];
  if (trustPaths.length === 0) required(ctx.values, "trust", "emulate");
  const certPath = required(ctx.values, "server-cert", "emulate");
  const keyPath = required(ctx.values, "server-key", "emulate");
  const { port, tokenLifetimeSeconds } = emulatorSettings(ctx.values);
  const trustedCaPems: string[] = [];
  const type = storeType(ctx.values["trust-type"], "--trust-type");
  for (const path of trustPaths) {
    const anchors = await readTrustStore(ctx.run, ctx.values, path, "trust store", {
      type,
      passwordOption: "trust-password",
    });
    for (const c of anchors.certificates) trustedCaPems.push(c.pem);
  }
  const serverCertPem = new TextDecoder().decode(
    await readStoreFile(certPath, "server certificate"),
  );
  const serverKeyPem = new TextDecoder().decode(await readStoreFile(keyPath, "server key"));
  const { startEmulator } = await import("../../emulator.ts");
  const emulator = await startEmulator({
    serverCertPem,
    serverKeyPem,
    trustedCaPems,
    hostname: ctx.values.host ?? "127.0.0.1",
    port,
    tenant: ctx.values.tenant,
    tokenLifetimeSeconds,
    log: (event) => {
      if (ctx.quiet) return;
      const { kind, ...rest } = event;
      const fields = Object.entries(rest).filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
      ctx.io.err(`emulator: ${kind} ${fields}`.trimEnd());
    },
  });
  // Listen for the signals before announcing the URL: whoever waits for it may stop us at once.
  const stopped = Promise.withResolvers<void>();
  const stop = (): void => stopped.resolve();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  ctx.io.out(`c8y-mqtt-cert emulator listening on ${emulator.url} (Ctrl-C stops it)`);
  await stopped.promise;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  await emulator.close();
  return ExitCode.OK;
}
