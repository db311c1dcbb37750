/**
 * Keeping a device's JWT fresh on a live MQTT connection: a token at once, a new one once half its
 * lifetime has passed (the platform allows a new token from then on), a new one after a reconnect
 * when the due time passed meanwhile, and failed renewals retried with backoff without touching
 * the connection.
 *
 * @module
 */

import { C8yError } from "../errors.ts";
import type { DeviceToken } from "./decode_token.ts";
import type { DeviceConnection } from "../connect/connection.ts";
import { requestToken, type RequestTokenOptions, type TokenConnection } from "./request_token.ts";

/** What {@linkcode keepToken} uses of a connection: what `requestToken` needs, and `connected`. */
export type KeptConnection = TokenConnection & Pick<DeviceConnection, "connected">;

/** Options of {@linkcode keepToken}. */
export interface KeepTokenOptions {
  /** Called with each new token, the first one included. Never log the token itself. */
  tokenRenewed?(token: DeviceToken): void;
  /**
   * Called when a renewal failed (the connection stays as it is; the renewal is retried after
   * the backoff delay). The first request's failure is not reported here: `keepToken` rejects.
   */
  error?(err: C8yError): void;
  /**
   * The share of a token's lifetime (`iat` to `exp`) after which a new one is requested.
   * @default 0.5 (the platform allows a new token once half of the lifetime has passed)
   */
  renewAfter?: number;
  /** The first retry delay after a failed renewal, in milliseconds; doubled per failure. @default 1000 */
  retryDelayMs?: number;
  /** The longest retry delay, in milliseconds. @default 60000 */
  maxRetryDelayMs?: number;
  /** Passed to each `requestToken`: requests per renewal and the wait for each reply. */
  request?: Pick<RequestTokenOptions, "attempts" | "attemptTimeoutMs">;
}

/** The token kept fresh by {@linkcode keepToken}. Disposing of it stops the renewals. */
export interface TokenKeeper extends AsyncDisposable {
  /** The newest token. Never log it. */
  readonly token: DeviceToken;
  /** When the next renewal is due (ISO 8601), or `undefined` when the token has no `exp`. */
  readonly renewsAt: string | undefined;
  /** Stops renewing (a request under way is left to finish; its result is dropped). */
  stop(): void;
}

/** The longest delay `setTimeout` honours (2^31-1 ms); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Requests a token on a live connection and keeps it fresh until stopped.
 *
 * - The first token is requested at once; `keepToken` resolves with the keeper once it arrived
 *   and rejects with the request's error when it does not come (nothing keeps running then).
 * - A new token is requested once `renewAfter` (half) of its lifetime (`exp - iat`) has passed
 *   since it arrived. A token without `exp` is not renewed. When the renewal falls due while the
 *   connection is down, it is requested right after the reconnect (`connectComplete` with
 *   `reconnect` true), so an expired token is replaced at once.
 * - A failed renewal is reported to `error` and retried after `retryDelayMs`, doubling up to
 *   `maxRetryDelayMs`; the connection is never closed by the keeper.
 * - `tokenRenewed` hears each new token, the first one included.
 *
 * @param connection A live connection (from `connect`).
 * @param options Callbacks, the renewal point, retry delays, per-request options.
 * @returns The keeper, holding the first token.
 * @throws {C8yError} The first request's error (`TOKEN_TIMEOUT`, `TOKEN_MALFORMED`, ...).
 * @throws {RangeError} For `renewAfter` outside (0, 1] or a delay that is not positive.
 *
 * @example Keeping a token while a device program runs (needs a broker, so not run here)
 * ```ts ignore
 * import { connect, keepToken } from "@c8y-mqtt-cert/c8y-mqtt-cert";
 * const connection = await connect({ url, identity, trust, reconnect: true });
 * await using keeper = await keepToken(connection, {
 *   tokenRenewed: (token) => console.log(`new token, expires ${token.expiresAt}`),
 *   error: (err) => console.error(`renewal failed: ${err.message}`),
 * });
 * // keeper.token.token is the current JWT, for `Authorization: Bearer ...` on REST calls.
 * ```
 */
export async function keepToken(
  connection: KeptConnection,
  options: KeepTokenOptions = {},
): Promise<TokenKeeper> {
  const renewAfter = options.renewAfter ?? 0.5;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 60_000;
  if (!(renewAfter > 0 && renewAfter <= 1)) {
    throw new RangeError(`renewAfter must be above 0 and at most 1, not ${renewAfter}`);
  }
  for (
    const [name, value] of [["retryDelayMs", retryDelayMs], ["maxRetryDelayMs", maxRetryDelayMs]]
  ) {
    if (!(typeof value === "number" && value > 0)) {
      throw new RangeError(`${name} must be a positive number of milliseconds, not ${value}`);
    }
  }
  const first = await requestToken(connection, options.request);
  const keeper = new Keeper(connection, first, {
    ...options,
    renewAfter,
    retryDelayMs,
    maxRetryDelayMs,
  });
  options.tokenRenewed?.(first);
  return keeper;
}

class Keeper implements TokenKeeper {
  #token: DeviceToken;
  /** When the next renewal is due (`Date.now()` time), `undefined` without `exp`. */
  #dueAt: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #renewing = false;
  #stopped = false;
  readonly #unlisten: () => void;

  constructor(
    readonly connection: KeptConnection,
    first: DeviceToken,
    readonly options: KeepTokenOptions & {
      renewAfter: number;
      retryDelayMs: number;
      maxRetryDelayMs: number;
    },
  ) {
    this.#token = first;
    this.#dueAt = this.#renewalTime(first);
    this.#unlisten = connection.listen({
      connectComplete: (reconnect: boolean) => {
        if (reconnect && this.#dueAt !== undefined && Date.now() >= this.#dueAt) this.#renew();
      },
    });
    this.#wait();
  }

  get token(): DeviceToken {
    return this.#token;
  }

  get renewsAt(): string | undefined {
    return this.#dueAt === undefined ? undefined : new Date(this.#dueAt).toISOString();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#unlisten();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.stop();
    return Promise.resolve();
  }

  /**
   * Now plus `renewAfter` of the token's lifetime (`exp - iat`, both the platform's clock, so a
   * local clock that is off does not matter); without `iat`, of the time left until `exp`.
   */
  #renewalTime(token: DeviceToken): number | undefined {
    const exp = token.expiresAt === undefined ? NaN : Date.parse(token.expiresAt);
    if (Number.isNaN(exp)) return undefined;
    const issued = token.issuedAt === undefined ? NaN : Date.parse(token.issuedAt);
    const now = Date.now();
    const lifetime = Number.isNaN(issued) ? exp - now : exp - issued;
    return now + Math.max(0, lifetime) * this.options.renewAfter;
  }

  /** Sets the timer for the due time (in steps, for waits longer than a timer holds). */
  #wait(delayMs?: number): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    const wait = delayMs ?? (this.#dueAt === undefined ? undefined : this.#dueAt - Date.now());
    if (wait === undefined) return;
    this.#timer = setTimeout(() => {
      if (delayMs === undefined && this.#dueAt !== undefined && Date.now() < this.#dueAt) {
        this.#wait();
        return;
      }
      this.#renew();
    }, Math.min(Math.max(0, wait), MAX_TIMER_MS));
  }

  async #renew(): Promise<void> {
    if (this.#stopped || this.#renewing) return;
    // While the connection is down, the reconnect (connectComplete) starts the renewal.
    if (!this.connection.connected) return;
    this.#renewing = true;
    clearTimeout(this.#timer);
    try {
      const token = await requestToken(this.connection, this.options.request);
      if (this.#stopped) return;
      this.#token = token;
      this.#failures = 0;
      this.#dueAt = this.#renewalTime(token);
      this.options.tokenRenewed?.(token);
      this.#wait();
    } catch (err) {
      if (this.#stopped) return;
      this.#failures++;
      const delay = Math.min(
        this.options.retryDelayMs * 2 ** (this.#failures - 1),
        this.options.maxRetryDelayMs,
      );
      this.options.error?.(
        err instanceof C8yError ? err : new C8yError(String(err), { code: "INTERNAL", cause: err }),
      );
      this.#wait(delay);
    } finally {
      this.#renewing = false;
    }
  }
}
