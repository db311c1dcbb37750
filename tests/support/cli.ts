/**
 * Runs `cli.ts` as a subprocess under exactly the permission flags a user would give, with
 * `--no-prompt`, the way the README tells users to run it.
 *
 * @module
 */

/** The project root (the working directory of every CLI run). */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** Permissions for one CLI run. */
export interface CliPermissions {
  /** Paths for `--allow-read` (relative to the project root). */
  read?: string[];
  /** Hosts for `--allow-net`. */
  net?: string[];
  /** Variable names for `--allow-env`. */
  env?: string[];
  /** Whether to pass `--ignore-env`. @default for the commands that need it */
  ignoreEnv?: boolean;
}

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The commands that load an MQTT library whose dependencies look up environment variables. */
const IGNORE_ENV = ["token", "check", "emulate"];

/**
 * The `deno run` flags for the given permissions, with `--no-prompt`; `--ignore-env` for the
 * commands whose dependencies look up environment variables when they load (MQTT.js for `token`
 * and `check`, aedes for `emulate`).
 */
export function denoFlags(permissions: CliPermissions, command?: string): string[] {
  const ignoreEnv = permissions.ignoreEnv ?? IGNORE_ENV.includes(command ?? "");
  const flags = ignoreEnv ? ["--ignore-env", "--no-prompt"] : ["--no-prompt"];
  if (permissions.read?.length) flags.push(`--allow-read=${permissions.read.join(",")}`);
  if (permissions.net?.length) flags.push(`--allow-net=${permissions.net.join(",")}`);
  if (permissions.env?.length) flags.push(`--allow-env=${permissions.env.join(",")}`);
  return flags;
}

/**
 * Runs `deno run <flags> cli.ts <args>` from the project root.
 *
 * @param args The command line after `cli.ts`.
 * @param permissions The permission flags to grant.
 * @param options Standard input text and extra environment variables.
 */
export async function runCli(
  args: string[],
  permissions: CliPermissions = {},
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...denoFlags(permissions, args[0]), "cli.ts", ...args],
    cwd: ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}
