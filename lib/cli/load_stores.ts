/**
 * Loading the keystore and truststore the arguments name, asking for a password only when a
 * store turns out to need one that was not given.
 *
 * @module
 */

import { StoreError, UsageError } from "../errors.ts";
import { listKeyStore, loadKeyStore, loadTrustStore, type StoreListing } from "../stores/load.ts";
import { parsePasswordSpec } from "../stores/password_spec.ts";
import type { PasswordSpec } from "../stores/password_spec.ts";
import type { DeviceIdentity, StoreFormat, TrustAnchors } from "../types.ts";
import type { RunContext } from "./context.ts";
import { readStoreFile } from "./files.ts";
import { inFlags, KEYSTORE_FLAGS, truststoreFlags } from "./flags.ts";
import type { Command, Values } from "./options.ts";
import { required, storeType } from "./option_values.ts";
import { promptPassword, resolvePassword } from "./passwords.ts";

/** The stores the arguments name, loaded, with how long each took (ms). */
export interface LoadedStores {
  identity?: DeviceIdentity;
  /**
   * For `inspect` of a keystore with several key entries and no `--alias`: every entry, listed
   * without choosing one (no key decrypted).
   */
  listing?: StoreListing;
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
async function givenPassword(
  run: RunContext,
  values: Values,
  name: string,
): Promise<string | undefined> {
  const spec = passwordOption(values, name);
  return spec ? await resolvePassword(run, spec, `--${name}`) : undefined;
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
  run: RunContext,
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
        passwords.key = await promptPassword(run, ...prompts.key!, error.message);
      } else if (forStore && passwords.store === undefined) {
        passwords.store = await promptPassword(run, ...prompts.store, error.message);
      } else {
        throw error;
      }
    }
  }
}

/** Reads a truststore (`--truststore`, or `--trust` of the emulator) with its password option. */
export async function readTrustStore(
  run: RunContext,
  values: Values,
  path: string,
  what: string,
  options: { type: StoreFormat | undefined; passwordOption: string },
): Promise<TrustAnchors> {
  const bytes = await readStoreFile(path, what);
  const passwords = { store: await givenPassword(run, values, options.passwordOption) };
  return await withPasswords(
    run,
    passwords,
    { store: [`Password for "${path}"`, `--${options.passwordOption}`] },
    ({ store }) =>
      inFlags(
        truststoreFlags(options.passwordOption.replace(/-password$/, "")),
        () => loadTrustStore(bytes, { password: store, type: options.type, name: path }),
      ),
  );
}

/**
 * Loads the stores the arguments name; `onLoaded` hears of each as soon as it is loaded (the
 * keystore first), so that `check` can report them as separate stages.
 */
export async function loadStores(
  run: RunContext,
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
      store: await givenPassword(run, values, "keystore-password"),
      key: await givenPassword(run, values, "key-password"),
    };
    const prompts = {
      store: [`Password for "${path}"`, "--keystore-password"] as Prompt,
      key: values.key
        ? [`Password for the key "${values.key}"`, "--key-password"] as Prompt
        : undefined,
    };
    try {
      result.identity = await withPasswords(
        run,
        passwords,
        prompts,
        ({ store, key: keyPassword }) =>
          inFlags(KEYSTORE_FLAGS, () =>
            loadKeyStore(bytes, {
              password: store,
              keyPassword,
              alias: values.alias,
              type,
              name: path,
              key,
              keyName: values.key,
            })),
      );
    } catch (error) {
      // inspect explores: a store of several key entries is listed, not refused.
      const several = error instanceof StoreError && error.code === "STORE_ALIAS_REQUIRED";
      if (command !== "inspect" || !several) throw error;
      result.listing = await withPasswords(
        run,
        passwords,
        prompts,
        ({ store }) =>
          inFlags(KEYSTORE_FLAGS, () => listKeyStore(bytes, { password: store, type, name: path })),
      );
    }
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
    result.trust = await readTrustStore(run, values, path, "truststore", {
      type,
      passwordOption: "truststore-password",
    });
    result.truststorePath = path;
    result.timings.truststore = performance.now() - started;
    onLoaded?.("truststore", result);
  }
  if (command === "inspect" && !result.identity && !result.listing && !result.trust) {
    throw new UsageError("The inspect command needs --keystore or --truststore (or both)", {
      code: "USAGE",
      hint: "Run c8y-mqtt-cert --help for the usage of inspect.",
    });
  }
  return result;
}
