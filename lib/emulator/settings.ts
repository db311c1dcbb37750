/**
 * The emulator's settings and every default, written once: port, tenant id, token lifetime,
 * timeouts and the bounds on what a client may send. {@linkcode checkEmulatorSettings} needs no
 * file or network, so the command line can check the settings without loading the broker.
 *
 * @module
 */

import { type ErrorCode, UsageError } from "../errors.ts";

/** The address the emulator listens on by default. */
export const DEFAULT_HOSTNAME = "127.0.0.1";
/** The tenant id put into tokens by default. */
export const DEFAULT_TENANT = "t12345";
/** The token lifetime by default, in seconds (the platform's default `device-token.lifespan`). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 3600;
/**
 * The platform's minimum token lifetime, in seconds. The emulator allows shorter lifetimes (down
 * to 1 s) so that tests of token renewal run quickly.
 */
export const PLATFORM_MIN_TOKEN_LIFETIME_SECONDS = 300;
/** Time a client has for the TLS handshake by default, in milliseconds. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Time a client has to send CONNECT after the handshake by default, in milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/**
 * The largest MQTT packet a client may send by default, in bytes, fixed header included: the
 * platform accepts at most 16,184 bytes per message, header included
 * (Cumulocity documentation, "MQTT implementation", limitations).
 */
export const DEFAULT_MAX_PACKET_BYTES = 16_184;
/**
 * The bytes a client may send before it is authenticated (CONNECT and whatever it pipelines
 * behind it until CONNACK), by default. A device's CONNECT is a few hundred bytes.
 */
export const DEFAULT_MAX_UNAUTHENTICATED_BYTES = 32_768;
/** The longest MQTT client id the emulator reads (the platform's device ids are short). */
export const MAX_CLIENT_ID_LENGTH = 256;

/**
 * The token signature algorithm: `RS256` as the platform signs, or `ES256`, which costs the
 * emulator about a quarter of the CPU per token (for load tests whose client, not the emulator,
 * should set the pace).
 */
export type TokenAlgorithm = "RS256" | "ES256";

/** The settings {@linkcode checkEmulatorSettings} checks (part of `EmulatorOptions`). */
export interface EmulatorSettings {
  /** Port of the MQTT endpoint; 0 picks a free one. @default 0 */
  port?: number;
  /** Port of the REST endpoint; 0 picks a free one; absent: no REST endpoint. */
  restPort?: number;
  /** The tenant id put into tokens (`ten`) and their issuer. @default "t12345" */
  tenant?: string;
  /**
   * Token lifetime in seconds. The platform's minimum is 300; the emulator accepts 1 and more
   * so that token renewal can be tested quickly. @default 3600
   */
  tokenLifetimeSeconds?: number;
  /** The token signature algorithm (the platform's is RS256). @default "RS256" */
  tokenAlgorithm?: TokenAlgorithm;
  /**
   * The largest MQTT packet a client may send, in bytes, fixed header included; a larger one
   * closes the connection (`refused` or `error` event naming the size). @default 16184
   */
  maxPacketBytes?: number;
  /**
   * The bytes a client may send before its CONNECT is accepted; more closes the connection.
   * @default 32768
   */
  maxUnauthenticatedBytes?: number;
}

/**
 * The address the emulator listens on for a host name: IPv6 brackets dropped (`[::1]` is `::1`),
 * `localhost` as `127.0.0.1` (so that it needs no name look-up, and exactly the permission
 * `--allow-net=127.0.0.1`).
 *
 * @param hostname The host name or address given.
 * @returns The address to listen on.
 *
 * @example
 * ```ts
 * import { listenAddress } from "./mod.ts";
 * if (listenAddress("[::1]") !== "::1" || listenAddress("localhost") !== "127.0.0.1") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function listenAddress(hostname: string): string {
  const bare = hostname.startsWith("[") && hostname.endsWith("]")
    ? hostname.slice(1, -1)
    : hostname;
  return bare.toLowerCase() === "localhost" ? "127.0.0.1" : bare;
}

function checkInteger(
  value: number,
  min: number,
  max: number,
  what: string,
  code: ErrorCode,
  hint: string,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${what} ${value} is not allowed (${min} to ${max})`, { code, hint });
  }
}

/**
 * Checks the emulator's ports, tenant id, token lifetime and size limits, as `startEmulator` does
 * before it starts (the command line calls it before it reads any file).
 *
 * @param settings The settings to check (defaults as in `EmulatorOptions`).
 * @throws {UsageError} `EMULATOR_TOKEN_LIFETIME`, `EMULATOR_PORT`, `EMULATOR_TENANT` or
 *   `EMULATOR_LIMIT`.
 *
 * @example
 * ```ts
 * import { checkEmulatorSettings } from "./mod.ts";
 * checkEmulatorSettings({ port: 0, tenant: "t12345", tokenLifetimeSeconds: 300 });
 * ```
 */
export function checkEmulatorSettings(settings: EmulatorSettings): void {
  checkInteger(
    settings.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS,
    1,
    10 * 365 * 86_400,
    "Token lifetime (s)",
    "EMULATOR_TOKEN_LIFETIME",
    "Give the token lifetime in whole seconds, e.g. 3600 (the platform's minimum is 300).",
  );
  for (const [name, port] of [["Port", settings.port], ["REST port", settings.restPort]] as const) {
    checkInteger(
      port ?? 0,
      0,
      65535,
      name,
      "EMULATOR_PORT",
      "Use a TCP port from 0 (any free port) to 65535.",
    );
  }
  if (settings.port !== undefined && settings.port !== 0 && settings.port === settings.restPort) {
    throw new UsageError(`The MQTT and REST endpoints cannot share port ${settings.port}`, {
      code: "EMULATOR_PORT",
      hint: "Give the REST endpoint another port (or 0 for any free port).",
    });
  }
  if (
    settings.tokenAlgorithm !== undefined && !["RS256", "ES256"].includes(settings.tokenAlgorithm)
  ) {
    throw new UsageError(
      `Token algorithm "${String(settings.tokenAlgorithm).slice(0, 16)}" is not offered`,
      {
        code: "EMULATOR_TOKEN_ALGORITHM",
        hint: "Use RS256 (as the platform) or ES256.",
      },
    );
  }
  const tenant = settings.tenant ?? DEFAULT_TENANT;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(tenant)) {
    throw new UsageError(`Tenant id "${tenant.slice(0, 64)}" is not valid`, {
      code: "EMULATOR_TENANT",
      hint: "Use letters, digits, '-' and '_' only, e.g. t12345.",
    });
  }
  checkInteger(
    settings.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES,
    64,
    268_435_460,
    "Largest MQTT packet (bytes)",
    "EMULATOR_LIMIT",
    "Give a size in bytes, e.g. 16184 (the platform's limit).",
  );
  checkInteger(
    settings.maxUnauthenticatedBytes ?? DEFAULT_MAX_UNAUTHENTICATED_BYTES,
    64,
    268_435_460,
    "Bytes before authentication",
    "EMULATOR_LIMIT",
    "Give a size in bytes, e.g. 32768.",
  );
}
