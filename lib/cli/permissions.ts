/**
 * The permissions a command line needs, worked out from its arguments and checked before any
 * work, and the `deno run` line that grants them.
 *
 * @module
 */

import { PermissionError } from "../errors.ts";
import { hostPort, parseBrokerUrl } from "../connect/broker_url.ts";
import { DEFAULT_HOSTNAME, listenAddress } from "../emulator/settings.ts";
import type { Command, Values } from "./options.ts";
import { tokenRoute, tokenTarget } from "./option_values.ts";
import { passwordSpecs } from "./passwords.ts";

interface Needs {
  read: string[];
  net: string[];
  env: string[];
  write: string[];
  /**
   * Whether the command loads an npm library whose dependencies look up environment variables
   * when they load (MQTT.js for `token`, `check` and a connecting `fleet`, aedes for `emulate`):
   * `--ignore-env` makes those look-ups find nothing instead of asking or failing. `token` and
   * `check` with `--via rest` do not load MQTT.js (nor any npm library that looks variables up).
   */
  ignoreEnv: boolean;
}

/** The first variable MQTT.js's dependencies look up when they load (`readable-stream`). */
const LOOKED_UP_AT_LOAD = "READABLE_STREAM";

function neededPermissions(command: Command, values: Values): Needs {
  const needs: Needs = {
    read: [],
    net: [],
    env: [],
    write: [],
    ignoreEnv:
      ((command === "token" || command === "check") && tokenRoute(values).via === "mqtt") ||
      command === "emulate" || (command === "fleet" && !values.offline),
  };
  const fileOptions = command === "emulate"
    ? [...(values.trust ?? []), values["server-cert"], values["server-key"]]
    : command === "fleet"
    ? [values.manifest, values.keystores, values.truststore]
    : [values.keystore, values.key, values.truststore];
  for (const path of fileOptions) if (path) needs.read.push(path);
  for (const [, spec] of passwordSpecs(values, command)) {
    if (spec.kind === "file") needs.read.push(spec.path);
    if (spec.kind === "env") needs.env.push(spec.name);
  }
  if (command === "token" || command === "check") {
    // Over REST only the HTTPS address is contacted, not the MQTT broker.
    const { broker, rest } = tokenTarget(values, command);
    const contacted = rest ?? broker;
    if (contacted !== undefined) needs.net.push(hostPort(contacted.host, contacted.port));
  }
  if (command === "fleet" && !values.offline && values.url) {
    const broker = parseBrokerUrl(values.url);
    needs.net.push(hostPort(broker.host, broker.port));
  }
  if (command === "emulate") {
    // The address really listened on (localhost is 127.0.0.1), IPv6 in brackets as Deno's
    // --allow-net wants it; one grant covers the MQTT and the REST port.
    const address = listenAddress(values.host ?? DEFAULT_HOSTNAME);
    needs.net.push(address.includes(":") ? `[${address}]` : address);
  }
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

/**
 * Whether a look-up of an environment variable the command did not ask for ends quietly: granted
 * (`--allow-env`) or ignored (`--ignore-env`, reported as "denied" but returning nothing, unlike
 * `--deny-env`, which throws). Without either, Deno would ask (or fail under `--no-prompt`).
 */
function envLookupsQuiet(): boolean {
  const { state } = Deno.permissions.querySync({ name: "env", variable: LOOKED_UP_AT_LOAD });
  if (state === "granted") return true;
  if (state !== "denied") return false;
  try {
    Deno.env.get(LOOKED_UP_AT_LOAD);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks that Deno grants every permission the command line needs, before any work; throws a
 * `PermissionError` naming the flags and the whole `deno run` line otherwise.
 */
export async function checkPermissions(
  command: Command,
  values: Values,
  args: string[],
  more: Partial<Pick<Needs, "read" | "env" | "write">> = {},
): Promise<void> {
  const needs = neededPermissions(command, values);
  // What only a file the arguments name can tell (a fleet manifest's keystores, --junit).
  needs.read.push(...more.read ?? []);
  needs.env.push(...more.env ?? []);
  needs.write.push(...more.write ?? []);
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
  for (const path of needs.write) {
    const { state } = await Deno.permissions.query({ name: "write", path });
    if (state !== "granted") missing.push(`writing in "${path}" needs --allow-write=${path}`);
  }
  if (needs.ignoreEnv && !envLookupsQuiet()) {
    const library = command === "emulate" ? "the MQTT broker library (aedes)" : "MQTT.js";
    missing.push(
      `loading ${library}, whose dependencies look up environment variables, needs --ignore-env`,
    );
  }
  if (missing.length === 0) return;
  const line = denoRunLine(needs, args);
  const variables = line.moved.map(([option, name]) =>
    `the ${option.slice(2).replace(/-password$/, " password")} into the variable ${name}`
  );
  const moved = variables.length === 0 ? "" : `Put ${variables.join(" and ")} (a password ` +
    "never goes into a suggested command line), then run: ";
  throw new PermissionError(missing.join("; "), {
    code: "PERMISSION_MISSING",
    hint: `${moved || "Run: "}${line.text}`,
  });
}

/**
 * The `deno run` line that grants what the command needs. A password given on the command line
 * (`pass:VALUE` or a bare value) is never repeated, and never replaced by a mask the tool would
 * take literally: it moves to `env:NAME` (`--keystore-password` to `KEYSTORE_PASSWORD`, ...) with
 * `--allow-env=NAME`, and `moved` names the variables the user must set.
 */
function denoRunLine(
  needs: Needs,
  args: string[],
): { text: string; moved: [option: string, variable: string][] } {
  const moved: [string, string][] = [];
  const toEnv = (option: string, spec: string): string => {
    if (/^(env|file):|^stdin$/.test(spec)) return shellQuote(spec);
    const name = option.slice(2).toUpperCase().replaceAll("-", "_");
    moved.push([option, name]);
    return `env:${name}`;
  };
  const shown = args.map((arg, i) => {
    const inline = arg.match(/^(--[\w-]*password)=(.*)$/);
    if (inline) return `${inline[1]}=${toEnv(inline[1]!, inline[2]!)}`;
    const option = args[i - 1] ?? "";
    return /^--[\w-]*password$/.test(option) ? toEnv(option, arg) : shellQuote(arg);
  });
  const env = [...new Set([...needs.env, ...moved.map(([, name]) => name)])];
  const flags = needs.ignoreEnv ? ["--ignore-env"] : [];
  if (needs.read.length) flags.push(`--allow-read=${[...new Set(needs.read)].join(",")}`);
  if (needs.net.length) flags.push(`--allow-net=${needs.net.join(",")}`);
  if (env.length) flags.push(`--allow-env=${env.join(",")}`);
  if (needs.write.length) flags.push(`--allow-write=${[...new Set(needs.write)].join(",")}`);
  const main = Deno.mainModule.startsWith("file:")
    ? relativeToCwd(new URL(Deno.mainModule).pathname)
    : Deno.mainModule;
  return { text: ["deno run", ...flags, main, ...shown].join(" "), moved };
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
