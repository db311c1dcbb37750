/**
 * Turns what goes wrong in the MQTT session into a {@linkcode C8yError}: CONNACK return codes, a
 * broker that speaks no MQTT, waits for an acknowledgement that ran out, a refused subscription,
 * an error on the live connection, a connection lost or not there. (What goes wrong before, on
 * the way to the TLS session, is `classify.ts`.)
 *
 * Pure: every function takes what happened and returns an error object.
 *
 * @module
 */

import type { BrokerAddress } from "./broker_url.ts";
import { C8yError, type ErrorCode, MqttError, NetworkError, type Stage } from "../errors.ts";
import { messageOf, seconds } from "./classify.ts";

const CONNACK: Record<number, { code: ErrorCode; meaning: string; hint: string }> = {
  1: {
    code: "MQTT_UNACCEPTABLE_PROTOCOL",
    meaning: "unacceptable protocol version",
    hint:
      "Cumulocity supports MQTT 3.1 and 3.1.1 (this tool sends 3.1.1; is the URL really Cumulocity?).",
  },
  2: {
    code: "MQTT_IDENTIFIER_REJECTED",
    meaning: "identifier rejected",
    hint: "The client id is not accepted: use d:<certificate CN> (leave `clientId` out).",
  },
  3: {
    code: "MQTT_SERVER_UNAVAILABLE",
    meaning: "server unavailable",
    hint: "The MQTT service is temporarily unavailable; try again later.",
  },
  4: {
    code: "MQTT_BAD_CREDENTIALS",
    meaning: "bad user name or password",
    hint:
      "Cumulocity does not send this for certificate authentication: check that the URL is the right broker.",
  },
  5: {
    code: "MQTT_NOT_AUTHORIZED",
    meaning: "not authorized",
    hint:
      "The platform refused the certificate identity: the client id must be d:<CN>; auto-registration may have failed, or a device with this CN belongs to another tenant. It can be transient: retry a few times.",
  },
};

/** A CONNACK with a return code other than 0 (OASIS MQTT 3.1.1, section 3.2.2.3). */
export function connackError(
  returnCode: number,
  broker: BrokerAddress,
  clientId: string,
): MqttError {
  const known = CONNACK[returnCode];
  if (known === undefined) {
    return new MqttError(
      `${broker.url} refused the MQTT connection with CONNACK ${returnCode}, which MQTT 3.1.1 does not define`,
      {
        code: "MQTT_PROTOCOL",
        hint: "Check that the URL names Cumulocity's MQTT over TLS port (8883).",
        returnCode,
      },
    );
  }
  return new MqttError(
    `${broker.url} refused the MQTT connection of "${clientId}": CONNACK ${returnCode}, ${known.meaning}`,
    { code: known.code, hint: known.hint, returnCode },
  );
}

/** The broker answered CONNECT with bytes that are not a CONNACK. */
export function notMqtt(broker: BrokerAddress, chunk: Uint8Array, cause?: unknown): MqttError {
  const head = chunk.subarray(0, 8);
  const hex = Array.from(head, (b) => b.toString(16).padStart(2, "0")).join(" ");
  // An HTTP or other text reply is shown as text (its first line, shortened); other bytes in hex.
  const line = new TextDecoder().decode(chunk.subarray(0, 64)).split(/\r?\n/)[0] ?? "";
  const textual = line.length >= 4 && /^[\x20-\x7e]+$/.test(line);
  const shown = cause !== undefined
    ? messageOf(cause)
    : textual
    ? `"${line.slice(0, 40)}"`
    : `bytes ${hex}${chunk.length > 8 ? " ..." : ""}`;
  return new MqttError(
    `${broker.url} answered MQTT CONNECT with something that is not MQTT (${shown})`,
    {
      code: "MQTT_PROTOCOL",
      hint:
        "Check that the URL names Cumulocity's MQTT over TLS port (8883), not an HTTPS or other TLS service.",
      cause,
    },
  );
}

/** No CONNACK arrived within the time limit. */
export function connackTimeout(broker: BrokerAddress, timeoutMs: number): MqttError {
  return new MqttError(
    `${broker.url} accepted the TLS connection but sent no CONNACK within ${seconds(timeoutMs)}`,
    {
      code: "MQTT_CONNACK_TIMEOUT",
      hint:
        "Check that the port is the broker's MQTT over TLS port (8883) and that the broker is healthy; try a longer `connectTimeoutMs`.",
    },
  );
}

/**
 * A publish or subscribe whose acknowledgement (SUBACK; PUBACK or PUBCOMP; for QoS 0 the write)
 * did not come within its time limit.
 */
export function ackTimeout(
  broker: BrokerAddress,
  kind: "publish" | "subscribe",
  topic: string,
  qos: 0 | 1 | 2,
  timeoutMs: number,
): MqttError {
  const within = `within ${seconds(timeoutMs)}`;
  if (kind === "subscribe") {
    return new MqttError(
      `${broker.url} sent no SUBACK for the subscription to "${topic}" ${within}`,
      {
        code: "MQTT_SUBACK_TIMEOUT",
        stage: "subscribe",
        hint:
          "The broker accepted the connection but does not answer; check its health and log, or allow a longer timeout.",
      },
    );
  }
  const awaited = qos === 0 ? "could not send" : `sent no ${qos === 1 ? "PUBACK" : "PUBCOMP"} for`;
  return new MqttError(
    qos === 0
      ? `The publish to "${topic}" on ${broker.url} could not be sent ${within}`
      : `${broker.url} ${awaited} the publish to "${topic}" ${within}`,
    {
      code: "MQTT_PUBACK_TIMEOUT",
      hint:
        "The broker accepted the connection but does not answer; check its health and log, or allow a longer timeout.",
    },
  );
}

/** The connection closed while a request waited for its answer. */
export function lostWhile(
  broker: BrokerAddress,
  what: string,
  stage: Stage,
  cause: Error | undefined,
): NetworkError {
  const reason = cause === undefined ? "" : ` (${cause.message})`;
  return new NetworkError(`The connection to ${broker.url} was lost while ${what}${reason}`, {
    code: "CONNECTION_LOST",
    stage,
    hint: "The broker closed the connection; check the broker's log, then connect again.",
    cause,
  });
}

/** A topic that MQTT cannot carry (`cause` says why). */
export function unsendable(
  kind: "publish" | "subscribe",
  topic: string,
  cause: unknown,
): MqttError {
  return kind === "publish"
    ? new MqttError(`Cannot publish to "${topic}": ${messageOf(cause)}`, {
      code: "MQTT_PUBLISH_FAILED",
      hint: "Publish to a topic name without wildcards (+, #), e.g. s/us.",
      cause,
    })
    : new MqttError(`Cannot subscribe to "${topic}": ${messageOf(cause)}`, {
      code: "MQTT_SUBSCRIBE_REFUSED",
      stage: "subscribe",
      hint: "Give a topic filter, e.g. s/ds.",
      cause,
    });
}

/** A request made while the connection is down (or closed). */
export function notConnected(broker: BrokerAddress, what: "publish" | "subscribe"): MqttError {
  return new MqttError(`Cannot ${what}: the connection to ${broker.url} is down (or closed)`, {
    code: "MQTT_NOT_CONNECTED",
    stage: what === "subscribe" ? "subscribe" : "mqtt",
    hint: "Connect again.",
  });
}

/** The broker refused a subscription (SUBACK 0x80). */
export function subscribeRefused(
  broker: BrokerAddress,
  topic: string,
  cause: Error | undefined,
): MqttError {
  return new MqttError(`${broker.url} refused the subscription to "${topic}"`, {
    code: "MQTT_SUBSCRIBE_REFUSED",
    stage: "subscribe",
    hint: "The broker does not allow this device to subscribe to the topic.",
    cause,
  });
}

/** An error MQTT.js reported on a live connection, as a {@linkcode C8yError}. */
export function liveError(broker: BrokerAddress, err: unknown): C8yError {
  if (err instanceof C8yError) return err;
  const message = messageOf(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (message === "Keepalive timeout") {
    return new NetworkError(
      `${broker.url} did not answer PINGREQ within the keepalive interval; the connection is closed`,
      {
        code: "CONNECTION_LOST",
        stage: "mqtt",
        hint: "The network or the broker stopped answering; the connection is closed.",
        cause: err,
      },
    );
  }
  if (typeof code === "string") {
    return new NetworkError(`The connection to ${broker.url} failed: ${message}`, {
      code: "CONNECTION_LOST",
      stage: "mqtt",
      hint: "The broker or the network closed the connection.",
      cause: err,
    });
  }
  return new MqttError(`${broker.url} broke the MQTT protocol: ${message}`, {
    code: "MQTT_PROTOCOL",
    stage: "mqtt" satisfies Stage,
    hint: "Check that the URL names Cumulocity's MQTT over TLS port (8883).",
    cause: err,
  });
}
