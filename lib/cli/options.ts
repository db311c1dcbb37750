/**
 * The command line's options: which exist, which command takes which, parsing `Deno.args` into a
 * command and values, and the checks that need no file or network.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { parseClientId } from "../connect/client_id.ts";
import {
  checkEmulatorSettings,
  DEFAULT_TOKEN_LIFETIME_SECONDS,
  type EmulatorSettings,
} from "../emulator/settings.ts";
import { parseRestUrl, type RestAddress, restUrlOf } from "../token/rest_url.ts";
import { type BrokerAddress, parseBrokerUrl } from "../connect/broker_url.ts";
import type { StoreFormat } from "../types.ts";
import { closestWord } from "./did_you_mean.ts";

export const COMMANDS = ["token", "check", "inspect", "emulate", "fleet"] as const;
export type Command = typeof COMMANDS[number];

const STORE_OPTIONS = [
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
const CONNECT_OPTIONS = [
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

export function storeType(value: string | undefined, option: string): StoreFormat | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (lower === "p12" || lower === "pfx") return "pkcs12";
  if (lower === "cer" || lower === "crt") return "der";
  if (lower === "jks" || lower === "pkcs12" || lower === "pem") return lower;
  // One DER certificate (server.cer) is a truststore, never a keystore.
  if (lower === "der" && option !== "--keystore-type") return lower;
  throw new UsageError(
    `${option} must be jks, pkcs12, pem${
      option === "--keystore-type" ? "" : " or der"
    }, not "${value}"`,
    {
      code: "USAGE",
      hint: "Leave it out to detect the format from the content.",
    },
  );
}

export function required(values: Values, name: keyof Values, command: Command): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") {
    throw new UsageError(`The ${command} command needs --${name}`, {
      code: "USAGE",
      hint: `Run c8y-mqtt-cert --help for the usage of ${command}.`,
    });
  }
  return value;
}

export function seconds(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${option} must be a positive number of seconds, not "${value}"`, {
      code: "USAGE",
      hint: `For example ${option} 20.`,
    });
  }
  return n;
}

/**
 * How `token` and `check` get the token: `--via mqtt|rest` (default mqtt), `--rest-url URL` and
 * `--send-chain`, which only REST uses.
 */
export function tokenRoute(
  values: Values,
): { via: "mqtt" | "rest"; restUrl: string | undefined; sendChain: boolean } {
  const via = (values.via ?? "mqtt").toLowerCase();
  if (via !== "mqtt" && via !== "rest") {
    throw new UsageError(`--via must be mqtt or rest, not "${values.via}"`, {
      code: "USAGE",
      hint: "mqtt asks on s/uat; rest posts to /devicecontrol/deviceAccessToken over HTTPS.",
    });
  }
  for (const name of ["rest-url", "send-chain"] as const) {
    if (via === "mqtt" && values[name] !== undefined) {
      throw new UsageError(`--${name} is for the REST token request: add --via rest`, {
        code: "USAGE",
        hint: "Without --via rest the token is requested over MQTT, which does not use it.",
      });
    }
  }
  if (values.watch && via === "rest") {
    throw new UsageError("--watch keeps an MQTT connection and renews its token over MQTT", {
      code: "USAGE",
      hint: "Leave out --via rest (or --watch).",
    });
  }
  if (values["rest-url"] !== undefined) parseRestUrl(values["rest-url"]);
  return { via, restUrl: values["rest-url"], sendChain: values["send-chain"] ?? false };
}

/**
 * Where `token` and `check` connect. Over MQTT: the broker of `--url` (required). With `--via
 * rest` only the HTTPS address is contacted: `--rest-url`, or an `https://` `--url` taken as that
 * address, or else the `--url` broker's host on port 443; `broker` is then the `--url` broker
 * when one is given (an `https://` `--url` names no broker).
 *
 * @throws {UsageError} `USAGE` for a missing `--url` (over MQTT), a `--via rest` without either
 * address, or an `https://` `--url` together with `--rest-url`; the URL codes of
 * `parseBrokerUrl` and `parseRestUrl`.
 */
export function tokenTarget(
  values: Values,
  command: "token" | "check",
): { broker: BrokerAddress | undefined; rest: RestAddress | undefined } {
  const route = tokenRoute(values);
  if (route.via === "mqtt") {
    const url = required(values, "url", command);
    try {
      return { broker: parseBrokerUrl(url), rest: undefined };
    } catch (error) {
      // An https:// address may be meant for the token over REST: say how to ask for that.
      if (!(error instanceof UsageError) || error.code !== "URL_HTTP") throw error;
      if (!/^https:\/\//i.test(url.trim())) throw error;
      throw new UsageError(error.message, {
        code: error.code,
        hint:
          `${error.hint} For the token over HTTPS instead, add --via rest (the https:// URL is then the REST address).`,
      });
    }
  }
  const url = values.url === "" ? undefined : values.url;
  if (url !== undefined && /^https?:\/\//i.test(url.trim())) {
    if (route.restUrl !== undefined) {
      throw new UsageError(
        `--url "${
          shortened(url)
        }" is a web address and --rest-url names one too; with --via rest give the HTTPS address once`,
        {
          code: "USAGE",
          hint:
            "Keep --rest-url https://<host>[:port] and leave out --url (or give --url as the MQTT broker, ssl://<host>:8883).",
        },
      );
    }
    return { broker: undefined, rest: parseRestUrl(url) };
  }
  const broker = url === undefined ? undefined : parseBrokerUrl(url);
  if (route.restUrl !== undefined) return { broker, rest: parseRestUrl(route.restUrl) };
  if (broker !== undefined) return { broker, rest: restUrlOf(broker) };
  throw new UsageError(`The ${command} command with --via rest needs --rest-url (or --url)`, {
    code: "USAGE",
    hint:
      "Give the tenant's HTTPS address: --rest-url https://<tenant domain> (port 443 unless the installation serves it elsewhere).",
  });
}

/** A value as shown in a message: at most 200 characters, and never with credentials. */
function shortened(value: string): string {
  if (value.includes("@")) return "<a URL with credentials>";
  return value.length > 200 ? `${value.slice(0, 200)}…` : value;
}

/**
 * The emulator's ports, tenant and token lifetime from the options (checked by the emulator;
 * its defaults are the emulator's, except the MQTT port: 8883, as on the platform).
 */
export function emulatorSettings(values: Values): EmulatorSettings {
  return {
    port: values.port === undefined ? 8883 : Number(values.port),
    restPort: values["rest-port"] === undefined ? undefined : Number(values["rest-port"]),
    tenant: values.tenant,
    tokenLifetimeSeconds: values["token-lifetime"] === undefined
      ? undefined
      : seconds(values["token-lifetime"], "--token-lifetime", DEFAULT_TOKEN_LIFETIME_SECONDS),
  };
}

/**
 * Checks option values that need no file or network, so that a usage error is reported as one
 * (exit 2) before permissions are checked or anything is read. (`checkPasswordSources` in
 * `passwords.ts` does the same for the password options.)
 */
export function validate(command: Command, values: Values): void {
  if (command === "token" || command === "check") {
    tokenTarget(values, command);
    required(values, "keystore", command);
    seconds(values.timeout, "--timeout", 20);
  }
  storeType(values["keystore-type"], "--keystore-type");
  storeType(values["truststore-type"], "--truststore-type");
  storeType(values["trust-type"], "--trust-type");
  if (command === "emulate") {
    checkEmulatorSettings(emulatorSettings(values));
    if (values.host !== undefined) loopbackHost(values.host);
  }
  const explicitId = values["client-id"];
  const connectionType = explicitId === undefined
    ? undefined
    : parseClientId(explicitId).connectionType;
  if (connectionType !== undefined && connectionType !== "d") {
    // Certificates are for devices: the connection type is part of the command line's syntax.
    throw new UsageError(
      `Client id "${explicitId}" has connection type "${connectionType}", but a device with a certificate connects as "d"`,
      { code: "CLIENT_ID_TYPE", hint: "Use d:<CN>, or leave --client-id out." },
    );
  }
}

/**
 * Checks `--host` of `emulate`: a loopback address only (127.0.0.0/8, `::1`, `localhost`). The
 * emulator accepts any certificate its `--trust` CAs signed and hands out tokens signed with a
 * test key: it is a stand-in for tests and demos, not a server for a network.
 *
 * @throws {UsageError} `USAGE` naming the address.
 */
export function loopbackHost(host: string): void {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const loopback = bare.toLowerCase() === "localhost" || bare === "::1" ||
    /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(bare) &&
      bare.split(".").every((part) => Number(part) <= 255);
  if (!loopback) {
    throw new UsageError(
      `--host ${host} is not a loopback address: the emulator listens on 127.0.0.1, ::1 or localhost only`,
      {
        code: "USAGE",
        hint: "The emulator is a test stand-in with test keys: run it on the machine that " +
          "connects to it, e.g. --host 127.0.0.1.",
      },
    );
  }
}
