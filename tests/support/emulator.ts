/**
 * The emulator as the tests start it, with the fixture certificates.
 *
 * @module
 */

import { type Emulator, type EmulatorOptions, startEmulator } from "../../lib/emulator/mod.ts";

/**
 * Starts the emulator with the fixture server certificate and key, trusting the fixture device
 * root CA (override any option). Use it with `await using`: it stops at the end of the scope.
 */
export function startFixtureEmulator(options: Partial<EmulatorOptions> = {}): Promise<Emulator> {
  const fixture = (path: string): string =>
    Deno.readTextFileSync(new URL(`../../fixtures/${path}`, import.meta.url));
  return startEmulator({
    serverCertPem: fixture("server/server.pem"),
    serverKeyPem: fixture("server/server.key"),
    trustedCaPems: [fixture("ca/device-root-ca.pem")],
    ...options,
  });
}
