/**
 * The runtime floor of a `token` run, for `deno task bench:cli` (job `floor`): this project's
 * session connects with a PEM key and chain, requests the token and prints it, with none of the
 * command line's work (no store formats, no offline checks, no permission checks). What it costs
 * above an empty `deno run` is Node compatibility, the TLS handshake and the MQTT exchange.
 *
 * Usage: `deno run --allow-read --allow-net tools/session_floor.ts PORT CA_PEM CHAIN_PEM KEY_PEM
 * CLIENT_ID` (all on 127.0.0.1).
 *
 * @module
 */

import { parseBrokerUrl } from "../lib/broker_url.ts";
import { connect } from "../lib/session.ts";
import { requestToken } from "../lib/token.ts";

const [port, caPath, chainPath, keyPath, clientId] = Deno.args;
if (clientId === undefined) {
  console.error("usage: session_floor.ts PORT CA_PEM CHAIN_PEM KEY_PEM CLIENT_ID");
  Deno.exit(2);
}
const broker = parseBrokerUrl(`ssl://127.0.0.1:${port}`);
const session = await connect({
  broker,
  tls: {
    host: broker.host,
    port: broker.port,
    ca: [Deno.readTextFileSync(caPath)],
    cert: Deno.readTextFileSync(chainPath),
    key: Deno.readTextFileSync(keyPath),
    minVersion: "TLSv1.2",
    rejectUnauthorized: true,
  },
  clientId,
});
try {
  console.log((await requestToken(session, { attemptTimeoutMs: 10_000 })).token);
} finally {
  await session.close();
}
