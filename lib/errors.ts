/**
 * The project's error family. Every failure the tool can explain is a {@linkcode C8yError}
 * subclass carrying a stable `code`, the `stage` it happened in, a `hint` that says what to do,
 * and the command-line exit code of its class. Messages never contain a password or a token.
 *
 * @module
 */

/** The stage of the path from stores to token in which a failure happened. */
export type Stage =
  | "usage"
  | "permission"
  | "store"
  | "certificate"
  | "dns"
  | "tcp"
  | "tls"
  | "mqtt"
  | "subscribe"
  | "token";

/**
 * Command-line exit codes, one per failure class. The README and `--help` carry this table.
 */
export const ExitCode = {
  /** Everything worked. */
  OK: 0,
  /** A failure the tool did not foresee (a bug: please report it). */
  INTERNAL: 1,
  /** Bad command line: unknown flag, missing value, unreadable password source. */
  USAGE: 2,
  /** A keystore or truststore cannot be read: missing file, wrong password, bad format. */
  STORE: 3,
  /** An offline certificate check failed (expired, CN with ':', key mismatch, ...). */
  CERTIFICATE: 4,
  /** The broker cannot be reached: DNS, connection refused, unreachable, timeout. */
  NETWORK: 5,
  /** The TLS handshake failed: server not trusted, hostname mismatch, device certificate refused. */
  TLS: 6,
  /** The broker refused the MQTT connection (CONNACK return code 1 to 5). */
  MQTT: 7,
  /** Connected, but no valid token arrived (no `71` reply, malformed reply). */
  TOKEN: 8,
  /** Deno lacks a permission the command needs (the message names the flag). */
  PERMISSION: 9,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** Options shared by every {@linkcode C8yError}. */
export interface C8yErrorOptions {
  /** Stable machine-readable code, e.g. `KEYSTORE_PASSWORD`. */
  code: string;
  /** What the user can do about it, in one sentence. */
  hint?: string;
  /** The underlying error (never shown to users outside `--verbose`). */
  cause?: unknown;
  /** Overrides the class's default stage. */
  stage?: Stage;
}

/**
 * Base class of every error the tool explains.
 *
 * @example Catching and inspecting an error
 * ```ts
 * import { C8yError, StoreError } from "./errors.ts";
 * const err = new StoreError('Cannot read keystore "a.p12": wrong password', {
 *   code: "KEYSTORE_PASSWORD",
 *   hint: "Check --keystore-password.",
 * });
 * if (!(err instanceof C8yError) || err.exitCode !== 3) throw new Error("unexpected");
 * ```
 */
export class C8yError extends Error {
  /** Stable machine-readable code. */
  readonly code: string;
  /** Stage in which the failure happened. */
  readonly stage: Stage;
  /** What to do about it (may be empty). */
  readonly hint: string;
  /** The command-line exit code of this failure's class. */
  readonly exitCode: ExitCode;

  /**
   * Creates the error; subclasses fix the stage and exit code.
   *
   * @param message One sentence naming the culprit, e.g. the file.
   * @param options Code, hint, cause and stage.
   * @param defaults The class's stage and exit code.
   */
  constructor(
    message: string,
    options: C8yErrorOptions,
    defaults: { stage: Stage; exitCode: ExitCode } = {
      stage: "usage",
      exitCode: ExitCode.INTERNAL,
    },
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.hint = options.hint ?? "";
    this.stage = options.stage ?? defaults.stage;
    this.exitCode = defaults.exitCode;
  }
}

/** Bad command-line usage or an unusable option value. Exit code 2. */
export class UsageError extends C8yError {
  /**
   * Creates the error.
   *
   * @param message What is wrong.
   * @param options Code, hint, cause.
   */
  constructor(message: string, options: C8yErrorOptions) {
    super(message, options, { stage: "usage", exitCode: ExitCode.USAGE });
  }
}

/** A missing Deno permission. Exit code 9. */
export class PermissionError extends C8yError {
  /**
   * Creates the error.
   *
   * @param message What is missing.
   * @param options Code, hint, cause.
   */
  constructor(message: string, options: C8yErrorOptions) {
    super(message, options, { stage: "permission", exitCode: ExitCode.PERMISSION });
  }
}

/** A keystore or truststore that cannot be read. Exit code 3. */
export class StoreError extends C8yError {
  /**
   * Creates the error.
   *
   * @param message What is wrong, naming the store.
   * @param options Code, hint, cause.
   */
  constructor(message: string, options: C8yErrorOptions) {
    super(message, options, { stage: "store", exitCode: ExitCode.STORE });
  }
}

/** An offline certificate problem of severity `error`. Exit code 4. */
export class CertificateError extends C8yError {
  /**
   * Creates the error.
   *
   * @param message What is wrong, naming the certificate.
   * @param options Code, hint, cause.
   */
  constructor(message: string, options: C8yErrorOptions) {
    super(message, options, { stage: "certificate", exitCode: ExitCode.CERTIFICATE });
  }
}

/** DNS, TCP or timeout failure reaching the broker. Exit code 5. */
export class NetworkError extends C8yError {
  /**
   * Creates the error.
   *
   * @param message What failed, naming host and port.
   * @param options Code, hint, cause, stage.
   */
  constructor(message: string, options: C8yErrorOptions) {
    super(message, options, { stage: "tcp", exitCode: ExitCode.NETWORK });
  }
}

/** TLS handshake failure, including a device certificate refused by the server. Exit code 6. */
export class TlsError extends C8yError {
  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param options Code, hint, cause.
   */
  constructor(message: string, options: C8yErrorOptions) {
    super(message, options, { stage: "tls", exitCode: ExitCode.TLS });
  }
}

/** The broker refused the MQTT connection (CONNACK 1-5) or a subscription. Exit code 7. */
export class MqttError extends C8yError {
  /** CONNACK return code, when the refusal came as a CONNACK. */
  readonly returnCode: number | undefined;
  /**
   * Creates the error.
   *
   * @param message What the broker said.
   * @param options Code, hint, cause, stage, and the CONNACK return code.
   */
  constructor(message: string, options: C8yErrorOptions & { returnCode?: number }) {
    super(message, options, { stage: "mqtt", exitCode: ExitCode.MQTT });
    this.returnCode = options.returnCode;
  }
}

/** No valid token arrived: no `71` reply after the retries, or a malformed one. Exit code 8. */
export class TokenError extends C8yError {
  /**
   * Creates the error.
   *
   * @param message What went wrong.
   * @param options Code, hint, cause.
   */
  constructor(message: string, options: C8yErrorOptions) {
    super(message, options, { stage: "token", exitCode: ExitCode.TOKEN });
  }
}
