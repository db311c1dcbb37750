/**
 * What the emulator reports: one plain {@linkcode EmulatorEvent} per thing that happened, and
 * {@linkcode formatEvent}, which renders one event as exactly one log line.
 *
 * Much of an event comes from the client (client id, Common Name, SmartREST lines, reasons that
 * quote them), before or without authentication. The emulator cuts every such text to a bounded
 * length when it makes the event ({@linkcode clip}), and `formatEvent` quotes and escapes every
 * value that is not a plain word, so that a newline in a client id cannot forge a log line and a
 * 64 KiB client id does not make a 64 KiB line.
 *
 * @module
 */

/** The kinds of {@linkcode EmulatorEvent}. */
export type EmulatorEventKind =
  | "listening"
  | "connect"
  | "refused"
  | "token"
  | "device-created"
  | "message"
  | "operation"
  | "logout"
  | "disconnect"
  | "error";

/**
 * One thing that happened in the emulator, as a plain object for the `log` callback.
 * Only the fields that apply to the kind are set. Tokens themselves are never in an event.
 * Texts that come from a client are cut to at most {@linkcode MAX_FIELD_CHARS} characters.
 */
export interface EmulatorEvent {
  /** What happened. */
  kind: EmulatorEventKind;
  /** When, ISO 8601 (UTC). */
  time: string;
  /** `listening`: the `mqtts://host:port` or `https://host:port` URL. */
  url?: string;
  /** The MQTT client id, once a CONNECT arrived. */
  clientId?: string;
  /** The Common Name of the client's first certificate, when it sent one. */
  commonName?: string;
  /** `host:port` of the peer, when known. */
  remoteAddress?: string;
  /** `refused` and `error`: why, in one sentence. */
  reason?: string;
  /** `refused`: the CONNACK return code (1 or 5) or HTTP status sent. */
  returnCode?: number;
  /** `connect`: the MQTT protocol version (3 or 4). */
  protocolVersion?: number;
  /** `connect`: the clean-session flag the client asked for. */
  cleanSession?: boolean;
  /** `token` and `refused`: the endpoint, `mqtt` or `rest`. */
  via?: "mqtt" | "rest";
  /** `token` and `logout`: the token's `tci` claim (its id). */
  tokenId?: string;
  /** `token`: expiry, ISO 8601 (UTC). */
  expiresAt?: string;
  /** `device-created`: the device name from the `100` message (or the default name). */
  deviceName?: string;
  /** `device-created`: the device type. */
  deviceType?: string;
  /** `message` and `operation`: the topic (`s/us` from the device, `s/ds` to it). */
  topic?: string;
  /** `message` and `operation`: one SmartREST line. */
  line?: string;
}

/** The longest client-controlled text kept in an event, in characters. */
export const MAX_FIELD_CHARS = 256;

/**
 * Cuts a client-controlled text to at most `max` characters, saying how much was cut.
 *
 * @param text The text, as the client sent it.
 * @param max The longest text kept. @default 256
 * @returns The text, or its start followed by `…(+N chars)`.
 *
 * @example
 * ```ts
 * import { clip } from "./events.ts";
 * if (clip("x".repeat(300), 10) !== "xxxxxxxxxx…(+290 chars)") throw new Error("unexpected");
 * ```
 */
export function clip(text: string, max?: number): string;
/**
 * {@linkcode clip} for a text that may be absent (`undefined` stays `undefined`).
 *
 * @param text The text, as the client sent it, or `undefined`.
 * @param max The longest text kept. @default 256
 * @returns The text cut short, or `undefined`.
 */
export function clip(text: string | undefined, max?: number): string | undefined;
export function clip(text: string | undefined, max: number = MAX_FIELD_CHARS): string | undefined {
  if (text === undefined || text.length <= max) return text;
  return `${text.slice(0, max)}…(+${text.length - max} chars)`;
}

/** A value that needs no quotes: no space, quote, backslash, `=` or control/line-break character. */
const PLAIN = /^[^\s"\\=\p{Cc}\p{Zl}\p{Zp}\u0085]+$/u;

/** A value as a bare word, or JSON-quoted with every line-breaking character escaped. */
function quote(value: string): string {
  if (PLAIN.test(value)) return value;
  return JSON.stringify(value).replace(
    /[\u0085\u2028\u2029\p{Cf}]/gu,
    (c) => {
      const code = c.codePointAt(0) ?? 0;
      const hex = code.toString(16).padStart(4, "0");
      return code > 0xffff ? `\\u{${hex}}` : `\\u${hex}`;
    },
  );
}

/**
 * One log line for an event: `<kind> key=value ...` in the event's field order, without its
 * time. A value that is not a plain word is JSON-quoted, so a line never holds a raw newline.
 *
 * @param event The event.
 * @returns The line (no trailing newline).
 *
 * @example A newline in a client id stays in its line
 * ```ts
 * import { formatEvent } from "./events.ts";
 * const line = formatEvent({ kind: "refused", time: "", clientId: "a\nemulator: token" });
 * if (line !== 'refused clientId="a\\nemulator: token"') throw new Error(line);
 * ```
 */
export function formatEvent(event: EmulatorEvent): string {
  const { kind, time: _time, ...rest } = event;
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "string" ? quote(clip(v, 4 * MAX_FIELD_CHARS)) : v}`);
  return [kind, ...fields].join(" ");
}
