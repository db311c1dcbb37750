/**
 * The broker's certificate as names a user can act on: its subject, its issuer and the CA at the
 * top of the chain the server sends, which is what a truststore must hold. Read from the socket
 * after a handshake, or, when the handshake failed because the server is not trusted, from a
 * second handshake that does not verify the server (it sends nothing and is closed at once).
 *
 * @module
 */

import * as tls from "node:tls";
import type { BrokerAddress } from "./broker_url.ts";
import { parseCertificate } from "../x509/certificate.ts";
import { type C8yError, TlsError } from "../errors.ts";
import { nodeTlsOptions } from "./open_tls.ts";
import type { TlsConnectOptions } from "./tls_options.ts";

/** The names of a server's certificate chain. */
export interface ServerCertificateNames {
  /** The server certificate's subject, e.g. `CN=mytenant.cumulocity.com`. */
  subject: string;
  /** Its issuer. */
  issuer: string;
  /**
   * The CA a truststore must hold to trust it: the issuer of the last certificate the server
   * sent (or that certificate itself when it is self-signed).
   */
  anchor: string;
}

/** How long the second handshake may take, in milliseconds. */
const PEEK_TIMEOUT_MS = 5000;

/** The names of the chain a TLS socket's peer presented, or `undefined` when it has none. */
export function serverCertificateNames(socket: tls.TLSSocket): ServerCertificateNames | undefined {
  let peer: tls.DetailedPeerCertificate | undefined;
  try {
    peer = socket.getPeerCertificate(true);
  } catch {
    return undefined;
  }
  if (!peer?.raw) return undefined;
  const leaf = parseCertificate(new Uint8Array(peer.raw)).summary;
  let last = leaf;
  const seen = new Set([leaf.sha256]);
  for (let next = peer.issuerCertificate; next?.raw;) {
    const summary = parseCertificate(new Uint8Array(next.raw)).summary;
    if (seen.has(summary.sha256)) break; // a self-signed root points at itself
    seen.add(summary.sha256);
    last = summary;
    next = next.issuerCertificate;
  }
  return {
    subject: leaf.subject,
    issuer: leaf.issuer,
    anchor: last.selfSigned ? last.subject : last.issuer,
  };
}

/**
 * Handshakes once more without verifying the server, only to read its certificate's names; the
 * connection is closed before anything is sent. `undefined` when that fails too.
 */
export function peekServerCertificate(
  options: TlsConnectOptions,
): Promise<ServerCertificateNames | undefined> {
  return new Promise((resolve) => {
    let socket: tls.TLSSocket | undefined;
    const done = (names: ServerCertificateNames | undefined): void => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(names);
    };
    const timer = setTimeout(() => done(undefined), PEEK_TIMEOUT_MS);
    try {
      socket = tls.connect({ ...nodeTlsOptions(options), rejectUnauthorized: false });
    } catch {
      done(undefined);
      return;
    }
    socket.once("secureConnect", () => done(serverCertificateNames(socket!)));
    socket.once("error", () => done(undefined));
    socket.once("close", () => done(undefined));
  });
}

/**
 * `TLS_SERVER_UNTRUSTED` with the server certificate named: its subject and issuer in the
 * message, the CA to put into the truststore in the hint. Any other error is returned as it is.
 *
 * @param error An error of the connection.
 * @param broker The broker connected to.
 * @param options The TLS options used (their `ca` tells whether a truststore was given).
 */
export async function nameUntrustedServer(
  error: C8yError,
  broker: BrokerAddress,
  options: TlsConnectOptions,
): Promise<C8yError> {
  if (error.code !== "TLS_SERVER_UNTRUSTED") return error;
  const names = await peekServerCertificate(options);
  if (names === undefined) return error;
  const reason = error.message.match(/ is not trusted (\(.*\))$/)?.[1] ?? "";
  return new TlsError(
    `The server certificate of ${broker.url} ("${names.subject}", issued by "${names.issuer}") ` +
      `is not trusted${reason ? ` ${reason}` : ""}`,
    {
      code: "TLS_SERVER_UNTRUSTED",
      hint: options.ca === undefined
        ? `The default root CAs do not trust it: give a truststore holding "${names.anchor}".`
        : `The truststore does not hold "${names.anchor}", the CA the server's certificate ` +
          "chains to: add it, or leave the truststore out to use the default root CAs.",
      cause: error.cause,
    },
  );
}
