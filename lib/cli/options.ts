/**
 * The command line's options: which exist, which command takes which, parsing `Deno.args` into a
 * command and values, and the checks that need no file or network.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { closestWord } from "./did_you_mean.ts";

export const COMMANDS = ["token", "check", "inspect", "emulate", "fleet"] as const;
export type Command = typeof COMMANDS[number];

/** The options that name and open the stores (every command but `emulate` and `fleet`). */
export const STORE_OPTIONS = [
  "keystore",
  "keystore-type",
  "keystore-password",
  "key-password",
  "alias",
  "key",
  "truststore",
  "truststore-type",
  "truststore-password",
] as const;
/** The options of a connection (`token`, `check`). */
export const CONNECT_OPTIONS = [
  "url",
  "client-id",
  "timeout",
  "force",
  "via",
  "rest-url",
  "send-chain",
] as const;
const COMMON_OPTIONS = ["json", "quiet", "verbose", "help"] as const;

/** Which options each command accepts (anything else is a usage error). */
export const ALLOWED: Record<Command, readonly string[]> = {
  token: [...STORE_OPTIONS, ...CONNECT_OPTIONS, "watch", ...COMMON_OPTIONS],
  check: [...STORE_OPTIONS, ...CONNECT_OPTIONS, ...COMMON_OPTIONS],
  inspect: [...STORE_OPTIONS, "client-id", ...COMMON_OPTIONS],
  emulate: [
    "port",
    "host",
    "trust",
    "trust-type",
    "trust-password",
    "server-cert",
    "server-key",
    "tenant",
    "token-lifetime",
    "rest-port",
    ...COMMON_OPTIONS,
  ],
  fleet: [
    "manifest",
    "keystores",
    "keystore-password",
    "truststore",
    "truststore-type",
    "truststore-password",
    "url",
    "timeout",
    "offline",
    "no-token",
    "concurrency",
    "junit",
    ...COMMON_OPTIONS,
  ],
};

export const OPTION_SPEC = {
  url: { type: "string" },
  keystore: { type: "string" },
  "keystore-type": { type: "string" },
  "keystore-password": { type: "string" },
  "key-password": { type: "string" },
  alias: { type: "string" },
  key: { type: "string" },
  truststore: { type: "string" },
  "truststore-type": { type: "string" },
  "truststore-password": { type: "string" },
  "client-id": { type: "string" },
  timeout: { type: "string" },
  force: { type: "boolean" },
  via: { type: "string" },
  "rest-url": { type: "string" },
  "send-chain": { type: "boolean" },
  watch: { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  port: { type: "string" },
  host: { type: "string" },
  trust: { type: "string", multiple: true },
  "trust-type": { type: "string" },
  "trust-password": { type: "string" },
  "server-cert": { type: "string" },
  "server-key": { type: "string" },
  tenant: { type: "string" },
  "token-lifetime": { type: "string" },
  "rest-port": { type: "string" },
  manifest: { type: "string" },
  keystores: { type: "string" },
  offline: { type: "boolean" },
  "no-token": { type: "boolean" },
  concurrency: { type: "string" },
  junit: { type: "string" },
} as const;

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTION_SPEC; strict: true }>
>["values"];

/** What {@linkcode parse} found: the command (if any), the options, and what help asks for. */
export interface Parsed {
  /** The command; `undefined` without one (and for `help` alone). */
  command: Command | undefined;
  /** The options given. */
  values: Values;
  /** Whether help was asked for: `--help`, `-h`, `help` or `help <command>`. */
  help: boolean;
}

/** Options that take a value, for reading `--timeout -1` as a value rather than a flag. */
const TAKES_VALUE = new Set(
  Object.entries(OPTION_SPEC).flatMap(([name, spec]) => {
    const short = "short" in spec ? [`-${spec.short}`] : [];
    return spec.type === "string" ? [`--${name}`, ...short] : [];
  }),
);

/**
 * Parses `Deno.args`-style arguments into a command and options. `help [command]` is the same as
 * `[command] --help`. A mistyped command or option gets "did you mean" with the closest one.
 *
 * @throws {UsageError} `USAGE` for an unknown command or option, a missing value, an option the
 * command does not take, or a stray argument.
 */
export async function parse(args: string[]): Promise<Parsed> {
  const words = joinNegativeValues(args);
  await checkOptionNames(words);
  let parsed;
  try {
    parsed = parseArgs({ args: words, options: OPTION_SPEC, strict: true, allowPositionals: true });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new UsageError(message.split("\n")[0]!.replace(/\. To specify.*$/, ""), {
      code: "USAGE",
      hint: "Run c8y-mqtt-cert --help for the options.",
      cause,
    });
  }
  let positionals = parsed.positionals;
  let help = parsed.values.help ?? false;
  if (positionals[0] === "help") {
    help = true;
    positionals = positionals.slice(1);
  }
  const [first, ...rest] = positionals;
  if (rest.length > 0) {
    throw new UsageError(`Unexpected argument "${rest[0]}"`, {
      code: "USAGE",
      hint: `Run c8y-mqtt-cert ${first ?? ""} --help for the usage.`.replace("  ", " "),
    });
  }
  if (first === undefined) return { command: undefined, values: parsed.values, help };
  if (!(COMMANDS as readonly string[]).includes(first)) {
    const near = await closestWord(first, [...COMMANDS, "help"]);
    throw new UsageError(`Unknown command "${first}"`, {
      code: "USAGE",
      hint: `${near ? `Did you mean ${near}? ` : ""}Commands: ${COMMANDS.join(", ")}. ` +
        "Run c8y-mqtt-cert --help.",
    });
  }
  const command = first as Command;
  if (help) return { command, values: parsed.values, help };
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === undefined || name === "version") continue;
    if (!ALLOWED[command].includes(name)) throw await notTaken(command, name);
  }
  return { command, values: parsed.values, help };
}

/**
 * `--timeout -1` as `--timeout=-1`: a value that looks like a negative number belongs to the
 * option before it (the parser would call it an unknown option), so the option's own check can
 * say what is wrong with it.
 */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (TAKES_VALUE.has(args[i]) && next !== undefined && /^-[0-9.]/.test(next)) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

/** Refuses an unknown option before the parser does, with the closest known one. */
async function checkOptionNames(words: string[]): Promise<void> {
  const known = Object.keys(OPTION_SPEC);
  const shorts: string[] = Object.values(OPTION_SPEC).flatMap((spec) =>
    "short" in spec ? [spec.short] : []
  );
  for (const word of words) {
    if (word === "--") return;
    const long = /^--([^=]+)/.exec(word);
    const short = /^-([^-0-9].*)$/.exec(word);
    if (long && !known.includes(long[1])) {
      const near = await closestWord(long[1], known);
      throw new UsageError(`Unknown option --${long[1]}`, {
        code: "USAGE",
        hint: `${near ? `Did you mean --${near}? ` : ""}Run c8y-mqtt-cert --help for the options.`,
      });
    }
    if (short && ![...short[1]].every((c) => shorts.includes(c))) {
      throw new UsageError(`Unknown option ${word}`, {
        code: "USAGE",
        hint: "The short options are -q, -v, -h and -V. Run c8y-mqtt-cert --help for the options.",
      });
    }
  }
}

/** The error for an option the command does not take; for a port or host, where it goes. */
async function notTaken(command: Command, name: string): Promise<UsageError> {
  const connects = command === "token" || command === "check";
  if (connects && (name === "port" || name === "host")) {
    return new UsageError(`The ${command} command does not take --${name}`, {
      code: "USAGE",
      hint: `Put the ${name} in --url, e.g. --url ssl://<host>:8883 (the default port is 8883).`,
    });
  }
  const near = await closestWord(name, ALLOWED[command]);
  return new UsageError(`The ${command} command does not take --${name}`, {
    code: "USAGE",
    hint: `${near ? `Did you mean --${near}? ` : ""}Run c8y-mqtt-cert ${command} --help for ` +
      "its options.",
  });
}
