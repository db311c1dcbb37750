/**
 * The fleet used by the fleet tests: 20 devices for the fixture emulator, mixing devices that
 * pass with a wrong password, an expired certificate, a device CA the emulator does not trust and
 * two keystores of one device (a duplicate client id), with the outcome each must have.
 *
 * @module
 */

import { makeFleetDevices } from "../../tools/fleet_devices.ts";
import type { FailureClass } from "../../lib/fleet/result.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;

/** What one manifest line must come to. */
export interface ExpectedRow {
  /** The keystore cell. */
  keystore: string;
  /** Its manifest line. */
  line: number;
  /** `undefined` when the device passes, else the failure's class and code. */
  failure?: { class: FailureClass; code: string };
  /** The client id, when the device gets that far. */
  clientId?: string;
}

/** A manifest and what each of its lines must come to. */
export interface FleetScenario {
  /** The CSV manifest's path. */
  manifest: string;
  /** Its lines (after the header), in order. */
  rows: ExpectedRow[];
  /** Every path the manifest names (for the permission flags). */
  paths: string[];
  /** The temporary directory holding the made devices and the manifest. */
  dir: string;
}

/**
 * Writes the 20-device manifest into a new temporary directory: 14 devices made with openssl
 * (PEM chain and key), the JDK 17 PKCS#12 and JKS fixtures of two more devices, a PKCS#12 with a
 * wrong password, the expired and the unknown-CA fixtures, and the RSA device's PEM files as a
 * second keystore of the RSA device.
 */
export async function makeFleetScenario(): Promise<FleetScenario> {
  const dir = await Deno.makeTempDir({ prefix: "c8y-fleet-" });
  const made = await makeFleetDevices({
    dir,
    count: 14,
    caCert: `${FIXTURES}ca/device-intermediate-ca.pem`,
    caKey: `${FIXTURES}ca/device-intermediate-ca.key`,
  });
  const lines: string[] = ["keystore,password,alias,client_id,key"];
  const rows: ExpectedRow[] = [];
  const paths: string[] = [];
  const add = (
    cells: { keystore: string; password?: string; clientId?: string; key?: string },
    expected: Omit<ExpectedRow, "keystore" | "line">,
  ): void => {
    const quote = (s = ""): string => /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
    lines.push(
      [cells.keystore, cells.password, "", cells.clientId, cells.key].map(quote).join(","),
    );
    rows.push({ keystore: cells.keystore, line: lines.length, ...expected });
    paths.push(cells.keystore, ...(cells.key ? [cells.key] : []));
  };
  const f = (path: string): string => `${FIXTURES}${path}`;
  made.slice(0, 7).forEach((d) =>
    add({ keystore: d.chain, key: d.key }, { clientId: `d:${d.commonName}` })
  );
  add({ keystore: f("devices/rsa.jdk.p12"), password: "changeit" }, {
    clientId: "d:device-rsa-001",
    failure: { class: "certificate", code: "CLIENT_ID_DUPLICATE" },
  });
  add({ keystore: f("devices/ec384.jdk.p12"), password: "not-the-password" }, {
    failure: { class: "store", code: "KEYSTORE_PASSWORD" },
  });
  add({ keystore: f("devices/ec256.jks"), password: "pass:changeit" }, {
    clientId: "d:device-ec256-001",
  });
  add({ keystore: f("bad/expired.p12"), password: "changeit" }, {
    failure: { class: "certificate", code: "CERT_EXPIRED" },
  });
  made.slice(7).forEach((d) =>
    add({ keystore: d.chain, key: d.key, clientId: d.commonName }, {
      clientId: `d:${d.commonName}`,
    })
  );
  add({ keystore: f("bad/unknown-ca.p12"), password: "changeit" }, {
    clientId: "d:device-unknown",
    failure: { class: "mqtt", code: "MQTT_NOT_AUTHORIZED" },
  });
  add({ keystore: f("devices/rsa.chain.pem"), key: f("devices/rsa.key") }, {
    clientId: "d:device-rsa-001",
    failure: { class: "certificate", code: "CLIENT_ID_DUPLICATE" },
  });
  const manifest = `${dir}/fleet.csv`;
  await Deno.writeTextFile(manifest, lines.join("\n") + "\n");
  return { manifest, rows, paths, dir };
}
