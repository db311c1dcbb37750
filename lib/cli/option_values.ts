/**
 * The values of the command line, checked: store types, numbers of seconds, the token's route
 * (MQTT or REST) and addresses, the emulator's settings, and the checks across options that need
 * no file or network.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { parseClientId } from "../connect/client_id.ts";
import {
  checkEmulatorSettings,
  DEFAULT_TOKEN_LIFETIME_SECONDS,
  type EmulatorSettings,
} from "../emulator/settings.ts";
import { parseRestUrl, type RestAddress, restUrlOf } from "../token/rest_url.ts";
import { type BrokerAddress, parseBrokerUrl } from "../connect/broker_url.ts";
import type { StoreFormat } from "../types.ts";
import type { Command, Values } from "./options.ts";

export function storeType(value: string | undefined, option: string): StoreFormat | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (lower === "p12" || lower === "pfx") return "pkcs12";
  if (lower === "cer" || lower === "crt") return "der";
  if (lower === "jks" || lower === "pkcs12" || lower === "pem") return lower;
  // One DER certificate (server.cer) is a truststore, never a keystore.
  if (lower === "der" && option !== "--keystore-type") return lower;
  throw new UsageError(
    `${option} must be jks, pkcs12, pem${
      option === "--keystore-type" ? "" : " or der"
    }, not "${value}"`,
    {
      code: "USAGE",
      hint: "Leave it out to detect the format from the content.",
    },
  );
}

export function required(values: Values, name: keyof Values, command: Command): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") {
    throw new UsageError(`The ${command} command needs --${name}`, {
      code: "USAGE",
      hint: `Run c8y-mqtt-cert --help for the usage of ${command}.`,
    });
  }
  return value;
}

export function seconds(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${option} must be a positive number of seconds, not "${value}"`, {
      code: "USAGE",
      hint: `For example ${option} 20.`,
    });
  }
  return n;
}

/**
 * How `token` and `check` get the token: `--via mqtt|rest` (default mqtt), `--rest-url URL` and
 * `--send-chain`, which only REST uses.
 */
export function tokenRoute(
  values: Values,
): { via: "mqtt" | "rest"; restUrl: string | undefined; sendChain: boolean } {
  const via = (values.via ?? "mqtt").toLowerCase();
  if (via !== "mqtt" && via !== "rest") {
    throw new UsageError(`--via must be mqtt or rest, not "${values.via}"`, {
      code: "USAGE",
      hint: "mqtt asks on s/uat; rest posts to /devicecontrol/deviceAccessToken over HTTPS.",
    });
  }
  for (const name of ["rest-url", "send-chain"] as const) {
    if (via === "mqtt" && values[name] !== undefined) {
      throw new UsageError(`--${name} is for the REST token request: add --via rest`, {
        code: "USAGE",
        hint: "Without --via rest the token is requested over MQTT, which does not use it.",
      });
    }
  }
  if (values.watch && via === "rest") {
    throw new UsageError("--watch keeps an MQTT connection and renews its token over MQTT", {
      code: "USAGE",
      hint: "Leave out --via rest (or --watch).",
    });
  }
  if (values["rest-url"] !== undefined) parseRestUrl(values["rest-url"]);
  return { via, restUrl: values["rest-url"], sendChain: values["send-chain"] ?? false };
}

/**
 * Where `token` and `check` connect. Over MQTT: the broker of `--url` (required). With `--via
 * rest` only the HTTPS address is contacted: `--rest-url`, or an `https://` `--url` taken as that
 * address, or else the `--url` broker's host on port 443; `broker` is then the `--url` broker
 * when one is given (an `https://` `--url` names no broker).
 *
 * @throws {UsageError} `USAGE` for a missing `--url` (over MQTT), a `--via rest` without either
 * address, or an `https://` `--url` together with `--rest-url`; the URL codes of
 * `parseBrokerUrl` and `parseRestUrl`.
 */
export function tokenTarget(
  values: Values,
  command: "token" | "check",
): { broker: BrokerAddress | undefined; rest: RestAddress | undefined } {
  const route = tokenRoute(values);
  if (route.via === "mqtt") {
    const url = required(values, "url", command);
    try {
      return { broker: parseBrokerUrl(url), rest: undefined };
    } catch (error) {
      // An https:// address may be meant for the token over REST: say how to ask for that.
      if (!(error instanceof UsageError) || error.code !== "URL_HTTP") throw error;
      if (!/^https:\/\//i.test(url.trim())) throw error;
      throw new UsageError(error.message, {
        code: error.code,
        hint:
          `${error.hint} For the token over HTTPS instead, add --via rest (the https:// URL is then the REST address).`,
      });
    }
  }
  const url = values.url === "" ? undefined : values.url;
  if (url !== undefined && /^https?:\/\//i.test(url.trim())) {
    if (route.restUrl !== undefined) {
      throw new UsageError(
        `--url "${
          shortened(url)
        }" is a web address and --rest-url names one too; with --via rest give the HTTPS address once`,
        {
          code: "USAGE",
          hint:
            "Keep --rest-url https://<host>[:port] and leave out --url (or give --url as the MQTT broker, ssl://<host>:8883).",
        },
      );
    }
    return { broker: undefined, rest: parseRestUrl(url) };
  }
  const broker = url === undefined ? undefined : parseBrokerUrl(url);
  if (route.restUrl !== undefined) return { broker, rest: parseRestUrl(route.restUrl) };
  if (broker !== undefined) return { broker, rest: restUrlOf(broker) };
  throw new UsageError(`The ${command} command with --via rest needs --rest-url (or --url)`, {
    code: "USAGE",
    hint:
      "Give the tenant's HTTPS address: --rest-url https://<tenant domain> (port 443 unless the installation serves it elsewhere).",
  });
}

/** A value as shown in a message: at most 200 characters, and never with credentials. */
function shortened(value: string): string {
  if (value.includes("@")) return "<a URL with credentials>";
  return value.length > 200 ? `${value.slice(0, 200)}…` : value;
}

/**
 * The emulator's ports, tenant and token lifetime from the options (checked by the emulator;
 * its defaults are the emulator's, except the MQTT port: 8883, as on the platform).
 */
export function emulatorSettings(values: Values): EmulatorSettings {
  return {
    port: values.port === undefined ? 8883 : Number(values.port),
    restPort: values["rest-port"] === undefined ? undefined : Number(values["rest-port"]),
    tenant: values.tenant,
    tokenLifetimeSeconds: values["token-lifetime"] === undefined
      ? undefined
      : seconds(values["token-lifetime"], "--token-lifetime", DEFAULT_TOKEN_LIFETIME_SECONDS),
  };
}

/**
 * Checks option values that need no file or network, so that a usage error is reported as one
 * (exit 2) before permissions are checked or anything is read. (`checkPasswordSources` in
 * `passwords.ts` does the same for the password options.)
 */
export function validate(command: Command, values: Values): void {
  if (command === "token" || command === "check") {
    tokenTarget(values, command);
    required(values, "keystore", command);
    seconds(values.timeout, "--timeout", 20);
  }
  storeType(values["keystore-type"], "--keystore-type");
  storeType(values["truststore-type"], "--truststore-type");
  storeType(values["trust-type"], "--trust-type");
  if (command === "emulate") {
    checkEmulatorSettings(emulatorSettings(values));
    if (values.host !== undefined) loopbackHost(values.host);
  }
  const explicitId = values["client-id"];
  const connectionType = explicitId === undefined
    ? undefined
    : parseClientId(explicitId).connectionType;
  if (connectionType !== undefined && connectionType !== "d") {
    // Certificates are for devices: the connection type is part of the command line's syntax.
    throw new UsageError(
      `Client id "${explicitId}" has connection type "${connectionType}", but a device with a certificate connects as "d"`,
      { code: "CLIENT_ID_TYPE", hint: "Use d:<CN>, or leave --client-id out." },
    );
  }
}

/**
 * Checks `--host` of `emulate`: a loopback address only (127.0.0.0/8, `::1`, `localhost`). The
 * emulator accepts any certificate its `--trust` CAs signed and hands out tokens signed with a
 * test key: it is a stand-in for tests and demos, not a server for a network.
 *
 * @throws {UsageError} `USAGE` naming the address.
 */
export function loopbackHost(host: string): void {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const loopback = bare.toLowerCase() === "localhost" || bare === "::1" ||
    /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(bare) &&
      bare.split(".").every((part) => Number(part) <= 255);
  if (!loopback) {
    throw new UsageError(
      `--host ${host} is not a loopback address: the emulator listens on 127.0.0.1, ::1 or localhost only`,
      {
        code: "USAGE",
        hint: "The emulator is a test stand-in with test keys: run it on the machine that " +
          "connects to it, e.g. --host 127.0.0.1.",
      },
    );
  }
}
