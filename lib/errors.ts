/**
 * The project's error family. Every failure the tool can explain is a {@linkcode C8yError}
 * subclass carrying a stable `code` (one of {@linkcode ErrorCode}, documented in one table), the
 * `stage` it happened in, a `hint` that says what to do, and the command-line exit code of its
 * class. Messages never contain a password or a token.
 *
 * @module
 */

import type { Problem, ProblemCode } from "./types.ts";

/**
 * Every `code` a {@linkcode C8yError} carries. This table is the one place they are listed; a test
 * checks that every code the library and the command line use is in it.
 *
 * | Code | Class | Meaning |
 * |---|---|---|
 * | `USAGE` | `UsageError` | A bad command line: unknown command or flag, missing or bad value. |
 * | `OPTION_INVALID` | `UsageError` | An option of a library function is out of range (`attempts: 0`, `timeoutMs: 0`). |
 * | `PASSWORD_SPEC`, `PASSWORD_SOURCE`, `PASSWORD_REQUIRED` | `UsageError` | A password source that cannot be parsed or read, or none where one is needed and no terminal can ask. |
 * | `URL_INVALID`, `URL_PORT`, `URL_HTTP`, `URL_SCHEME_NO_TLS`, `URL_WEBSOCKET` | `UsageError` | A broker URL that is malformed, has a bad port, is a web address, plain MQTT or WebSocket. |
 * | `CLIENT_ID_INVALID`, `CLIENT_ID_TYPE` | `UsageError` | A client id that is not `<id>`, `d:<id>` or `d:<id>:<template>`, or not of type `d`. |
 * | `ALIAS_NOT_APPLICABLE`, `KEY_NOT_PEM` | `UsageError` | An alias for a PEM store, or a separate key for a store that holds its own. |
 * | `SERVERNAME_IP`, `USAGE_KEEPALIVE` | `UsageError` | An IP address as TLS server name; a keepalive MQTT cannot carry. |
 * | `EMULATOR_PORT`, `EMULATOR_TENANT`, `EMULATOR_TOKEN_LIFETIME`, `EMULATOR_TRUST`, `EMULATOR_SERVER_CERT`, `EMULATOR_LIMIT`, `EMULATOR_TOKEN_ALGORITHM` | `UsageError` | An emulator setting that cannot work. |
 * | `EMULATOR_DEVICE_NOT_CONNECTED`, `EMULATOR_DEVICE_NOT_SUBSCRIBED` | `UsageError` | `sendToDevice()` to a device that is not connected, or not subscribed to `s/ds`. |
 * | `MANIFEST_EMPTY`, `MANIFEST_HEADER`, `MANIFEST_COLUMN`, `MANIFEST_QUOTE`, `MANIFEST_FIELDS`, `MANIFEST_KEYSTORE`, `MANIFEST_JSON`, `MANIFEST_CSV`, `MANIFEST_LINE_TOO_LONG` | `UsageError` | A fleet manifest line that cannot be read (the message names line and column). |
 * | `PERMISSION_MISSING`, `PERMISSION_NET`, `PERMISSION_ENV` | `PermissionError` | Deno lacks a permission; the message names the flag (`PERMISSION_ENV`: MQTT.js's dependencies look up environment variables when they load, so `--ignore-env`). |
 * | `STORE_NOT_FOUND`, `STORE_IS_DIRECTORY`, `STORE_NOT_A_FILE`, `STORE_UNREADABLE`, `STORE_TOO_LARGE` | `StoreError` | A store file that is missing, a directory, a FIFO/socket/device (refused before it is opened), unreadable or too large. |
 * | `STORE_TOO_MANY_CERTIFICATES` | `StoreError` | A store carries more than 1000 certificates. |
 * | `STORE_FORMAT`, `STORE_CORRUPT`, `STORE_UNSUPPORTED`, `STORE_JCEKS`, `STORE_EMPTY` | `StoreError` | A store of an unknown, damaged or unsupported format, or with nothing in it. |
 * | `STORE_NO_KEY`, `STORE_NO_CERTIFICATE`, `STORE_ALIAS_REQUIRED`, `STORE_ALIAS_UNKNOWN` | `StoreError` | No key entry or certificate, or a key entry that must be chosen by alias. |
 * | `KEYSTORE_PASSWORD`, `KEYSTORE_PASSWORD_REQUIRED`, `KEY_PASSWORD`, `KEY_PASSWORD_REQUIRED` | `StoreError` | A wrong or missing store or key entry password. |
 * | `KEY_INVALID`, `KEY_UNSUPPORTED`, `KEY_CONFLICT`, `PEM_MULTIPLE_KEYS`, `CERT_PARSE` | `StoreError` | A key or certificate that cannot be read, or several keys where one is expected. |
 * | `TRUSTSTORE_EMPTY`, `DEPENDENCY_LOAD` | `StoreError` | A truststore without certificates; a library the format needs did not load. |
 * | `STORE_CHANGED` | `StoreError` | A fleet device's keystore changed, or it left the device list, between the offline pass and its connection. |
 * | `CLIENT_ID_DUPLICATE` | `CertificateError` | Several devices of a fleet have one client id (the platform admits one connection per client id). |
 * | `REPORT_WRITE` | `UsageError` | The fleet's `--junit` report could not be written at the end of the run (its summary is printed first). |
 * | {@linkcode ProblemCode} of severity `error` (`CERT_EXPIRED`, `CLIENT_ID_MISMATCH`, `CN_COLON`, `CHAIN_EMPTY`, ...) | `CertificateError` | An offline check found an error; the table of `diagnose()` explains each. |
 * | `DNS_NOT_FOUND`, `DNS_FAILED` | `NetworkError` | The broker's host name does not resolve. |
 * | `NETWORK_REFUSED`, `NETWORK_UNREACHABLE`, `NETWORK_TIMEOUT`, `NETWORK_FAILED` | `NetworkError` | TCP to the broker failed or timed out. |
 * | `CONNECTION_LOST` | `NetworkError` | An established connection dropped. |
 * | `EMULATOR_LISTEN` | `NetworkError` | The emulator cannot listen on its address. |
 * | `TLS_SERVER_UNTRUSTED`, `TLS_SERVER_EXPIRED`, `TLS_HOSTNAME_MISMATCH` | `TlsError` | The server's certificate is not trusted, not valid now, or not for this host. |
 * | `TLS_CLIENT_CERT_REQUIRED`, `TLS_CLIENT_CERT_REFUSED` | `TlsError` | The server wanted a device certificate, or refused it (TLS alert or a close right after a TLS 1.3 handshake). |
 * | `TLS_CLOSED_AFTER_HANDSHAKE` | `TlsError` | REST token: a close right after a TLS 1.3 handshake at an MQTT port (8883, 1883) or the broker's own address: most likely not the REST endpoint, else a refused device certificate. |
 * | `TLS_LOCAL_CERT_REJECTED` | `TlsError` | This machine's TLS library (OpenSSL) refused the device's own key or certificate before connecting ("key too small", "ca md too weak"). |
 * | `TLS_NOT_TLS`, `TLS_HANDSHAKE_FAILED`, `TLS_TIMEOUT` | `TlsError` | The peer does not speak TLS, the handshake failed otherwise, or took too long. |
 * | `MQTT_UNACCEPTABLE_PROTOCOL`, `MQTT_IDENTIFIER_REJECTED`, `MQTT_SERVER_UNAVAILABLE`, `MQTT_BAD_CREDENTIALS`, `MQTT_NOT_AUTHORIZED` | `MqttError` | CONNACK 1 to 5; 5 (not authorized) is how the platform refuses a certificate identity. |
 * | `MQTT_CONNACK_TIMEOUT`, `MQTT_CONNECTION_CLOSED`, `MQTT_PROTOCOL` | `MqttError` | No CONNACK in time, a close before it, or a packet MQTT 3.1.1 does not allow. |
 * | `MQTT_SUBSCRIBE_REFUSED`, `MQTT_PUBLISH_FAILED`, `MQTT_NOT_CONNECTED` | `MqttError` | A subscription or publication failed, or the connection is closed. |
 * | `MQTT_SUBACK_TIMEOUT`, `MQTT_PUBACK_TIMEOUT` | `MqttError` | The broker accepted the connection but did not acknowledge a subscription or publication within the time limit. |
 * | `TOKEN_TIMEOUT`, `TOKEN_MALFORMED`, `TOKEN_CONNECTION_LOST` | `TokenError` | No `71,<JWT>` reply after the retries, a reply without a JWT, or the connection lost while waiting. |
 * | `HTTP_UNAUTHORIZED`, `HTTP_FORBIDDEN` | `TokenError` | REST token (stage `http`): 401 or 403, the device is not registered for certificate authentication or its CA is not trusted. |
 * | `HTTP_STATUS`, `HTTP_TIMEOUT`, `HTTP_CONNECTION_CLOSED` | `TokenError` | REST token (stage `http`): another status, no answer in time, or a close before the answer. |
 * | `TOKEN_NOT_JSON`, `TOKEN_NO_ACCESS_TOKEN`, `TOKEN_TOO_LARGE` | `TokenError` | REST token: an answer that is not JSON, has no `accessToken`, or is larger than 64 KiB. |
 * | `INTERNAL` | `C8yError` | A failure the tool did not foresee (a bug). |
 */
export type ErrorCode =
  | "USAGE"
  | "OPTION_INVALID"
  | "PASSWORD_SPEC"
  | "PASSWORD_SOURCE"
  | "PASSWORD_REQUIRED"
  | "URL_INVALID"
  | "URL_PORT"
  | "URL_HTTP"
  | "URL_SCHEME_NO_TLS"
  | "URL_WEBSOCKET"
  | "CLIENT_ID_INVALID"
  | "CLIENT_ID_TYPE"
  | "ALIAS_NOT_APPLICABLE"
  | "KEY_NOT_PEM"
  | "SERVERNAME_IP"
  | "USAGE_KEEPALIVE"
  | "EMULATOR_PORT"
  | "EMULATOR_TENANT"
  | "EMULATOR_TOKEN_LIFETIME"
  | "EMULATOR_TRUST"
  | "EMULATOR_SERVER_CERT"
  | "EMULATOR_LIMIT"
  | "EMULATOR_TOKEN_ALGORITHM"
  | "EMULATOR_DEVICE_NOT_CONNECTED"
  | "EMULATOR_DEVICE_NOT_SUBSCRIBED"
  | "MANIFEST_EMPTY"
  | "MANIFEST_HEADER"
  | "MANIFEST_COLUMN"
  | "MANIFEST_QUOTE"
  | "MANIFEST_FIELDS"
  | "MANIFEST_KEYSTORE"
  | "MANIFEST_JSON"
  | "MANIFEST_CSV"
  | "MANIFEST_LINE_TOO_LONG"
  | "PERMISSION_MISSING"
  | "PERMISSION_NET"
  | "PERMISSION_ENV"
  | "STORE_NOT_FOUND"
  | "STORE_IS_DIRECTORY"
  | "STORE_NOT_A_FILE"
  | "STORE_TOO_MANY_CERTIFICATES"
  | "STORE_UNREADABLE"
  | "STORE_TOO_LARGE"
  | "STORE_FORMAT"
  | "STORE_CORRUPT"
  | "STORE_UNSUPPORTED"
  | "STORE_JCEKS"
  | "STORE_EMPTY"
  | "STORE_NO_KEY"
  | "STORE_NO_CERTIFICATE"
  | "STORE_ALIAS_REQUIRED"
  | "STORE_ALIAS_UNKNOWN"
  | "KEYSTORE_PASSWORD"
  | "KEYSTORE_PASSWORD_REQUIRED"
  | "KEY_PASSWORD"
  | "KEY_PASSWORD_REQUIRED"
  | "KEY_INVALID"
  | "KEY_UNSUPPORTED"
  | "KEY_CONFLICT"
  | "PEM_MULTIPLE_KEYS"
  | "CERT_PARSE"
  | "TRUSTSTORE_EMPTY"
  | "DEPENDENCY_LOAD"
  | "STORE_CHANGED"
  | "CLIENT_ID_DUPLICATE"
  | "REPORT_WRITE"
  | ProblemCode
  | "DNS_NOT_FOUND"
  | "DNS_FAILED"
  | "NETWORK_REFUSED"
  | "NETWORK_UNREACHABLE"
  | "NETWORK_TIMEOUT"
  | "NETWORK_FAILED"
  | "CONNECTION_LOST"
  | "EMULATOR_LISTEN"
  | "TLS_SERVER_UNTRUSTED"
  | "TLS_SERVER_EXPIRED"
  | "TLS_HOSTNAME_MISMATCH"
  | "TLS_CLIENT_CERT_REQUIRED"
  | "TLS_CLIENT_CERT_REFUSED"
  | "TLS_CLOSED_AFTER_HANDSHAKE"
  | "TLS_LOCAL_CERT_REJECTED"
  | "TLS_NOT_TLS"
  | "TLS_HANDSHAKE_FAILED"
  | "TLS_TIMEOUT"
  | "MQTT_UNACCEPTABLE_PROTOCOL"
  | "MQTT_IDENTIFIER_REJECTED"
  | "MQTT_SERVER_UNAVAILABLE"
  | "MQTT_BAD_CREDENTIALS"
  | "MQTT_NOT_AUTHORIZED"
  | "MQTT_CONNACK_TIMEOUT"
  | "MQTT_CONNECTION_CLOSED"
  | "MQTT_PROTOCOL"
  | "MQTT_SUBSCRIBE_REFUSED"
  | "MQTT_PUBLISH_FAILED"
  | "MQTT_NOT_CONNECTED"
  | "MQTT_SUBACK_TIMEOUT"
  | "MQTT_PUBACK_TIMEOUT"
  | "TOKEN_TIMEOUT"
  | "TOKEN_MALFORMED"
  | "TOKEN_CONNECTION_LOST"
  | "HTTP_UNAUTHORIZED"
  | "HTTP_FORBIDDEN"
  | "HTTP_STATUS"
  | "HTTP_TIMEOUT"
  | "HTTP_CONNECTION_CLOSED"
  | "TOKEN_NOT_JSON"
  | "TOKEN_NO_ACCESS_TOKEN"
  | "TOKEN_TOO_LARGE"
  | "INTERNAL";

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
  | "http"
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
  /** Stable machine-readable code, e.g. `KEYSTORE_PASSWORD`: one of {@linkcode ErrorCode}. */
  code: ErrorCode;
  /** What the user can do about it, in one sentence. */
  hint?: string;
  /** The underlying error (never shown to users outside `--verbose`). */
  cause?: unknown;
  /** Overrides the class's default stage. */
  stage?: Stage;
  /**
   * The offline findings (`diagnose()`) the failure was judged with: for a refused certificate,
   * the hint is built from them (see `explainRefusal`).
   */
  findings?: readonly Problem[];
}

/**
 * Base class of every error the tool explains.
 *
 * @example Catching and inspecting an error
 * ```ts
 * import { C8yError, StoreError } from "../mod.ts";
 * const err = new StoreError('Cannot read keystore "a.p12": wrong password', {
 *   code: "KEYSTORE_PASSWORD",
 *   hint: "Check --keystore-password.",
 * });
 * if (!(err instanceof C8yError) || err.exitCode !== 3) throw new Error("unexpected");
 * ```
 */
export class C8yError extends Error {
  /** Stable machine-readable code; {@linkcode ErrorCode} lists them all. */
  readonly code: ErrorCode;
  /** Stage in which the failure happened. */
  readonly stage: Stage;
  /** What to do about it (may be empty). */
  readonly hint: string;
  /** The command-line exit code of this failure's class. */
  readonly exitCode: ExitCode;
  /** The offline findings the failure was judged with, when the caller had them. */
  readonly findings: readonly Problem[] | undefined;

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
    this.findings = options.findings;
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
