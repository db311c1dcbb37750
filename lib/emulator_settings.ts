/**
 * The emulator's settings that need no file or network (port, tenant id, token lifetime), checked
 * apart from `emulator.ts` so that the command line can check them without loading the emulator
 * and its broker library.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** The platform's minimum token lifetime in seconds. */
const MIN_LIFETIME = 300;

/** The settings {@linkcode checkEmulatorSettings} checks (as in `EmulatorOptions`). */
export interface EmulatorSettings {
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** The tenant id put into tokens (`ten`) and their issuer. @default "t12345" */
  tenant?: string;
  /** Token lifetime in seconds; at least 300, as on the platform. @default 3600 */
  tokenLifetimeSeconds?: number;
}

/**
 * Checks the emulator's port, tenant id and token lifetime, as `startEmulator` does
 * before it starts (the command line calls it before it reads any file).
 *
 * @param settings The port, tenant id and token lifetime to check (defaults as in
 * `EmulatorOptions`).
 * @throws {UsageError} `EMULATOR_TOKEN_LIFETIME`, `EMULATOR_PORT` or `EMULATOR_TENANT`.
 *
 * @example
 * ```ts
 * import { checkEmulatorSettings } from "./emulator_settings.ts";
 * checkEmulatorSettings({ port: 0, tenant: "t12345", tokenLifetimeSeconds: 300 });
 * ```
 */
export function checkEmulatorSettings(settings: EmulatorSettings): void {
  const lifetime = settings.tokenLifetimeSeconds ?? 3600;
  if (!Number.isInteger(lifetime) || lifetime < MIN_LIFETIME) {
    throw new UsageError(
      `Token lifetime ${lifetime} s is not allowed: the minimum is ${MIN_LIFETIME} s`,
      { code: "EMULATOR_TOKEN_LIFETIME", hint: "Use --token-lifetime 300 or more (seconds)." },
    );
  }
  const port = settings.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`Port ${port} is not a TCP port`, {
      code: "EMULATOR_PORT",
      hint: "Use a port from 0 (any free port) to 65535.",
    });
  }
  const tenant = settings.tenant ?? "t12345";
  if (!/^[A-Za-z0-9_-]+$/.test(tenant)) {
    throw new UsageError(`Tenant id "${tenant}" is not valid`, {
      code: "EMULATOR_TENANT",
      hint: "Use letters, digits, '-' and '_' only, e.g. t12345.",
    });
  }
}
