/**
 * The text of `--help`: the overview (`c8y-mqtt-cert --help`) and one page per command
 * (`c8y-mqtt-cert token --help`, `c8y-mqtt-cert help token`) with that command's usage, options,
 * `deno run` permission flags and exit codes. Every option is described once, in `OPTION_HELP`;
 * a command's page lists the options `ALLOWED` (in `options.ts`) gives it.
 *
 * @module
 */

import { EXIT_TABLE } from "./exit_codes.ts";
import { ALLOWED, type Command, COMMANDS, CONNECT_OPTIONS, STORE_OPTIONS } from "./options.ts";
import { VERSION } from "./version.ts";

/** One option's line: the value it takes (if any) and what it does. */
interface OptionHelp {
  /** The value's name in the usage, e.g. `PATH`; none for a switch. */
  value?: string;
  /** What it does, one or two lines (wrapped at the description column). */
  text: string;
}

/** Every option of every command, described once. */
const OPTION_HELP: Record<string, OptionHelp> = {
  url: {
    value: "URL",
    text: "ssl://host:port, mqtts://host:port, tls://host:port or host[:port]; the default " +
      "port is 8883. ws://, wss://, tcp://, mqtt:// and https:// are refused (the port goes " +
      "here: there is no --port); with --via rest an https:// URL is the REST address.",
  },
  "client-id": {
    value: "ID",
    text: "Override d:<CN>; must be <CN>, d:<CN> or d:<CN>:<template>.",
  },
  timeout: {
    value: "SECONDS",
    text: "Per-attempt timeout for connecting and for the token reply (default 20).",
  },
  force: {
    value: undefined,
    text: "Connect even when an offline check found an error (to see what the broker says).",
  },
  via: {
    value: "mqtt|rest",
    text: "How to get the token (default mqtt): rest posts to /devicecontrol/deviceAccessToken " +
      "over HTTPS with the device certificate (check then shows dns, tcp, tls, http, token).",
  },
  "rest-url": {
    value: "URL",
    text: "With --via rest: https://host[:port] (default: the --url host on 443); --url may " +
      "then be left out.",
  },
  "send-chain": {
    text: "With --via rest: send the device's chain in the X-Ssl-Cert-Chain header.",
  },
  watch: {
    text: "Stay connected, renew the token once half its lifetime has passed (and after a " +
      "reconnect) and print each new one on its own line (--json: one JSON object per line) " +
      "until Ctrl-C or SIGTERM (exit 0). Lost connections and reconnects go to stderr " +
      '(--json: as JSON lines, {"event": "connection-lost" | "reconnected" | ..., "time"}).',
  },
  keystore: { value: "PATH", text: "The device's key and certificate chain: JKS, PKCS#12 or PEM." },
  "keystore-type": { value: "T", text: "jks | pkcs12 | pem (default: detected from the content)." },
  "keystore-password": {
    value: "P",
    text: "Password SPEC (below). Asked on the terminal when needed and not given.",
  },
  "key-password": {
    value: "P",
    text: "The key entry's own password, when it differs from the store's (JKS).",
  },
  alias: { value: "NAME", text: "The key entry to use when the keystore holds several." },
  key: { value: "PATH", text: "The private key (PEM) when --keystore is a PEM certificate file." },
  truststore: {
    value: "PATH",
    text: "The server's CA: JKS, PKCS#12 or PEM. Without it, Deno's default roots.",
  },
  "truststore-type": { value: "T", text: "jks | pkcs12 | pem | der (default: detected)." },
  "truststore-password": {
    value: "P",
    text: "Password SPEC; a JKS truststore opens without one (integrity unchecked).",
  },
  trust: {
    value: "PATH",
    text: "CA certificates the emulator trusts (PEM, JKS or PKCS#12); repeatable.",
  },
  "trust-type": { value: "T", text: "jks | pkcs12 | pem (default: detected)." },
  "trust-password": { value: "P", text: "Password SPEC of the --trust store." },
  "server-cert": { value: "PEM", text: "The emulator's server certificate (with its chain)." },
  "server-key": { value: "PEM", text: "The emulator's server key." },
  host: {
    value: "HOST",
    text: "Listen address: 127.0.0.1 (default), another 127.x.y.z, ::1, or localhost " +
      "(= 127.0.0.1); loopback only.",
  },
  port: { value: "N", text: "Listen port (default 8883, 0 = any free port)." },
  "rest-port": {
    value: "N",
    text: "Also serve POST /devicecontrol/deviceAccessToken (0 = any port).",
  },
  tenant: { value: "ID", text: "Tenant id put in tokens (default t12345)." },
  "token-lifetime": {
    value: "S",
    text: "Token lifetime in seconds (default 3600; the platform's minimum is 300, the " +
      "emulator's 1, for tests of token renewal).",
  },
  manifest: {
    value: "FILE",
    text: "CSV with a header naming some of keystore,password,alias,client_id,key (keystore " +
      "required; password a SPEC; paths relative to the manifest), or one JSON object per line " +
      "with those keys.",
  },
  keystores: {
    value: "DIR",
    text: "Every .p12, .pfx, .jks, .keystore of DIR, and NAME.key with NAME.chain.pem (or " +
      "NAME.pem); --keystore-password P for all of them.",
  },
  offline: { text: "Only the offline checks." },
  "no-token": { text: "Connect, but ask no token." },
  concurrency: { value: "N", text: "Devices at once (default 50)." },
  junit: {
    value: "FILE",
    text: "A JUnit XML report, one test case per device (written whole, renamed).",
  },
  json: {
    text: 'One JSON object on stdout (errors too: {"ok": false, "error": {...}}).',
  },
  quiet: { text: "No progress lines on stderr." },
  verbose: {
    text: "Also the connection's details (TLS version, server certificate, CONNACK) and the " +
      "underlying errors of failures; never secrets.",
  },
  help: { text: "This text." },
  version: { text: "The version." },
};

/** Short forms of the options that have one. */
const SHORT: Record<string, string> = { quiet: "q", verbose: "v", help: "h", version: "V" };

/** Each command: its usage line, what it does, and how `deno run` must be started for it. */
const COMMAND_HELP: Record<
  Command,
  { usage: string; about: string; permissions: string; options?: Record<string, OptionHelp> }
> = {
  token: {
    usage: "--url URL --keystore PATH [store options] [--truststore PATH] [--json]\n" +
      "[--via mqtt|rest [--rest-url URL] [--send-chain]] [--watch]",
    about: "Connect as d:<certificate CN>, request a token (empty publish on s/uat) and print\n" +
      "the JWT from the '71,<JWT>' reply on s/dat alone on stdout:\n" +
      "TOKEN=$(c8y-mqtt-cert token ...). Progress goes to stderr.",
    permissions: "deno run --ignore-env --allow-read=<keystore>[,<truststore>][,<key>] \\\n" +
      "  --allow-net=<host>:<port> cli.ts token --url ... --keystore ...\n" +
      "(--ignore-env: MQTT.js's dependencies look up environment variables when they load;\n" +
      "--via rest: only --allow-net=<REST host>:<port>, e.g. <host>:443, and no --ignore-env:\n" +
      "REST loads no MQTT library)",
  },
  check: {
    usage: "--url URL --keystore PATH [store options] [--truststore PATH] [--json]\n" +
      "[--via mqtt|rest [--rest-url URL] [--send-chain]]",
    about: "The path to a token, one line per stage with its time and state (✓ passed, ! with\n" +
      "warnings or not yet confirmed, ✗ failed): store, certificate, dns, tcp, tls, mqtt,\n" +
      "subscribe, token. Stops at the first failure and explains it.",
    permissions: "deno run --ignore-env --allow-read=<keystore>[,<truststore>][,<key>] \\\n" +
      "  --allow-net=<host>:<port> cli.ts check --url ... --keystore ...\n" +
      "(--ignore-env: MQTT.js's dependencies look up environment variables when they load;\n" +
      "--via rest: only --allow-net=<REST host>:<port>, e.g. <host>:443, and no --ignore-env:\n" +
      "REST loads no MQTT library)",
  },
  inspect: {
    usage: "[--keystore PATH [store options]] [--truststore PATH] [--json]",
    about: "Offline: the entries, chain (leaf first), validity, fingerprints, the client id the\n" +
      "device would use, and the problems found. Exits 4 when a problem is an error.",
    permissions: "deno run --allow-read=<keystore>[,<truststore>][,<key>] cli.ts inspect ...",
  },
  emulate: {
    usage: "--trust PATH --server-cert PEM --server-key PEM [--host HOST] [--port N]\n" +
      "[--rest-port N] [--tenant ID] [--token-lifetime S] [--json]",
    about: "A local stand-in for Cumulocity's MQTT certificate endpoint (for demos and tests).\n" +
      "Prints a line with mqtts://HOST:PORT on stdout once it accepts connections, one line per\n" +
      "event on stderr (each s/us line a device sends too). A line typed on stdin,\n" +
      "'<client id> <SmartREST line>' (e.g. 'd:device01 510,device01'), is sent to that device\n" +
      'on s/ds. --json: the same as one JSON object per line (the listening line with "url"\n' +
      'and "restUrl", each event with "kind" and "time"). Listens on loopback only.',
    permissions: "deno run --ignore-env --allow-read=<trust>,<cert>,<key> --allow-net=<host> \\\n" +
      "  cli.ts emulate ...\n" +
      "(--ignore-env: the broker library's dependencies look up environment variables when they\n" +
      "load)",
    options: {
      json: {
        text: 'One JSON object per line: {"kind": "listening", "url", "restUrl"} on stdout, ' +
          'each event on stderr (errors: {"ok": false, "error": {...}}).',
      },
    },
  },
  fleet: {
    usage: "--manifest FILE | --keystores DIR [--url URL] [--truststore PATH]\n" +
      "[--offline | --no-token] [--concurrency N] [--json] [--junit FILE]",
    about: "Check a batch of devices in one run: every keystore and certificate offline, client\n" +
      "ids used twice, then (unless --offline) a connection and a token request each,\n" +
      "--concurrency at a time. Progress on stderr, a table of failure classes at the end.\n" +
      "Exits 0 when every device passed, otherwise with the code of the most common failure\n" +
      "class (a tie goes to the class a device meets first: store, certificate, network, TLS,\n" +
      "MQTT, token).",
    permissions: "deno run --ignore-env \\\n" +
      "  --allow-read=<manifest>,<the files it names> | <DIR>[,<directory of --junit FILE>] \\\n" +
      "  --allow-net=<host>:<port> [--allow-write=<directory of --junit FILE>] \\\n" +
      "  cli.ts fleet ...   (--offline: no --ignore-env, no --allow-net; --junit FILE needs read\n" +
      "  and write access to FILE's directory: the report is renamed into place)",
    options: {
      "keystore-password": { value: "P", text: "Password SPEC of every keystore of --keystores." },
      timeout: { value: "S", text: "Per attempt (default 20)." },
      json: { text: "One JSON object per device as it finishes, then the summary object." },
    },
  },
};

const PASSWORD_SPEC = `PASSWORD SPEC (as openssl's -passin)
  pass:VALUE   the value itself (visible in the process list: prefer env: or file:)
  env:NAME     the environment variable NAME (needs --allow-env=NAME)
  file:PATH    the first line of PATH (needs read permission for PATH)
  stdin        the first line of standard input; on a terminal, asked without echo
  anything else is taken literally.`;

const COLUMN = 26;

/** `  --name VALUE          text`, the text wrapped to 100 columns at {@linkcode COLUMN}. */
function optionLines(
  names: readonly string[],
  overrides: Record<string, OptionHelp> = {},
): string[] {
  return names.map((name) => {
    const { value, text } = overrides[name] ?? OPTION_HELP[name];
    const short = SHORT[name] ? `-${SHORT[name]}, ` : "";
    const head = `  ${short}--${name}${value ? ` ${value}` : ""}`;
    const [first, ...rest] = wrap(text, 100 - COLUMN);
    const pad = head.length < COLUMN ? " ".repeat(COLUMN - head.length) : "\n" + " ".repeat(COLUMN);
    return [head + pad + first, ...rest.map((line) => " ".repeat(COLUMN) + line)].join("\n");
  });
}

/** The words of `text` in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines = [""];
  for (const word of text.split(/\s+/)) {
    const last = lines.length - 1;
    if (lines[last] === "") lines[last] = word;
    else if (lines[last].length + 1 + word.length <= width) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

/** The option sections, in the order of the pages. */
const GROUPS: [string, readonly string[]][] = [
  ["CONNECTION", [...CONNECT_OPTIONS, "watch"]],
  ["STORE OPTIONS", STORE_OPTIONS],
  ["EMULATOR OPTIONS", [
    "trust",
    "trust-type",
    "trust-password",
    "server-cert",
    "server-key",
    "host",
    "port",
    "rest-port",
    "tenant",
    "token-lifetime",
  ]],
  ["FLEET OPTIONS", ["manifest", "keystores", "offline", "no-token", "concurrency", "junit"]],
  ["OUTPUT", ["json", "quiet", "verbose", "help", "version"]],
];

const indent = (text: string): string => text.split("\n").map((l) => `  ${l}`).join("\n");

function optionSections(
  allowed: (name: string) => boolean,
  overrides?: Record<string, OptionHelp>,
): string[] {
  return GROUPS.flatMap(([title, names]) => {
    const taken = names.filter(allowed);
    return taken.length > 0 ? [`${title}\n${optionLines(taken, overrides).join("\n")}`] : [];
  });
}

const NOTE_PERMISSIONS = "Add --allow-env=NAME for env:NAME passwords and the file of a file: " +
  "password to\n--allow-read. A missing permission is reported with the exact flag to add " +
  "(exit 9).";

/**
 * The page of one command: usage, what it does, its options (only those it takes), password
 * specs when it takes a password, its `deno run` flags and the exit codes.
 *
 * @param command The command.
 * @returns The text, ending with the exit table.
 */
export function commandHelp(command: Command): string {
  const { about, permissions, options } = COMMAND_HELP[command];
  const allowed = ALLOWED[command];
  const sections = [
    `c8y-mqtt-cert ${command}\n${indent(about)}`,
    `USAGE\n${usageLines(command, command.length)}`,
    ...optionSections((name) => allowed.includes(name), options),
  ];
  if (allowed.some((name) => name.endsWith("password"))) sections.push(PASSWORD_SPEC);
  sections.push(`PERMISSIONS (deno run)\n${indent(permissions)}\n${indent(NOTE_PERMISSIONS)}`);
  sections.push(EXIT_TABLE);
  return `${sections.join("\n\n")}\n`;
}

/**
 * `  c8y-mqtt-cert <command> <usage>`, the command padded to `width` and the usage's further
 * lines aligned under its first option.
 */
function usageLines(command: Command, width: number): string {
  const head = `  c8y-mqtt-cert ${command.padEnd(width)} `;
  const [first, ...rest] = COMMAND_HELP[command].usage.split("\n");
  return [head + first, ...rest.map((line) => " ".repeat(head.length) + line)].join("\n");
}

/** The overview: usage and purpose of every command, every option, permissions and exit codes. */
export const HELP: string = [
  `c8y-mqtt-cert ${VERSION}: connect a device to Cumulocity IoT over MQTT with its X.509\n` +
  "certificate, and fetch its JWT session token; says what is wrong when that fails.",
  `USAGE\n${COMMANDS.map((c) => usageLines(c, 7)).join("\n")}\n` +
  "  c8y-mqtt-cert help COMMAND   (or COMMAND --help): that command's options and permissions",
  `COMMANDS\n${
    COMMANDS.map((c) => {
      const [first, ...rest] = COMMAND_HELP[c].about.split("\n");
      return [`  ${c.padEnd(10)}${first}`, ...rest.map((l) => `${" ".repeat(12)}${l}`)].join("\n");
    }).join("\n")
  }`,
  ...optionSections(() => true),
  PASSWORD_SPEC,
  `PERMISSIONS (deno run)\n${
    COMMANDS.map((c) => indent(`${c}: ${COMMAND_HELP[c].permissions}`)).join("\n")
  }\n${indent(NOTE_PERMISSIONS)}\n` +
  "  Installed or compiled: deno install --global --name c8y-mqtt-cert --allow-read --allow-net \\\n" +
  "                 --allow-env cli.ts",
  EXIT_TABLE,
].join("\n\n") + "\n";
