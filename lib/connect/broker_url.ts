/**
 * Broker URLs: the forms a device engineer types (`ssl://host:port` from the Java/Paho example,
 * `mqtts://`, `tls://`, `host`, `host:port`, `[::1]:8883`), checked and normalised.
 *
 * @module
 */

import { isIP } from "node:net";
import { UsageError } from "../errors.ts";

/** The MQTT-over-TLS port Cumulocity listens on, used when a URL names none. */
export const DEFAULT_PORT = 8883;

/** A broker address, checked: always TLS, always with a port. */
export interface BrokerAddress {
  /** Host name (lower case) or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port, 1 to 65535. */
  port: number;
  /** The address in one normal form, `mqtts://host:port` (`mqtts://[::1]:8883` for IPv6). */
  url: string;
  /** Whether `host` is an IPv4 or IPv6 address rather than a name. */
  hostIsIp: boolean;
}

const TLS_SCHEMES = new Set(["ssl", "mqtts", "tls"]);
const PLAIN_SCHEMES = new Set(["tcp", "mqtt"]);
const WEBSOCKET_SCHEMES = new Set(["ws", "wss"]);
const WEB_SCHEMES = new Set(["http", "https"]);
/**
 * A scheme the tool knows written without its `://` (`ssl//host`, `ssl:/host`, `ssl:host`): not a
 * host named "ssl". `ssl:8883` stays a host and a port.
 */
const MISSPELT_SCHEME =
  /^(ssl|mqtts|tls|mqtt|tcp|wss|ws|https|http)(?:\/\/|:\/(?!\/)|:(?![0-9]+$)(?!\/\/))/i;
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

/**
 * Parses and checks a broker URL. Certificates need TLS, so only the TLS schemes are accepted;
 * the default port is {@linkcode DEFAULT_PORT}.
 *
 * Refused, each with a {@linkcode UsageError} and a hint:
 * - `ws://`, `wss://` (`URL_WEBSOCKET`): Cumulocity does not accept certificates over
 *   MQTT-over-WebSocket;
 * - `tcp://`, `mqtt://` (`URL_SCHEME_NO_TLS`): a client certificate needs TLS;
 * - `https://`, `http://` (`URL_HTTP`): a web address copied from the browser; the message names
 *   the MQTT address on the same host (`ssl://<host>:8883`);
 * - ports 0, above 65535 or not a number (`URL_PORT`);
 * - an empty or malformed host, a malformed scheme (`ssl//host`, `ssl:/host`), an unknown
 *   scheme, a path, query, fragment or credentials (`URL_INVALID`). A URL with credentials is not repeated in the message.
 *
 * @param url The URL as the user wrote it.
 * @returns The checked address.
 * @throws {UsageError} When the URL is not a usable TLS broker address.
 *
 * @example Java's `ssl://` form and a bare host
 * ```ts
 * import { parseBrokerUrl } from "../../mod.ts";
 * const a = parseBrokerUrl("ssl://Tenant.example.com:8883");
 * if (a.url !== "mqtts://tenant.example.com:8883" || a.hostIsIp) throw new Error("unexpected");
 * const b = parseBrokerUrl("[::1]");
 * if (b.host !== "::1" || b.port !== 8883 || b.url !== "mqtts://[::1]:8883") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function parseBrokerUrl(url: string): BrokerAddress {
  const input = url.trim();
  if (input === "") {
    throw invalid(`The broker URL is empty`, "Give one like ssl://<tenant domain>:8883.");
  }
  if (input.includes("@")) {
    // Checked first so that no message repeats a password.
    throw invalid(
      "The broker URL contains credentials (user@ or user:password@), which certificate authentication does not use",
      "Remove them; the device authenticates with its certificate.",
    );
  }
  const misspelt = MISSPELT_SCHEME.exec(input);
  if (misspelt) {
    const scheme = WEB_SCHEMES.has(misspelt[1].toLowerCase()) ? "ssl" : misspelt[1];
    const fixed = `${scheme}://${input.slice(misspelt[0].length)}`;
    throw invalid(
      `Broker URL "${shown(input)}" is malformed: the scheme "${misspelt[1]}" must be followed ` +
        `by "://"`,
      `Write it as ${shown(fixed)}.`,
    );
  }
  let rest = input;
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(input);
  if (schemeMatch) {
    const scheme = schemeMatch[1].toLowerCase();
    rest = input.slice(schemeMatch[0].length);
    if (WEB_SCHEMES.has(scheme)) throw webAddress(input, rest);
    if (rest.startsWith("/")) {
      throw invalid(
        `Broker URL "${shown(input)}" is malformed: no host after "${schemeMatch[0]}"`,
        "Write it as ssl://host:port.",
      );
    }
    if (WEBSOCKET_SCHEMES.has(scheme)) {
      throw new UsageError(
        `Broker URL "${
          shown(input)
        }" uses WebSocket (${scheme}://), but Cumulocity does not accept device certificates over MQTT-over-WebSocket`,
        {
          code: "URL_WEBSOCKET",
          hint: "Use MQTT over TLS on port 8883: ssl://<tenant domain>:8883.",
        },
      );
    }
    if (PLAIN_SCHEMES.has(scheme)) {
      throw new UsageError(
        `Broker URL "${
          shown(input)
        }" uses plain MQTT (${scheme}://), but a device certificate needs TLS`,
        {
          code: "URL_SCHEME_NO_TLS",
          hint: "Use ssl://, mqtts:// or tls:// with port 8883.",
        },
      );
    }
    if (!TLS_SCHEMES.has(scheme)) {
      throw invalid(
        `Broker URL "${shown(input)}" has an unknown scheme "${scheme}://"`,
        "Use ssl://host:port, mqtts://host:port, tls://host:port or host:port.",
      );
    }
  } else if (/^[A-Za-z][A-Za-z0-9+.-]*:\/(?!\/)/.test(input)) {
    throw invalid(
      `Broker URL "${shown(input)}" is malformed`,
      "Write it as ssl://host:port or host:port.",
    );
  }

  // A lone trailing slash is harmless; anything after it is a path the broker would not see.
  if (rest.endsWith("/") && rest.indexOf("/") === rest.length - 1) rest = rest.slice(0, -1);
  if (/[/?#]/.test(rest)) {
    throw invalid(
      `Broker URL "${
        shown(input)
      }" has a path, query or fragment, which MQTT over TLS does not use`,
      "Give only the host and port, e.g. ssl://<tenant domain>:8883 (paths such as /mqtt are for WebSocket, which certificates cannot use).",
    );
  }

  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) {
      throw invalid(
        `Broker URL "${shown(input)}" has an unclosed "["`,
        "Write IPv6 as [::1]:8883.",
      );
    }
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) {
        throw invalid(
          `Broker URL "${shown(input)}" is malformed after "]"`,
          "Write IPv6 as [::1]:8883.",
        );
      }
      portText = after.slice(1);
    }
    if (isIP(host) !== 6) {
      throw invalid(
        `Broker URL "${shown(input)}" has no valid IPv6 address in brackets`,
        "Write IPv6 as [::1]:8883.",
      );
    }
  } else if (isIP(rest) === 6) {
    host = rest; // bare IPv6, no port
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon >= 0) {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
      if (host.includes(":")) {
        throw invalid(
          `Broker URL "${shown(input)}" is ambiguous: an IPv6 address with a port needs brackets`,
          "Write it as [address]:port, e.g. [::1]:8883.",
        );
      }
    } else {
      host = rest;
    }
  }

  if (host === "") {
    throw invalid(
      `Broker URL "${shown(input)}" has no host`,
      "Give one like ssl://<tenant domain>:8883.",
    );
  }
  const ipVersion = isIP(host);
  if (ipVersion === 0) {
    host = host.toLowerCase();
    if (!HOSTNAME.test(host)) {
      throw invalid(
        `Broker URL "${shown(input)}" has an invalid host name "${host}"`,
        "Use the tenant's domain name (letters, digits, '-' and '.') or an IP address.",
      );
    }
    if (host.endsWith(".")) host = host.slice(0, -1);
  } else if (ipVersion === 6) {
    host = host.toLowerCase();
  }

  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new UsageError(
        `Broker URL "${shown(input)}" has an invalid port "${portText}"`,
        { code: "URL_PORT", hint: "The port is a number from 1 to 65535; Cumulocity uses 8883." },
      );
    }
    port = Number(portText);
  }

  const hostIsIp = ipVersion !== 0;
  return { host, port, url: `mqtts://${hostPort(host, port)}`, hostIsIp };
}

/**
 * `host:port`, with an IPv6 address in brackets (`[::1]:8883`): the form of URLs, of Deno's
 * `--allow-net` values and of messages.
 *
 * @example
 * ```ts
 * import { hostPort } from "./broker_url.ts";
 * if (hostPort("::1", 8883) !== "[::1]:8883" || hostPort("a.example", 1) !== "a.example:1") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function hostPort(host: string, port: number | string): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * A web address (copied from the browser): Cumulocity serves MQTT on the same host, port 8883.
 * The host is read with `URL`, so a path, query or port of the web address does not matter.
 */
function webAddress(input: string, rest: string): UsageError {
  let host: string | undefined;
  try {
    host = new URL(input).hostname || undefined;
  } catch {
    host = undefined;
  }
  const mqtt = host === undefined
    ? "ssl://<tenant domain>:8883"
    : `ssl://${hostPort(host.replace(/^\[|\]$/g, ""), DEFAULT_PORT)}`;
  return new UsageError(
    `Broker URL "${shown(input)}" is a web address, but devices reach Cumulocity's MQTT ` +
      `endpoint on the same host with MQTT over TLS: ${mqtt}`,
    {
      code: "URL_HTTP",
      hint: `Use ${mqtt} (port 8883 on the tenant's host${
        rest.includes("/") ? "; the path of the web address is not needed" : ""
      }).`,
    },
  );
}

function invalid(message: string, hint: string): UsageError {
  return new UsageError(message, { code: "URL_INVALID", hint });
}

/** The URL for a message, cut short so a pasted blob does not flood the terminal. */
function shown(input: string): string {
  return input.length > 200 ? `${input.slice(0, 200)}…` : input;
}
