/**
 * The runtime floor of a `token` run, for `deno task bench:cli` (job `floor`): this project's
 * connection connects with a PEM key and chain, requests the token and prints it, with none of the
 * command line's work (no store formats, no offline checks, no permission checks). What it costs
 * above an empty `deno run` is Node compatibility, the TLS handshake and the MQTT exchange.
 *
 * Usage: `deno run --ignore-env --allow-read --allow-net tools/session_floor.ts PORT CA_PEM CHAIN_PEM KEY_PEM
 * CLIENT_ID` (all on 127.0.0.1).
 *
 * @module
 */

import { certificatesFromPem } from "../lib/x509/certificate.ts";
import { connect } from "../lib/connect/connection.ts";
import { requestToken } from "../lib/token/request_token.ts";

const [port, caPath, chainPath, keyPath, clientId] = Deno.args;
if (clientId === undefined) {
  console.error("usage: session_floor.ts PORT CA_PEM CHAIN_PEM KEY_PEM CLIENT_ID");
  Deno.exit(2);
}
const chain = certificatesFromPem(Deno.readTextFileSync(chainPath), { name: chainPath });
const connection = await connect({
  url: `ssl://127.0.0.1:${port}`,
  identity: {
    format: "pem",
    alias: undefined,
    aliases: [],
    privateKeyPem: Deno.readTextFileSync(keyPath),
    keyType: chain[0].summary.keyType,
    chain,
  },
  trust: {
    format: "pem",
    certificates: certificatesFromPem(Deno.readTextFileSync(caPath), { name: caPath })
      .map((c) => ({ ...c, alias: undefined })),
  },
  clientId,
});
try {
  console.log((await requestToken(connection, { attemptTimeoutMs: 10_000 })).token);
} finally {
  await connection.close();
}
