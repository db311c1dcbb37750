/**
 * The emulator's REST endpoint: the two calls of the platform's REST API a certificate device
 * makes, over HTTPS with mutual TLS on a port of its own.
 *
 * - `POST /devicecontrol/deviceAccessToken`: the device's TLS client certificate (with the
 *   certificates of an optional `X-Ssl-Cert-Chain` header as further intermediates) is judged by
 *   the same {@linkcode DeviceAuthority} as an MQTT CONNECT; an admitted device gets
 *   `200 {"accessToken": "<JWT>"}` (the same token as on `s/dat`; the device is created on its
 *   first token), a refused one `401` with a JSON error body `{"error", "message"}`.
 * - `POST /user/logout` with `Authorization: Bearer <JWT>`: ends one of the emulator's tokens,
 *   `204`; a token that is not the emulator's, expired or already ended gets `401`.
 * - Anything else: `404` (unknown path) or `405` (another method), JSON.
 *
 * `X-Ssl-Cert-Chain` holds PEM certificates; since a header cannot carry line breaks, they may be
 * written on one line (line breaks replaced by spaces or removed) or URL-encoded (as nginx's
 * `$ssl_client_escaped_cert`).
 *
 * Like the MQTT endpoint, the TLS server asks for a client certificate but does not verify it in
 * the handshake (Deno's `node:tls` cannot); the check happens per request, before any answer.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { hostPort } from "../connect/broker_url.ts";
import { MAX_CHAIN_LENGTH } from "../x509/certificate.ts";
import { type DeviceAuthority, presentedChain } from "./device_auth.ts";
import { clip, type EmulatorEvent } from "./events.ts";
import type { Platform } from "./platform.ts";

/** The largest request body read (and discarded), in bytes; larger gets 413. */
const MAX_BODY_BYTES = 65_536;
/** The longest `X-Ssl-Cert-Chain` header read, in characters. */
const MAX_CHAIN_HEADER_CHARS = 32_768;

/** What {@linkcode RestEndpoint} needs. */
export interface RestEndpointOptions {
  authority: DeviceAuthority;
  platform: Platform;
  emit: (event: Omit<EmulatorEvent, "time">) => void;
  serverCertPem: string;
  serverKeyPem: string;
  handshakeTimeoutMs: number;
  /** How long a request may take to arrive whole, in milliseconds. */
  requestTimeoutMs: number;
}

/** The DER certificates of an `X-Ssl-Cert-Chain` header (PEM, on one line or URL-encoded). */
export function certificatesOfChainHeader(value: string): Uint8Array[] {
  let text = value;
  if (/%[0-9A-Fa-f]{2}/.test(text)) {
    try {
      text = decodeURIComponent(text);
    } catch {
      // Not URL-encoded after all: read as it is.
    }
  }
  const out: Uint8Array[] = [];
  const block = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;
  for (const match of text.matchAll(block)) {
    if (out.length > MAX_CHAIN_LENGTH) break;
    out.push(new Uint8Array(Buffer.from(match[1].replace(/\s+/g, ""), "base64")));
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function json(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** The HTTPS server of the platform's REST calls for devices. */
export class RestEndpoint {
  readonly #options: RestEndpointOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  /**
   * Creates the server (not yet listening).
   * @throws {Error} from `node:https` when the certificate or key cannot be used.
   */
  constructor(options: RestEndpointOptions) {
    this.#options = options;
    this.#server = createServer({
      // Buffers, not strings: cheaper per connection under Deno (see start.ts).
      key: Buffer.from(options.serverKeyPem),
      cert: Buffer.from(options.serverCertPem),
      requestCert: true,
      // Deno's node:tls cannot verify client certificates: each request is checked in code.
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
      handshakeTimeout: options.handshakeTimeoutMs,
      // Room for an X-Ssl-Cert-Chain of up to MAX_CHAIN_HEADER_CHARS beside the other headers.
      maxHeaderSize: MAX_CHAIN_HEADER_CHARS + 16_384,
    }, (req, res) => this.#answer(req, res));
    this.#server.requestTimeout = options.requestTimeoutMs;
    this.#server.headersTimeout = Math.min(options.requestTimeoutMs, 60_000);
    this.#server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => this.#sockets.delete(socket));
    });
    this.#server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
      options.emit({
        kind: "error",
        via: "rest",
        remoteAddress: this.#remote(socket),
        reason: `TLS handshake failed: ${clip(err.message)}`,
      });
      socket?.destroy();
    });
    this.#server.on("error", (err: Error) => {
      options.emit({ kind: "error", via: "rest", reason: `REST server: ${clip(err.message)}` });
    });
  }

  /** Listens; resolves with the port. */
  listen(port: number, hostname: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, hostname, () => {
        this.#server.off("error", reject);
        const address = this.#server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  /** Stops listening and drops every connection. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    (this.#server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    return closed;
  }

  #remote(socket: Partial<Socket> | undefined): string | undefined {
    return socket?.remoteAddress
      ? hostPort(socket.remoteAddress, socket.remotePort ?? "")
      : undefined;
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    let received = 0;
    let tooLarge = false;
    req.on("data", (chunk: Uint8Array) => {
      received += chunk.length;
      if (received > MAX_BODY_BYTES && !tooLarge) {
        tooLarge = true;
        res.setHeader("connection", "close");
        json(res, 413, {
          error: "general/requestTooLarge",
          message: `Request body over ${MAX_BODY_BYTES} bytes`,
        });
        req.destroy();
      }
    });
    req.on("error", () => {});
    req.on("end", () => {
      if (tooLarge) return;
      this.#route(req, res).catch((err) => {
        this.#options.emit({
          kind: "error",
          via: "rest",
          reason: `REST ${clip(req.url ?? "", 64)}: ${clip((err as Error).message)}`,
        });
        if (!res.headersSent) json(res, 500, { error: "general/internalError", message: "" });
      });
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?")[0];
    const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>> = {
      "/devicecontrol/deviceAccessToken": (q, s) => this.#deviceAccessToken(q, s),
      "/user/logout": (q, s) => this.#logout(q, s),
    };
    const route = routes[path];
    if (!Object.hasOwn(routes, path)) {
      return json(res, 404, {
        error: "general/notFound",
        message: `No resource ${clip(path, 64)} on this emulator`,
      });
    }
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      return json(res, 405, { error: "general/methodNotAllowed", message: "Use POST" });
    }
    await route(req, res);
  }

  async #deviceAccessToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { authority, platform, emit } = this.#options;
    const socket = req.socket as TLSSocket;
    const remoteAddress = this.#remote(socket);
    const refuse = (reason: string, commonName?: string): void => {
      emit({ kind: "refused", via: "rest", commonName, remoteAddress, returnCode: 401, reason });
      json(res, 401, { error: "security/Unauthorized", message: reason });
    };
    const chain = presentedChain(socket);
    if (chain.length === 0) return refuse("the client sent no client certificate");
    const header = req.headers["x-ssl-cert-chain"];
    if (typeof header === "string" && header !== "") {
      if (header.length > MAX_CHAIN_HEADER_CHARS) {
        return refuse(`X-Ssl-Cert-Chain is longer than ${MAX_CHAIN_HEADER_CHARS} characters`);
      }
      const extra = certificatesOfChainHeader(header);
      if (extra.length === 0) return refuse("X-Ssl-Cert-Chain holds no PEM certificate");
      for (const der of extra) {
        if (!chain.some((c) => sameBytes(c, der))) chain.push(der);
      }
    }
    const verdict = authority.verify(chain);
    if (!verdict.ok) return refuse(verdict.reason, clip(verdict.commonName));
    const issued = await platform.issueToken(verdict.deviceId);
    json(res, 200, { accessToken: issued.token });
    emit({
      kind: "token",
      via: "rest",
      commonName: verdict.commonName,
      remoteAddress,
      tokenId: issued.tokenId,
      expiresAt: issued.expiresAt,
    });
  }

  async #logout(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { platform, emit } = this.#options;
    const remoteAddress = this.#remote(req.socket);
    const auth = req.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(auth);
    const result = match
      ? await platform.logout(match[1])
      : { ok: false as const, reason: "no Authorization: Bearer <token> header" };
    if (!result.ok) {
      emit({ kind: "refused", via: "rest", remoteAddress, returnCode: 401, reason: result.reason });
      return json(res, 401, { error: "security/Unauthorized", message: result.reason });
    }
    emit({
      kind: "logout",
      via: "rest",
      commonName: clip(result.subject.replace(/^device_/, "")),
      remoteAddress,
      tokenId: result.tokenId,
    });
    json(res, 204);
  }
}
