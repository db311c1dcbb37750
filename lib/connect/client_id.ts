/**
 * The MQTT client id of a device that authenticates with a certificate.
 *
 * Cumulocity's client id is `connectionType:deviceIdentifier:defaultTemplateIdentifier`, where
 * `connectionType` defaults to `d` (device) and the template part is optional, so `<id>`,
 * `d:<id>` and `d:<id>:<template>` are all valid. With a certificate, `deviceIdentifier` must equal
 * the Common Name of the first certificate of the chain the device presents; the platform refuses
 * anything else with CONNACK 5. `:` separates the parts, so a CN containing `:` cannot work.
 *
 * @module
 */

import { CertificateError, UsageError } from "../errors.ts";
import type { DeviceIdentity } from "../types.ts";

/** A client id split into its parts. */
export interface ClientIdParts {
  /** The connection type (`d` for a device; `d` when the id has no type part). */
  connectionType: string;
  /** The device identifier; with certificates it must equal the certificate's CN. */
  deviceIdentifier: string;
  /** The default SmartREST template identifier, when the id names one. */
  template?: string;
}

/** Options of {@linkcode clientId}. */
export interface ClientIdOptions {
  /**
   * A client id given by the user (`<CN>`, `d:<CN>` or `d:<CN>:<template>`); it is checked
   * against the CN. @default `d:<CN>`
   */
  explicit?: string;
  /** Label of the keystore in error messages, e.g. its file name. @default "the device certificate" */
  name?: string;
}

/**
 * Splits a client id into connection type, device identifier and template, following
 * Cumulocity's `connectionType:deviceIdentifier:defaultTemplateIdentifier`. An id with one part
 * is a device identifier of connection type `d`; with two parts the first is the connection type.
 * This does not judge the connection type; {@linkcode clientId} does.
 *
 * @param id The client id, e.g. `d:device-001` (as received by a broker or given by a user).
 * @returns The parts.
 * @throws {UsageError} `CLIENT_ID_INVALID` when the id is empty, has an empty part or more than
 * three parts.
 *
 * @example
 * ```ts
 * import { parseClientId } from "../../mod.ts";
 * const p = parseClientId("d:device-001:myTemplate");
 * if (p.connectionType !== "d" || p.deviceIdentifier !== "device-001") throw new Error("unexpected");
 * if (p.template !== "myTemplate") throw new Error("unexpected");
 * if (parseClientId("device-001").connectionType !== "d") throw new Error("unexpected");
 * ```
 */
export function parseClientId(id: string): ClientIdParts {
  const parts = id.split(":");
  if (id === "" || parts.length > 3 || parts.some((p) => p === "")) {
    throw new UsageError(
      `Client id "${id}" is not of the form <id>, d:<id> or d:<id>:<template>`,
      {
        code: "CLIENT_ID_INVALID",
        hint: "Leave `clientId` out to use d:<certificate CN>, or give d:<CN>.",
      },
    );
  }
  if (parts.length === 1) return { connectionType: "d", deviceIdentifier: parts[0] };
  const result: ClientIdParts = { connectionType: parts[0], deviceIdentifier: parts[1] };
  if (parts.length === 3) result.template = parts[2];
  return result;
}

/**
 * The client id a device connects with: `d:<CN of the first certificate of its chain>`, or the
 * explicit id normalised to `d:<CN>[:<template>]` after checking it names the same CN.
 *
 * Only connection type `d` is accepted: Cumulocity documents certificate authentication for
 * devices only, its Java example builds the id as `"d:" + CN` and says the prefix must not be
 * changed, and no other connection type is documented for this endpoint.
 *
 * @param identity The device identity (its chain, leaf first).
 * @param options An explicit client id to check, and the keystore's label for messages.
 * @returns The client id, e.g. `d:device-001`.
 * @throws {CertificateError} `CN_MISSING` when the certificate has no CN (or there is no
 * certificate), `CN_COLON` when the CN contains `:`, `CLIENT_ID_MISMATCH` when the explicit id
 * names another device.
 * @throws {UsageError} `CLIENT_ID_INVALID` for a malformed explicit id, `CLIENT_ID_TYPE` for a
 * connection type other than `d`.
 *
 * @example
 * ```ts
 * import { clientId, type DeviceIdentity } from "../../mod.ts";
 * // A stand-in identity: clientId() only looks at the leaf's common name.
 * const identity = {
 *   chain: [{ summary: { commonName: "device-001" } }],
 * } as unknown as DeviceIdentity;
 * if (clientId(identity) !== "d:device-001") throw new Error("unexpected");
 * if (clientId(identity, { explicit: "device-001" }) !== "d:device-001") throw new Error("!");
 * ```
 */
export function clientId(identity: DeviceIdentity, options: ClientIdOptions = {}): string {
  const name = options.name ?? "the device certificate";
  const leaf = identity.chain[0];
  if (leaf === undefined) {
    throw new CertificateError(`The keystore ${quoteName(name)} holds no certificate`, {
      code: "CN_MISSING",
      hint: "The key entry needs its certificate chain; re-import the signed certificate.",
    });
  }
  const cn = leaf.summary.commonName;
  if (cn === undefined || cn === "") {
    throw new CertificateError(
      `The device certificate of ${
        quoteName(name)
      } has no Common Name (CN), but Cumulocity takes the device id from it`,
      {
        code: "CN_MISSING",
        hint: "Issue the device certificate with a subject like CN=<device id>.",
      },
    );
  }
  if (cn.includes(":")) {
    throw new CertificateError(
      `The device certificate's Common Name "${cn}" contains ":", which separates the parts of an MQTT client id`,
      {
        code: "CN_COLON",
        hint: "Issue a new device certificate whose CN has no ':'.",
      },
    );
  }
  if (options.explicit === undefined) return `d:${cn}`;

  const parts = parseClientId(options.explicit);
  if (parts.connectionType !== "d") {
    throw new UsageError(
      `Client id "${options.explicit}" has connection type "${parts.connectionType}", but a device with a certificate connects as "d"`,
      { code: "CLIENT_ID_TYPE", hint: `Use d:${cn}.` },
    );
  }
  if (parts.deviceIdentifier !== cn) {
    throw new CertificateError(
      `Client id "${options.explicit}" names device "${parts.deviceIdentifier}", but the certificate's Common Name is "${cn}"; Cumulocity would refuse it`,
      {
        code: "CLIENT_ID_MISMATCH",
        hint: `Leave \`explicit\` out, or use d:${cn}.`,
      },
    );
  }
  return parts.template === undefined ? `d:${cn}` : `d:${cn}:${parts.template}`;
}

function quoteName(name: string): string {
  return name.startsWith("the ") ? name : `"${name}"`;
}
