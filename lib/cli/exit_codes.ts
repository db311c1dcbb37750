/**
 * The exit codes of the command line, once: which error class ends in which code, and the table
 * `--help` prints (the README's "Exit codes" table is checked against it by a test).
 *
 * @module
 */

import {
  C8yError,
  CertificateError,
  ExitCode,
  MqttError,
  NetworkError,
  PermissionError,
  StoreError,
  TlsError,
  TokenError,
  UsageError,
} from "../errors.ts";
import type { C8yErrorOptions } from "../errors.ts";

/** One exit code: the failure class it reports and how `--help` explains it. */
export interface ExitCodeRow {
  /** The code the process exits with. */
  code: ExitCode;
  /** The failure class, as the README's table names it. */
  class: string;
  /** The error class that ends in this code; none for success. */
  error?: new (message: string, options: C8yErrorOptions) => C8yError;
  /** The line of `--help` after the code; it starts with the class. */
  help: string;
}

/** Every exit code, in order (the record's type makes sure none is left out). */
const ROWS: Record<keyof typeof ExitCode, Omit<ExitCodeRow, "code">> = {
  OK: { class: "success", help: "success" },
  INTERNAL: {
    class: "internal",
    error: C8yError,
    help: "internal error (a bug: please report it with --verbose output)",
  },
  USAGE: {
    class: "usage",
    error: UsageError,
    help: "usage: unknown command or flag, bad value, unreadable password source",
  },
  STORE: {
    class: "store",
    error: StoreError,
    help: "store: keystore/truststore missing, unreadable, wrong password, wrong format",
  },
  CERTIFICATE: {
    class: "certificate",
    error: CertificateError,
    help: "certificate: an offline check found an error (expired, CN with ':', key mismatch, ...)",
  },
  NETWORK: {
    class: "network",
    error: NetworkError,
    help: "network: DNS failure, connection refused or unreachable, timeout",
  },
  TLS: {
    class: "TLS",
    error: TlsError,
    help: "TLS: server not trusted, hostname mismatch, device certificate refused (TLS alert)",
  },
  MQTT: {
    class: "MQTT",
    error: MqttError,
    help:
      "MQTT: the broker refused the connection (CONNACK 1-5; 5 can be a refused certificate) or a subscription",
  },
  TOKEN: {
    class: "token",
    error: TokenError,
    help: "token: no '71,<JWT>' reply on s/dat, a malformed one, or a REST refusal (HTTP 401)",
  },
  PERMISSION: {
    class: "permission",
    error: PermissionError,
    help: "permission: Deno lacks a permission the command needs (the message names the flag)",
  },
};

/** The exit codes in ascending order. */
export const EXIT_CODES: readonly ExitCodeRow[] = (Object.keys(ROWS) as (keyof typeof ExitCode)[])
  .map((name) => ({ code: ExitCode[name], ...ROWS[name] }))
  .sort((a, b) => a.code - b.code);

/** The `EXIT CODES` section of `--help`. */
export const EXIT_TABLE: string = [
  "EXIT CODES",
  ...EXIT_CODES.map((row) => `  ${row.code}  ${row.help}`),
]
  .join("\n");
