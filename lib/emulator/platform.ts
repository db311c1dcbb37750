/**
 * The platform's side of a device's session, shared by the MQTT and the REST endpoint: it signs
 * device tokens (JWT, RS256 as the platform's, or ES256 on request, with the platform's claims), ends them on logout, keeps the registry
 * of devices, and reads what a device publishes on `s/us` (SmartREST 2.0 static templates).
 *
 * @module
 */

import { randomUUID } from "node:crypto";
import { loadJose } from "../deps.ts";
import { clip, type EmulatorEvent } from "./events.ts";
import type { TokenAlgorithm } from "./settings.ts";

/** A device in the emulator's registry. */
export interface DeviceRecord {
  /** The device identifier (the Common Name of its certificate). */
  id: string;
  /** Its name (from `100,<name>,<type>`, or `MQTT Device <id>`). */
  name: string;
  /** Its type (from `100,<name>,<type>`, or `c8y_MQTTDevice`). */
  type: string;
  /** When it was created, ISO 8601 (UTC). */
  createdAt: string;
}

/** A token the platform issued. */
export interface IssuedToken {
  /** The JWT. */
  token: string;
  /** Its `tci` claim (token id). */
  tokenId: string;
  /** Its expiry, ISO 8601 (UTC). */
  expiresAt: string;
}

/** Options of {@linkcode Platform.create}. */
export interface PlatformOptions {
  /** The tenant id (`ten`), and `<tenant>.emulator.local` as `iss` and `aud`. */
  tenant: string;
  /** The token lifetime, in seconds. */
  tokenLifetimeSeconds: number;
  /** The JWT signature algorithm. */
  tokenAlgorithm: TokenAlgorithm;
  /** Where events go (without their time). */
  emit: (event: Omit<EmulatorEvent, "time">) => void;
}

/** Who sent a SmartREST message. */
export interface Sender {
  /** The device identifier. */
  deviceId: string;
  /** The MQTT client id. */
  clientId: string;
  /** The Common Name of its certificate. */
  commonName: string;
}

type Jose = Awaited<ReturnType<typeof loadJose>>;
type SigningKey = Awaited<ReturnType<Jose["generateKeyPair"]>>["privateKey"];

/** The most devices the registry holds (a test fleet fits; a flood of devices does not grow it). */
const MAX_DEVICES = 100_000;

/** The platform's tokens, logouts and device registry. */
export class Platform {
  /** The token issuer and audience, `<tenant>.emulator.local`. */
  readonly issuer: string;
  /** The public key that verifies the tokens, as a JWK (with its `alg`). */
  readonly publicKeyJwk: JsonWebKey;
  /** The same public key as SPKI PEM. */
  readonly publicKeyPem: string;
  readonly #options: PlatformOptions;
  readonly #jose: Jose;
  readonly #privateKey: SigningKey;
  readonly #publicKey: SigningKey;
  readonly #devices = new Map<string, DeviceRecord>();
  /** Token ids ended by logout, with their expiry (seconds); pruned once expired. */
  readonly #loggedOut = new Map<string, number>();

  private constructor(
    options: PlatformOptions,
    jose: Jose,
    keys: { privateKey: SigningKey; publicKey: SigningKey; jwk: JsonWebKey; pem: string },
  ) {
    this.#options = options;
    this.#jose = jose;
    this.#privateKey = keys.privateKey;
    this.#publicKey = keys.publicKey;
    this.publicKeyJwk = keys.jwk;
    this.publicKeyPem = keys.pem;
    this.issuer = `${options.tenant}.emulator.local`;
  }

  /** Makes the signing key pair (RSA 2048) and the platform. */
  static async create(options: PlatformOptions): Promise<Platform> {
    const jose = await loadJose();
    const alg = options.tokenAlgorithm;
    const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await jose.exportJWK(publicKey)), alg } as JsonWebKey;
    const pem = await jose.exportSPKI(publicKey);
    return new Platform(options, jose, { privateKey, publicKey, jwk, pem });
  }

  /** The devices created so far, oldest first. */
  devices(): DeviceRecord[] {
    return [...this.#devices.values()];
  }

  /**
   * Creates a device unless it exists, and reports a `device-created` event.
   * @returns whether it was created now.
   */
  register(deviceId: string, from: { clientId?: string; name?: string; type?: string }): boolean {
    if (this.#devices.has(deviceId) || this.#devices.size >= MAX_DEVICES) return false;
    const record: DeviceRecord = {
      id: deviceId,
      name: clip(from.name || `MQTT Device ${deviceId}`),
      type: clip(from.type || "c8y_MQTTDevice"),
      createdAt: new Date().toISOString(),
    };
    this.#devices.set(deviceId, record);
    this.#options.emit({
      kind: "device-created",
      clientId: clip(from.clientId),
      commonName: deviceId,
      deviceName: record.name,
      deviceType: record.type,
    });
    return true;
  }

  /** Signs a token for a device (and creates the device on its first token). */
  async issueToken(deviceId: string, clientId?: string): Promise<IssuedToken> {
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + this.#options.tokenLifetimeSeconds;
    const tokenId = randomUUID();
    const token = await new this.#jose.SignJWT({
      ten: this.#options.tenant,
      tci: tokenId,
      xsrfToken: randomUUID(),
    })
      .setProtectedHeader({ alg: this.#options.tokenAlgorithm })
      .setIssuer(this.issuer)
      .setAudience(this.issuer)
      .setSubject(`device_${deviceId}`)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .sign(this.#privateKey);
    this.register(deviceId, { clientId });
    return { token, tokenId, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /**
   * Ends a token (`POST /user/logout`): it must be one of this emulator's, unexpired and not
   * ended before.
   * @returns the token id and subject, or a reason it is not accepted.
   */
  async logout(
    jwt: string,
  ): Promise<{ ok: true; tokenId: string; subject: string } | { ok: false; reason: string }> {
    let payload;
    try {
      ({ payload } = await this.#jose.jwtVerify(jwt, this.#publicKey, {
        issuer: this.issuer,
        audience: this.issuer,
      }));
    } catch (err) {
      return { ok: false, reason: `bearer token not accepted: ${clip((err as Error).message)}` };
    }
    const tokenId = String(payload.tci ?? "");
    const now = Math.floor(Date.now() / 1000);
    for (const [id, exp] of this.#loggedOut) if (exp < now) this.#loggedOut.delete(id);
    if (this.#loggedOut.has(tokenId)) {
      return { ok: false, reason: "bearer token already ended by a logout" };
    }
    this.#loggedOut.set(tokenId, payload.exp ?? now);
    return { ok: true, tokenId, subject: String(payload.sub ?? "") };
  }

  /**
   * Reads what a device published on `s/us`: one `message` event per line, and `100,<name>,<type>`
   * creates the device (once).
   */
  smartRest(sender: Sender, payload: string): void {
    for (const line of payload.split(/\r?\n/)) {
      if (line === "") continue;
      this.#options.emit({
        kind: "message",
        clientId: clip(sender.clientId),
        commonName: sender.commonName,
        topic: "s/us",
        line: clip(line),
      });
      const fields = line.split(",", 3);
      if (fields[0] === "100") {
        this.register(sender.deviceId, {
          clientId: sender.clientId,
          name: fields[1],
          type: fields[2],
        });
      }
    }
  }
}
