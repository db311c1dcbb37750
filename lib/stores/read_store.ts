/**
 * A store's bytes read into a `RawStore`: the size checks, the choice of format, and the dispatch
 * to the format readers (JKS, PKCS#12, PEM, a DER certificate).
 *
 * @module
 */

import { MAX_STORE_CERTIFICATES, tooManyCertificates } from "../x509/certificate.ts";
import { readDer } from "../encoding/der.ts";
import { C8yError, StoreError } from "../errors.ts";
import { readJks } from "./jks.ts";
import { readPem } from "./pem.ts";
import { readPkcs12 } from "./pkcs12/read.ts";
import { detectFormat, FORMAT_LABEL, withContentNote } from "./detect.ts";
import type { RawStore, StoreFormat } from "../types.ts";

/** The largest store accepted, in bytes (1 MiB). Larger inputs are refused before parsing. */
export const MAX_STORE_BYTES: number = 1024 * 1024;

/** Which store is read, for messages. */
export type Role = "keystore" | "truststore";

/** How {@linkcode readStore} reads a store. */
export interface ReadOptions {
  role: Role;
  name: string;
  password?: string;
  type?: StoreFormat;
}

/**
 * Reads a store's bytes in its format: the size checks, the format (given, or detected from the
 * content), the format's reader, and the bound on its certificates.
 *
 * @throws {StoreError} `STORE_EMPTY`, `STORE_TOO_LARGE`, `STORE_FORMAT`, `STORE_CORRUPT`,
 *   `STORE_TOO_MANY_CERTIFICATES`, and the errors of the format readers.
 */
export async function readStore(bytes: Uint8Array, opts: ReadOptions): Promise<RawStore> {
  const { role, name } = opts;
  const Role = role === "keystore" ? "Keystore" : "Truststore";
  if (bytes.length === 0) {
    throw new StoreError(`${Role} "${name}" is empty`, {
      code: "STORE_EMPTY",
      hint: "The file has no content; copy or export it again.",
    });
  }
  if (bytes.length > MAX_STORE_BYTES) {
    throw new StoreError(
      `${Role} "${name}" is too large (${bytes.length} bytes; the limit is ${MAX_STORE_BYTES})`,
      { code: "STORE_TOO_LARGE", hint: `Check that "${name}" is really a ${role}.` },
    );
  }
  const detected = detectFormat(bytes);
  let format: StoreFormat;
  if (detected === "jceks") {
    format = "jks"; // readJks refuses it with the conversion command
  } else if (opts.type !== undefined) {
    if (detected !== undefined && detected !== opts.type) {
      throw new StoreError(
        `${Role} "${name}" is not a ${FORMAT_LABEL[opts.type]} store: ` +
          `its content is ${FORMAT_LABEL[detected]}`,
        {
          code: "STORE_FORMAT",
          hint: `Use \`type: "${detected}"\`, or leave the option out to detect the format.`,
        },
      );
    }
    format = opts.type;
  } else if (detected === undefined) {
    throw new StoreError(
      `${Role} "${name}" is not a keystore: its content is neither JKS, PKCS#12, PEM nor a ` +
        "DER certificate",
      {
        code: "STORE_FORMAT",
        hint: "Check the file; if it is a store, give its format with `type`.",
      },
    );
  } else {
    format = detected;
  }

  let store: RawStore;
  try {
    store = await readFormat(bytes, format, opts);
  } catch (cause) {
    const error = cause instanceof C8yError ? cause : new StoreError(
      `${Role} "${name}" is not a valid ${FORMAT_LABEL[format]} ${role} ` +
        `(${describeDerError(cause)})`,
      {
        code: "STORE_CORRUPT",
        hint: "Copy the file again (in binary mode) or export it again.",
        cause,
      },
    );
    throw withContentNote(error, name, format);
  }
  const certificateCount = store.entries.reduce((n, e) => n + e.certificates.length, 0);
  if (certificateCount > MAX_STORE_CERTIFICATES) throw tooManyCertificates(`${Role} "${name}"`);
  return store;
}

async function readFormat(
  bytes: Uint8Array,
  format: StoreFormat,
  opts: ReadOptions,
): Promise<RawStore> {
  switch (format) {
    case "jks":
      return await readJks(bytes, { password: opts.password, name: opts.name });
    case "pkcs12":
      return await readP12(bytes, opts);
    case "pem":
      return readPem(new TextDecoder().decode(bytes), {
        name: opts.name,
        keys: opts.role === "keystore",
      });
    case "der": {
      // One certificate; what follows it is ignored, as openssl x509 -inform DER and keytool
      // -printcert ignore it.
      const der = readDer(bytes, { allowTrailing: true }).raw.slice();
      return {
        format: "der",
        entries: [{ alias: undefined, privateKeyPkcs8: undefined, certificates: [der] }],
      };
    }
  }
}

/** A DER reader's complaint in the words of a store message ("truncated", "extra bytes"). */
function describeDerError(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : "";
  if (/trailing bytes/.test(message)) {
    return `extra bytes after the end of ${message.replace(/^.*trailing bytes after /, "")}`;
  }
  return "truncated or corrupt";
}

async function readP12(bytes: Uint8Array, opts: ReadOptions): Promise<RawStore> {
  try {
    return await readPkcs12(bytes, { password: opts.password ?? "", name: opts.name });
  } catch (err) {
    if (
      opts.password === undefined && err instanceof StoreError && err.code === "KEYSTORE_PASSWORD"
    ) {
      throw new StoreError(`PKCS#12 ${opts.role} "${opts.name}" needs a password`, {
        code: "KEYSTORE_PASSWORD_REQUIRED",
        hint: "Give it with `password`.",
        cause: err,
      });
    }
    throw err;
  }
}
