/**
 * The `emulate` command: a local stand-in for Cumulocity's MQTT certificate endpoint (and, with
 * `--rest-port`, its REST token endpoint). Each event is one line on standard error; each line
 * typed on standard input, `<client id> <SmartREST line>` (e.g. `d:device01 510,device01`), is
 * sent to that device on `s/ds`.
 *
 * @module
 */

import type { Emulator } from "../../emulator/mod.ts";

import { ExitCode } from "../../errors.ts";
import type { CommandContext } from "../context.ts";
import { readStoreFile } from "../files.ts";
import { readTrustStore } from "../load_stores.ts";
import { emulatorSettings, required, storeType } from "../option_values.ts";

/** `emulate`: run the emulator until SIGINT or SIGTERM. */
export async function emulateCommand(ctx: CommandContext): Promise<number> {
  const trustPaths = ctx.values.trust ?? [];
  if (trustPaths.length === 0) required(ctx.values, "trust", "emulate");
  const certPath = required(ctx.values, "server-cert", "emulate");
  const keyPath = required(ctx.values, "server-key", "emulate");
  const settings = emulatorSettings(ctx.values);
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
  const { formatEvent, startEmulator } = await import("../../emulator/mod.ts");
  const emulator = await startEmulator({
    ...settings,
    serverCertPem,
    serverKeyPem,
    trustedCaPems,
    hostname: ctx.values.host,
    log: (event) => {
      if (ctx.quiet) return;
      ctx.io.err(ctx.json ? JSON.stringify(event) : `emulator: ${formatEvent(event)}`);
    },
  });
  // Standard input carries operations, unless a password was read from it.
  const operations = ctx.run.stdinLine === undefined ? sendTypedLines(emulator, ctx) : undefined;
  // Listen for the signals before announcing the URL: whoever waits for it may stop us at once.
  const stopped = Promise.withResolvers<void>();
  const stop = (): void => stopped.resolve();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  if (ctx.json) {
    ctx.io.out(JSON.stringify({
      kind: "listening",
      url: emulator.url,
      ...(emulator.restUrl ? { restUrl: emulator.restUrl } : {}),
    }));
  } else {
    const rest = emulator.restUrl ? `, REST on ${emulator.restUrl}` : "";
    ctx.io.out(`c8y-mqtt-cert emulator listening on ${emulator.url}${rest} (Ctrl-C stops it)`);
  }
  await stopped.promise;
  await operations?.stop();
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  await emulator.close();
  return ExitCode.OK;
}

/** A line typed on standard input: `<client id> <SmartREST line>`. */
const OPERATION_LINE = /^\s*(\S+)\s+(\S.*?)\s*$/;

/**
 * Reads standard input line by line and sends each `<client id> <line>` to that device on
 * `s/ds`; a line that cannot be sent is reported on standard error. Ends at end of input or on
 * `stop()`.
 */
function sendTypedLines(emulator: Emulator, ctx: CommandContext): { stop(): Promise<void> } {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  const done = (async () => {
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += value;
      const lines = buffered.split(/\r?\n/);
      buffered = lines.pop() ?? "";
      if (buffered.length > 65_536) buffered = ""; // not a line anyone typed
      for (const line of lines) {
        if (line.trim() === "") continue;
        const match = OPERATION_LINE.exec(line);
        if (!match) {
          notSent(ctx, "type <client id> <SmartREST line>, e.g. d:device01 510,device01");
          continue;
        }
        await emulator.sendToDevice(match[1], match[2]).catch((err: Error) =>
          notSent(ctx, err.message)
        );
      }
    }
  })().catch(() => {});
  return {
    async stop(): Promise<void> {
      await reader.cancel().catch(() => {});
      await done;
    },
  };
}

/** A typed line that was not sent, and why: a text line, or with --json a JSON one. */
function notSent(ctx: CommandContext, reason: string): void {
  ctx.io.err(
    ctx.json
      ? JSON.stringify({ kind: "not-sent", time: new Date().toISOString(), reason })
      : `emulator: not sent: ${reason}`,
  );
}
