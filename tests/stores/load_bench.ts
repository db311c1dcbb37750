/**
 * `deno bench` for the store readers, through the public entry points `loadKeyStore()` and
 * `loadTrustStore()`: every keystore format the tool supports (JKS, JKS with its own key
 * password, PEM with a plain, PKCS#8-encrypted or legacy-encrypted key, PKCS#12 as written by
 * OpenSSL 3, `openssl pkcs12 -legacy`, JDK 17 `keytool` and without MAC), and the truststores,
 * including the JDK's `cacerts` when it is installed.
 *
 * The in-process targets: a JDK 17 PKCS#12 opens in at most 10 ms, a JKS in at most 2 ms.
 * Run with `deno task bench` (nothing here asserts a duration).
 *
 * `tests/stores/pkcs12_bench.ts` measures the PKCS#12 reader alone; these add the key parsing, chain
 * ordering and certificate summaries that `loadKeyStore()` does on top.
 */
import { loadKeyStore, loadTrustStore } from "../../lib/stores/load.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = (file: string): Promise<Uint8Array> => Deno.readFile(new URL(file, fixtures));
const DEVICES = ["rsa", "ec256", "ec384"] as const;
const PASSWORD = "changeit";

/** One keystore benchmark: a group per format, RSA as each group's baseline. */
async function keystore(
  group: string,
  device: string,
  file: string,
  options: { keyPassword?: string; key?: string; alias?: string } = {},
): Promise<void> {
  const bytes = await read(file);
  const key = options.key === undefined ? undefined : await read(options.key);
  const label = (options.key === undefined ? file : `${file} + ${options.key}`) +
    (options.alias === undefined ? "" : ` (alias ${options.alias})`);
  Deno.bench({
    name: `loadKeyStore() ${label}`,
    group,
    baseline: device === "rsa",
    async fn(): Promise<void> {
      await loadKeyStore(bytes, {
        password: PASSWORD,
        keyPassword: options.keyPassword,
        key,
        alias: options.alias,
        name: file,
      });
    },
  });
}

for (const device of DEVICES) {
  await keystore("jks", device, `devices/${device}.jks`);
  await keystore("jks-keypass", device, `devices/${device}.keypass.jks`, {
    keyPassword: "keysecret",
  });
  await keystore("pem", device, `devices/${device}.chain.pem`, { key: `devices/${device}.key` });
  await keystore("pem-encrypted-key", device, `devices/${device}.chain.pem`, {
    key: `devices/${device}.key.enc.pem`,
  });
  await keystore("pem-legacy-encrypted-key", device, `devices/${device}.chain.pem`, {
    key: `devices/${device}.key.legacy-enc.pem`,
  });
  for (const variant of ["openssl3", "legacy", "jdk", "nomac"]) {
    await keystore(`pkcs12-${variant}`, device, `devices/${device}.${variant}.p12`);
  }
}
// Stores with two key entries (aliases rsa and ec256), and a PKCS#12 with only the leaf.
await keystore("other", "rsa", "devices/multi.jks", { alias: "rsa" });
await keystore("other", "", "devices/multi.p12", { alias: "rsa" });
await keystore("other", "", "devices/rsa.leafonly.p12");

// ---- Truststores ----------------------------------------------------------------------------

async function truststore(
  file: string | URL,
  options: { password?: string; baseline?: boolean; group?: string } = {},
): Promise<void> {
  const { password, baseline = false, group = "truststore" } = options;
  const bytes = typeof file === "string" ? await read(file) : await Deno.readFile(file);
  const label = typeof file === "string" ? file : file.pathname;
  Deno.bench({
    name: `loadTrustStore() ${label}${password === undefined ? "" : " (with password)"}`,
    group,
    baseline,
    async fn(): Promise<void> {
      await loadTrustStore(bytes, { password, name: label });
    },
  });
}

await truststore("server/server-truststore.jks", { baseline: true });
await truststore("server/server-truststore.jks", { password: PASSWORD });
await truststore("server/server-truststore.p12", { password: PASSWORD });
await truststore("server/server-truststore.pem");
await truststore("devices/truststore.jks");
await truststore("devices/truststore.p12", { password: PASSWORD });

// The JDK's cacerts (about 140 CAs), where a JDK is installed: the biggest real truststore.
const javaHome = Deno.env.get("JAVA_HOME");
const cacertsCandidates = [
  ...(javaHome ? [`${javaHome}/lib/security/cacerts`] : []),
  "/etc/ssl/certs/java/cacerts",
  "/usr/lib/jvm/default-java/lib/security/cacerts",
  "/usr/lib/jvm/java-17-openjdk-amd64/lib/security/cacerts",
];
let cacerts: string | undefined;
for (const candidate of cacertsCandidates) {
  try {
    if ((await Deno.stat(candidate)).isFile) {
      cacerts = await Deno.realPath(candidate);
      break;
    }
  } catch {
    // not there: try the next one
  }
}
if (cacerts) {
  await truststore(new URL(`file://${cacerts}`), { group: "cacerts", baseline: true });
  await truststore(new URL(`file://${cacerts}`), { group: "cacerts", password: PASSWORD });
} else {
  console.warn("No JDK cacerts found (set JAVA_HOME): its benchmark is left out");
}
