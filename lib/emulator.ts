/**
 * A local stand-in for the slice of Cumulocity's MQTT certificate endpoint that c8y-mqtt-cert
 * talks to, so that the tool can be tried and tested without a tenant.
 *
 * What it emulates:
 * - **Mutual TLS** with a server certificate and key, against a configured set of trusted CAs
 *   (the tenant's "trusted certificates"). The device's chain must reach a trusted CA, or the
 *   device may send only its own certificate when its **immediate issuer** is trusted. At most
 *   10 certificates; every certificate that signs another needs `basicConstraints CA:TRUE`; every
 *   certificate of the path (trusted CA included) must be within its validity period.
 * - **MQTT 3.1 / 3.1.1** on `npm:aedes`. MQTT 5 gets CONNACK 1 (unacceptable protocol version).
 * - **The client id rules**: `<id>`, `d:<id>` or `d:<id>:<template>`, where `<id>` must equal the
 *   Common Name of the first certificate of the chain; otherwise CONNACK 5 (not authorized).
 * - **JWT session tokens**: an empty publish on `s/uat` is answered with `71,<JWT>` on `s/dat`,
 *   sent to the requesting client only (never routed to other devices). The token is signed RS256
 *   with a key pair made at start ({@linkcode Emulator.publicKeyJwk} / `publicKeyPem` let tests
 *   verify it) and carries the platform's claims: `iss` and `aud` (`<tenant>.emulator.local`),
 *   `sub` = `device_<id>`, `ten`, `iat`, `nbf`, `exp`, `tci`, `xsrfToken`.
 * - **Device creation**: `100,<name>,<type>` on `s/us` is accepted and logged.
 *
 * Every connection, refusal (with its reason), token, device creation and disconnection is
 * reported to the `log` callback as a plain {@linkcode EmulatorEvent}; the command line formats
 * them. Garbage bytes, TLS handshakes that fail, connections that never handshake or never send
 * CONNECT, and clients that vanish are logged and dropped; they never stop the emulator.
 *
 * ## Differences from the platform
 * 1. **Late rejection of untrusted devices.** Cumulocity refuses an unknown device certificate
 *    during the TLS handshake (alert `certificate_unknown`). Deno's `node:tls` server cannot verify
 *    client certificates (with `rejectUnauthorized: true` every handshake fails), so the emulator
 *    accepts any client certificate in the handshake, verifies the chain itself when the MQTT
 *    CONNECT arrives, and answers **CONNACK 5** (not authorized), then disconnects. A client that
 *    sends no certificate at all also gets CONNACK 5 (the platform would expect username and
 *    password; the emulator does not emulate that).
 * 2. **Token only with a subscription.** The token is sent only when the client has a
 *    subscription matching `s/dat` (as MQTT requires); otherwise an `error` event says so.
 * 3. **No routing at all.** Nothing a device publishes reaches any other client (on the platform
 *    the topics are per device as well). Retained messages and wills are never delivered.
 * 4. **Sessions are always clean.** `cleanSession: false` is accepted but nothing is kept between
 *    connections; the `connect` event has `cleanSession: false`. The platform documents that the
 *    clean session flag must be true; whether it refuses `false` is *unverified* (thin-edge once
 *    received a stale token over a persistent session, which suggests it does not).
 * 5. **Not checked**: `pathLenConstraint`, key usage and extended key usage, revocation, the
 *    uniqueness of trust anchor fingerprints, auto-registration and bulk registration (every device
 *    with a valid chain is accepted), and tenant-wide uniqueness of the device id. Client ids
 *    `<id>` and `d:<id>` count as different MQTT sessions, though the platform treats them as one.
 * 6. **Other SmartREST messages** are ignored: no inventory, no measurements, no `s/e` errors;
 *    a device created twice is reported once.
 * 7. **Tokens** are signed with a key made at start, so they are only valid for this emulator;
 *    `iss`/`aud` name `<tenant>.emulator.local`, not a real tenant domain.
 *
 * @example Starting the emulator (the certificates here are placeholders: pass real PEM)
 * ```ts ignore
 * import { startEmulator } from "./emulator.ts";
 * await using emulator = await startEmulator({
 *   serverCertPem: await Deno.readTextFile("fixtures/server/server.pem"),
 *   serverKeyPem: await Deno.readTextFile("fixtures/server/server.key"),
 *   trustedCaPems: [await Deno.readTextFile("fixtures/ca/device-root-ca.pem")],
 *   log: (event) => console.error(event.kind, event.clientId ?? "", event.reason ?? ""),
 * });
 * console.log(`listening on ${emulator.url}`); // closed at the end of the scope
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, randomUUID, X509Certificate } from "node:crypto";
import type { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import {
  certificatesFromPem,
  issuedBy,
  MAX_CHAIN_LENGTH,
  parseCertificate,
} from "./certificate.ts";
import { hostPort } from "./broker_url.ts";
import { parseClientId } from "./client_id.ts";
import { checkEmulatorSettings, type EmulatorSettings } from "./emulator_settings.ts";
import { loadAedes, loadJose } from "./deps.ts";
import { NetworkError, UsageError } from "./errors.ts";
import type { Certificate } from "./types.ts";

/** The kinds of {@linkcode EmulatorEvent}. */
export type EmulatorEventKind =
  | "listening"
  | "connect"
  | "refused"
  | "token"
  | "device-created"
  | "disconnect"
  | "error";

/**
 * One thing that happened in the emulator, as a plain object for the `log` callback.
 * Only the fields that apply to the kind are set. Tokens themselves are never in an event.
 */
export interface EmulatorEvent {
  /** What happened. */
  kind: EmulatorEventKind;
  /** When, ISO 8601 (UTC). */
  time: string;
  /** `listening`: the `mqtts://host:port` URL. */
  url?: string;
  /** The MQTT client id, once a CONNECT arrived. */
  clientId?: string;
  /** The Common Name of the client's first certificate, when it sent one. */
  commonName?: string;
  /** `host:port` of the peer, when known. */
  remoteAddress?: string;
  /** `refused` and `error`: why, in one sentence. */
  reason?: string;
  /** `refused`: the CONNACK return code sent (1 or 5). */
  returnCode?: number;
  /** `connect`: the MQTT protocol version (3 or 4). */
  protocolVersion?: number;
  /** `connect`: the clean-session flag the client asked for. */
  cleanSession?: boolean;
  /** `token`: the token's `tci` claim (its id). */
  tokenId?: string;
  /** `token`: expiry, ISO 8601 (UTC). */
  expiresAt?: string;
  /** `device-created`: the device name and type from the `100` message. */
  deviceName?: string;
  /** `device-created`: the device type. */
  deviceType?: string;
}

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
  /** Address to listen on. @default "127.0.0.1" */
  hostname?: string;
  /** Time a client has for the TLS handshake, in milliseconds. @default 10000 */
  handshakeTimeoutMs?: number;
  /** Time a client has to send CONNECT after the handshake, in milliseconds. @default 30000 */
  connectTimeoutMs?: number;
  /** Receives every event. Exceptions it throws are ignored. @default no logging */
  log?: (event: EmulatorEvent) => void;
}

/** A running emulator, as returned by {@linkcode startEmulator}. */
export interface Emulator extends AsyncDisposable {
  /** `mqtts://<host>:<port>` (IPv6 hosts in brackets). */
  url: string;
  /** The port it listens on. */
  port: number;
  /** The address it listens on. */
  hostname: string;
  /** The tenant id it puts into tokens. */
  tenant: string;
  /** The token issuer and audience, `<tenant>.emulator.local`. */
  issuer: string;
  /** The public key that verifies its tokens, as a JWK (`kty: "RSA"`, `alg: "RS256"`). */
  publicKeyJwk: JsonWebKey;
  /** The same public key as SPKI PEM. */
  publicKeyPem: string;
  /**
   * Stops listening, drops every connection and stops the broker. Idempotent; also what
   * `await using emulator = await startEmulator(...)` calls at the end of the scope.
   */
  close(): Promise<void>;
}

/** The result of {@linkcode verifyDeviceChain}. */
export type ChainVerdict =
  | {
    /** The chain is accepted. */
    ok: true;
    /** Common Name of the first certificate. */
    commonName: string | undefined;
    /** Common Name (or subject) of the trusted CA the path ends at. */
    trustedBy: string;
  }
  | {
    /** The chain is refused. */
    ok: false;
    /** Common Name of the first certificate, when there is one. */
    commonName: string | undefined;
    /** Why, in one sentence. */
    reason: string;
  };

/** Options of {@linkcode verifyDeviceChain}. */
export interface VerifyDeviceChainOptions {
  /** The trusted CAs, DER. */
  trusted: Uint8Array[];
  /** The time to check validity at. @default new Date() */
  now?: Date;
}

interface Cert {
  x509: X509Certificate;
  name: string;
  isCA: boolean;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

/** A parsed certificate (from `parseCertificate` or `certificatesFromPem`) as the checks need it. */
function toCert(parsed: Certificate): Cert {
  const { summary } = parsed;
  return {
    x509: new X509Certificate(parsed.der),
    name: summary.commonName ?? summary.subject,
    isCA: summary.isCA,
    fingerprint: summary.sha256,
    notBefore: new Date(summary.notBefore),
    notAfter: new Date(summary.notAfter),
  };
}

function validityProblem(cert: Cert, now: Date, role: string): string | undefined {
  if (now < cert.notBefore) {
    return `${role} "${cert.name}" is not valid before ${cert.notBefore.toISOString()}`;
  }
  if (now > cert.notAfter) {
    return `${role} "${cert.name}" expired on ${cert.notAfter.toISOString()}`;
  }
  return undefined;
}

/**
 * Verifies a device's certificate chain the way the emulator (and, as far as documented, the
 * platform) does: the path from the first certificate must end at a trusted CA, using the other
 * presented certificates as intermediates in any order; a device may send only its own
 * certificate when its immediate issuer is trusted. At most 10 certificates; every signing
 * certificate must have `CA:TRUE`; every certificate on the path must be valid at `now`.
 *
 * @param chain The certificates the device presented, DER, leaf first.
 * @param options The trusted CAs and the time.
 * @returns `{ ok: true, commonName, trustedBy }` or `{ ok: false, commonName, reason }`.
 *
 * @example An empty chain is refused
 * ```ts
 * import { verifyDeviceChain } from "./emulator.ts";
 * const verdict = verifyDeviceChain([], { trusted: [] });
 * if (verdict.ok || !verdict.reason.includes("no client certificate")) throw new Error("unexpected");
 * ```
 */
export function verifyDeviceChain(
  chain: Uint8Array[],
  options: VerifyDeviceChainOptions,
): ChainVerdict {
  const trusted = options.trusted.map((der, i) =>
    toCert(parseCertificate(der, { name: `trusted CA #${i + 1}` }))
  );
  return verifyAgainst(chain, trusted, options.now ?? new Date());
}

/** {@linkcode verifyDeviceChain} with the trusted CAs parsed once (the emulator's hot path). */
function verifyAgainst(chain: Uint8Array[], trusted: Cert[], now: Date): ChainVerdict {
  if (chain.length === 0) {
    return { ok: false, commonName: undefined, reason: "the client sent no client certificate" };
  }
  let certs: Cert[];
  try {
    certs = chain.map((der, i) =>
      toCert(parseCertificate(der, { name: `client certificate #${i + 1}` }))
    );
  } catch (err) {
    return {
      ok: false,
      commonName: undefined,
      reason: `a client certificate cannot be parsed (${(err as Error).message})`,
    };
  }
  const leaf = certs[0];
  const refuse = (reason: string): ChainVerdict => ({ ok: false, commonName: leaf.name, reason });
  if (certs.length > MAX_CHAIN_LENGTH) {
    return refuse(
      `the chain has ${certs.length} certificates; at most ${MAX_CHAIN_LENGTH} are allowed`,
    );
  }
  const leafProblem = validityProblem(leaf, now, "device certificate");
  if (leafProblem) return refuse(leafProblem);

  const used = new Set<string>([leaf.fingerprint]);
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_LENGTH; depth++) {
    const anchor = trusted.find((t) => issuedBy(current.x509, t.x509));
    if (anchor) {
      const problem = validityProblem(anchor, now, "trusted CA");
      if (problem) return refuse(problem);
      return { ok: true, commonName: leaf.name, trustedBy: anchor.name };
    }
    const issuer = certs.find((c) => !used.has(c.fingerprint) && issuedBy(current.x509, c.x509));
    if (!issuer) {
      const named = certs.find((c) => !used.has(c.fingerprint) && current.x509.checkIssued(c.x509));
      if (named) {
        return refuse(`the signature of "${current.name}" does not verify with "${named.name}"`);
      }
      return refuse(
        `"${current.name}" is not issued by a trusted CA (its issuer is "${current.x509.issuer}")`,
      );
    }
    if (!issuer.isCA) {
      return refuse(
        `"${issuer.name}" signs "${current.name}" but is not a CA (basicConstraints CA:TRUE missing)`,
      );
    }
    const problem = validityProblem(issuer, now, "intermediate CA");
    if (problem) return refuse(problem);
    used.add(issuer.fingerprint);
    current = issuer;
  }
  return refuse(`the path to a trusted CA is longer than ${MAX_CHAIN_LENGTH} certificates`);
}

/**
 * The device identifier of an MQTT client id (`<id>`, `d:<id>` or `d:<id>:<template>`), or
 * `undefined` when the id has another form or another connection type than `d`.
 */
function deviceIdentifierOf(clientId: string): string | undefined {
  try {
    const parts = parseClientId(clientId);
    return parts.connectionType === "d" ? parts.deviceIdentifier : undefined;
  } catch {
    return undefined;
  }
}

/** Whether an MQTT topic filter matches a topic. */
function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

interface PeerCertificateLike {
  raw?: Uint8Array;
  fingerprint256?: string;
  issuerCertificate?: PeerCertificateLike;
}

/** The DER certificates a TLS peer presented, leaf first (at most MAX_CHAIN_LENGTH + 1). */
function presentedChain(socket: TLSSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  let cert = socket.getPeerCertificate(true) as PeerCertificateLike | undefined;
  while (cert?.raw && out.length <= MAX_CHAIN_LENGTH) {
    const key = cert.fingerprint256 ?? String(out.length);
    if (seen.has(key)) break;
    seen.add(key);
    out.push(new Uint8Array(cert.raw));
    cert = cert.issuerCertificate;
  }
  return out;
}

function splitTrust(pems: string[]): Cert[] {
  const out: Cert[] = [];
  pems.forEach((pem, i) => {
    const certs = certificatesFromPem(pem, { name: `trusted CA #${i + 1}` });
    if (certs.length === 0) {
      throw new UsageError(`Trusted CA #${i + 1} holds no PEM certificate`, {
        code: "EMULATOR_TRUST",
        hint: "Give CA certificates as PEM (-----BEGIN CERTIFICATE-----).",
      });
    }
    for (const cert of certs) {
      if (!cert.summary.isCA) {
        throw new UsageError(
          `Trusted certificate "${cert.summary.commonName ?? cert.summary.subject}" is not a CA`,
          {
            code: "EMULATOR_TRUST",
            hint: "Trust only CA certificates (basicConstraints CA:TRUE, X.509 v3).",
          },
        );
      }
      out.push(toCert(cert));
    }
  });
  return out;
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

function checkOptions(options: EmulatorOptions): void {
  checkEmulatorSettings(options);
  if (options.trustedCaPems.length === 0) {
    throw new UsageError("The emulator needs at least one trusted CA", {
      code: "EMULATOR_TRUST",
      hint: "Pass the CA that issued the device certificates with --trust.",
    });
  }
}

/**
 * Starts the emulator and resolves once it accepts connections (after a `listening` event).
 *
 * @param options Server certificate and key, trusted CAs, address, tenant, token lifetime, log.
 * @returns The running emulator: its URL, its token-verifying public key and `close()`.
 * @throws {UsageError} `EMULATOR_TOKEN_LIFETIME`, `EMULATOR_PORT`, `EMULATOR_TENANT`,
 *   `EMULATOR_TRUST` for bad options, `EMULATOR_SERVER_CERT` when the server certificate or key
 *   cannot be used.
 * @throws {StoreError} `CERT_PARSE` when a trusted CA is not a certificate.
 * @throws {NetworkError} `EMULATOR_LISTEN` when the address cannot be listened on.
 *
 * @example Options are checked before anything starts
 * ```ts
 * import { startEmulator } from "./emulator.ts";
 * import { UsageError } from "./errors.ts";
 * try {
 *   await startEmulator({
 *     serverCertPem: "",
 *     serverKeyPem: "",
 *     trustedCaPems: [],
 *     tokenLifetimeSeconds: 60,
 *   });
 *   throw new Error("expected a failure");
 * } catch (err) {
 *   if (!(err instanceof UsageError) || err.code !== "EMULATOR_TOKEN_LIFETIME") throw err;
 * }
 * ```
 */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  checkOptions(options);
  const hostname = options.hostname ?? "127.0.0.1";
  const tenant = options.tenant ?? "t12345";
  const lifetime = options.tokenLifetimeSeconds ?? 3600;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const issuer = `${tenant}.emulator.local`;
  const trusted = splitTrust(options.trustedCaPems);
  checkServerIdentity(options.serverCertPem, options.serverKeyPem);

  const emit = (event: Omit<EmulatorEvent, "time">): void => {
    if (!options.log) return;
    try {
      options.log({ time: new Date().toISOString(), ...event });
    } catch {
      // A failing logger must not stop the emulator.
    }
  };

  const jose = await loadJose();
  const { privateKey, publicKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const publicKeyJwk = { ...(await jose.exportJWK(publicKey)), alg: "RS256" } as JsonWebKey;
  const publicKeyPem = await jose.exportSPKI(publicKey);

  const { Aedes } = await loadAedes();
  type Broker = InstanceType<typeof Aedes>;
  type Client = ReturnType<Broker["handle"]>;

  /** What the emulator knows about a connection, set during CONNECT. */
  interface ClientInfo {
    clientId?: string;
    commonName?: string;
    deviceId?: string;
    refusal?: string;
    remoteAddress?: string;
  }
  const info = new WeakMap<Client, ClientInfo>();
  const ownPayloads = new WeakSet<Uint8Array>();
  const createdDevices = new Set<string>();

  const remoteOf = (conn: unknown): string | undefined => {
    const s = conn as Partial<Socket>;
    if (!s.remoteAddress) return undefined;
    return hostPort(s.remoteAddress, s.remotePort ?? "");
  };

  const issueToken = async (client: Client): Promise<void> => {
    const ci = info.get(client);
    const id = ci?.deviceId;
    if (id === undefined) return; // only clients that passed authenticate() publish
    const subscribed = Object.keys(
      (client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions ?? {},
    ).some((f) => filterMatches(f, "s/dat"));
    if (!subscribed) {
      emit({
        kind: "error",
        clientId: client.id,
        commonName: ci?.commonName,
        reason: "token requested on s/uat without a subscription to s/dat: nothing sent",
      });
      return;
    }
    const iat = Math.floor(Date.now() / 1000);
    const tci = randomUUID();
    const token = await new jose.SignJWT({ ten: tenant, tci, xsrfToken: randomUUID() })
      .setProtectedHeader({ alg: "RS256" })
      .setIssuer(issuer)
      .setAudience(issuer)
      .setSubject(`device_${id}`)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + lifetime)
      .sign(privateKey);
    if (client.closed || !client.connected) return;
    const payload = Buffer.from(`71,${token}`, "utf8");
    ownPayloads.add(payload);
    client.publish(
      { cmd: "publish", topic: "s/dat", payload, qos: 0, retain: false, dup: false },
      (err?: Error) => {
        if (err) {
          emit({ kind: "error", clientId: client.id, reason: `token not sent: ${err.message}` });
          return;
        }
        emit({
          kind: "token",
          clientId: client.id,
          commonName: ci?.commonName,
          tokenId: tci,
          expiresAt: new Date((iat + lifetime) * 1000).toISOString(),
        });
      },
    );
  };

  const handleSmartRest = (client: Client, payload: string): void => {
    const ci = info.get(client);
    const id = ci?.deviceId;
    if (id === undefined) return; // only clients that passed authenticate() publish
    for (const line of payload.split(/\r?\n/)) {
      const fields = line.split(",");
      if (fields[0] !== "100" || createdDevices.has(id)) continue;
      createdDevices.add(id);
      emit({
        kind: "device-created",
        clientId: client.id,
        commonName: ci?.commonName,
        deviceName: fields[1] || `MQTT Device ${id}`,
        deviceType: fields[2] || "c8y_MQTTDevice",
      });
    }
  };

  const broker: Broker = await Aedes.createBroker({
    connectTimeout: options.connectTimeoutMs ?? 30_000,
    maxClientsIdLength: 256,
    preConnect(client, packet, callback): void {
      const ci: ClientInfo = { remoteAddress: remoteOf(client.conn), clientId: packet.clientId };
      info.set(client, ci);
      if (packet.protocolVersion === 5) {
        ci.refusal = "MQTT 5 is not supported (MQTT 3.1.1 only)";
      } else if (packet.protocolVersion !== 3 && packet.protocolVersion !== 4) {
        ci.refusal = `MQTT protocol version ${packet.protocolVersion} is not supported`;
      }
      // aedes itself answers other versions than 3 and 4 with CONNACK 1.
      callback(null, true);
    },
    authenticate(client, _username, _password, done): void {
      const ci = info.get(client) ?? {};
      info.set(client, ci);
      const refuse = (reason: string): void => {
        ci.refusal = reason;
        const err = Object.assign(new Error(reason), { returnCode: 5 as const });
        done(err, false);
      };
      try {
        const conn = client.conn as Partial<TLSSocket>;
        if (typeof conn.getPeerCertificate !== "function") {
          return refuse("the connection is not TLS");
        }
        const chain = presentedChain(conn as TLSSocket);
        const verdict = verifyAgainst(chain, trusted, new Date());
        ci.commonName = verdict.commonName;
        if (!verdict.ok) return refuse(`device certificate refused: ${verdict.reason}`);
        const deviceId = deviceIdentifierOf(client.id);
        if (deviceId === undefined) {
          return refuse(
            `client id "${client.id}" is not of the form <id>, d:<id> or d:<id>:<template>`,
          );
        }
        if (deviceId !== verdict.commonName) {
          return refuse(
            `device identifier "${deviceId}" of client id "${client.id}" is not the ` +
              `certificate's Common Name "${verdict.commonName ?? ""}"`,
          );
        }
        ci.deviceId = deviceId;
        done(null, true);
      } catch (err) {
        refuse(`internal error while checking the certificate: ${(err as Error).message}`);
      }
    },
    authorizePublish(client, packet, callback): void {
      // Nothing a client publishes is routed to other clients (see authorizeForward); the
      // emulator only reacts to the platform's topics.
      packet.retain = false;
      if (client && client.connected && !client.closed) {
        try {
          const payload = packet.payload ?? new Uint8Array();
          if (packet.topic === "s/uat") {
            if (payload.length === 0) {
              issueToken(client).catch((err) =>
                emit({ kind: "error", clientId: client.id, reason: `token: ${err.message}` })
              );
            } else {
              emit({
                kind: "error",
                clientId: client.id,
                reason: "publish on s/uat is not empty: no token sent",
              });
            }
          } else if (packet.topic === "s/us") {
            handleSmartRest(client, Buffer.from(payload).toString("utf8"));
          }
        } catch (err) {
          emit({ kind: "error", clientId: client.id, reason: (err as Error).message });
        }
      }
      callback(null);
    },
    authorizeForward(_client, packet): typeof packet | null {
      // Only the emulator's own replies (sent with client.publish) reach a client.
      return ownPayloads.has(packet.payload as Uint8Array) ? packet : null;
    },
  });

  broker.on("connackSent", (packet, client) => {
    const ci = info.get(client) ?? {};
    const code = packet.returnCode ?? 0;
    if (code === 0) {
      emit({
        kind: "connect",
        clientId: client.id,
        commonName: ci.commonName,
        remoteAddress: ci.remoteAddress,
        protocolVersion: client.version ?? undefined,
        cleanSession: client.clean,
      });
    } else {
      emit({
        kind: "refused",
        clientId: client.id ?? ci.clientId,
        commonName: ci.commonName,
        remoteAddress: ci.remoteAddress,
        returnCode: code,
        reason: ci.refusal ?? `CONNACK ${code}`,
      });
    }
  });
  broker.on("clientDisconnect", (client) => {
    const ci = info.get(client) ?? {};
    emit({ kind: "disconnect", clientId: client.id, commonName: ci.commonName });
  });
  const onClientError = (client: Client, err: Error): void => {
    // Refusals already produced a `refused` event when their CONNACK went out.
    if ((err as Error & { errorCode?: number }).errorCode) return;
    const ci = client ? info.get(client) : undefined;
    emit({
      kind: "error",
      clientId: client?.id ?? undefined,
      commonName: ci?.commonName,
      remoteAddress: ci?.remoteAddress ?? remoteOf(client?.conn),
      reason: err.message,
    });
  };
  broker.on("clientError", onClientError);
  broker.on("connectionError", onClientError);
  (broker as unknown as EventEmitter).on("error", (err: unknown) => {
    emit({ kind: "error", reason: `broker: ${(err as Error)?.message ?? String(err)}` });
  });

  const sockets = new Set<Socket>();
  let server: Server;
  try {
    server = createServer({
      key: options.serverKeyPem,
      cert: options.serverCertPem,
      requestCert: true,
      // Deno's node:tls cannot verify client certificates: the chain is checked at CONNECT.
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
      handshakeTimeout: handshakeTimeoutMs,
    });
  } catch (cause) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw new UsageError("The emulator's server certificate or key cannot be used", {
      code: "EMULATOR_SERVER_CERT",
      hint: "Give a PEM certificate (chain) and its matching PEM private key.",
      cause,
    });
  }

  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    // Without no-delay each CONNACK waits for the client's delayed ACK (about 40 ms).
    socket.setNoDelay(true);
    socket.on("error", () => {});
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("secureConnection", (tlsSocket: TLSSocket) => {
    sockets.add(tlsSocket);
    tlsSocket.on("error", () => {});
    tlsSocket.once("close", () => sockets.delete(tlsSocket));
    try {
      broker.handle(tlsSocket);
    } catch (err) {
      emit({ kind: "error", reason: `cannot handle connection: ${(err as Error).message}` });
      tlsSocket.destroy();
    }
  });
  server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
    emit({
      kind: "error",
      remoteAddress: remoteOf(socket),
      reason: `TLS handshake failed: ${err.message}`,
    });
    // Deno reports a handshake timeout here without closing the TCP socket underneath.
    (socket as TLSSocket & { _parent?: Socket })?._parent?.destroy();
    socket?.destroy();
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, hostname, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (cause) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw new NetworkError(
      `The emulator cannot listen on ${hostname}:${options.port ?? 0}: ${(cause as Error).message}`,
      {
        code: "EMULATOR_LISTEN",
        hint: "Choose another --port (or 0 for any free port) or another address.",
        cause,
      },
    );
  }
  server.on("error", (err: Error) => emit({ kind: "error", reason: `server: ${err.message}` }));

  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port ?? 0;
  const url = `mqtts://${hostPort(hostname, port)}`;
  emit({ kind: "listening", url });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await serverClosed;
    })();
    return closing;
  };

  return {
    url,
    port,
    hostname,
    tenant,
    issuer,
    publicKeyJwk,
    publicKeyPem,
    close,
    [Symbol.asyncDispose]: close,
  };
}
