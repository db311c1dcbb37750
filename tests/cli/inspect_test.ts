import assert from "node:assert/strict";
import { type CliResult, runCli } from "../support/cli.ts";
import { jdkCacertsOrWarn } from "../support/stores.ts";

const PASSWORD = "changeit";

interface InspectJson {
  ok: boolean;
  keystore?: {
    format: string;
    alias?: string;
    chain: { subject: string; commonName: string; notBefore: string; sha256: string }[];
  };
  truststore?: { certificates: { alias?: string; commonName: string }[] };
  clientId?: string;
  problems: { code: string; severity: string; message: string }[];
}

/**
 * Runs `inspect <args> --json` allowed to read `read`, asserts its exit code, and returns the run
 * with its output parsed.
 */
async function inspectJson(
  args: string[],
  read: string[],
  options: { exit?: number; stdin?: string } = {},
): Promise<CliResult & { out: InspectJson }> {
  const r = await runCli(["inspect", ...args, "--json"], { read }, { stdin: options.stdin });
  assert.equal(r.code, options.exit ?? 0, r.stderr);
  const out: InspectJson = JSON.parse(r.stdout);
  // "ok" as every command has it: false exactly when a problem of severity error made it exit 4.
  assert.equal(out.ok, r.code === 0, r.stdout);
  assert.equal(out.ok, !out.problems.some((p) => p.severity === "error"), r.stdout);
  return { ...r, out };
}

const goodStores: [string, string, string][] = [
  ["devices/rsa.openssl3.p12", "pkcs12", "device-rsa-001"],
  ["devices/ec256.legacy.p12", "pkcs12", "device-ec256-001"],
  ["devices/ec384.jdk.p12", "pkcs12", "device-ec384-001"],
  ["devices/rsa.jks", "jks", "device-rsa-001"],
  ["devices/ec256.jks", "jks", "device-ec256-001"],
];

for (const [file, format, cn] of goodStores) {
  Deno.test(`inspect --json reads ${file} as ${format} with client id d:${cn}`, async () => {
    const path = `fixtures/${file}`;
    const { out, stdout } = await inspectJson(
      ["--keystore", path, "--keystore-password", `pass:${PASSWORD}`],
      [path],
    );
    assert.equal(out.keystore?.format, format);
    assert.equal(out.clientId, `d:${cn}`);
    assert.equal(out.keystore?.chain.length, 2);
    assert.equal(out.keystore?.chain[0]?.commonName, cn);
    assert.match(out.keystore?.chain[0]?.notBefore ?? "", /^\d{4}-\d\d-\d\dT/);
    assert.match(out.keystore?.chain[0]?.sha256 ?? "", /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual(out.problems.filter((p) => p.severity === "error"), []);
    assert.ok(!stdout.includes(PASSWORD));
  });
}

Deno.test("inspect prints the chain, fingerprints and client id for people", async () => {
  const path = "fixtures/devices/rsa.jdk.p12";
  const r = await runCli(
    ["inspect", "--keystore", path, "--keystore-password", "env:KS_PW"],
    { read: [path], env: ["KS_PW"] },
    { env: { KS_PW: PASSWORD } },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /client id: d:device-rsa-001/);
  assert.match(r.stdout, /\[0\] .*CN=device-rsa-001/);
  assert.match(r.stdout, /\[1\] .*CN=c8y-mqtt-cert Test Device Intermediate CA/);
  assert.match(r.stdout, /sha256 +([0-9A-F]{2}:){31}[0-9A-F]{2}/);
  assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD));
});

Deno.test("inspect reads a JKS truststore without a password and the JDK's cacerts", async () => {
  const path = "fixtures/server/server-truststore.jks";
  const { out } = await inspectJson(["--truststore", path], [path]);
  assert.equal(out.truststore?.certificates[0]?.commonName, "c8y-mqtt-cert Test Server CA");
  assert.equal(out.keystore, undefined);
  const cacerts = jdkCacertsOrWarn("inspect of the JDK's cacerts");
  if (cacerts === undefined) return;
  // The JDK's path is often a link into /etc/ssl: Deno needs read access to both.
  const jdk = await inspectJson(["--truststore", cacerts], [cacerts, Deno.realPathSync(cacerts)]);
  assert.ok((jdk.out.truststore?.certificates.length ?? 0) > 100);
});

Deno.test("inspect warns about a chain stored out of order", async () => {
  const chain = "fixtures/bad/misordered.chain.pem";
  const key = "fixtures/devices/rsa.key";
  const { out } = await inspectJson(["--keystore", chain, "--key", key], [chain, key]);
  assert.equal(out.keystore?.chain[0]?.commonName, "device-rsa-001", "shown leaf first");
  const order = out.problems.find((p) => p.code === "CHAIN_ORDER");
  assert.equal(order?.severity, "warning");
});

Deno.test("inspect reports an error problem and exits 4 for an expired certificate", async () => {
  const path = "fixtures/bad/expired.p12";
  const { out } = await inspectJson(
    ["--keystore", path, "--keystore-password", "file:fixtures/password.txt"],
    [path, "fixtures/password.txt"],
    { exit: 4 },
  );
  const expired = out.problems.find((p) => p.code === "CERT_EXPIRED");
  assert.equal(expired?.severity, "error");
  assert.match(expired?.message ?? "", /device-expired/);
});

Deno.test("inspect opens stores that have no password without asking for one", async () => {
  const nomac = "fixtures/devices/rsa.nomac.p12";
  const jks = "fixtures/server/server-truststore.jks";
  const { out } = await inspectJson(["--keystore", nomac, "--truststore", jks], [nomac, jks]);
  assert.equal(out.clientId, "d:device-rsa-001");
});

Deno.test("inspect takes the password from stdin", async () => {
  const path = "fixtures/devices/ec256.openssl3.p12";
  const { out } = await inspectJson(["--keystore", path, "--keystore-password", "stdin"], [path], {
    stdin: `${PASSWORD}\n`,
  });
  assert.equal(out.clientId, "d:device-ec256-001");
});

/** A bad input, the exit code and error code it must give, and text the message must name. */
interface BadCase {
  name: string;
  args: string[];
  read: string[];
  exit: number;
  code: string;
  names: string;
  env?: string[];
}

const tmp = Deno.makeTempDirSync({ prefix: "c8y-cli-" });
const huge = `${tmp}/huge.p12`;
{
  const file = Deno.openSync(huge, { create: true, write: true });
  file.truncateSync(30 * 1024 * 1024);
  file.close();
}
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

const pw = ["--keystore-password", `pass:${PASSWORD}`];
const badCases: BadCase[] = [
  {
    name: "wrong PKCS#12 store password",
    args: [
      "--keystore",
      "fixtures/devices/rsa.openssl3.p12",
      "--keystore-password",
      "pass:wrong-pw-1",
    ],
    read: ["fixtures/devices/rsa.openssl3.p12"],
    exit: 3,
    code: "KEYSTORE_PASSWORD",
    names: "rsa.openssl3.p12",
  },
  {
    name: "wrong JKS store password",
    args: ["--keystore", "fixtures/devices/rsa.jks", "--keystore-password", "pass:wrong-pw-2"],
    read: ["fixtures/devices/rsa.jks"],
    exit: 3,
    code: "KEYSTORE_PASSWORD",
    names: "rsa.jks",
  },
  {
    name: "wrong JKS key password",
    args: [
      "--keystore",
      "fixtures/devices/rsa.keypass.jks",
      ...pw,
      "--key-password",
      "pass:wrong-key-pw",
    ],
    read: ["fixtures/devices/rsa.keypass.jks"],
    exit: 3,
    code: "KEY_PASSWORD",
    names: "rsa.keypass.jks",
  },
  {
    name: "truncated PKCS#12",
    args: ["--keystore", "fixtures/bad/truncated.p12", ...pw],
    read: ["fixtures/bad/truncated.p12"],
    exit: 3,
    code: "STORE_CORRUPT",
    names: "truncated.p12",
  },
  {
    name: "random bytes",
    args: ["--keystore", "fixtures/bad/random.bin", ...pw],
    read: ["fixtures/bad/random.bin"],
    exit: 3,
    code: "STORE_FORMAT",
    names: "random.bin",
  },
  {
    name: "empty file",
    args: ["--keystore", "fixtures/bad/empty.p12", ...pw],
    read: ["fixtures/bad/empty.p12"],
    exit: 3,
    code: "STORE_EMPTY",
    names: "empty.p12",
  },
  {
    name: "a directory",
    args: ["--keystore", "fixtures/devices", ...pw],
    read: ["fixtures/devices"],
    exit: 3,
    code: "STORE_IS_DIRECTORY",
    names: "fixtures/devices",
  },
  {
    name: "a missing file",
    args: ["--keystore", "fixtures/nope.p12", ...pw],
    read: ["fixtures/nope.p12"],
    exit: 3,
    code: "STORE_NOT_FOUND",
    names: "nope.p12",
  },
  {
    name: "a 30 MB file",
    args: ["--keystore", huge, ...pw],
    read: [huge],
    exit: 3,
    code: "STORE_TOO_LARGE",
    names: "huge.p12",
  },
  {
    name: "--alias for a PEM keystore",
    args: [
      "--keystore",
      "fixtures/devices/rsa.chain.pem",
      "--key",
      "fixtures/devices/rsa.key",
      "--alias",
      "rsa",
    ],
    read: ["fixtures/devices/rsa.chain.pem", "fixtures/devices/rsa.key"],
    exit: 2,
    code: "ALIAS_NOT_APPLICABLE",
    names: "rsa.chain.pem",
  },
  {
    name: "a device file that never ends (/dev/zero), refused before it is opened",
    args: ["--keystore", "/dev/zero", ...pw],
    read: ["/dev/zero"],
    exit: 3,
    code: "STORE_NOT_A_FILE",
    names: "/dev/zero",
  },
  {
    name: "a truststore given as keystore",
    args: ["--keystore", "fixtures/server/server-truststore.p12", ...pw],
    read: ["fixtures/server/server-truststore.p12"],
    exit: 3,
    code: "STORE_NO_KEY",
    names: "server-truststore.p12",
  },
  {
    name: "a PEM certificate with no key",
    args: ["--keystore", "fixtures/devices/rsa.chain.pem"],
    read: ["fixtures/devices/rsa.chain.pem"],
    exit: 3,
    code: "STORE_NO_KEY",
    names: "rsa.chain.pem",
  },
  {
    name: "a JCEKS keystore",
    args: ["--keystore", "fixtures/devices/rsa.jceks", ...pw],
    read: ["fixtures/devices/rsa.jceks"],
    exit: 3,
    code: "STORE_JCEKS",
    names: "rsa.jceks",
  },
  {
    name: "no password and no terminal",
    args: ["--keystore", "fixtures/devices/rsa.openssl3.p12"],
    read: ["fixtures/devices/rsa.openssl3.p12"],
    exit: 2,
    code: "PASSWORD_REQUIRED",
    names: "rsa.openssl3.p12",
  },
  {
    name: "an unset env: password variable",
    args: ["--keystore", "fixtures/devices/rsa.openssl3.p12", "--keystore-password", "env:NOPE_PW"],
    read: ["fixtures/devices/rsa.openssl3.p12"],
    env: ["NOPE_PW"],
    exit: 2,
    code: "PASSWORD_SOURCE",
    names: "NOPE_PW",
  },
  {
    name: "a missing read permission",
    args: ["--keystore", "fixtures/devices/rsa.jks", ...pw],
    read: [],
    exit: 9,
    code: "PERMISSION_MISSING",
    names: "--allow-read=fixtures/devices/rsa.jks",
  },
  {
    name: "an unknown flag",
    args: ["--keystore", "fixtures/devices/rsa.jks", "--frobnicate"],
    read: ["fixtures/devices/rsa.jks"],
    exit: 2,
    code: "USAGE",
    names: "frobnicate",
  },
];

for (const c of badCases) {
  Deno.test(`inspect fails clearly on ${c.name}`, async () => {
    const human = await runCli(["inspect", ...c.args], { read: c.read, env: c.env });
    assert.equal(human.code, c.exit, human.stderr);
    const lines = human.stderr.trim().split("\n");
    assert.match(lines[0]!, /^error: /, human.stderr);
    assert.ok(lines[0]!.includes(c.names), `"${lines[0]}" should name ${c.names}`);
    assert.ok(lines.length <= 2, `one error line and a hint at most:\n${human.stderr}`);
    assert.ok(!/^\s+at /m.test(human.stderr), "no stack trace");
    for (const secret of [PASSWORD, "wrong-pw-1", "wrong-pw-2", "wrong-key-pw"]) {
      assert.ok(!human.stderr.includes(secret), `the password "${secret}" must not be printed`);
      assert.ok(!human.stdout.includes(secret));
    }
    const json = await runCli(["inspect", ...c.args, "--json"], { read: c.read, env: c.env });
    assert.equal(json.code, c.exit);
    const body = JSON.parse(json.stdout);
    assert.equal(body.ok, false);
    assert.equal(body.error.code, c.code, json.stdout);
    assert.equal(body.error.exitCode, c.exit);
  });
}

Deno.test("the help text names every command and the exit codes", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0);
  for (const word of ["token", "check", "inspect", "emulate", "EXIT CODES", "--allow-read"]) {
    assert.ok(r.stdout.includes(word), word);
  }
  const none = await runCli([]);
  assert.equal(none.code, 2);
});

for (const file of ["devices/multi.p12", "devices/multi.jks", "interop/two-keypass.jks"]) {
  Deno.test(`inspect lists every key entry of ${file} (aliases quoted) instead of failing`, async () => {
    const path = `fixtures/${file}`;
    const args = ["inspect", "--keystore", path, "--keystore-password", `pass:${PASSWORD}`];
    const text = await runCli(args, { read: [path] });
    assert.equal(text.code, 0, text.stderr);
    const aliases = file.includes("two-keypass") ? ["device-a", "device-b"] : ["ec256", "rsa"];
    for (const alias of aliases) {
      assert.match(text.stdout, new RegExp(`entry "${alias}" \\(key entry\\)`));
    }
    assert.match(text.stdout, /token and check need --alias/);
    const json = await runCli([...args, "--json"], { read: [path] });
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout);
    assert.deepEqual(
      out.keystore.entries.map((e: { alias: string }) => e.alias).sort(),
      aliases,
    );
    assert.ok(out.keystore.entries.every((e: { keyEntry: boolean }) => e.keyEntry));
  });
}

Deno.test("inspect says what truststore.jks really is (PKCS#12, keytool's default since JDK 9)", async () => {
  const path = "fixtures/interop/truststore.jks";
  const r = await runCli(
    ["inspect", "--truststore", path, "--truststore-password", `pass:${PASSWORD}`],
    { read: [path] },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /truststore\.jks" is a PKCS#12 store \(keytool's default since JDK 9\)/);
  const none = await runCli(["inspect", "--truststore", path], { read: [path] });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /no terminal/);
  assert.match(none.stderr, /is a PKCS#12 store \(keytool's default since JDK 9\)/);
});
