/**
 * The options for `node:tls` `connect()` that authenticate a device with its certificate.
 *
 * @module
 */

import { isIP } from "node:net";
import type { BrokerAddress } from "./broker_url.ts";
import { CertificateError, StoreError, UsageError } from "../errors.ts";
import type { DeviceIdentity, TrustAnchors } from "../types.ts";

/** A plain object for `node:tls` `connect()` (no socket, no callbacks: serialisable). */
export interface TlsConnectOptions {
  /** Broker host name or IP address. */
  host: string;
  /** Broker port. */
  port: number;
  /** The device's private key, PKCS#8 PEM. Never print it. */
  key: string;
  /** The device's certificate chain as PEM, leaf first, so the server also gets the issuers. */
  cert: string;
  /** The trusted CA certificates (PEM); absent means the default root CAs. */
  ca?: string[];
  /**
   * The name sent as SNI and checked against the server certificate. Absent for an IP address:
   * SNI must not be an IP literal (RFC 6066), and `node:tls` then checks the certificate's IP
   * subject alternative names against `host`.
   */
  servername?: string;
  /** The lowest TLS version offered. */
  minVersion: "TLSv1.2";
  /** Always true: an unverified server is refused. */
  rejectUnauthorized: true;
}

/** Options of {@linkcode tlsOptions}. */
export interface TlsOptionsExtra {
  /**
   * The name to send as SNI and check the server certificate against, when it differs from the
   * URL's host (e.g. connecting to an IP address whose certificate names the tenant domain).
   * @default the URL's host (none when the host is an IP address)
   */
  servername?: string;
}

/**
 * Builds the `node:tls` options for a device: its key, its chain leaf first, the trust anchors,
 * the server name for SNI and verification, and TLS 1.2 as the minimum.
 *
 * Without trust anchors the runtime's default root CAs apply (in Deno, Mozilla's bundled set, or
 * the operating system's with `DENO_TLS_CA_STORE=system`): right for a tenant on the public cloud,
 * whose server certificate is publicly trusted. For an IP host no `servername` is set: `node:tls`
 * (Node and Deno 2.9.6 alike) refuses an IP as `servername` with a `TypeError`, sends no SNI, and
 * verifies the server certificate's IP subject alternative names against `host` instead
 * (measured against mosquitto: a certificate without that IP is refused). To check a DNS name
 * while connecting by IP, pass `servername`.
 *
 * @param identity The device's key and chain.
 * @param trust The CA certificates that may sign the server's certificate, or `undefined` for the
 * default root CAs.
 * @param broker The broker address (host and port).
 * @param extra An optional server name override.
 * @returns The options, ready for `tls.connect()`.
 * @throws {CertificateError} `CHAIN_EMPTY` when the identity has no certificate.
 * @throws {StoreError} `TRUSTSTORE_EMPTY` when the truststore holds no certificate.
 * @throws {UsageError} `SERVERNAME_IP` when `extra.servername` is an IP address.
 *
 * @example
 * ```ts
 * import { type DeviceIdentity, parseBrokerUrl, tlsOptions } from "../../mod.ts";
 * // Stand-ins: tlsOptions() only copies the PEM texts.
 * const identity = {
 *   privateKeyPem: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
 *   chain: [{ pem: "LEAF\n" }, { pem: "INTERMEDIATE\n" }],
 * } as unknown as DeviceIdentity;
 * const options = tlsOptions(identity, undefined, parseBrokerUrl("ssl://example.com:8883"));
 * if (options.servername !== "example.com" || options.cert !== "LEAF\nINTERMEDIATE\n") {
 *   throw new Error("unexpected");
 * }
 * if ("ca" in options) throw new Error("default roots expected");
 * ```
 */
export function tlsOptions(
  identity: DeviceIdentity,
  trust: TrustAnchors | undefined,
  broker: BrokerAddress,
  extra: TlsOptionsExtra = {},
): TlsConnectOptions {
  if (identity.chain.length === 0) {
    throw new CertificateError("The device identity holds no certificate", {
      code: "CHAIN_EMPTY",
      hint: "The key entry needs its certificate chain; re-import the signed certificate.",
    });
  }
  const options: TlsConnectOptions = {
    host: broker.host,
    port: broker.port,
    key: identity.privateKeyPem,
    cert: identity.chain.map((c) => withNewline(c.pem)).join(""),
    minVersion: "TLSv1.2",
    rejectUnauthorized: true,
  };
  if (trust !== undefined) {
    if (trust.certificates.length === 0) {
      throw new StoreError("The truststore holds no certificate", {
        code: "TRUSTSTORE_EMPTY",
        hint:
          "Import the CA certificate that signed the server's certificate, or leave the truststore out to use the default root CAs.",
      });
    }
    options.ca = trust.certificates.map((c) => withNewline(c.pem));
  }
  const servername = extra.servername ?? (broker.hostIsIp ? undefined : broker.host);
  if (servername !== undefined && isIP(servername) !== 0) {
    throw new UsageError(`Server name "${servername}" is an IP address, which SNI does not allow`, {
      code: "SERVERNAME_IP",
      hint: "Give a DNS name, or leave the server name out to check the IP address itself.",
    });
  }
  if (servername !== undefined) options.servername = servername;
  return options;
}

function withNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}
