/**
 * Makes device certificates for fleet tests and benchmarks with openssl (one `openssl req -x509
 * -CA` per device: a P-256 key and an X.509 v3 client certificate signed by a given CA), written
 * as `<CN>.key` and `<CN>.chain.pem` (the device certificate, then the CA's chain).
 *
 * @module
 */

/** Options of {@linkcode makeFleetDevices}. */
export interface FleetDevicesOptions {
  /** Where to write the files (an existing directory). */
  dir: string;
  /** How many devices. */
  count: number;
  /** The CN of device `i` (from 1). @default `fleet-device-<i, 4 digits>` */
  commonName?: (i: number) => string;
  /** The signing CA's certificate (PEM file). */
  caCert: string;
  /** The signing CA's private key (PEM file). */
  caKey: string;
  /** Certificates appended to each chain file after the device certificate (PEM text). @default the CA certificate */
  chainTail?: string;
  /** openssl processes run at once. @default 4 */
  parallel?: number;
}

/** One device made by {@linkcode makeFleetDevices}. */
export interface MadeDevice {
  /** The certificate's CN (the client id is `d:<CN>`). */
  commonName: string;
  /** Path of the chain file (device certificate first). */
  chain: string;
  /** Path of the unencrypted PKCS#8 key. */
  key: string;
}

const CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
[leaf_ec]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

/**
 * Makes `count` devices in `dir`.
 *
 * @param options Directory, count, names, signing CA, chain tail and parallelism.
 * @returns The devices, in order.
 * @throws {Error} when openssl fails (its standard error in the message).
 */
export async function makeFleetDevices(options: FleetDevicesOptions): Promise<MadeDevice[]> {
  const name = options.commonName ??
    ((i: number): string => `fleet-device-${String(i).padStart(4, "0")}`);
  const config = `${options.dir}/leaf.cnf`;
  await Deno.writeTextFile(config, CONFIG);
  const tail = options.chainTail ?? await Deno.readTextFile(options.caCert);
  const devices = Array.from({ length: options.count }, (_, i) => {
    const commonName = name(i + 1);
    const base = `${options.dir}/${commonName}`;
    return { commonName, chain: `${base}.chain.pem`, key: `${base}.key` };
  });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < devices.length) {
      const device = devices[next++];
      const cert = `${options.dir}/${device.commonName}.pem`;
      const out = await new Deno.Command("openssl", {
        args: [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-noenc",
          "-keyout",
          device.key,
          "-out",
          cert,
          "-subj",
          `/CN=${device.commonName}`,
          "-days",
          "30",
          "-CA",
          options.caCert,
          "-CAkey",
          options.caKey,
          "-config",
          config,
          "-extensions",
          "leaf_ec",
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new Error(
          `openssl failed for ${device.commonName}: ${new TextDecoder().decode(out.stderr)}`,
        );
      }
      await Deno.writeTextFile(device.chain, (await Deno.readTextFile(cert)) + tail);
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 4 }, worker));
  return devices;
}
