/**
 * Starting the emulator: checks its options, makes its parts (device authority, platform, MQTT
 * endpoint, optional REST endpoint), listens, and returns the running {@linkcode Emulator}.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Socket } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { hostPort } from "../connect/broker_url.ts";
import { certificatesFromPem } from "../x509/certificate.ts";
import { NetworkError, UsageError } from "../errors.ts";
import { MqttEndpoint } from "./broker.ts";
import { DeviceAuthority } from "./device_auth.ts";
import { clip, type EmulatorEvent } from "./events.ts";
import { type DeviceRecord, Platform } from "./platform.ts";
import { RestEndpoint } from "./rest.ts";
import {
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
} from "./settings.ts";

/** Options of {@linkcode startEmulator}. */
export interface EmulatorOptions extends EmulatorSettings {
  /** The server certificate, PEM; may be followed by its intermediates (leaf first). */
  serverCertPem: string;
  /** The server's private key, PEM. */
  serverKeyPem: string;
  /**
   * The trusted CAs (the tenant's trusted certificates), PEM; each string may hold several
   * certificates. Each must be a CA (`basicConstraints CA:TRUE`).
   */
  trustedCaPems: string[];
  /**
   * Address to listen on: `127.0.0.1`, `::1` (also written `[::1]`), `localhost` (listens on
   * 127.0.0.1) or another local address. @default "127.0.0.1"
   */
  hostname?: string;
  /** Time a client has for the TLS handshake, in milliseconds. @default 10000 */
  handshakeTimeoutMs?: number;
  /**
   * Time a client has to send CONNECT after the handshake (MQTT), or its whole request (REST),
   * in milliseconds. @default 30000
   */
  connectTimeoutMs?: number;
  /** Receives every event. Exceptions it throws are ignored. @default no logging */
  log?: (event: EmulatorEvent) => void;
}

/** A running emulator, as returned by {@linkcode startEmulator}. */
export interface Emulator extends AsyncDisposable {
  /** `mqtts://<host>:<port>` (IPv6 hosts in brackets). */
  url: string;
  /** The port of the MQTT endpoint. */
  port: number;
  /** `https://<host>:<port>` of the REST endpoint, when `restPort` was given. */
  restUrl: string | undefined;
  /** The port of the REST endpoint, when `restPort` was given. */
  restPort: number | undefined;
  /** The address it listens on (`localhost` is listened on, and shown, as 127.0.0.1). */
  hostname: string;
  /** The tenant id it puts into tokens. */
  tenant: string;
  /** The token issuer and audience, `<tenant>.emulator.local`. */
  issuer: string;
  /**
   * The public key that verifies its tokens, as a JWK (`kty: "RSA"`, `alg: "RS256"`; `kty: "EC"`,
   * `alg: "ES256"` with `tokenAlgorithm: "ES256"`).
   */
  publicKeyJwk: JsonWebKey;
  /** The same public key as SPKI PEM. */
  publicKeyPem: string;
  /** Open TCP connections of the MQTT endpoint (handshaking, connecting or connected). */
  readonly connections: number;
  /** The devices created so far (by `100,<name>,<type>` on `s/us` or by their first token). */
  devices(): DeviceRecord[];
  /**
   * Publishes one line (e.g. an operation, `510,<serial>`) on `s/ds` to a connected device; an
   * `operation` event reports it.
   * @throws {UsageError} `EMULATOR_DEVICE_NOT_CONNECTED` when no admitted device is connected with
   *   that client id, `EMULATOR_DEVICE_NOT_SUBSCRIBED` when it has no subscription to `s/ds`.
   */
  sendToDevice(clientId: string, line: string): Promise<void>;
  /**
   * Stops listening, drops every connection and stops the broker. Idempotent; also what
   * `await using emulator = await startEmulator(...)` calls at the end of the scope.
   */
  close(): Promise<void>;
}

/** Checks that the server certificate parses and matches the key, before listening. */
function checkServerIdentity(certPem: string, keyPem: string): void {
  let problem: string | undefined;
  let cause: unknown;
  try {
    const [first] = certificatesFromPem(certPem, { name: "server certificate" });
    if (!first) {
      problem = "holds no PEM certificate";
    } else if (!new X509Certificate(first.der).checkPrivateKey(createPrivateKey(keyPem))) {
      problem = "does not match the server key";
    }
  } catch (err) {
    problem = "or its key cannot be read";
    cause = err;
  }
  if (problem) {
    throw new UsageError(`The emulator's server certificate ${problem}`, {
      code: "EMULATOR_SERVER_CERT",
      hint: "Give a PEM certificate (chain, leaf first) and its matching unencrypted PEM key.",
      cause,
    });
  }
}

function listenError(hostname: string, port: number, cause: unknown): NetworkError {
  return new NetworkError(
    `The emulator cannot listen on ${hostPort(hostname, port)}: ${(cause as Error).message}`,
    {
      code: "EMULATOR_LISTEN",
      hint: "Choose another port (or 0 for any free port) or another address.",
      cause,
    },
  );
}

/** Listens; every failure (also a thrown permission error) rejects with `EMULATOR_LISTEN`. */
async function listen(
  port: number,
  hostname: string,
  start: () => Promise<number>,
): Promise<number> {
  try {
    return await start();
  } catch (cause) {
    throw listenError(hostname, port, cause);
  }
}

/** Listens with a `node:tls` server; resolves with the port. */
function listenOn(server: Server, port: number, hostname: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

/** The TLS server of the MQTT endpoint; hands each connection to the broker after its handshake. */
function mqttServer(
  options: EmulatorOptions,
  mqtt: MqttEndpoint,
  sockets: Set<Socket>,
  emit: (event: Omit<EmulatorEvent, "time">) => void,
): Server {
  const server = createServer({
    // Buffers, not strings: Deno builds each connection's TLS context from these, and from a
    // string that costs about a millisecond more per connection (measured with Deno 2.9.6).
    key: Buffer.from(options.serverKeyPem),
    cert: Buffer.from(options.serverCertPem),
    requestCert: true,
    // Deno's node:tls cannot verify client certificates: the chain is checked at CONNECT.
    rejectUnauthorized: false,
    minVersion: "TLSv1.2",
    handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  });
  const remoteOf = (s: Partial<Socket> | undefined): string | undefined =>
    s?.remoteAddress ? hostPort(s.remoteAddress, s.remotePort ?? "") : undefined;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    // Without no-delay each CONNACK waits for the client's delayed ACK (about 40 ms).
    socket.setNoDelay(true);
    socket.on("error", () => {});
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("secureConnection", (tlsSocket: TLSSocket) => {
    tlsSocket.on("error", () => {});
    try {
      mqtt.handle(tlsSocket);
    } catch (err) {
      emit({ kind: "error", reason: `cannot handle connection: ${clip((err as Error).message)}` });
      tlsSocket.destroy();
    }
  });
  server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
    emit({
      kind: "error",
      remoteAddress: remoteOf(socket),
      reason: `TLS handshake failed: ${clip(err.message)}`,
    });
    // Deno reports a handshake timeout here without closing the TCP socket underneath.
    (socket as TLSSocket & { _parent?: Socket })?._parent?.destroy();
    socket?.destroy();
  });
  return server;
}

/**
 * Starts the emulator and resolves once it accepts connections (after a `listening` event per
 * endpoint).
 *
 * @param options Server certificate and key, trusted CAs, address, ports, tenant, token lifetime,
 *   limits, log.
 * @returns The running emulator: its URLs, its token-verifying public key, `sendToDevice()`,
 *   `close()`.
 * @throws {UsageError} `EMULATOR_TOKEN_LIFETIME`, `EMULATOR_PORT`, `EMULATOR_TENANT`,
 *   `EMULATOR_LIMIT`, `EMULATOR_TOKEN_ALGORITHM`, `EMULATOR_TRUST` for bad options, `EMULATOR_SERVER_CERT` when the server
 *   certificate or key cannot be used.
 * @throws {StoreError} `CERT_PARSE` when a trusted CA is not a certificate.
 * @throws {NetworkError} `EMULATOR_LISTEN` when the address cannot be listened on.
 *
 * @example Options are checked before anything starts
 * ```ts
 * import { startEmulator } from "./mod.ts";
 * import { UsageError } from "../../mod.ts";
 * try {
 *   await startEmulator({
 *     serverCertPem: "",
 *     serverKeyPem: "",
 *     trustedCaPems: [],
 *     tokenLifetimeSeconds: 0,
 *   });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof UsageError) || err.code !== "EMULATOR_TOKEN_LIFETIME") throw err;
 * }
 * ```
 */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  checkEmulatorSettings(options);
  const authority = new DeviceAuthority(options.trustedCaPems);
  checkServerIdentity(options.serverCertPem, options.serverKeyPem);
  const hostname = listenAddress(options.hostname ?? DEFAULT_HOSTNAME);
  const tenant = options.tenant ?? DEFAULT_TENANT;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  const emit = (event: Omit<EmulatorEvent, "time">): void => {
    if (!options.log) return;
    try {
      options.log({ time: new Date().toISOString(), ...event });
    } catch {
      // A failing logger must not stop the emulator.
    }
  };

  const platform = await Platform.create({
    tenant,
    tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS,
    tokenAlgorithm: options.tokenAlgorithm ?? "RS256",
    emit,
  });
  const mqtt = await MqttEndpoint.create({
    authority,
    platform,
    emit,
    connectTimeoutMs,
    maxPacketBytes: options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES,
    maxUnauthenticatedBytes: options.maxUnauthenticatedBytes ?? DEFAULT_MAX_UNAUTHENTICATED_BYTES,
  });

  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let rest: RestEndpoint | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = server
        ? new Promise<void>((resolve) => server!.close(() => resolve()))
        : undefined;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await Promise.all([mqtt.close(), rest?.close(), serverClosed]);
    })();
    return closing;
  };

  let port: number;
  let restPort: number | undefined;
  try {
    try {
      server = mqttServer(options, mqtt, sockets, emit);
      if (options.restPort !== undefined) {
        rest = new RestEndpoint({
          authority,
          platform,
          emit,
          serverCertPem: options.serverCertPem,
          serverKeyPem: options.serverKeyPem,
          handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
          requestTimeoutMs: connectTimeoutMs,
        });
      }
    } catch (cause) {
      throw new UsageError("The emulator's server certificate or key cannot be used", {
        code: "EMULATOR_SERVER_CERT",
        hint: "Give a PEM certificate (chain) and its matching PEM private key.",
        cause,
      });
    }
    const mqttServerNow = server;
    port = await listen(
      options.port ?? 0,
      hostname,
      () => listenOn(mqttServerNow, options.port ?? 0, hostname),
    );
    if (rest && options.restPort !== undefined) {
      const restNow = rest;
      const wanted = options.restPort;
      restPort = await listen(wanted, hostname, () => restNow.listen(wanted, hostname));
    }
  } catch (err) {
    await close();
    throw err;
  }
  server.on("error", (err: Error) => emit({ kind: "error", reason: `server: ${err.message}` }));

  const url = `mqtts://${hostPort(hostname, port)}`;
  const restUrl = restPort === undefined ? undefined : `https://${hostPort(hostname, restPort)}`;
  emit({ kind: "listening", url });
  if (restUrl) emit({ kind: "listening", url: restUrl });

  return {
    url,
    port,
    restUrl,
    restPort,
    hostname,
    tenant,
    issuer: platform.issuer,
    publicKeyJwk: platform.publicKeyJwk,
    publicKeyPem: platform.publicKeyPem,
    get connections(): number {
      return sockets.size;
    },
    devices: () => platform.devices(),
    sendToDevice: (clientId, line) => mqtt.sendToDevice(clientId, line),
    close,
    [Symbol.asyncDispose]: close,
  };
}
