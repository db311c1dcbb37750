/**
 * The bad-input corpus: failing peers and bad inputs for `token`, `check` and `inspect`, each run
 * as a subprocess under exactly the permission flags it needs (see `support/cli.ts`). Together
 * with the table in `cli_inspect_test.ts` (store files and passwords), it covers the list.
 *
 * Every case runs twice, in human mode and with `--json`, and asserts:
 * - the exit code of the failure class and the error `code` (and `stage`, `returnCode` where set);
 * - human mode: stderr holds only progress lines (stages `✓`, `✗`, `!` and the findings under
 *   them) before a line `error: …` that
 *   names the culprit (the file, host and port, client id, ...), then at most a `hint: …` line;
 * - `--json`: one object `{"ok": false, "error": {...}}` on stdout, nothing on stderr;
 * - no stack trace, and no secret (the passwords used, a token) in stdout or stderr.
 *
 * Peers: the emulator (`lib/emulator/`), mosquitto (skipped visibly unless installed or
 * `REQUIRE_MOSQUITTO=1`), and small scripted servers in this file (plain TCP, TLS with
 * `fixtures/server/server.pem`, and a minimal MQTT 3.1.1 server that misbehaves on purpose).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliPermissions, type CliResult, runCli } from "../support/cli.ts";
import {
  freePort,
  type Mosquitto,
  type MosquittoOptions,
  mosquittoTest,
  startMosquitto,
} from "../support/mosquitto.ts";
import { startFixtureEmulator } from "../support/emulator.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url);
const text = (p: string): string => Deno.readTextFileSync(new URL(p, FIXTURES));

const PASSWORD = "changeit";
const TRUST = "fixtures/server/server-truststore.jks";
/** Every password any case hands to the CLI: none may ever be printed. */
const SECRETS = [
  PASSWORD,
  "keysecret",
  "wrong-trust-pw-7",
  "wrong-key-pw-8",
  "wrong-env-pw-9",
  "stdin-key-pw-10",
  "url-secret-pw-11",
];
/** The start of a compact JWT (`{"` base64url-encoded): a token must never be printed here. */
const JWT = /eyJ[\w-]{4,}\.[\w-]{4,}/;
/** Progress lines `token` writes to stderr before an error: stages, and findings under them. */
const PROGRESS = /^(✓|✗|!) |^ {4}(✗|!) [A-Z0-9_]+: /;

/** A port nothing listens on (taken at load time; each case fails fast with ECONNREFUSED). */
const CLOSED = freePort();
const CLOSED_URL = `ssl://127.0.0.1:${CLOSED}`;

/** One bad input or failing peer and what the CLI must make of it. */
interface Case {
  /** What is wrong, as the test step's name. */
  name: string;
  /** The command line after `cli.ts` (without `--json`). */
  args: string[];
  /** Exactly the permissions the command needs: those {@linkcode granted} gives by default. */
  perms?: CliPermissions;
  /** The exit code of the failure class. */
  exit: number;
  /** The error code (several when the environment decides, e.g. DNS without a resolver). */
  code: string | string[];
  /** Text the error line must contain: the culprit. */
  names: string | string[];
  /** The stage the error is reported in. */
  stage?: string;
  /** The CONNACK return code, for MQTT refusals. */
  returnCode?: number;
  /** What the hint must say. */
  hint?: RegExp;
  /** Standard input for both runs. */
  stdin?: string;
  /** Environment variables for both runs. */
  env?: Record<string, string>;
}

async function runCase(c: Case): Promise<void> {
  const perms = c.perms ?? granted(c.args);
  const options = { stdin: c.stdin, env: c.env };
  const codes = typeof c.code === "string" ? [c.code] : c.code;
  const names = typeof c.names === "string" ? [c.names] : c.names;

  const human = await runCli(c.args, perms, options);
  const where = describe(c.args, human);
  assert.equal(human.code, c.exit, `exit code of ${where}`);
  const lines = human.stderr.trimEnd().split("\n");
  const at = lines.findIndex((l) => !PROGRESS.test(l));
  assert.ok(at >= 0, `an error line in ${where}`);
  const errorLine = lines[at]!;
  assert.match(
    errorLine,
    /^error: \S/,
    `the first line after progress is "error: ..." in ${where}`,
  );
  for (const name of names) {
    assert.ok(errorLine.includes(name), `"${errorLine}" should name ${name}`);
  }
  const rest = lines.slice(at + 1);
  assert.ok(rest.length <= 1, `one error line and a hint at most:\n${human.stderr}`);
  if (rest.length === 1) assert.match(rest[0]!, /^hint: \S/, where);
  assertClean(human.stdout, human.stderr, where);

  const jsonArgs = [...c.args, "--json"];
  const json = await runCli(jsonArgs, perms, options);
  const jwhere = describe(jsonArgs, json);
  assert.equal(json.code, c.exit, `exit code of ${jwhere}`);
  assert.equal(json.stderr, "", `--json writes nothing to stderr: ${jwhere}`);
  let body;
  try {
    body = JSON.parse(json.stdout);
  } catch {
    assert.fail(`stdout is one JSON object: ${jwhere}`);
  }
  assert.equal(body.ok, false, jwhere);
  assert.ok(codes.includes(body.error.code), `code ${body.error.code} in ${codes}: ${jwhere}`);
  assert.equal(body.error.exitCode, c.exit, jwhere);
  assert.equal(typeof body.error.stage, "string", jwhere);
  if (c.stage !== undefined) assert.equal(body.error.stage, c.stage, jwhere);
  assert.equal(typeof body.error.message, "string");
  for (const name of names) {
    assert.ok(body.error.message.includes(name), `"${body.error.message}" should name ${name}`);
  }
  if (body.error.hint !== undefined) assert.equal(typeof body.error.hint, "string");
  if (c.hint !== undefined) assert.match(body.error.hint ?? "", c.hint, jwhere);
  assert.equal(body.error.returnCode, c.returnCode, jwhere);
  assertClean(json.stdout, json.stderr, jwhere);
}

/** A run's command line and output, for failure messages. */
function describe(args: string[], result: CliResult): string {
  return `${args.join(" ")}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

function assertClean(stdout: string, stderr: string, where: string): void {
  for (const output of [stdout, stderr]) {
    assert.ok(!/^\s+at /m.test(output), `no stack trace in ${where}`);
    for (const secret of SECRETS) {
      assert.ok(!output.includes(secret), `the password "${secret}" is printed in ${where}`);
    }
    assert.ok(!JWT.test(output), `no token in ${where}`);
  }
}

/** A `token`/`check` command line for a keystore with the store password. */
function connect(
  command: "token" | "check",
  url: string,
  keystore: string,
  extra: string[] = [],
): string[] {
  return [command, "--url", url, "--keystore", keystore, "--keystore-password", `pass:${PASSWORD}`]
    .concat(extra);
}

/** A `token`/`check` command line for the closed port with exactly the given options. */
function closed(command: "token" | "check", ...options: string[]): string[] {
  return [command, "--url", CLOSED_URL, ...options];
}

/** Options whose value is a file the command reads. */
const FILE_OPTIONS = ["--keystore", "--truststore", "--key"];

/**
 * The permissions a user gives a command line: read for each file it names (a store, a `--key`,
 * a `file:` password), env for each `env:` password and, for `token` and `check`, net for the
 * host and port of `--url`.
 */
function granted(args: string[]): CliPermissions {
  const read: string[] = [];
  const net: string[] = [];
  const env: string[] = [];
  args.forEach((value, i) => {
    const option = args[i - 1] ?? "";
    if (FILE_OPTIONS.includes(option)) read.push(value);
    if (option.endsWith("-password") && value.startsWith("file:")) read.push(value.slice(5));
    if (option.endsWith("-password") && value.startsWith("env:")) env.push(value.slice(4));
    if (option === "--url" && (args[0] === "token" || args[0] === "check")) {
      net.push(new URL(value).host);
    }
  });
  return { read, net, env };
}

// ---------------------------------------------------------------------------------------------
// Offline: stores, certificates, URLs and usage. No peer is needed; those that get as far as
// connecting meet a closed port.

const RSA_JKS = "fixtures/devices/rsa.jks";
const MULTI_JKS = "fixtures/devices/multi.jks";
const RSA_P12 = "fixtures/devices/rsa.openssl3.p12";
const RSA_CHAIN = "fixtures/devices/rsa.chain.pem";

const storeCases: Case[] = [
  {
    name: "token: a JKS file given --keystore-type pkcs12",
    args: connect("token", CLOSED_URL, RSA_JKS, ["--keystore-type", "pkcs12"]),
    exit: 3,
    code: "STORE_FORMAT",
    names: RSA_JKS,
  },
  {
    name: "check: a PKCS#12 file given --keystore-type jks",
    args: connect("check", CLOSED_URL, RSA_P12, ["--keystore-type", "jks"]),
    exit: 3,
    code: "STORE_FORMAT",
    names: RSA_P12,
  },
  {
    name: "inspect: an unknown --keystore-type",
    args: ["inspect", "--keystore", RSA_JKS, "--keystore-type", "der"],
    exit: 2,
    code: "USAGE",
    names: ["--keystore-type", "der"],
  },
  {
    name: "token: an --alias the JKS does not hold",
    args: connect("token", CLOSED_URL, MULTI_JKS, ["--alias", "no-such-alias"]),
    exit: 3,
    code: "STORE_ALIAS_UNKNOWN",
    names: [MULTI_JKS, "no-such-alias"],
  },
  {
    name: "check: no --alias for a JKS with two keys",
    args: connect("check", CLOSED_URL, MULTI_JKS),
    exit: 3,
    code: "STORE_ALIAS_REQUIRED",
    names: MULTI_JKS,
  },
  {
    name: "token: a wrong truststore password",
    args: connect("token", CLOSED_URL, RSA_JKS, [
      "--truststore",
      "fixtures/server/server-truststore.p12",
      "--truststore-password",
      "pass:wrong-trust-pw-7",
    ]),
    exit: 3,
    code: "KEYSTORE_PASSWORD",
    names: "server-truststore.p12",
  },
  {
    name: "check: random bytes as truststore",
    args: connect("check", CLOSED_URL, RSA_JKS, ["--truststore", "fixtures/bad/random.bin"]),
    exit: 3,
    code: "STORE_FORMAT",
    names: "random.bin",
  },
  {
    name: "token: a --key file that does not exist",
    args: closed("token", "--keystore", RSA_CHAIN, "--key", "fixtures/no.key"),
    exit: 3,
    code: "STORE_NOT_FOUND",
    names: "fixtures/no.key",
  },
  {
    name: "token: an encrypted PEM key, no --key-password and no terminal",
    args: closed("token", "--keystore", RSA_CHAIN, "--key", "fixtures/devices/rsa.key.enc.pem"),
    exit: 2,
    code: "PASSWORD_REQUIRED",
    names: "rsa.key.enc.pem",
  },
  {
    name: "check: a wrong --key-password for an encrypted PKCS#8 key",
    args: closed("check", "--keystore", RSA_CHAIN, "--key", "fixtures/devices/ec256.key.enc.pem")
      .concat("--key-password", "pass:wrong-key-pw-8"),
    exit: 3,
    code: "KEY_PASSWORD",
    names: "ec256.key.enc.pem",
  },
  {
    name: "token: a wrong --key-password (from stdin) for a Proc-Type encrypted key",
    args: closed(
      "token",
      "--keystore",
      RSA_CHAIN,
      "--key",
      "fixtures/devices/rsa.key.legacy-enc.pem",
    )
      .concat("--key-password", "stdin"),
    stdin: "stdin-key-pw-10\n",
    exit: 3,
    code: "KEY_PASSWORD",
    names: "rsa.key.legacy-enc.pem",
  },
  {
    name: "token: a wrong store password from env:",
    args: closed(
      "token",
      "--keystore",
      "fixtures/devices/ec384.jdk.p12",
      "--keystore-password",
      "env:CORPUS_PW",
    ),
    env: { CORPUS_PW: "wrong-env-pw-9" },
    exit: 3,
    code: "KEYSTORE_PASSWORD",
    names: "ec384.jdk.p12",
  },
  {
    name: "token: a PEM private key given as --keystore (no certificate)",
    args: closed("token", "--keystore", "fixtures/devices/rsa.key"),
    exit: 3,
    code: "STORE_NO_CERTIFICATE",
    names: "rsa.key",
  },
  {
    name: "token: a file: password source that does not exist",
    args: closed(
      "token",
      "--keystore",
      RSA_JKS,
      "--keystore-password",
      "file:fixtures/no-password.txt",
    ),
    exit: 2,
    code: "PASSWORD_SOURCE",
    names: "fixtures/no-password.txt",
  },
  {
    name: "token: a JKS truststore with a wrong --truststore-password",
    args: connect("token", CLOSED_URL, RSA_JKS, [
      "--truststore",
      TRUST,
      "--truststore-password",
      "pass:wrong-trust-pw-7",
    ]),
    exit: 3,
    code: "KEYSTORE_PASSWORD",
    names: "server-truststore.jks",
  },
  {
    name: "check: a directory as truststore",
    args: connect("check", CLOSED_URL, RSA_JKS, ["--truststore", "fixtures/server"]),
    exit: 3,
    code: "STORE_IS_DIRECTORY",
    names: "fixtures/server",
  },
  {
    name: "token: random bytes as --key",
    args: closed("token", "--keystore", RSA_CHAIN, "--key", "fixtures/bad/random.bin"),
    exit: 3,
    code: "STORE_FORMAT",
    names: "random.bin",
  },
];

/** Every bad fixture certificate stops `token` before it connects (exit 4). */
const certificateCases: Case[] = [
  ["expired", "CERT_EXPIRED", "device-expired"],
  ["notyetvalid", "CERT_NOT_YET_VALID", "device-notyetvalid"],
  ["colon", "CN_COLON", "device:colon"],
  ["v1", "CERT_V1", "device-v1"],
  ["rsa1024", "RSA_KEY_TOO_SMALL", "device-rsa1024"],
  ["serverauth", "EKU_NO_CLIENT_AUTH", "device-serverauth"],
  ["noca", "CA_FLAG_MISSING", "Non-CA Intermediate"],
].map(([bad, code, cn]): Case => ({
  name: `token: bad/${bad}.p12`,
  args: connect("token", CLOSED_URL, `fixtures/bad/${bad}.p12`, ["--truststore", TRUST]),
  exit: 4,
  code: code!,
  names: cn!,
  stage: "certificate",
}));
certificateCases.push(
  {
    name: "token: bad/mismatch.chain.pem with a --key of another certificate",
    args: closed(
      "token",
      "--keystore",
      "fixtures/bad/mismatch.chain.pem",
      "--key",
      "fixtures/bad/mismatch.key",
    ),
    exit: 4,
    code: "KEY_MISMATCH",
    names: "device-mismatch",
    stage: "certificate",
  },
  {
    name: "token: a --client-id that does not match the CN",
    args: connect("token", CLOSED_URL, RSA_JKS, ["--client-id", "d:device-ec256-001"]),
    exit: 4,
    code: "CLIENT_ID_MISMATCH",
    names: ["d:device-ec256-001", "device-rsa-001"],
    stage: "certificate",
  },
  {
    name: "check: a --client-id with another connection type",
    args: connect("check", CLOSED_URL, RSA_JKS, ["--client-id", "x:device-rsa-001"]),
    exit: 2,
    code: "CLIENT_ID_TYPE",
    names: "x:device-rsa-001",
  },
);

/** Broker URLs that can never work: usage errors before any file is read. */
const urlCases: Case[] = [
  ["ws://localhost:8883", "URL_WEBSOCKET", "ws://"],
  ["wss://localhost:443/mqtt", "URL_WEBSOCKET", "wss://"],
  ["tcp://localhost:1883", "URL_SCHEME_NO_TLS", "tcp://"],
  ["mqtt://localhost", "URL_SCHEME_NO_TLS", "mqtt://"],
  ["ssl://localhost:0", "URL_PORT", '"0"'],
  ["ssl://localhost:70000", "URL_PORT", '"70000"'],
  ["localhost:abc", "URL_PORT", '"abc"'],
  ["ssl://:8883", "URL_INVALID", "ssl://:8883"],
  ["ssl://localhost:8883/mqtt", "URL_INVALID", "ssl://localhost:8883/mqtt"],
  // A web address: the error names the MQTT address on the same host.
  ["https://localhost/apps/cockpit", "URL_HTTP", "ssl://localhost:8883"],
  ["ssl//localhost:8883", "URL_INVALID", 'malformed: the scheme "ssl" must be followed by "://"'],
].map(([url, code, names]): Case => ({
  name: `token: the URL "${url}"`,
  args: connect("token", url!, RSA_JKS),
  perms: { read: [RSA_JKS] },
  exit: 2,
  code: code!,
  names: names!,
  stage: "usage",
}));
urlCases.push({
  name: "check: a URL with a password in it (not repeated)",
  args: connect("check", "ssl://device:url-secret-pw-11@localhost:8883", RSA_JKS),
  perms: { read: [RSA_JKS] },
  exit: 2,
  code: "URL_INVALID",
  names: "credentials",
});

const usageCases: Case[] = [
  {
    name: "token: --timeout 0",
    args: connect("token", CLOSED_URL, RSA_JKS, ["--timeout", "0"]),
    exit: 2,
    code: "USAGE",
    names: ["--timeout", '"0"'],
  },
  {
    name: "check: --timeout abc",
    args: connect("check", CLOSED_URL, RSA_JKS, ["--timeout", "abc"]),
    exit: 2,
    code: "USAGE",
    names: ["--timeout", '"abc"'],
  },
  {
    name: "an unknown command",
    args: ["fetch-token", "--url", CLOSED_URL],
    exit: 2,
    code: "USAGE",
    names: "fetch-token",
  },
  {
    name: "token: no --url",
    args: ["token", "--keystore", RSA_JKS, "--keystore-password", `pass:${PASSWORD}`],
    exit: 2,
    code: "USAGE",
    names: "--url",
  },
  {
    name: "token: --url without its value",
    args: ["token", "--keystore", RSA_JKS, "--url"],
    exit: 2,
    code: "USAGE",
    names: "--url",
  },
  {
    name: "check: no --keystore",
    args: closed("check"),
    exit: 2,
    code: "USAGE",
    names: "--keystore",
  },
  {
    name: "token: an extra argument",
    args: connect("token", CLOSED_URL, RSA_JKS, ["now"]),
    exit: 2,
    code: "USAGE",
    names: '"now"',
  },
  {
    name: "inspect: a connection option",
    args: ["inspect", "--keystore", RSA_JKS, "--url", CLOSED_URL],
    exit: 2,
    code: "USAGE",
    names: "--url",
  },
];

/** How the command line itself treats passwords, bad values and missing permissions. */
const commandLineCases: Case[] = [
  {
    // The suggested `deno run` line never holds the password, nor a mask the tool would take
    // literally: the password moves to env:KEYSTORE_PASSWORD (cli_messages_test runs the line).
    name: "token: a missing --allow-net with a pass: password (the hint's deno run line)",
    args: connect("token", CLOSED_URL, RSA_JKS),
    perms: { read: [RSA_JKS] },
    exit: 9,
    code: "PERMISSION_MISSING",
    names: `--allow-net=127.0.0.1:${CLOSED}`,
    hint:
      /^Put the keystore password into the variable KEYSTORE_PASSWORD .*then run: deno run .*--allow-env=KEYSTORE_PASSWORD .* --keystore-password env:KEYSTORE_PASSWORD( |$)/,
  },
  {
    // Decision: `stdin` is one first line, so naming it for two passwords is ambiguous (openssl
    // would read two lines; the README says "first line"). Using the first line for both would
    // make a correct second line fail as "wrong key password". A usage error is the clear answer.
    name: "token: stdin named for two passwords",
    args: closed(
      "token",
      "--keystore",
      "fixtures/devices/rsa.keypass.jks",
      "--keystore-password",
      "stdin",
      "--key-password",
      "stdin",
    ),
    stdin: `${PASSWORD}\nkeysecret\n`,
    exit: 2,
    code: "PASSWORD_SOURCE",
    names: ["--keystore-password", "--key-password", "stdin"],
  },
  {
    // A bad value is a usage error whatever the permissions: the user fixes the command line
    // first, then learns which flags it needs.
    name: "token: --timeout abc without any permission",
    args: connect("token", CLOSED_URL, RSA_JKS, ["--timeout", "abc"]),
    perms: {},
    exit: 2,
    code: "USAGE",
    names: ["--timeout", '"abc"'],
  },
];

const networkCases: Case[] = [
  {
    name: "check: an unresolvable host",
    args: connect("check", "ssl://nonexistent.invalid:8883", RSA_JKS),
    exit: 5,
    // Without any DNS server (a sandbox) the lookup fails with EAI_AGAIN instead of NXDOMAIN.
    code: ["DNS_NOT_FOUND", "DNS_FAILED"],
    names: "nonexistent.invalid",
    stage: "dns",
  },
  {
    name: "token: a closed port on 127.0.0.1",
    args: connect("token", CLOSED_URL, RSA_JKS, ["--truststore", TRUST]),
    exit: 5,
    code: "NETWORK_REFUSED",
    names: `127.0.0.1 port ${CLOSED}`,
    stage: "tcp",
  },
  {
    // setTimeout() fires at once for delays over 2^31-1 ms: the timeout used to strike at 1 ms
    // (NETWORK_TIMEOUT, plus a TimeoutOverflowWarning on stderr) instead of the real failure.
    name: "token: a --timeout longer than a timer can hold, at a closed port",
    args: connect("token", CLOSED_URL, RSA_JKS, ["--timeout", "3000000"]),
    exit: 5,
    code: "NETWORK_REFUSED",
    names: `127.0.0.1 port ${CLOSED}`,
    stage: "tcp",
  },
];

for (
  const [group, cases] of [
    ["stores and passwords", storeCases],
    ["certificates", certificateCases],
    ["URLs", urlCases],
    ["usage", usageCases],
    ["network", networkCases],
    ["command line", commandLineCases],
  ] as const
) {
  Deno.test(`corpus (${group}): each bad input fails with its class, code and culprit`, async (t) => {
    for (const c of cases) await t.step(c.name, () => runCase(c));
  });
}

// ---------------------------------------------------------------------------------------------
// The emulator: a server the device must not trust, and one with the wrong host name.

Deno.test("corpus (emulator): an untrusted server and a hostname mismatch are TLS failures", async (t) => {
  const trustedCaPems = [text("ca/device-root-ca.pem"), text("ca/device-intermediate-ca.pem")];
  await using good = await startFixtureEmulator({ trustedCaPems });
  await using wrongHost = await startFixtureEmulator({
    serverCertPem: text("server/wrong-host.pem"),
    serverKeyPem: text("server/wrong-host.key"),
    trustedCaPems,
    // The name, not 127.0.0.1: server and client then resolve it alike (::1 or 127.0.0.1).
    hostname: "localhost",
    restPort: 0,
  });
  const deviceCa = "fixtures/devices/truststore.jks";
  const cases: Case[] = [
    {
      name: "token: a truststore with the device CA instead of the server's",
      args: connect("token", good.url, RSA_JKS, [
        "--truststore",
        deviceCa,
        "--truststore-password",
        `pass:${PASSWORD}`,
      ]),
      exit: 6,
      code: "TLS_SERVER_UNTRUSTED",
      names: `127.0.0.1:${good.port}`,
      stage: "tls",
    },
    {
      name: "check: no truststore, and the default root CAs do not know the server's CA",
      args: connect("check", good.url, RSA_JKS),
      exit: 6,
      code: "TLS_SERVER_UNTRUSTED",
      names: `127.0.0.1:${good.port}`,
      stage: "tls",
    },
    {
      name: "token: a server certificate for another host name",
      args: connect("token", `ssl://localhost:${wrongHost.port}`, RSA_JKS, [
        "--truststore",
        TRUST,
      ]),
      exit: 6,
      code: "TLS_HOSTNAME_MISMATCH",
      names: [`localhost:${wrongHost.port}`, '"localhost"', 'valid for "wrong-host.invalid"'],
      stage: "tls",
    },
    {
      // An IP address: node:https looks a host name up under a wider net permission than
      // the one the CLI asks for (a separate finding).
      name: "check --via rest: a REST server certificate for another host name",
      args: connect("check", `ssl://localhost:${wrongHost.port}`, RSA_JKS, [
        "--truststore",
        TRUST,
        "--via",
        "rest",
        "--rest-url",
        `https://127.0.0.1:${wrongHost.restPort}`,
      ]),
      perms: {
        read: [RSA_JKS, TRUST],
        net: [`localhost:${wrongHost.port}`, `127.0.0.1:${wrongHost.restPort}`],
      },
      exit: 6,
      code: "TLS_HOSTNAME_MISMATCH",
      names: [`127.0.0.1:${wrongHost.restPort}`, 'valid for "wrong-host.invalid"'],
      stage: "tls",
    },
    {
      name: "check --force: OpenSSL refuses the 1024-bit device key before connecting",
      args: connect("check", good.url, "fixtures/bad/rsa1024.p12", [
        "--truststore",
        TRUST,
        "--force",
      ]),
      exit: 6,
      code: "TLS_LOCAL_CERT_REJECTED",
      names: ["key too small", good.url],
      stage: "tls",
      // Explained from the finding of the same run, not "Check the URL and port".
      hint: /^Found offline: .*\(RSA_KEY_TOO_SMALL\)\. .*2048/,
    },
  ];
  for (const c of cases) await t.step(c.name, () => runCase(c));
});

// ---------------------------------------------------------------------------------------------
// mosquitto: a real broker that refuses device certificates, and one that never answers s/uat.

/** Runs `fn` with a mosquitto started with `options`, shows its log if `fn` fails, and stops it. */
async function withMosquitto(
  options: MosquittoOptions,
  fn: (broker: Mosquitto) => Promise<void>,
): Promise<void> {
  const broker = await startMosquitto(options);
  try {
    await fn(broker);
  } catch (err) {
    console.error(await broker.log());
    throw err;
  } finally {
    await broker.stop();
  }
}

mosquittoTest(
  "corpus (mosquitto): a refused device certificate is TLS, a broker without s/uat is token",
  async () => {
    await withMosquitto({}, async (broker) => {
      const url = `ssl://127.0.0.1:${broker.port}`;
      // Under TLS 1.3 mosquitto judges the client certificate after the client's handshake has
      // finished: the refusal is a close/alert on the first read, before the CONNACK.
      await runCase({
        name: "token: a device of an unknown CA against mosquitto",
        args: connect("token", url, "fixtures/bad/unknown-ca.p12", ["--truststore", TRUST]),
        exit: 6,
        code: "TLS_CLIENT_CERT_REFUSED",
        names: `127.0.0.1:${broker.port}`,
        stage: "tls",
      });
      // A generic broker accepts the subscription and the publish, and never answers: the
      // three attempts of --timeout 1 s each take 3 s.
      await runCase({
        name: "token: a good device against a broker that never answers s/uat",
        args: connect("token", url, RSA_JKS, ["--truststore", TRUST, "--timeout", "1"]),
        exit: 8,
        code: "TOKEN_TIMEOUT",
        names: [`127.0.0.1:${broker.port}`, "s/dat", "s/uat"],
        stage: "token",
      });
    });
    // mosquitto's plain MQTT listener (1883-style) hangs up on a ClientHello without a byte.
    const plain = freePort();
    await withMosquitto({ extraConfig: [`listener ${plain} 127.0.0.1`] }, async () => {
      await runCase({
        name: "check: TLS to mosquitto's plain MQTT listener",
        args: connect("check", `ssl://127.0.0.1:${plain}`, RSA_JKS, ["--truststore", TRUST]),
        exit: 6,
        code: "TLS_NOT_TLS",
        names: [`127.0.0.1:${plain}`, "plain MQTT (1883-style)"],
        stage: "tls",
        hint: /8883/,
      });
    });
    await withMosquitto({ cafile: "ca/unknown-ca.pem" }, async (other) => {
      await runCase({
        name: "check: a good device against mosquitto that trusts another CA",
        args: connect("check", `ssl://127.0.0.1:${other.port}`, RSA_JKS, ["--truststore", TRUST]),
        exit: 6,
        code: "TLS_CLIENT_CERT_REFUSED",
        names: `127.0.0.1:${other.port}`,
        stage: "tls",
      });
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Scripted peers: servers in this process that misbehave in one precise way.

/** A server of this test; `close()` stops it and every connection, and waits for them. */
interface Peer {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (TLS with `server/server.pem`, or plain TCP) and runs `handle` per connection. */
function startPeer(
  handle: (conn: Deno.Conn) => Promise<void>,
  options: { tls: boolean },
): Peer {
  const listener: Deno.Listener = options.tls
    ? Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: text("server/server.pem"),
      key: text("server/server.key"),
    })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // closed
      }
      conns.add(conn);
      const task = handle(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch {
          // already closed
        }
      });
      tasks.add(task);
      task.finally(() => tasks.delete(task));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close(): Promise<void> {
      listener.close();
      await loop;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await Promise.all(tasks);
    },
  };
}

/** An MQTT control packet as the scripted server reads it. */
interface Packet {
  type: number;
  body: Uint8Array;
}

/** Reads MQTT packets until the peer closes (or the connection fails). */
async function* packets(conn: Deno.Conn): AsyncGenerator<Packet> {
  let buffer = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  for (;;) {
    const packet = parsePacket(buffer);
    if (packet) {
      buffer = buffer.slice(packet.length);
      yield packet.packet;
      continue;
    }
    let n: number | null;
    try {
      n = await conn.read(chunk);
    } catch {
      return;
    }
    if (n === null) return;
    const next = new Uint8Array(buffer.length + n);
    next.set(buffer);
    next.set(chunk.subarray(0, n), buffer.length);
    buffer = next;
  }
}

function parsePacket(b: Uint8Array): { packet: Packet; length: number } | undefined {
  if (b.length < 2) return undefined;
  let length = 0;
  let multiplier = 1;
  let i = 1;
  for (;; i++) {
    if (i >= b.length || i > 4) return undefined;
    length += (b[i]! & 0x7f) * multiplier;
    multiplier *= 128;
    if ((b[i]! & 0x80) === 0) break;
  }
  const start = i + 1;
  if (b.length < start + length) return undefined;
  return {
    packet: { type: b[0]! >> 4, body: b.slice(start, start + length) },
    length: start + length,
  };
}

/** What the scripted MQTT server does with a packet: bytes to send, then maybe close. */
type Script = (packet: Packet) => { send?: Uint8Array[]; close?: boolean } | undefined;

/** The scripted MQTT server's answer to each kind of packet; a packet without one is ignored. */
interface Scripts {
  connect?: Script;
  subscribe?: Script;
  publish?: Script;
}

const CONNECT = 1;
const PUBLISH = 3;
const SUBSCRIBE = 8;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function mqttPeer(scripts: Scripts): Peer {
  const byType = new Map([
    [CONNECT, scripts.connect],
    [SUBSCRIBE, scripts.subscribe],
    [PUBLISH, scripts.publish],
  ]);
  return startPeer(async (conn) => {
    for await (const packet of packets(conn)) {
      const reply = byType.get(packet.type)?.(packet);
      for (const bytes of reply?.send ?? []) await writeAll(conn, bytes);
      if (reply?.close) return;
    }
  }, { tls: true });
}

const connack = (returnCode: number): Uint8Array => new Uint8Array([0x20, 2, 0, returnCode]);
const suback = (subscribe: Packet, granted: number): Uint8Array =>
  new Uint8Array([0x90, 3, subscribe.body[0]!, subscribe.body[1]!, granted]);

function publish(topic: string, payload: string): Uint8Array {
  const t = new TextEncoder().encode(topic);
  const p = new TextEncoder().encode(payload);
  const length = 2 + t.length + p.length;
  assert.ok(length < 128, "one-byte remaining length");
  return new Uint8Array([0x30, length, 0, t.length, ...t, ...p]);
}

/** Accepts the connection (CONNACK 0). */
const accept: Script = () => ({ send: [connack(0)] });
/** Grants the subscription (SUBACK 0). */
const grant: Script = (p) => ({ send: [suback(p, 0)] });
/** Closes the connection. */
const hangUp: Script = () => ({ close: true });

const HTTP_400 = new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n");

/** 256 bytes from a fixed-seed generator: "random", but the same in every run. */
function garbage(): Uint8Array {
  const out = new Uint8Array(256);
  let x = 0x2545f491;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Where a peer listens, as an error names it. */
const hostPort = (peer: Peer): string => `127.0.0.1:${peer.port}`;

/** What a run against a scripted peer must give; the culprit is the peer unless `names` says. */
type Expected = Pick<Case, "exit" | "code" | "stage"> & Partial<Pick<Case, "names" | "returnCode">>;

/**
 * Runs `command` of a good device against a peer as the step `name`, expecting `expected`, and
 * stops the peer, also on failure.
 */
async function withPeer(
  t: Deno.TestContext,
  name: string,
  peer: Peer,
  expected: Expected,
  command: "token" | "check" = "token",
): Promise<void> {
  try {
    const args = connect(command, `ssl://${hostPort(peer)}`, RSA_JKS, [
      "--truststore",
      TRUST,
      "--timeout",
      "1",
    ]);
    await t.step(name, () => runCase({ name, args, names: hostPort(peer), ...expected }));
  } finally {
    await peer.close();
  }
}

Deno.test("corpus (scripted peers): servers that are not MQTT, refuse, or break off", async (t) => {
  await withPeer(
    t,
    "token: a plain TCP server that answers HTTP (no TLS)",
    startPeer(async (conn) => {
      await conn.read(new Uint8Array(4096));
      await writeAll(conn, HTTP_400);
    }, { tls: false }),
    { exit: 6, code: "TLS_NOT_TLS", stage: "tls" },
  );
  await withPeer(
    t,
    "token: a TCP server that never answers the TLS handshake",
    startPeer(async (conn) => {
      while ((await conn.read(new Uint8Array(4096))) !== null) {
        // swallow the ClientHello
      }
    }, { tls: false }),
    { exit: 6, code: "TLS_TIMEOUT", stage: "tls" },
  );
  await withPeer(
    t,
    "token: a TLS server that answers CONNECT with random bytes",
    mqttPeer({ connect: () => ({ send: [garbage()] }) }),
    { exit: 7, code: "MQTT_PROTOCOL", stage: "mqtt" },
  );
  await withPeer(
    t,
    "check: a TLS server that answers CONNECT with an HTTP error",
    mqttPeer({ connect: () => ({ send: [HTTP_400] }) }),
    { exit: 7, code: "MQTT_PROTOCOL", stage: "mqtt" },
    "check",
  );
  await withPeer(
    t,
    "token: a TLS server that never sends CONNACK",
    mqttPeer({}),
    { exit: 7, code: "MQTT_CONNACK_TIMEOUT", stage: "mqtt" },
  );
  const refusals: [number, string][] = [
    [1, "MQTT_UNACCEPTABLE_PROTOCOL"],
    [2, "MQTT_IDENTIFIER_REJECTED"],
    [3, "MQTT_SERVER_UNAVAILABLE"],
    [4, "MQTT_BAD_CREDENTIALS"],
    [5, "MQTT_NOT_AUTHORIZED"],
  ];
  for (const [returnCode, code] of refusals) {
    const peer = mqttPeer({ connect: () => ({ send: [connack(returnCode)], close: true }) });
    await withPeer(t, `token: CONNACK ${returnCode}`, peer, {
      exit: 7,
      code,
      returnCode,
      stage: "mqtt",
      names: [hostPort(peer), "d:device-rsa-001"],
    });
  }
  await withPeer(
    t,
    "token: a broker that refuses the subscription to s/dat (SUBACK 0x80)",
    mqttPeer({ connect: accept, subscribe: (p) => ({ send: [suback(p, 0x80)] }) }),
    { exit: 7, code: "MQTT_SUBSCRIBE_REFUSED", stage: "subscribe", names: "s/dat" },
  );
  // Connected, then the connection is gone before a token came: the token class (8), in the
  // stage where it happened.
  await withPeer(
    t,
    "token: a broker that closes the connection on SUBSCRIBE",
    mqttPeer({ connect: accept, subscribe: hangUp }),
    { exit: 8, code: "TOKEN_CONNECTION_LOST", stage: "subscribe" },
  );
  await withPeer(
    t,
    "token: a broker that closes the connection on the s/uat request",
    mqttPeer({ connect: accept, subscribe: grant, publish: hangUp }),
    { exit: 8, code: "TOKEN_CONNECTION_LOST", stage: "token" },
  );
  await withPeer(
    t,
    "token: a broker that answers s/uat with a malformed 71",
    mqttPeer({
      connect: accept,
      subscribe: grant,
      publish: () => ({ send: [publish("s/dat", "71,this-is-not-a-jwt")] }),
    }),
    { exit: 8, code: "TOKEN_MALFORMED", stage: "token", names: "71" },
  );
});
