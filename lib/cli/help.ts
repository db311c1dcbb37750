/**
 * The text of `--help`.
 *
 * @module
 */

import { EXIT_TABLE } from "./exit_codes.ts";
import { VERSION } from "./version.ts";

/** The help text: usage, commands, options, password specs, permissions and exit codes. */
export const HELP =
  `c8y-mqtt-cert ${VERSION}: connect a device to Cumulocity IoT over MQTT with its X.509
certificate, and fetch its JWT session token; says what is wrong when that fails.

USAGE
  c8y-mqtt-cert token   --url URL --keystore PATH [store options] [--truststore PATH] [--json]
                        [--via mqtt|rest [--rest-url URL] [--send-chain]] [--watch]
  c8y-mqtt-cert check   --url URL --keystore PATH [store options] [--truststore PATH] [--json]
                        [--via mqtt|rest [--rest-url URL] [--send-chain]]
  c8y-mqtt-cert inspect [--keystore PATH [store options]] [--truststore PATH] [--json]
  c8y-mqtt-cert emulate --trust PATH --server-cert PEM --server-key PEM [--port N] [--tenant ID]
  c8y-mqtt-cert fleet   --manifest FILE | --keystores DIR [--url URL] [--truststore PATH]
                        [--offline | --no-token] [--concurrency N] [--json] [--junit FILE]

COMMANDS
  token     Connect as d:<certificate CN>, request a token (empty publish on s/uat) and print the
            JWT from the '71,<JWT>' reply on s/dat alone on stdout: TOKEN=$(c8y-mqtt-cert token ...)
  check     The same path, reported stage by stage (keystore, truststore, certificates, dns, tcp,
            tls, mqtt, subscribe, token) with timings; stops at the first failure and explains it.
  inspect   Offline: the entries, chain (leaf first), validity, fingerprints, the client id the
            device would use, and problems found. Exits 4 when a problem is an error.
  emulate   A local stand-in for Cumulocity's MQTT certificate endpoint (for demos and tests).
            Prints a line with mqtts://HOST:PORT on stdout once it accepts connections, one line
            per event on stderr (each s/us line a device sends too). A line typed on stdin,
            '<client id> <SmartREST line>' (e.g. 'd:device01 510,device01'), is sent to that
            device on s/ds.
  fleet     Check a batch of devices in one run: every keystore and certificate offline, client
            ids used twice, then (unless --offline) a connection and a token request each,
            --concurrency at a time. Progress on stderr, a table of failure classes at the end.
            Exits 0 when every device passed, otherwise with the code of the most common
            failure class (a tie goes to the class a device meets first: store, certificate,
            network, TLS, MQTT, token).

CONNECTION
  --url URL               ssl://host:port, mqtts://host:port, tls://host:port or host[:port];
                          the default port is 8883. ws://, wss://, tcp:// and mqtt:// are refused.
  --client-id ID          Override d:<CN>; must be <CN>, d:<CN> or d:<CN>:<template>.
  --timeout SECONDS       Per-attempt timeout for connecting and for the token reply (default 20).
  --force                 Connect even when an offline check found an error.
  --via mqtt|rest         How to get the token (default mqtt): rest posts to
                          /devicecontrol/deviceAccessToken over HTTPS with the device certificate
                          (check then shows dns, tcp, tls, http, token).
  --rest-url URL          With --via rest: https://host[:port] (default: the --url host on 443).
  --send-chain            With --via rest: send the device's chain in the X-Ssl-Cert-Chain header.
  --watch                 token: stay connected, renew the token once half its lifetime has
                          passed (and after a reconnect) and print each new one on its own line
                          (--json: one JSON object per line) until Ctrl-C or SIGTERM (exit 0).

STORE OPTIONS
  --keystore PATH         The device's key and certificate chain: JKS, PKCS#12 or PEM.
  --keystore-type T       jks | pkcs12 | pem (default: detected from the content).
  --keystore-password P   Password SPEC (below). Asked on the terminal when needed and not given.
  --key-password P        The key entry's own password, when it differs from the store's (JKS).
  --alias NAME            The key entry to use when the keystore holds several.
  --key PATH              The private key (PEM) when --keystore is a PEM certificate file.
  --truststore PATH       The server's CA: JKS, PKCS#12 or PEM. Without it, Deno's default roots.
  --truststore-type T     jks | pkcs12 | pem | der (default: detected).
  --truststore-password P Password SPEC; a JKS truststore opens without one (integrity unchecked).

EMULATOR OPTIONS
  --trust PATH            CA certificates the emulator trusts (PEM, JKS or PKCS#12); repeatable.
  --trust-type T, --trust-password P   As for the truststore.
  --server-cert PEM       The emulator's server certificate (with its chain); --server-key PEM.
  --host HOST             Listen address: 127.0.0.1 (default), ::1, or localhost (= 127.0.0.1);
                          --port N (default 8883, 0 = any).
  --rest-port N           Also serve POST /devicecontrol/deviceAccessToken (0 = any port).
  --tenant ID             Tenant id put in tokens (default t12345).
  --token-lifetime S      Token lifetime in seconds (default 3600; the platform's minimum is
                          300, the emulator's 1, for tests of token renewal).

FLEET OPTIONS
  --manifest FILE         CSV with a header naming some of keystore,password,alias,client_id,key
                          (keystore required; password a SPEC; paths relative to the manifest),
                          or one JSON object per line with those keys.
  --keystores DIR         Every .p12, .pfx, .jks, .keystore of DIR, and NAME.key with
                          NAME.chain.pem (or NAME.pem); --keystore-password P for all of them.
  --offline               Only the offline checks.   --no-token   Connect, but ask no token.
  --concurrency N         Devices at once (default 50).   --timeout S   Per attempt (default 20).
  --junit FILE            A JUnit XML report, one test case per device (written whole, renamed).
  --json                  One JSON object per device as it finishes, then the summary object.

OUTPUT
  --json                  One JSON object on stdout (errors too: {"ok": false, "error": {...}}).
  -q, --quiet             No progress lines on stderr.
  -v, --verbose           Add the underlying errors (with stack traces, or their messages under
                          --json) to failures; never secrets.
  -h, --help              This text.   -V, --version   The version.

PASSWORD SPEC (as openssl's -passin)
  pass:VALUE   the value itself (visible in the process list: prefer env: or file:)
  env:NAME     the environment variable NAME (needs --allow-env=NAME)
  file:PATH    the first line of PATH (needs read permission for PATH)
  stdin        the first line of standard input
  anything else is taken literally.

PERMISSIONS (deno run)
  token/check: deno run --ignore-env --allow-read=<keystore>,<truststore>[,<key>] \\
                 --allow-net=<host>:<port> cli.ts token --url ... --keystore ...
               (--via rest: --allow-net=<REST host>:<port>, e.g. <host>:443, and without
                --truststore --allow-sys: node:https reads the default root CAs with it)
  inspect:     deno run --allow-read=<keystore>,<truststore>[,<key>] cli.ts inspect ...
  emulate:     deno run --ignore-env --allow-read=<trust>,<cert>,<key> --allow-net=<address> \\
                 cli.ts emulate ...
  --ignore-env: the MQTT libraries' dependencies (MQTT.js for token/check, aedes for emulate)
  look up environment variables when they load; it makes those look-ups find nothing.
  fleet:       deno run --ignore-env --allow-read=<manifest>,<the files it names> | <DIR> \\
                 --allow-net=<host>:<port> [--allow-write=<directory of --junit FILE>] \\
                 cli.ts fleet ...   (--offline: no --ignore-env, no --allow-net)
  Add --allow-env=NAME for env:NAME passwords and the file of a file: password to --allow-read.
  A missing permission is reported with the exact flag to add (exit 9).
  Installed or compiled: deno install --global --name c8y-mqtt-cert --allow-read --allow-net \\
                 --allow-env cli.ts

${EXIT_TABLE}
`;
