/**
 * The project's third-party dependencies, each behind a loader.
 *
 * Every `npm:` specifier of the library lives here, written in full (name and version), so that
 * `mod.ts` imported from a URL resolves without our `deno.json`. Each dependency is loaded with
 * a dynamic `import()` only when a format or command needs it: importing `mod.ts` loads none.
 *
 * @module
 */

// @ts-types="npm:@types/node-forge@1.3.14"
import type forgeType from "npm:node-forge@1.4.3";

/** The `node-forge` module (PKCS#12 with legacy algorithms, generic ASN.1). */
export type Forge = typeof forgeType;

/** Loads `node-forge`. */
export async function loadForge(): Promise<Forge> {
  // @ts-types="npm:@types/node-forge@1.3.14"
  const mod = await import("npm:node-forge@1.4.3");
  return mod.default;
}

type JksJsModule = typeof import("npm:jks-js@1.1.7");

/** The two functions of `jks-js` (Java KeyStore reader) that `lib/jks.ts` uses. */
export interface JksJs {
  /** Parses the entries of a JKS store (with an empty password it skips the digest). */
  parseJks: JksJsModule["parseJks"];
  /** Recovers a key entry's PKCS#8 key (as PEM) from Sun's key protector. */
  decrypt: JksJsModule["decrypt"];
}

/**
 * Loads the JKS half of `jks-js` (Java KeyStore reader). Its package entry point also loads its
 * PKCS#12 half, which pulls in `node-forge` (about 15 ms more in a cold process, measured with
 * Deno 2.9.6); the project reads PKCS#12 itself, so only the JKS modules are imported.
 */
export async function loadJks(): Promise<JksJs> {
  const [parser, protector, keyInfo] = await Promise.all([
    import("npm:jks-js@1.1.7/lib/keystore/JavaKeyStoreParser.js"),
    import("npm:jks-js@1.1.7/lib/encryption/KeyProtector.js"),
    import("npm:jks-js@1.1.7/lib/encryption/EncryptedPrivateKeyInfo.js"),
  ]);
  const Parser = parser.default;
  const KeyProtector = protector.default;
  const EncryptedPrivateKeyInfo = keyInfo.default;
  return {
    parseJks: (keystore, password) => new Parser(keystore, password).parse(),
    decrypt: (protectedKey, password) =>
      new KeyProtector(password).recover(new EncryptedPrivateKeyInfo(protectedKey)),
  };
}

/** MQTT.js's module `lib/client` (its client class and helpers). */
export type MqttClientModule = typeof import("npm:mqtt@5.16.0/lib/client");

/**
 * The part of MQTT.js 5 (`npm:mqtt`) the connection uses: its client class, which speaks MQTT on
 * a stream it is given.
 */
export interface Mqtt {
  /** MQTT.js's `MqttClient` class. */
  MqttClient: MqttClientModule["default"];
}

/**
 * MQTT.js's client (`MqttClient` of `npm:mqtt`), as `DeviceConnection.client` exposes it: its
 * events, `publish`, `subscribe`, `end` and the rest are documented by MQTT.js.
 */
export type MqttClient = InstanceType<Mqtt["MqttClient"]>;

/**
 * Loads MQTT.js's client (`npm:mqtt@5.16.0`, module `lib/client`: the package's entry point
 * also loads every transport, WebSocket included, which costs about 15 ms more in a cold process,
 * measured with Deno 2.9.6). Its dependencies (`debug`, `readable-stream`) look up environment
 * variables when they load: a program needs `--ignore-env` (the look-ups then find nothing) or
 * `--allow-env`.
 */
export async function loadMqtt(): Promise<Mqtt> {
  const mod = await import("npm:mqtt@5.16.0/lib/client");
  // A CommonJS module: the namespace's default is its `module.exports`, whose `default` is the
  // class (the type declarations describe the ES module view, where it is the default itself).
  const exports = mod.default as unknown as { default: Mqtt["MqttClient"] };
  return { MqttClient: exports.default };
}

/** Loads `aedes` (MQTT broker, for the emulator). */
export function loadAedes(): Promise<typeof import("npm:aedes@1.2.0")> {
  return import("npm:aedes@1.2.0");
}

/** Loads `jose` (JWT signing and decoding). */
export function loadJose(): Promise<typeof import("npm:jose@6.2.18")> {
  return import("npm:jose@6.2.18");
}

/**
 * The SHA-1 and SHA-2 hashes of `@noble/hashes` (audited, pure JavaScript), for the PKCS#12 key
 * derivation. It hashes a digest thousands of times; one `node:crypto` call per round costs
 * about 2 µs, while a reused noble hash instance costs about 0.4 µs.
 */
export type NobleHashes =
  & typeof import("npm:@noble/hashes@2.4.0/sha2.js")
  & Pick<typeof import("npm:@noble/hashes@2.4.0/legacy.js"), "sha1">;

/** Loads `@noble/hashes` (SHA-1 from its `legacy.js`, the SHA-2 family from `sha2.js`). */
export async function loadNobleHashes(): Promise<NobleHashes> {
  const [sha2, legacy] = await Promise.all([
    import("npm:@noble/hashes@2.4.0/sha2.js"),
    import("npm:@noble/hashes@2.4.0/legacy.js"),
  ]);
  return { ...sha2, sha1: legacy.sha1 };
}

/**
 * Loads `fastest-levenshtein` (edit distance, no dependencies), for the command line's "did you
 * mean" on a mistyped flag or command.
 */
export function loadLevenshtein(): Promise<typeof import("npm:fastest-levenshtein@1.0.16")> {
  return import("npm:fastest-levenshtein@1.0.16");
}

/** Loads `csv-parse` (streaming CSV parser, for fleet manifests). */
export function loadCsvParse(): Promise<typeof import("npm:csv-parse@7.0.3")> {
  return import("npm:csv-parse@7.0.3");
}

/** Loads `xmlbuilder2` (XML writer, for the fleet's JUnit report). */
export function loadXmlBuilder(): Promise<typeof import("npm:xmlbuilder2@4.0.3")> {
  return import("npm:xmlbuilder2@4.0.3");
}

// @ts-types="npm:@types/cli-progress@3.11.6"
import type cliProgressType from "npm:cli-progress@3.12.0";

/** The `cli-progress` module (progress bars on a terminal). */
export type CliProgress = typeof cliProgressType;

/** Loads `cli-progress` (the fleet command's progress bar on a terminal). */
export async function loadCliProgress(): Promise<CliProgress> {
  // @ts-types="npm:@types/cli-progress@3.11.6"
  const mod = await import("npm:cli-progress@3.12.0");
  return mod.default;
}
