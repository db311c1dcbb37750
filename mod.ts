/**
 * c8y-mqtt-cert: connect a device to Cumulocity IoT over MQTT with its X.509 certificate and
 * fetch its JWT session token, straight from a Java keystore (JKS or PKCS#12) or PEM files.
 *
 * The functions take bytes and return plain objects; none reads files, the environment or
 * arguments, and importing this module needs no permission. Connecting needs
 * `--allow-net=<host>:<port>` and `--ignore-env` (the MQTT client's dependencies look up
 * environment variables when they load).
 *
 * Every failure is a {@linkcode C8yError} with a stable `code`, the `stage` it happened in and a
 * `hint`; nothing in a message is a password, a key or a token.
 *
 * @example Reading a keystore and working out the client id (offline)
 * ```ts ignore
 * import { clientId, diagnose, loadKeyStore } from "./mod.ts";
 *
 * const identity = await loadKeyStore(await Deno.readFile("device.p12"), {
 *   password: "changeit",
 *   name: "device.p12",
 * });
 * console.log(clientId(identity)); // "d:<CN of the device certificate>"
 * for (const problem of diagnose({ identity })) console.log(problem.severity, problem.message);
 * ```
 *
 * @example Fetching a token
 * ```ts ignore
 * import { fetchToken, loadKeyStore, loadTrustStore } from "./mod.ts";
 *
 * const identity = await loadKeyStore(await Deno.readFile("device.jks"), { password: "changeit" });
 * const trust = await loadTrustStore(await Deno.readFile("truststore.jks"));
 * const { token, expiresAt } = await fetchToken({
 *   url: "ssl://mytenant.cumulocity.com:8883",
 *   identity,
 *   trust,
 * });
 * ```
 *
 * @example Staying connected (see {@linkcode connect} for the complete program)
 * ```ts ignore
 * import { connect, loadKeyStore, loadTrustStore } from "./mod.ts";
 *
 * const identity = await loadKeyStore(await Deno.readFile("device.p12"), { password: "changeit" });
 * const trust = await loadTrustStore(await Deno.readFile("truststore.jks"));
 * await using device = await connect({
 *   url: "ssl://mytenant.cumulocity.com:8883",
 *   identity,
 *   trust,
 *   reconnect: true,
 *   callbacks: { error: (err) => console.warn(err.code, err.message) },
 * });
 * await device.publish("s/us", "211,25", { qos: 1 });
 * ```
 *
 * @example Runnable: broker URLs and client ids
 * ```ts
 * import { parseBrokerUrl, parseClientId } from "./mod.ts";
 *
 * const broker = parseBrokerUrl("ssl://example.cumulocity.com");
 * if (broker.url !== "mqtts://example.cumulocity.com:8883") throw new Error(broker.url);
 * const id = parseClientId("d:device-001:template-1");
 * if (id.deviceIdentifier !== "device-001") throw new Error(id.deviceIdentifier);
 * ```
 *
 * @module
 */

export { detectFormat } from "./lib/stores/detect.ts";
export { MAX_STORE_BYTES } from "./lib/stores/read_store.ts";
export { listKeyStore, loadKeyStore, loadTrustStore } from "./lib/stores/load.ts";
export type {
  ListedEntry,
  LoadKeyStoreOptions,
  LoadTrustStoreOptions,
  StoreListing,
} from "./lib/stores/load.ts";
export {
  certificatesFromPem,
  MAX_STORE_CERTIFICATES,
  parseCertificate,
} from "./lib/x509/certificate.ts";
export { TLS_CLIENT_KEYS } from "./lib/x509/key_info.ts";
export type { ParseCertificateOptions } from "./lib/x509/certificate.ts";
export { diagnose, hasErrors } from "./lib/diagnose/diagnose.ts";
export type { DiagnoseInput } from "./lib/diagnose/diagnose.ts";
export { explainRefusal, refusalExplanation } from "./lib/diagnose/refusal.ts";
export type { RefusalExplanation } from "./lib/diagnose/refusal.ts";
export { clientId, parseClientId } from "./lib/connect/client_id.ts";
export type { ClientIdOptions, ClientIdParts } from "./lib/connect/client_id.ts";
export { DEFAULT_PORT, parseBrokerUrl } from "./lib/connect/broker_url.ts";
export type { BrokerAddress } from "./lib/connect/broker_url.ts";
export { tlsOptions } from "./lib/connect/tls_options.ts";
export type { TlsConnectOptions, TlsOptionsExtra } from "./lib/connect/tls_options.ts";
export { connect, reconnectDelayMs } from "./lib/connect/connection.ts";
export type {
  ConnectionCallbacks,
  ConnectOptions,
  DeviceConnection,
  PublishOptions,
  ReconnectOptions,
  StageListener,
  SubscribeOptions,
} from "./lib/connect/connection.ts";
export type { Mqtt, MqttClient, MqttClientModule } from "./lib/deps.ts";
export {
  requestToken,
  TOKEN_REQUEST_TOPIC,
  TOKEN_RESPONSE_TOPIC,
} from "./lib/token/request_token.ts";
export type { RequestTokenOptions, TokenConnection } from "./lib/token/request_token.ts";
export { decodeToken } from "./lib/token/decode_token.ts";
export type { DeviceToken } from "./lib/token/decode_token.ts";
export { fetchToken } from "./lib/token/fetch_token.ts";
export type { FetchTokenOptions } from "./lib/token/fetch_token.ts";
export {
  MAX_REST_ANSWER_BYTES,
  requestRestToken,
  REST_TOKEN_PATH,
} from "./lib/token/rest_token.ts";
export type { RestTokenOptions } from "./lib/token/rest_token.ts";
export { DEFAULT_REST_PORT, parseRestUrl, restUrlOf } from "./lib/token/rest_url.ts";
export type { RestAddress } from "./lib/token/rest_url.ts";
export { keepToken } from "./lib/token/keep_token.ts";
export type { KeepTokenOptions, KeptConnection, TokenKeeper } from "./lib/token/keep_token.ts";
export { checkFleet, DEFAULT_FLEET_CONCURRENCY } from "./lib/fleet/check_fleet.ts";
export type { CheckFleetOptions, FleetMode, FleetSource } from "./lib/fleet/check_fleet.ts";
export { MANIFEST_COLUMNS, readManifest } from "./lib/fleet/manifest.ts";
export type { FleetDevice, ManifestColumn, ReadManifestOptions } from "./lib/fleet/manifest.ts";
export { fleetJUnitReport } from "./lib/fleet/junit.ts";
export type { FleetJUnitOptions } from "./lib/fleet/junit.ts";
export { deviceLabel, FAILURE_CLASSES, failureClass } from "./lib/fleet/result.ts";
export type {
  DeviceFailure,
  DeviceResult,
  FailureClass,
  FailureClassSummary,
  FleetStats,
  FleetSummary,
  StageTime,
} from "./lib/fleet/result.ts";
export {
  C8yError,
  CertificateError,
  ExitCode,
  MqttError,
  NetworkError,
  PermissionError,
  StoreError,
  TlsError,
  TokenError,
  UsageError,
} from "./lib/errors.ts";
export type { C8yErrorOptions, ErrorCode, Stage } from "./lib/errors.ts";
export type {
  Certificate,
  CertificateSummary,
  DeviceIdentity,
  KeyType,
  Problem,
  ProblemCode,
  Severity,
  StoreFormat,
  TrustAnchors,
  TrustedCertificate,
} from "./lib/types.ts";
