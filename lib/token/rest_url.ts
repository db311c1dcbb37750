/**
 * The HTTPS address of the platform's REST token endpoint: given (`https://host[:port]` or
 * `host[:port]`), or derived from the MQTT broker URL (same host, port 443).
 *
 * @module
 */

import { isIP } from "node:net";
import { type BrokerAddress, hostPort } from "../connect/broker_url.ts";
import { UsageError } from "../errors.ts";

/**
 * The tenant's HTTPS port, where the platform's documentation sends
 * `POST /devicecontrol/deviceAccessToken`; installations that serve mutual TLS on another port
 * need the address given (`restUrl`).
 */
export const DEFAULT_REST_PORT = 443;

/** An HTTPS address, checked: a host, a port, no path. */
export interface RestAddress {
  /** Host name (lower case) or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port, 1 to 65535. */
  port: number;
  /** The address in one normal form, `https://host:port` (`https://[::1]:443` for IPv6). */
  url: string;
  /** Whether `host` is an IPv4 or IPv6 address rather than a name. */
  hostIsIp: boolean;
}

/**
 * Parses the address of the REST endpoint: `https://host[:port]` or `host[:port]` (port 443 when
 * none is given). A trailing `/` is allowed; a path, query, fragment or credentials are not (the
 * token path is fixed), nor is `http://` (the device certificate needs TLS).
 *
 * @param url The address as the user wrote it.
 * @returns The checked address.
 * @throws {UsageError} `URL_SCHEME_NO_TLS` for `http://`, `URL_PORT` for a bad port,
 * `URL_INVALID` for anything else that is not a usable HTTPS address.
 *
 * @example
 * ```ts
 * import { parseRestUrl } from "@c8y-mqtt-cert/c8y-mqtt-cert";
 * const a = parseRestUrl("https://Tenant.example.com");
 * if (a.url !== "https://tenant.example.com:443") throw new Error(a.url);
 * const b = parseRestUrl("[::1]:8443");
 * if (b.host !== "::1" || b.port !== 8443 || !b.hostIsIp) throw new Error(b.url);
 * ```
 */
export function parseRestUrl(url: string): RestAddress {
  const input = url.trim();
  const shown = input.length > 200 ? `${input.slice(0, 200)}…` : input;
  if (input.includes("@")) {
    // Checked first so that no message repeats a password.
    throw invalid(
      "The REST URL contains credentials (user@ or user:password@), which certificate authentication does not use",
    );
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(input)?.[1].toLowerCase();
  if (scheme === "http") {
    throw new UsageError(`REST URL "${shown}" is plain HTTP, but a device certificate needs TLS`, {
      code: "URL_SCHEME_NO_TLS",
      hint: "Use https://<tenant domain> (port 443 unless the installation serves it elsewhere).",
    });
  }
  if (scheme !== undefined && scheme !== "https") {
    throw invalid(`REST URL "${shown}" has the scheme "${scheme}://", not https://`);
  }
  // Checked on the text: the URL parser's own refusal of a port would not say it is the port.
  const portText = /^(?:https:\/\/)?(?:\[[^\]]*\]|[^:/]*)(?::([^/]*))?/i.exec(input)?.[1];
  if (portText !== undefined && portText !== "") {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new UsageError(`REST URL "${shown}" has an invalid port "${portText}"`, {
        code: "URL_PORT",
        hint: "The port is a number from 1 to 65535; the platform's HTTPS port is 443.",
      });
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(scheme === undefined ? `https://${input}` : input);
  } catch {
    throw invalid(`REST URL "${shown}" is malformed`);
  }
  if (parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "") {
    throw invalid(
      `REST URL "${shown}" has a path, query or fragment (the token path is always /devicecontrol/deviceAccessToken)`,
    );
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") throw invalid(`REST URL "${shown}" has no host`);
  return address(host, portText ? Number(portText) : DEFAULT_REST_PORT);
}

/**
 * The default REST address for a broker: the broker's host on port 443.
 *
 * @param broker The MQTT broker address (from `parseBrokerUrl`).
 * @returns `https://<broker host>:443`.
 *
 * @example
 * ```ts
 * import { parseBrokerUrl, restUrlOf } from "@c8y-mqtt-cert/c8y-mqtt-cert";
 * const rest = restUrlOf(parseBrokerUrl("ssl://tenant.example.com:8883"));
 * if (rest.url !== "https://tenant.example.com:443") throw new Error(rest.url);
 * ```
 */
export function restUrlOf(broker: BrokerAddress): RestAddress {
  return address(broker.host, DEFAULT_REST_PORT);
}

function address(host: string, port: number): RestAddress {
  return {
    host,
    port,
    url: `https://${hostPort(host, port)}`,
    hostIsIp: isIP(host) !== 0,
  };
}

function invalid(message: string): UsageError {
  return new UsageError(message, {
    code: "URL_INVALID",
    hint: "Give the tenant's HTTPS address, e.g. https://<tenant domain> or https://<host>:8443.",
  });
}
