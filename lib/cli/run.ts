/**
 * One run of the command line: parse, check permissions, dispatch to the command, and turn any
 * failure into a report and an exit code.
 *
 * @module
 */

import { C8yError, ExitCode, PermissionError } from "../errors.ts";
import { checkCommand } from "./commands/check.ts";
import { emulateCommand } from "./commands/emulate.ts";
import { fleetCommand } from "./commands/fleet.ts";
import { planFleet, validateFleet, withManifestNote } from "./commands/fleet_plan.ts";
import { inspectCommand } from "./commands/inspect.ts";
import { tokenCommand } from "./commands/token.ts";
import { type CommandContext, consoleIo, type Io, RunContext } from "./context.ts";
import type { StageReport } from "./stages.ts";
import { commandHelp, HELP } from "./help.ts";
import { parse } from "./options.ts";
import { validate } from "./option_values.ts";
import { errorWithFlags, LIBRARY_FLAGS } from "./flags.ts";
import { errorMessage } from "./output.ts";
import { checkPasswordSources } from "./passwords.ts";
import { checkPermissions } from "./permissions.ts";
import { VERSION } from "./version.ts";

export type { Io } from "./context.ts";

/**
 * Runs the command line and returns the exit code; only `main()` in `cli.ts` exits.
 *
 * @param args The arguments, as in `Deno.args`.
 * @param io Where output goes.
 * @returns The exit code (see the table in the README).
 */
export async function run(args: string[], io: Io = consoleIo): Promise<number> {
  const runContext = new RunContext(io);
  // Until the arguments parse, take the output flags from the raw words.
  let json = args.includes("--json");
  let verbose = args.includes("--verbose") || args.includes("-v");
  try {
    const { command, values, help } = await parse(args);
    json = values.json ?? false;
    verbose = values.verbose ?? false;
    if (values.version) {
      io.out(`c8y-mqtt-cert ${VERSION}`);
      return ExitCode.OK;
    }
    if (help) {
      io.out(command === undefined ? HELP : commandHelp(command));
      return ExitCode.OK;
    }
    if (command === undefined) {
      io.err(HELP);
      return ExitCode.USAGE;
    }
    validate(command, values);
    if (command === "fleet") validateFleet(values);
    checkPasswordSources(values, command);
    // A fleet manifest is read first: it names the files the run needs (and a malformed one is a
    // usage error before anything connects).
    const fleetPlan = command === "fleet" ? await planFleet(values) : undefined;
    await checkPermissions(command, values, args, fleetPlan)
      .catch((error) => Promise.reject(withManifestNote(error, fleetPlan)));
    const ctx: CommandContext = {
      run: runContext,
      io,
      values,
      json,
      quiet: values.quiet ?? false,
    };
    switch (command) {
      case "inspect":
        return await inspectCommand(ctx);
      case "token":
        return await tokenCommand(ctx);
      case "check":
        return await checkCommand(ctx);
      case "emulate":
        return await emulateCommand(ctx);
      case "fleet":
        return await fleetCommand(ctx, fleetPlan!);
    }
  } catch (error) {
    // No output is rewritten after the fact: no message, hint or JSON field is built from a
    // password (the store readers name files, entries and algorithms, never a secret).
    return reportError(error, io, { json, verbose, stages: runContext.checkStages });
  }
}

function asC8yError(error: unknown): C8yError {
  if (error instanceof C8yError) return error;
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    const message = error.message.replace(/, run again with.*$/, "");
    // e.g. `Requires read access to "/etc/ssl/x"` or `Requires env access to "READABLE_STREAM"`.
    const wanted = message.match(/Requires (read|net|env|sys|run|write) access to "([^"]+)"/);
    // Deno grants some paths (devices such as /dev/stdin) only with --allow-all, and then says
    // "Requires all access to ...".
    const all = message.match(/Requires all access to "([^"]+)"/);
    const named = error.message.match(/run again with the (--[a-z-]+(?:=\S+)?) flag/)?.[1];
    const flag = wanted ? `--allow-${wanted[1]}=${wanted[2]}` : all ? "--allow-all" : named;
    if (all) {
      return new PermissionError(
        `Deno allows access to "${all[1]}" only with --allow-all (it is not a regular file)`,
        {
          code: "PERMISSION_MISSING",
          hint: "Run deno with --allow-all, or save the content to a regular file and give " +
            "that file's path (read with --allow-read=<that file>).",
          cause: error,
        },
      );
    }
    return new PermissionError(flag ? `${message}: add ${flag}` : message, {
      code: "PERMISSION_MISSING",
      hint: wanted?.[1] === "env"
        ? "Run deno with --ignore-env: it silences the look-ups of the MQTT libraries' dependencies."
        : flag
        ? `Run deno with ${flag} as well.`
        : "Run deno with the permission flag Deno's message names (see --verbose).",
      cause: error,
    });
  }
  return new C8yError(`Unexpected failure: ${errorMessage(error)}`, {
    code: "INTERNAL",
    hint: "This is a bug in c8y-mqtt-cert; run again with --verbose and report the output.",
    cause: error,
  });
}

function reportError(
  error: unknown,
  io: Io,
  opts: { json: boolean; verbose: boolean; stages?: StageReport[] },
): number {
  const e = asC8yError(errorWithFlags(error, LIBRARY_FLAGS));
  if (opts.json) {
    const body: Record<string, unknown> = {
      ok: false,
      error: {
        code: e.code,
        stage: e.stage,
        message: e.message,
        hint: e.hint || undefined,
        exitCode: e.exitCode,
        returnCode: (e as { returnCode?: number }).returnCode,
      },
    };
    if (opts.stages) body.stages = opts.stages;
    if (opts.verbose && e.cause !== undefined) {
      (body.error as Record<string, unknown>).cause = errorMessage(e.cause);
    }
    io.out(JSON.stringify(body, null, 2));
    return e.exitCode;
  }
  io.err(`error: ${e.message}`);
  if (e.hint) io.err(`hint: ${e.hint}`);
  if (opts.verbose) {
    io.err(`code: ${e.code}, stage: ${e.stage}, exit code ${e.exitCode}`);
    let cause: unknown = e.cause;
    while (cause !== undefined) {
      io.err(`cause: ${cause instanceof Error ? cause.stack ?? cause.message : String(cause)}`);
      cause = cause instanceof Error ? cause.cause : undefined;
    }
  }
  return e.exitCode;
}
