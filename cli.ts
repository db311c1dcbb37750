#!/usr/bin/env -S deno run --allow-read --allow-net --allow-env
/**
 * The `c8y-mqtt-cert` command line: the only module that reads arguments, files, the terminal
 * and the environment, prints, and exits. Everything else is the functional core in `lib/`.
 *
 * ```sh
 * deno run --allow-read=device.p12,truststore.jks --allow-net=example.com:8883 --allow-env=PW \
 *   cli.ts token --url ssl://example.com:8883 --keystore device.p12 --keystore-password env:PW
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import config from "./deno.json" with { type: "json" };
import {
  C8yError,
  CertificateError,
  ExitCode,
  PermissionError,
  StoreError,
  UsageError,
} from "./lib/errors.ts";
import type { Stage } from "./lib/errors.ts";
import { parsePasswordSpec } from "./lib/password_spec.ts";
import type { PasswordSpec } from "./lib/password_spec.ts";
import { loadKeyStore, loadTrustStore, MAX_STORE_BYTES } from "./lib/keystore.ts";
import { diagnose, hasErrors } from "./lib/diagnose.ts";
import { clientId as deviceClientId, parseClientId } from "./lib/client_id.ts";
import { hostPort, parseBrokerUrl } from "./lib/broker_url.ts";
import { checkEmulatorSettings } from "./lib/emulator/mod.ts";
import type {
  CertificateSummary,
  DeviceIdentity,
  Problem,
  StoreFormat,
  TrustAnchors,
} from "./lib/types.ts";

/** The tool's version: `deno.json`'s. */
export const VERSION: string = config.version;

const COMMANDS = ["token", "check", "inspect", "emulate"] as const;
type Command = typeof COMMANDS[number];

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
const CONNECT_OPTIONS = ["url", "client-id", "timeout", "force"] as const;
const COMMON_OPTIONS = ["json", "quiet", "verbose", "help"] as const;

/** Which options each command accepts (anything else is a usage error). */
const ALLOWED: Record<Command, readonly string[]> = {
  token: [...STORE_OPTIONS, ...CONNECT_OPTIONS, ...COMMON_OPTIONS],
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
    ...COMMON_OPTIONS,
  ],
};

const OPTION_SPEC = {
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
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTION_SPEC; strict: true }>>["values"];

const EXIT_TABLE = `EXIT CODES
  0  success
  1  internal error (a bug: please report it with --verbose output)
  2  usage: unknown command or flag, bad value, unreadable password source
  3  store: keystore/truststore missing, unreadable, wrong password, wrong format
  4  certificate: an offline check found an error (expired, CN with ':', key mismatch, ...)
  5  network: DNS failure, connection refused or unreachable, timeout
  6  TLS: server not trusted, hostname mismatch, device certificate refused by the server
  7  MQTT: the broker refused the connection (CONNACK 1-5) or a subscription
  8  token: no '71,<JWT>' reply on s/dat after the retries, or a malformed one
  9  permission: Deno lacks a permission the command needs (the message names the flag)`;

const HELP = `c8y-mqtt-cert ${VERSION}: connect a device to Cumulocity IoT over MQTT with its X.509
certificate, and fetch its JWT session token; says what is wrong when that fails.

USAGE
  c8y-mqtt-cert token   --url URL --keystore PATH [store options] [--truststore PATH] [--json]
  c8y-mqtt-cert check   --url URL --keystore PATH [store options] [--truststore PATH] [--json]
  c8y-mqtt-cert inspect [--keystore PATH [store options]] [--truststore PATH] [--json]
  c8y-mqtt-cert emulate --trust PATH --server-cert PEM --server-key PEM [--port N] [--tenant ID]

COMMANDS
  token     Connect as d:<certificate CN>, request a token (empty publish on s/uat) and print the
            JWT from the '71,<JWT>' reply on s/dat alone on stdout: TOKEN=$(c8y-mqtt-cert token ...)
  check     The same path, reported stage by stage (keystore, truststore, certificates, dns, tcp,
            tls, mqtt, subscribe, token) with timings; stops at the first failure and explains it.
  inspect   Offline: the entries, chain (leaf first), validity, fingerprints, the client id the
            device would use, and problems found. Exits 4 when a problem is an error.
  emulate   A local stand-in for Cumulocity's MQTT certificate endpoint (for demos and tests).
            Prints a line with mqtts://HOST:PORT on stdout once it accepts connections.

CONNECTION
  --url URL               ssl://host:port, mqtts://host:port, tls://host:port or host[:port];
                          the default port is 8883. ws://, wss://, tcp:// and mqtt:// are refused.
  --client-id ID          Override d:<CN>; must be <CN>, d:<CN> or d:<CN>:<template>.
  --timeout SECONDS       Per-attempt timeout for connecting and for the token reply (default 20).
  --force                 Connect even when an offline check found an error.

STORE OPTIONS
  --keystore PATH         The device's key and certificate chain: JKS, PKCS#12 or PEM.
  --keystore-type T       jks | pkcs12 | pem (default: detected from the content).
  --keystore-password P   Password SPEC (below). Asked on the terminal when needed and not given.
  --key-password P        The key entry's own password, when it differs from the store's (JKS).
  --alias NAME            The key entry to use when the keystore holds several.
  --key PATH              The private key (PEM) when --keystore is a PEM certificate file.
  --truststore PATH       The server's CA: JKS, PKCS#12 or PEM. Without it, Deno's default roots.
  --truststore-type T     jks | pkcs12 | pem (default: detected).
  --truststore-password P Password SPEC; a JKS truststore opens without one (integrity unchecked).

EMULATOR OPTIONS
  --trust PATH            CA certificates the emulator trusts (PEM, JKS or PKCS#12); repeatable.
  --trust-type T, --trust-password P   As for the truststore.
  --server-cert PEM       The emulator's server certificate (with its chain); --server-key PEM.
  --host HOST             Listen address (default 127.0.0.1); --port N (default 8883, 0 = any).
  --tenant ID             Tenant id put in tokens (default t12345).
  --token-lifetime S      Token lifetime in seconds (default 3600, minimum 300).

OUTPUT
  --json                  One JSON object on stdout (errors too: {"ok": false, "error": {...}}).
  -q, --quiet             No progress lines on stderr.
  -v, --verbose           Add the underlying errors (with stack traces, or their messages under
                          --json) to failures; never secrets.
  -h, --help              This text.   -V, --version   The version.

PASSWORD SPEC (as openssl's -passin)
  pass:VALUE   the value itself (visible in the process list: prefer env: or file:)
  env:NAME     the environment variable NAME (needs --allow-env=NAME)
  file:PATH    the first line of PATH (needs read permission for PATH)
  stdin        the first line of standard input
  anything else is taken literally.

PERMISSIONS (deno run)
  token/check: deno run --allow-read=<keystore>,<truststore>[,<key>] \\
                 --allow-net=<host>:<port> cli.ts token --url ... --keystore ...
  inspect:     deno run --allow-read=<keystore>,<truststore>[,<key>] cli.ts inspect ...
  emulate:     deno run --ignore-env --allow-read=<trust>,<cert>,<key> --allow-net=<host> \\
                 cli.ts emulate ...   (--ignore-env: the broker library looks up variables)
  Add --allow-env=NAME for env:NAME passwords and the file of a file: password to --allow-read.
  A missing permission is reported with the exact flag to add (exit 9).
  Installed or compiled: deno install --global --name c8y-mqtt-cert --allow-read --allow-net \\
                 --allow-env cli.ts

${EXIT_TABLE}
`;

/** What the command line writes to; tests may pass their own. */
export interface Io {
  /** Writes a line to standard output. */
  out(line: string): void;
  /** Writes a line to standard error. */
  err(line: string): void;
}

const consoleIo: Io = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/**
 * Passwords seen in this run. The tool's own messages never contain them; error reports are
 * scrubbed of them all the same, because a dependency's error text may quote its input. Normal
 * output is not touched (a short password would garble a token). Passwords shorter than
 * {@linkcode MIN_SCRUBBED} characters are not scrubbed: replacing them would garble messages and
 * reveal the password.
 */
const secrets = new Set<string>();

const MIN_SCRUBBED = 4;

function scrub(text: string): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_SCRUBBED) result = result.split(secret).join("***");
  }
  return result;
}

/** Parses `Deno.args`-style arguments into a command and options. */
function parse(args: string[]): { command: Command | undefined; values: Values } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTION_SPEC, strict: true, allowPositionals: true });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new UsageError(message.split("\n")[0]!.replace(/\. To specify.*$/, ""), {
      code: "USAGE",
      hint: "Run c8y-mqtt-cert --help for the options.",
      cause,
    });
  }
  const [first, ...rest] = parsed.positionals;
  if (rest.length > 0) {
    throw new UsageError(`Unexpected argument "${rest[0]}"`, {
      code: "USAGE",
      hint: "Run c8y-mqtt-cert --help for the usage.",
    });
  }
  if (first === undefined) return { command: undefined, values: parsed.values };
  if (!(COMMANDS as readonly string[]).includes(first)) {
    throw new UsageError(`Unknown command "${first}"`, {
      code: "USAGE",
      hint: `Commands: ${COMMANDS.join(", ")}. Run c8y-mqtt-cert --help.`,
    });
  }
  const command = first as Command;
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === undefined || name === "version") continue;
    if (!ALLOWED[command].includes(name)) {
      throw new UsageError(`The ${command} command does not take --${name}`, {
        code: "USAGE",
        hint: `Run c8y-mqtt-cert --help for the options of ${command}.`,
      });
    }
  }
  return { command, values: parsed.values };
}

function storeType(value: string | undefined, option: string): StoreFormat | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (lower === "p12" || lower === "pfx") return "pkcs12";
  if (lower === "jks" || lower === "pkcs12" || lower === "pem") return lower;
  throw new UsageError(`${option} must be jks, pkcs12 or pem, not "${value}"`, {
    code: "USAGE",
    hint: "Leave it out to detect the format from the content.",
  });
}

function required(values: Values, name: keyof Values, command: Command): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") {
    throw new UsageError(`The ${command} command needs --${name}`, {
      code: "USAGE",
      hint: `Run c8y-mqtt-cert --help for the usage of ${command}.`,
    });
  }
  return value;
}

function seconds(value: string | undefined, option: string, fallback: number): number {
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

/** The emulator's port, tenant and token lifetime from the options (checked by the emulator). */
function emulatorSettings(
  values: Values,
): { port: number; tenant: string | undefined; tokenLifetimeSeconds: number } {
  return {
    port: values.port === undefined ? 8883 : Number(values.port),
    tenant: values.tenant,
    tokenLifetimeSeconds: seconds(values["token-lifetime"], "--token-lifetime", 3600),
  };
}

/**
 * Checks option values that need no file or network, so that a usage error is reported as one
 * (exit 2) before permissions are checked or anything is read.
 */
function validate(command: Command, values: Values): void {
  if (command === "token" || command === "check") {
    required(values, "url", command);
    required(values, "keystore", command);
    seconds(values.timeout, "--timeout", 20);
  }
  storeType(values["keystore-type"], "--keystore-type");
  storeType(values["truststore-type"], "--truststore-type");
  storeType(values["trust-type"], "--trust-type");
  if (command === "emulate") checkEmulatorSettings(emulatorSettings(values));
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
  const stdin = passwordSpecs(values, command).filter(([, spec]) => spec.kind === "stdin");
  if (stdin.length > 1) {
    throw new UsageError(
      `${stdin.map(([option]) => option).join(" and ")} cannot both read from stdin`,
      {
        code: "PASSWORD_SOURCE",
        hint: "Give one of them as env:NAME or file:PATH.",
      },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Permissions: worked out from the arguments and checked before any work.

interface Needs {
  read: string[];
  net: string[];
  env: string[];
}

function passwordSpecs(values: Values, command: Command): [string, PasswordSpec][] {
  const names = command === "emulate"
    ? ["trust-password"]
    : ["keystore-password", "key-password", "truststore-password"];
  const specs: [string, PasswordSpec][] = [];
  for (const name of names) {
    const raw = values[name as keyof Values];
    if (typeof raw === "string") specs.push([`--${name}`, parsePasswordSpec(raw, `--${name}`)]);
  }
  return specs;
}

function neededPermissions(command: Command, values: Values): Needs {
  const needs: Needs = { read: [], net: [], env: [] };
  const fileOptions = command === "emulate"
    ? [...(values.trust ?? []), values["server-cert"], values["server-key"]]
    : [values.keystore, values.key, values.truststore];
  for (const path of fileOptions) if (path) needs.read.push(path);
  for (const [, spec] of passwordSpecs(values, command)) {
    if (spec.kind === "file") needs.read.push(spec.path);
    if (spec.kind === "env") needs.env.push(spec.name);
  }
  if ((command === "token" || command === "check") && values.url) {
    const broker = parseBrokerUrl(values.url);
    needs.net.push(hostPort(broker.host, broker.port));
  }
  if (command === "emulate") needs.net.push(values.host ?? "127.0.0.1");
  return needs;
}

/**
 * The file a symbolic link points to, when `path` is one and may be looked at: Deno checks read
 * permission against the link's target as well.
 */
function linkTarget(path: string): string | undefined {
  try {
    if (!Deno.lstatSync(path).isSymlink) return undefined;
    return Deno.realPathSync(path);
  } catch {
    return undefined; // Missing or not yet permitted: reported on its own.
  }
}

async function checkPermissions(command: Command, values: Values, args: string[]): Promise<void> {
  const needs = neededPermissions(command, values);
  const missing: string[] = [];
  for (const path of [...needs.read]) {
    const { state } = await Deno.permissions.query({ name: "read", path });
    if (state !== "granted") {
      missing.push(`reading "${path}" needs --allow-read=${path}`);
      continue;
    }
    const target = linkTarget(path);
    if (target === undefined) continue;
    needs.read.push(target);
    const link = await Deno.permissions.query({ name: "read", path: target });
    if (link.state !== "granted") {
      missing.push(`reading "${path}" (a link to "${target}") needs --allow-read=${target}`);
    }
  }
  for (const host of needs.net) {
    const { state } = await Deno.permissions.query({ name: "net", host });
    const what = command === "emulate" ? "listening on" : "connecting to";
    if (state !== "granted") missing.push(`${what} ${host} needs --allow-net=${host}`);
  }
  for (const variable of needs.env) {
    const { state } = await Deno.permissions.query({ name: "env", variable });
    if (state !== "granted") missing.push(`reading $${variable} needs --allow-env=${variable}`);
  }
  if (missing.length === 0) return;
  throw new PermissionError(missing.join("; "), {
    code: "PERMISSION_MISSING",
    hint: `Run: ${denoRunLine(needs, args, command)}`,
  });
}

function denoRunLine(needs: Needs, args: string[], command: Command): string {
  // Only the emulator's dependencies (aedes and its stream modules) look up environment variables
  // when they load; --ignore-env makes those look-ups find nothing instead of failing.
  const flags = command === "emulate" ? ["--ignore-env"] : [];
  if (needs.read.length) flags.push(`--allow-read=${[...new Set(needs.read)].join(",")}`);
  if (needs.net.length) flags.push(`--allow-net=${needs.net.join(",")}`);
  if (needs.env.length) flags.push(`--allow-env=${needs.env.join(",")}`);
  const main = Deno.mainModule.startsWith("file:")
    ? relativeToCwd(new URL(Deno.mainModule).pathname)
    : Deno.mainModule;
  const shown = args.map((arg, i) => {
    // Password values never appear, not even in the suggested command line.
    const inline = arg.match(/^(--[\w-]*password)=(.*)$/);
    if (inline) return `${inline[1]}=${maskPassword(inline[2]!)}`;
    return /^--[\w-]*password$/.test(args[i - 1] ?? "") ? maskPassword(arg) : shellQuote(arg);
  });
  return ["deno run", ...flags, main, ...shown].join(" ");
}

function maskPassword(spec: string): string {
  return /^(env|file):|^stdin$/.test(spec) ? shellQuote(spec) : "'***'";
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

function relativeToCwd(path: string): string {
  try {
    const cwd = Deno.cwd();
    if (path.startsWith(cwd + "/")) return path.slice(cwd.length + 1);
  } catch {
    // Without read permission for the working directory, keep the absolute path.
  }
  return path;
}

// ---------------------------------------------------------------------------------------------
// Reading files and passwords.

/**
 * Reads at most `limit + 1` bytes of a file through one handle, so that a FIFO, `/dev/zero` or a
 * file that grows after a size check cannot make the tool read without end.
 */
async function readBounded(path: string, limit: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (info.isDirectory) throw new IsADirectory();
  const out = new Uint8Array(Math.min(limit + 1, info.isFile ? info.size + 1 : limit + 1));
  let filled = 0;
  while (filled < out.length) {
    const n = await file.read(out.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  if (filled > limit) throw new TooLarge(info.isFile ? info.size : undefined, limit);
  return out.subarray(0, filled);
}

class IsADirectory extends Error {}

class TooLarge extends Error {
  constructor(readonly size: number | undefined, limit: number) {
    super(`the file is larger than ${formatBytes(limit)}`);
  }
}

async function readStoreFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readBounded(path, MAX_STORE_BYTES);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new StoreError(`The ${what} "${path}" does not exist`, {
        code: "STORE_NOT_FOUND",
        hint: "Check the path (it is relative to the current directory).",
        cause,
      });
    }
    if (cause instanceof IsADirectory) {
      throw new StoreError(`The ${what} "${path}" is a directory, not a file`, {
        code: "STORE_IS_DIRECTORY",
        hint: "Give the path of the keystore file itself.",
      });
    }
    if (cause instanceof TooLarge) {
      const size = cause.size === undefined ? "larger" : `${formatBytes(cause.size)}, more`;
      throw new StoreError(
        `The ${what} "${path}" is ${size} than the ${
          formatBytes(MAX_STORE_BYTES)
        } a keystore can sensibly be`,
        { code: "STORE_TOO_LARGE", hint: "Check that this is the right file." },
      );
    }
    if (cause instanceof Deno.errors.NotCapable || cause instanceof Deno.errors.PermissionDenied) {
      throw cause;
    }
    throw new StoreError(`Cannot read the ${what} "${path}": ${errorMessage(cause)}`, {
      code: "STORE_UNREADABLE",
      cause,
    });
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** A password file is read up to this size (its first line is the password). */
const MAX_PASSWORD_FILE = 64 * 1024;

let stdinLine: Promise<string> | undefined;

async function readStdinLine(): Promise<string> {
  let text = "";
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    // Standard input is read once per run (the line is shared), so it can be closed here.
    await reader.cancel();
  }
  return text.split(/\r?\n/)[0] ?? "";
}

async function resolvePassword(spec: PasswordSpec, option: string): Promise<string> {
  let password: string;
  switch (spec.kind) {
    case "pass":
      password = spec.value;
      break;
    case "env": {
      const value = Deno.env.get(spec.name);
      if (value === undefined) {
        throw new UsageError(`${option} env:${spec.name}: the variable ${spec.name} is not set`, {
          code: "PASSWORD_SOURCE",
          hint: `Export ${spec.name}, and run deno with --allow-env=${spec.name}.`,
        });
      }
      password = value;
      break;
    }
    case "file": {
      try {
        const text = new TextDecoder().decode(await readBounded(spec.path, MAX_PASSWORD_FILE));
        password = text.split(/\r?\n/)[0] ?? "";
      } catch (cause) {
        throw new UsageError(`${option} file:${spec.path}: ${errorMessage(cause)}`, {
          code: "PASSWORD_SOURCE",
          hint: "The file's first line is the password.",
          cause,
        });
      }
      break;
    }
    case "stdin":
      stdinLine ??= readStdinLine();
      password = await stdinLine;
      break;
  }
  secrets.add(password);
  return password;
}

/** Asks for a password on the terminal without echo; fails when there is no terminal. */
// deno-lint-ignore no-control-regex
const ESCAPES = /\x1b(\[[0-9;]*[A-Za-z~]|O[A-Za-z]|.)?/g;

async function promptPassword(question: string, option: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError(`${question} is needed and there is no terminal to ask for it`, {
      code: "PASSWORD_REQUIRED",
      hint: `Give ${option} pass:VALUE, env:NAME, file:PATH or stdin.`,
    });
  }
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(`${question}: `));
  Deno.stdin.setRaw(true);
  let typed = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64);
  try {
    outer: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      // Escape sequences (arrow keys and the like) are not part of a password.
      const text = decoder.decode(buffer.subarray(0, n), { stream: true }).replace(ESCAPES, "");
      for (const char of text) {
        if (char === "\r" || char === "\n" || char === "\x04") break outer; // Enter, Ctrl-D
        if (char === "\x03") throw new UsageError("Cancelled", { code: "PASSWORD_REQUIRED" });
        if (char === "\x7f" || char === "\b") typed = [...typed].slice(0, -1).join("");
        else if (char >= " ") typed += char;
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  secrets.add(typed);
  return typed;
}

// ---------------------------------------------------------------------------------------------
// Loading the stores the arguments name.

interface LoadedStores {
  identity?: DeviceIdentity;
  keystorePath?: string;
  trust?: TrustAnchors;
  truststorePath?: string;
  timings: { keystore?: number; truststore?: number };
}

function passwordOption(values: Values, name: string): PasswordSpec | undefined {
  const raw = values[name as keyof Values];
  return typeof raw === "string" ? parsePasswordSpec(raw, `--${name}`) : undefined;
}

/** The password an option gives, resolved; `undefined` when the option is absent. */
async function givenPassword(values: Values, name: string): Promise<string | undefined> {
  const spec = passwordOption(values, name);
  return spec ? await resolvePassword(spec, `--${name}`) : undefined;
}

/** The passwords of one store: its own, and its key's when that differs. */
interface StorePasswords {
  store?: string;
  key?: string;
}

/** What to ask on the terminal, and which option would have given it: `[question, option]`. */
type Prompt = [question: string, option: string];

/**
 * Runs `load` with the passwords given on the command line. When the store turns out to need a
 * password that was not given (`KEYSTORE_PASSWORD_REQUIRED`, `KEY_PASSWORD_REQUIRED`), asks for
 * it on the terminal (or fails with a usage error when there is none) and runs `load` again. So a
 * store without a password (a MAC-less PKCS#12, a JKS truststore, a plain PEM key) never prompts.
 */
async function withPasswords<T>(
  passwords: StorePasswords,
  prompts: { store: Prompt; key?: Prompt },
  load: (passwords: StorePasswords) => Promise<T>,
): Promise<T> {
  for (let asked = 0;; asked++) {
    try {
      return await load(passwords);
    } catch (error) {
      if (!(error instanceof StoreError) || asked >= 2) throw error;
      const forKey = error.code === "KEY_PASSWORD_REQUIRED" && prompts.key !== undefined;
      const forStore = !forKey &&
        (error.code === "KEYSTORE_PASSWORD_REQUIRED" || error.code === "KEY_PASSWORD_REQUIRED");
      if (forKey && passwords.key === undefined) {
        passwords.key = await promptPassword(...prompts.key!);
      } else if (forStore && passwords.store === undefined) {
        passwords.store = await promptPassword(...prompts.store);
      } else {
        throw error;
      }
    }
  }
}

/** Reads a truststore (`--truststore`, or `--trust` of the emulator) with its password option. */
async function readTrustStore(
  values: Values,
  path: string,
  what: string,
  options: { type: StoreFormat | undefined; passwordOption: string },
): Promise<TrustAnchors> {
  const bytes = await readStoreFile(path, what);
  const passwords = { store: await givenPassword(values, options.passwordOption) };
  return await withPasswords(
    passwords,
    { store: [`Password for "${path}"`, `--${options.passwordOption}`] },
    ({ store }) => loadTrustStore(bytes, { password: store, type: options.type, name: path }),
  );
}

/**
 * Loads the stores the arguments name; `onLoaded` hears of each as soon as it is loaded (the
 * keystore first), so that `check` can report them as separate stages.
 */
async function loadStores(
  values: Values,
  command: Command,
  onLoaded?: (kind: "keystore" | "truststore", stores: LoadedStores) => void,
): Promise<LoadedStores> {
  const result: LoadedStores = { timings: {} };
  if (values.keystore) {
    const path = values.keystore;
    const started = performance.now();
    const bytes = await readStoreFile(path, "keystore");
    const type = storeType(values["keystore-type"], "--keystore-type");
    let key: Uint8Array | undefined;
    if (values.key) key = await readStoreFile(values.key, "key file");
    const passwords = {
      store: await givenPassword(values, "keystore-password"),
      key: await givenPassword(values, "key-password"),
    };
    result.identity = await withPasswords(
      passwords,
      {
        store: [`Password for "${path}"`, "--keystore-password"],
        key: values.key ? [`Password for the key "${values.key}"`, "--key-password"] : undefined,
      },
      ({ store, key: keyPassword }) =>
        loadKeyStore(bytes, {
          password: store,
          keyPassword,
          alias: values.alias,
          type,
          name: path,
          key,
          keyName: values.key,
        }),
    );
    result.keystorePath = path;
    result.timings.keystore = performance.now() - started;
    onLoaded?.("keystore", result);
  } else if (command !== "inspect") {
    required(values, "keystore", command);
  }
  if (values.truststore) {
    const path = values.truststore;
    const started = performance.now();
    const type = storeType(values["truststore-type"], "--truststore-type");
    result.trust = await readTrustStore(values, path, "truststore", {
      type,
      passwordOption: "truststore-password",
    });
    result.truststorePath = path;
    result.timings.truststore = performance.now() - started;
    onLoaded?.("truststore", result);
  }
  if (command === "inspect" && !result.identity && !result.trust) {
    throw new UsageError("The inspect command needs --keystore or --truststore (or both)", {
      code: "USAGE",
      hint: "Run c8y-mqtt-cert --help for the usage of inspect.",
    });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Output helpers.

function errorMessage(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return error.message;
  }
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
  return String(error);
}

const MARK = { error: "✗", warning: "!", info: "i" } as const;

function printProblems(io: Io, problems: Problem[]): void {
  if (problems.length === 0) {
    io.out("problems: none found");
    return;
  }
  io.out("problems:");
  for (const p of problems) {
    io.out(`  ${MARK[p.severity]} ${p.severity} ${p.code}: ${p.message}`);
    if (p.hint) io.out(`      hint: ${p.hint}`);
  }
}

function describeKey(summary: CertificateSummary): string {
  const type = summary.keyType.toUpperCase();
  if (summary.curve) return `${type} ${summary.curve}`;
  return summary.keySize ? `${type} ${summary.keySize}` : type;
}

function printCertificate(
  io: Io,
  index: number,
  summary: CertificateSummary,
  alias?: string,
): void {
  const label = alias === undefined ? `[${index}]` : `[${index}] alias "${alias}"`;
  io.out(`  ${label} ${summary.subject}`);
  io.out(`      issuer   ${summary.issuer}${summary.selfSigned ? " (self-signed)" : ""}`);
  io.out(`      valid    ${summary.notBefore} .. ${summary.notAfter}`);
  io.out(
    `      key      ${describeKey(summary)}, X.509 v${summary.version}${
      summary.isCA ? ", CA" : ""
    }`,
  );
  io.out(`      sha256   ${summary.sha256}`);
}

// ---------------------------------------------------------------------------------------------
// Commands.

interface Context {
  io: Io;
  values: Values;
  json: boolean;
  quiet: boolean;
}

function progress(ctx: Context, line: string): void {
  if (!ctx.quiet && !ctx.json) ctx.io.err(line);
}

function tryClientId(identity: DeviceIdentity, explicit: string | undefined): string | undefined {
  try {
    return deviceClientId(identity, { explicit });
  } catch (error) {
    if (error instanceof CertificateError) return undefined;
    throw error;
  }
}

async function inspectCommand(ctx: Context): Promise<number> {
  const stores = await loadStores(ctx.values, "inspect");
  const { identity, trust } = stores;
  const clientId = identity ? tryClientId(identity, ctx.values["client-id"]) : undefined;
  const problems = diagnose({ identity, trust, clientId: ctx.values["client-id"] });
  const exit = hasErrors(problems) ? ExitCode.CERTIFICATE : ExitCode.OK;
  if (ctx.json) {
    const out: Record<string, unknown> = {};
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
    if (identity.aliases.length > 1) ctx.io.out(`  key entries: ${identity.aliases.join(", ")}`);
    const n = identity.chain.length;
    ctx.io.out(`chain (leaf first, ${n} certificate${n === 1 ? "" : "s"}):`);
    identity.chain.forEach((c, i) => printCertificate(ctx.io, i, c.summary));
    ctx.io.out(`client id: ${clientId ?? "(none: see problems)"}`);
  }
  if (trust) {
    const n = trust.certificates.length;
    ctx.io.out(
      `truststore ${stores.truststorePath}: ${trust.format}, ${n} certificate${n === 1 ? "" : "s"}`,
    );
    trust.certificates.forEach((c, i) => printCertificate(ctx.io, i, c.summary, c.alias));
  }
  printProblems(ctx.io, problems);
  return exit;
}

/** Runs the offline part of `token`/`check`: stores, then certificate checks. */
async function offline(
  ctx: Context,
  command: "token" | "check",
): Promise<{ stores: LoadedStores; identity: DeviceIdentity; problems: Problem[] }> {
  const stores = await loadStores(ctx.values, command);
  const identity = stores.identity!;
  const problems = diagnose({ identity, trust: stores.trust, clientId: ctx.values["client-id"] });
  return { stores, identity, problems };
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

function firstError(problems: Problem[]): CertificateError | undefined {
  const p = problems.find((x) => x.severity === "error");
  if (!p) return undefined;
  return new CertificateError(p.message, {
    code: p.code,
    hint: `${p.hint ? p.hint + " " : ""}(--force connects anyway.)`,
  });
}

async function tokenCommand(ctx: Context): Promise<number> {
  const url = required(ctx.values, "url", "token");
  const broker = parseBrokerUrl(url);
  const timeoutMs = seconds(ctx.values.timeout, "--timeout", 20) * 1000;
  const { stores, identity, problems } = await offline(ctx, "token");
  const blocking = ctx.values.force ? undefined : firstError(problems);
  if (blocking) throw blocking;
  const id = connectClientId(identity, ctx.values["client-id"], ctx.values.force);
  progress(
    ctx,
    `✓ keystore ${stores.keystorePath}: ${identity.format}, ${id} (${ms(stores.timings.keystore)})`,
  );
  // Errors and warnings only: `inspect` and `check` show the informational findings.
  for (const p of problems) {
    if (p.severity !== "info") progress(ctx, `${MARK[p.severity]} ${p.severity}: ${p.message}`);
  }
  const timings: Partial<Record<Stage, number>> = {
    store: (stores.timings.keystore ?? 0) + (stores.timings.truststore ?? 0),
  };
  const { fetchToken } = await import("./lib/fetch_token.ts");
  const token = await fetchToken({
    url: broker.url,
    identity,
    trust: stores.trust,
    clientId: id,
    timeoutMs,
    onStage: (stage: Stage, elapsed: number) => {
      timings[stage] = elapsed;
      progress(ctx, `✓ ${stage} (${ms(elapsed)})`);
    },
  });
  if (ctx.json) {
    ctx.io.out(JSON.stringify(
      {
        ok: true,
        token: token.token,
        clientId: id,
        url: broker.url,
        tenant: token.tenant,
        issuer: token.issuer,
        subject: token.subject,
        issuedAt: token.issuedAt,
        expiresAt: token.expiresAt,
        claims: token.claims,
        timings: roundTimings(timings),
      },
      null,
      2,
    ));
  } else {
    progress(ctx, `✓ token for ${token.subject ?? id}, expires ${token.expiresAt}`);
    ctx.io.out(token.token);
  }
  return ExitCode.OK;
}

function plural(n: number, prefix: string, noun: string): string {
  return `${prefix}${n} ${noun}${n === 1 ? "" : "s"}`;
}

function ms(value: number | undefined): string {
  return value === undefined ? "-" : `${Math.round(value)} ms`;
}

function roundTimings(t: Partial<Record<Stage, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round((v ?? 0) * 10) / 10]));
}

interface StageReport {
  stage: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

async function checkCommand(ctx: Context): Promise<number> {
  const url = required(ctx.values, "url", "check");
  const broker = parseBrokerUrl(url);
  const timeoutMs = seconds(ctx.values.timeout, "--timeout", 20) * 1000;
  const stages: StageReport[] = [];
  const report = (stage: string, ok: boolean, elapsed: number, detail?: string) => {
    stages.push({ stage, ok, ms: Math.round(elapsed * 10) / 10, detail });
    if (!ctx.json) {
      ctx.io.out(
        `${ok ? "✓" : "✗"} ${stage.padEnd(12)} ${ms(elapsed).padStart(8)}  ${detail ?? ""}`
          .trimEnd(),
      );
    }
  };
  let problems: Problem[] = [];
  let current = "keystore";
  let stageStart = performance.now();
  try {
    const stores = await loadStores(ctx.values, "check", (kind, loaded) => {
      if (kind === "keystore") {
        const { identity } = loaded;
        const leaf = identity!.chain[0]?.summary;
        report(
          "keystore",
          true,
          loaded.timings.keystore ?? 0,
          `${identity!.format}${identity!.alias ? ` alias "${identity!.alias}"` : ""}, ${
            leaf ? describeKey(leaf) : identity!.keyType
          }, chain of ${identity!.chain.length}`,
        );
        current = "truststore";
      } else {
        const trust = loaded.trust!;
        report(
          "truststore",
          true,
          loaded.timings.truststore ?? 0,
          plural(trust.certificates.length, `${trust.format}, `, "certificate"),
        );
      }
      stageStart = performance.now();
    });
    const identity = stores.identity!;
    current = "certificates";
    stageStart = performance.now();
    problems = diagnose({ identity, trust: stores.trust, clientId: ctx.values["client-id"] });
    const blocking = firstError(problems);
    const counts = ["error", "warning"].map((s) => {
      const n = problems.filter((p) => p.severity === s).length;
      return n ? `${n} ${s}${n === 1 ? "" : "s"}` : "";
    }).filter(Boolean).join(", ");
    if (blocking && !ctx.values.force) throw blocking;
    const id = connectClientId(identity, ctx.values["client-id"], ctx.values.force);
    report(
      "certificates",
      true,
      performance.now() - stageStart,
      `${id}; ${counts || "no errors or warnings"}`,
    );
    printStageProblems(ctx, problems);
    const { fetchToken } = await import("./lib/fetch_token.ts");
    current = "dns";
    stageStart = performance.now();
    const token = await fetchToken({
      url: broker.url,
      identity,
      trust: stores.trust,
      clientId: id,
      timeoutMs,
      onStage: (stage: Stage, elapsed: number, detail?: string) => {
        report(stage, true, elapsed, detail);
        current = nextStage(stage);
        stageStart = performance.now();
      },
    });
    if (!stages.some((s) => s.stage === "token")) {
      report("token", true, performance.now() - stageStart, `expires ${token.expiresAt}`);
    }
    if (ctx.json) {
      ctx.io.out(JSON.stringify(
        {
          ok: true,
          clientId: id,
          url: broker.url,
          stages,
          problems,
          tenant: token.tenant,
          expiresAt: token.expiresAt,
        },
        null,
        2,
      ));
    } else {
      ctx.io.out(`ok: ${id} can connect to ${broker.url} and get a token`);
    }
    return ExitCode.OK;
  } catch (error) {
    const stage = error instanceof C8yError && error.stage !== "usage" ? error.stage : current;
    const label = stage === "store" ? current : stage === "certificate" ? "certificates" : stage;
    report(label, false, performance.now() - stageStart, scrub(errorMessage(error)));
    if (label === "certificates") {
      printStageProblems(ctx, problems.filter((p) => p.message !== errorMessage(error)));
    }
    if (error instanceof C8yError) {
      (error as C8yError & { checkStages?: StageReport[] }).checkStages = stages;
    }
    throw error;
  }
}

/** Lists the offline problems under the certificates stage of `check`. */
function printStageProblems(ctx: Context, problems: Problem[]): void {
  if (ctx.json) return;
  for (const p of problems) ctx.io.out(`    ${MARK[p.severity]} ${p.code}: ${p.message}`);
}

function nextStage(stage: Stage): string {
  const order = ["dns", "tcp", "tls", "mqtt", "subscribe", "token"];
  return order[order.indexOf(stage) + 1] ?? stage;
}

async function emulateCommand(ctx: Context): Promise<number> {
  const trustPaths = ctx.values.trust ?? [];
  if (trustPaths.length === 0) required(ctx.values, "trust", "emulate");
  const certPath = required(ctx.values, "server-cert", "emulate");
  const keyPath = required(ctx.values, "server-key", "emulate");
  const { port, tokenLifetimeSeconds } = emulatorSettings(ctx.values);
  const trustedCaPems: string[] = [];
  const type = storeType(ctx.values["trust-type"], "--trust-type");
  for (const path of trustPaths) {
    const anchors = await readTrustStore(ctx.values, path, "trust store", {
      type,
      passwordOption: "trust-password",
    });
    for (const c of anchors.certificates) trustedCaPems.push(c.pem);
  }
  const serverCertPem = new TextDecoder().decode(
    await readStoreFile(certPath, "server certificate"),
  );
  const serverKeyPem = new TextDecoder().decode(await readStoreFile(keyPath, "server key"));
  const { startEmulator } = await import("./lib/emulator/mod.ts");
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

// ---------------------------------------------------------------------------------------------
// Entry point.

/**
 * Runs the command line and returns the exit code; only {@linkcode main} exits.
 *
 * @param args The arguments, as in `Deno.args`.
 * @param io Where output goes.
 * @returns The exit code (see the table in the README).
 */
export async function run(args: string[], io: Io = consoleIo): Promise<number> {
  // Until the arguments parse, take the output flags from the raw words.
  let json = args.includes("--json");
  let verbose = args.includes("--verbose") || args.includes("-v");
  try {
    const { command, values } = parse(args);
    json = values.json ?? false;
    verbose = values.verbose ?? false;
    if (values.version) {
      io.out(`c8y-mqtt-cert ${VERSION}`);
      return ExitCode.OK;
    }
    if (values.help || command === undefined) {
      if (command === undefined && !values.help) {
        io.err(HELP);
        return ExitCode.USAGE;
      }
      io.out(HELP);
      return ExitCode.OK;
    }
    // Passwords given on the command line are scrubbed from error reports.
    for (const [, spec] of passwordSpecs(values, command)) {
      if (spec.kind === "pass") secrets.add(spec.value);
    }
    validate(command, values);
    await checkPermissions(command, values, args);
    const ctx: Context = { io, values, json, quiet: values.quiet ?? false };
    switch (command) {
      case "inspect":
        return await inspectCommand(ctx);
      case "token":
        return await tokenCommand(ctx);
      case "check":
        return await checkCommand(ctx);
      case "emulate":
        return await emulateCommand(ctx);
    }
  } catch (error) {
    const safeIo: Io = { out: (l) => io.out(scrub(l)), err: (l) => io.err(scrub(l)) };
    return reportError(error, safeIo, { json, verbose });
  }
}

function asC8yError(error: unknown): C8yError {
  if (error instanceof C8yError) return error;
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    const message = error.message.replace(/, run again with.*$/, "");
    // e.g. `Requires read access to "/etc/ssl/x"` or `Requires env access to "READABLE_STREAM"`.
    const wanted = message.match(/Requires (read|net|env|sys|run|write) access to "([^"]+)"/);
    const flag = wanted ? `--allow-${wanted[1]}=${wanted[2]}` : undefined;
    return new PermissionError(flag ? `${message}: add ${flag}` : message, {
      code: "PERMISSION_MISSING",
      hint: wanted?.[1] === "env"
        ? "Run deno with --ignore-env: it silences the look-ups of the emulator's dependencies."
        : `Run deno with ${flag ?? "the flag Deno names"} as well.`,
      cause: error,
    });
  }
  return new C8yError(`Unexpected failure: ${errorMessage(error)}`, {
    code: "INTERNAL",
    hint: "This is a bug in c8y-mqtt-cert; run again with --verbose and report the output.",
    cause: error,
  });
}

function reportError(error: unknown, io: Io, opts: { json: boolean; verbose: boolean }): number {
  const e = asC8yError(error);
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
    const stages = (e as { checkStages?: StageReport[] }).checkStages;
    if (stages) body.stages = stages;
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

/** Runs the command line with `Deno.args` and exits with its code. */
export async function main(): Promise<never> {
  const code = await run(Deno.args);
  Deno.exit(code);
}

if (import.meta.main) await main();
