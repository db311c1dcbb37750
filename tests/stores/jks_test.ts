import assert from "node:assert/strict";
import {
  assertStoreError,
  entryKey,
  JDK_CACERTS,
  jdkCacertsOrWarn,
  tool,
} from "../support/stores.ts";
import { createPrivateKey } from "node:crypto";
import { readJks } from "../../lib/stores/jks.ts";
import { pemBlocks } from "../../lib/encoding/pem.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const read = { read: [fixtures] };
const bytes = (path: string): Uint8Array => Deno.readFileSync(new URL(path, fixtures));
const text = (path: string): string => Deno.readTextFileSync(new URL(path, fixtures));
const PASSWORD = "changeit";
const KEY_PASSWORD = "keysecret";
const WRONG = "Not-The-Pa55";

function pkcs8(path: string): Uint8Array {
  const key = createPrivateKey({ key: text(path), format: "pem" });
  return new Uint8Array(key.export({ type: "pkcs8", format: "der" }));
}

for (const d of ["rsa", "ec256", "ec384"]) {
  Deno.test({
    name: `readJks() reads the ${d} key entry with its chain`,
    permissions: read,
    async fn(): Promise<void> {
      const store = await readJks(bytes(`devices/${d}.jks`), { password: PASSWORD, name: "k" });
      assert.equal(store.format, "jks");
      assert.equal(store.entries.length, 1);
      const [entry] = store.entries;
      assert.equal(entry.alias, d);
      assert.deepEqual(await entryKey(entry, PASSWORD), pkcs8(`devices/${d}.key`));
      assert.deepEqual(
        entry.certificates,
        pemBlocks(text(`devices/${d}.chain.pem`)).map((b) => b.der),
      );
    },
  });

  Deno.test({
    name: `readJks() reads ${d}.keypass.jks with its own key password`,
    permissions: read,
    async fn(): Promise<void> {
      const store = await readJks(bytes(`devices/${d}.keypass.jks`), { password: PASSWORD });
      assert.deepEqual(await entryKey(store.entries[0], KEY_PASSWORD), pkcs8(`devices/${d}.key`));
    },
  });

  Deno.test({
    name: `readJks() says a key password is needed for ${d}.keypass.jks (KEY_PASSWORD)`,
    permissions: read,
    async fn(): Promise<void> {
      const name = `devices/${d}.keypass.jks`;
      const [entry] = (await readJks(bytes(name), { password: PASSWORD, name })).entries;
      const err = await assertStoreError(entryKey(entry, PASSWORD), {
        code: "KEY_PASSWORD",
        name,
        secrets: [PASSWORD, KEY_PASSWORD],
      });
      assert.ok(err.hint.includes("`keyPassword`"), err.hint);
      await assertStoreError(entryKey(entry, WRONG), {
        code: "KEY_PASSWORD",
        name,
        secrets: [PASSWORD, KEY_PASSWORD, WRONG],
      });
    },
  });
}

Deno.test({
  name: "readJks() refuses a wrong store password (KEYSTORE_PASSWORD)",
  permissions: read,
  async fn(): Promise<void> {
    await assertStoreError(readJks(bytes("devices/rsa.jks"), { password: WRONG, name: "r.jks" }), {
      code: "KEYSTORE_PASSWORD",
      name: "r.jks",
      secrets: [WRONG, PASSWORD],
    });
    // An empty password is a password too: the digest is still checked.
    await assertStoreError(readJks(bytes("devices/rsa.jks"), { password: "", name: "r.jks" }), {
      code: "KEYSTORE_PASSWORD",
      name: "r.jks",
    });
  },
});

Deno.test({
  name: "readJks() reads both key entries of multi.jks",
  permissions: read,
  async fn(): Promise<void> {
    const store = await readJks(bytes("devices/multi.jks"), { password: PASSWORD });
    assert.deepEqual(store.entries.map((e) => e.alias).sort(), ["ec256", "rsa"]);
    assert.ok(store.entries.every((e) => e.unlockKey !== undefined));
  },
});

Deno.test({
  name:
    "readJks() decrypts only the chosen entry: each key of two-keypass.jks with its own password",
  permissions: read,
  async fn(): Promise<void> {
    // keytool lists both entries; Java's KeyStore.getKey(alias, password) opens each with its
    // own key password, and never touches the other entry.
    assert.equal(
      tool("interop/two-keypass.jks", "keytool-list"),
      "device-a:PrivateKeyEntry device-b:PrivateKeyEntry",
    );
    const name = "interop/two-keypass.jks";
    const store = await readJks(bytes(name), { password: PASSWORD, name });
    const byAlias = new Map(store.entries.map((e) => [e.alias, e]));
    assert.deepEqual(
      await entryKey(byAlias.get("device-a")!, "passwordA"),
      pkcs8("devices/rsa.key"),
    );
    assert.deepEqual(
      await entryKey(byAlias.get("device-b")!, "passwordB"),
      pkcs8("devices/ec256.key"),
    );
    await assertStoreError(entryKey(byAlias.get("device-a")!, "passwordB"), {
      code: "KEY_PASSWORD",
      name,
      secrets: ["passwordA", "passwordB"],
    });
  },
});

Deno.test({
  name: "readJks() reads trusted certificate entries as entries without a key",
  permissions: read,
  async fn(): Promise<void> {
    for (const password of [PASSWORD, undefined]) {
      const store = await readJks(bytes("devices/truststore.jks"), { password });
      assert.deepEqual(store.entries.map((e) => e.alias).sort(), [
        "device-intermediate-ca",
        "device-root-ca",
      ]);
      assert.ok(store.entries.every((e) => e.privateKeyPkcs8 === undefined));
      assert.ok(store.entries.every((e) => e.certificates.length === 1));
    }
  },
});

Deno.test({
  name: "readJks() without any password reads the certificates; the key then needs a password",
  permissions: read,
  async fn(): Promise<void> {
    const store = await readJks(bytes("devices/rsa.jks"), { name: "r.jks" });
    assert.equal(store.entries[0].privateKeyPkcs8, undefined);
    assert.equal(store.entries[0].certificates.length, 2);
    await assertStoreError(entryKey(store.entries[0], undefined), {
      code: "KEY_PASSWORD_REQUIRED",
      name: "r.jks",
    });
  },
});

Deno.test({
  name: "readJks() refuses JCEKS with the exact keytool conversion command",
  permissions: read,
  async fn(): Promise<void> {
    const name = "devices/rsa.jceks";
    const err = await assertStoreError(readJks(bytes(name), { password: PASSWORD, name }), {
      code: "STORE_JCEKS",
      name,
      secrets: [PASSWORD],
    });
    assert.ok(
      err.hint.includes(
        "keytool -importkeystore -srckeystore devices/rsa.jceks -srcstoretype JCEKS " +
          "-destkeystore devices/rsa.p12 -deststoretype PKCS12",
      ),
      err.hint,
    );
  },
});

Deno.test({
  name: "readJks() reports truncation anywhere, including inside the digest, as STORE_CORRUPT",
  permissions: read,
  async fn(): Promise<void> {
    const full = bytes("devices/ec256.jks");
    for (const cut of [8, 13, 100, full.length - 21, full.length - 20, full.length - 1]) {
      const err = await assertStoreError(
        readJks(full.subarray(0, cut), { password: PASSWORD, name: "cut.jks" }),
        { code: "STORE_CORRUPT", name: "cut.jks", secrets: [PASSWORD] },
      );
      assert.ok(err.cause instanceof Error);
    }
  },
});

Deno.test({
  name: "readJks() refuses a file that is not JKS (STORE_FORMAT)",
  permissions: read,
  async fn(): Promise<void> {
    await assertStoreError(readJks(bytes("bad/random.bin"), { password: PASSWORD, name: "rnd" }), {
      code: "STORE_FORMAT",
      name: "rnd",
    });
  },
});

Deno.test({
  name: "readJks() reads the JDK's cacerts with and without its password",
  permissions: { read: [...JDK_CACERTS] },
  async fn(): Promise<void> {
    const path = jdkCacertsOrWarn("the JDK cacerts test");
    if (path === undefined) return;
    const data = Deno.readFileSync(path);
    if (data[0] !== 0xfe) {
      console.warn(`${path} is not a JKS store: this test checks nothing here`);
      return;
    }
    const checked = await readJks(data, { password: PASSWORD, name: path });
    const unchecked = await readJks(data, { name: path });
    assert.ok(checked.entries.length > 100, `${checked.entries.length} entries`);
    assert.equal(unchecked.entries.length, checked.entries.length);
    assert.ok(checked.entries.every((e) => e.privateKeyPkcs8 === undefined));
  },
});

Deno.test({
  name: "readJks() reports a jks-js that cannot be loaded as DEPENDENCY_LOAD, not a bad store",
  permissions: { read: true, write: true, run: true },
}, async () => {
  // A Deno with an empty module cache that may not download anything cannot load npm:jks-js.
  const dir = await Deno.makeTempDir({ prefix: "jks-dep-" });
  try {
    const script = `${dir}/read.ts`;
    await Deno.writeTextFile(
      script,
      `import { readJks } from ${
        JSON.stringify(new URL("../../lib/stores/jks.ts", import.meta.url).href)
      };
const bytes = await Deno.readFile(${JSON.stringify(new URL("devices/rsa.jks", fixtures).pathname)});
try {
  await readJks(bytes, { password: "${PASSWORD}", name: "rsa.jks" });
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message, hint: err.hint }));
}
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--cached-only", "--no-config", "--no-lock", "-A", script],
      cwd: dir,
      env: { DENO_DIR: `${dir}/deno_dir`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const result = JSON.parse(stdout);
    assert.equal(result.name, "StoreError");
    assert.equal(result.code, "DEPENDENCY_LOAD");
    assert.match(result.message, /Cannot load jks-js, .* "rsa\.jks"/);
    assert.match(result.hint, /npm:jks-js/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
