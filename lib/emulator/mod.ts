/**
 * A local stand-in for the slice of Cumulocity that a certificate device talks to, so that the
 * tool (and a device program) can be tried and tested without a tenant. Served as the package's
 * own export `@c8y-mqtt-cert/c8y-mqtt-cert/emulator`.
 *
 * What it emulates:
 * - **Mutual TLS** with a server certificate and key, against a configured set of trusted CAs
 *   (the tenant's "trusted certificates"). The device's chain must reach a trusted CA, or the
 *   device may send only its own certificate when its **immediate issuer** is trusted. At most
 *   10 certificates; every certificate that signs another needs `basicConstraints CA:TRUE`; every
 *   certificate of the path (trusted CA included) must be within its validity period
 *   (`device_auth.ts`, used by both endpoints).
 * - **MQTT 3.1 / 3.1.1** on `npm:aedes` (`broker.ts`). MQTT 5 gets CONNACK 1 (unacceptable
 *   protocol version).
 * - **The client id rules**: `<id>`, `d:<id>` or `d:<id>:<template>`, where `<id>` must equal the
 *   Common Name of the first certificate of the chain; otherwise CONNACK 5 (not authorized).
 * - **JWT session tokens** (`platform.ts`): an empty publish on `s/uat` is answered with
 *   `71,<JWT>` on `s/dat`, sent to the requesting client only. The token is signed RS256 (or
 *   ES256 with `tokenAlgorithm`, a difference from the platform that saves CPU in load tests) with a
 *   key pair made at start ({@linkcode Emulator.publicKeyJwk} / `publicKeyPem` verify it) and
 *   carries the platform's claims: `iss` and `aud` (`<tenant>.emulator.local`),
 *   `sub` = `device_<id>`, `ten`, `iat`, `nbf`, `exp`, `tci`, `xsrfToken`.
 * - **REST** (`rest.ts`, with `restPort`): `POST /devicecontrol/deviceAccessToken` over mutual
 *   TLS answers `{"accessToken": "<JWT>"}`, `POST /user/logout` ends a token.
 * - **Devices and operations**: a registry of devices (created by `100,<name>,<type>` on `s/us`
 *   or by their first token, {@linkcode Emulator.devices}); every `s/us` line is reported; and
 *   {@linkcode Emulator.sendToDevice} sends a line (an operation such as `510,<serial>`) on `s/ds`.
 *
 * Every connection, refusal (with its reason), token, device creation, `s/us` line, operation,
 * logout and disconnection is reported to the `log` callback as a plain
 * {@linkcode EmulatorEvent}; {@linkcode formatEvent} renders one as one line. Texts a client
 * controls are cut short in events and escaped by `formatEvent`, so one event is one line.
 * Garbage bytes, failing TLS handshakes, connections that never handshake or never send CONNECT,
 * and clients that vanish are logged and dropped; they never stop the emulator.
 *
 * ## Limits on what a client may send (`settings.ts`)
 * - An MQTT packet of more than `maxPacketBytes` (default 16,184 bytes, the platform's limit per
 *   message, header included) closes the connection as soon as its fixed header announces it; a
 *   `refused` event (before CONNACK) or an `error` event says `MQTT packet of N bytes announced`.
 * - More than `maxUnauthenticatedBytes` (default 32,768) before the CONNECT is accepted closes the
 *   connection the same way (`more than N bytes sent before the CONNECT was accepted`).
 * - Client ids longer than 256 characters are refused (CONNACK 2 for MQTT 3.1, CONNACK 5
 *   otherwise, since no device id is that long). The TLS handshake must end within 10 s and the
 *   CONNECT arrive within 30 s.
 * - REST: request bodies over 64 KiB get 413; `X-Ssl-Cert-Chain` over 32,768 characters, 401.
 * - Log fields from a client are cut to 256 characters (`…(+N chars)`).
 *
 * ## Differences from the platform
 * 1. **Late rejection of untrusted devices.** Cumulocity refuses an unknown device certificate
 *    during the TLS handshake (alert `certificate_unknown`). Deno's `node:tls` server cannot verify
 *    client certificates (with `rejectUnauthorized: true` every handshake fails), so the emulator
 *    accepts any client certificate in the handshake and verifies the chain itself: on MQTT when
 *    the CONNECT arrives, answering **CONNACK 5** (not authorized) and disconnecting; on REST per
 *    request, answering **401**. A client that sends no certificate gets the same (the platform
 *    would expect username and password; the emulator does not emulate that).
 * 2. **Token only with a subscription.** The token is sent only when the client has a
 *    subscription matching `s/dat` (as MQTT requires); otherwise an `error` event says so. An
 *    operation is sent only to a device subscribed to `s/ds` (the platform would queue it).
 * 3. **No routing at all.** Nothing a device publishes reaches any other client (on the platform
 *    the topics are per device as well). Retained messages and wills are never delivered.
 * 4. **Sessions are always clean.** `cleanSession: false` is accepted but nothing is kept between
 *    connections; the `connect` event has `cleanSession: false`. The platform documents that the
 *    clean session flag must be true; whether it refuses `false` is *unverified*.
 * 5. **Not checked**: `pathLenConstraint`, key usage and extended key usage, revocation, the
 *    uniqueness of trust anchor fingerprints, auto-registration and bulk registration (every device
 *    with a valid chain is accepted), and tenant-wide uniqueness of the device id. Client ids
 *    `<id>` and `d:<id>` count as different MQTT sessions, though the platform treats them as one.
 * 6. **SmartREST** is read only for `100` (device creation) and reported line by line: no
 *    inventory, measurements, operation status or `s/e` errors.
 * 7. **Tokens** are signed with a key made at start, so they are only valid for this emulator;
 *    `iss`/`aud` name `<tenant>.emulator.local`, not a real tenant domain. Their lifetime may be
 *    set below the platform's minimum of 300 s (down to 1 s), so that renewal can be tested, and
 *    their signature may be ES256 instead of the platform's RS256 (`tokenAlgorithm`), so that a
 *    load test is not paced by the emulator's RSA signatures.
 * 8. **REST endpoint**: on its own port (`restPort`), not the tenant's 443 beside the UI; only the
 *    two device calls exist (everything else 404). `X-Ssl-Cert-Chain` adds intermediates to the
 *    certificate of the TLS handshake, which is required (a chain in the header alone is refused);
 *    its PEM may be on one line or URL-encoded. `Accept` is not checked. Logout checks that the
 *    bearer token is one of the emulator's, unexpired and not ended; an ended token still works
 *    on MQTT (the emulator keeps no sessions). Error bodies carry `error` and `message` only.
 * 9. **Packet size**: a packet over 16,184 bytes closes the connection; what the platform does
 *    then is *unverified*.
 *
 * @example Starting the emulator with REST and sending an operation
 * ```ts ignore
 * import { formatEvent, startEmulator } from "@c8y-mqtt-cert/c8y-mqtt-cert/emulator";
 * await using emulator = await startEmulator({
 *   serverCertPem: await Deno.readTextFile("fixtures/server/server.pem"),
 *   serverKeyPem: await Deno.readTextFile("fixtures/server/server.key"),
 *   trustedCaPems: [await Deno.readTextFile("fixtures/ca/device-root-ca.pem")],
 *   restPort: 0,
 *   log: (event) => console.error(formatEvent(event)),
 * });
 * console.log(`MQTT on ${emulator.url}, REST on ${emulator.restUrl}`);
 * // ... once device-rsa-001 is connected and subscribed to s/ds:
 * await emulator.sendToDevice("d:device-rsa-001", "510,device-rsa-001");
 * ```
 *
 * @module
 */

export { type Emulator, type EmulatorOptions, startEmulator } from "./start.ts";
export {
  type ChainVerdict,
  verifyDeviceChain,
  type VerifyDeviceChainOptions,
} from "./device_auth.ts";
export {
  clip,
  type EmulatorEvent,
  type EmulatorEventKind,
  formatEvent,
  MAX_FIELD_CHARS,
} from "./events.ts";
export type { DeviceRecord } from "./platform.ts";
export {
  checkEmulatorSettings,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_PACKET_BYTES,
  DEFAULT_MAX_UNAUTHENTICATED_BYTES,
  DEFAULT_TENANT,
  DEFAULT_TOKEN_LIFETIME_SECONDS,
  type EmulatorSettings,
  listenAddress,
  MAX_CLIENT_ID_LENGTH,
  PLATFORM_MIN_TOKEN_LIFETIME_SECONDS,
  type TokenAlgorithm,
} from "./settings.ts";
