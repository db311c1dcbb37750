/**
 * How a fleet run works through its devices: a pool of workers that pulls the next device only
 * when one is free, and the counters that show the run's memory stays bounded (keystores held,
 * devices in flight, results held back).
 *
 * @module
 */

import type { FleetDevice } from "./manifest.ts";
import type { FleetStats } from "./result.ts";

/**
 * The device list: an array (or other iterable that can be walked twice), or a function that
 * opens the list each time it is called, e.g. `() => readManifest(stream())`. A connecting run
 * walks the list twice.
 */
export type FleetSource =
  | Iterable<FleetDevice>
  | (() => AsyncIterable<FleetDevice> | Iterable<FleetDevice>);

/** The counters behind {@linkcode FleetStats}. */
export class FleetCounters {
  #held = 0;
  #inFlight = 0;
  #stats: FleetStats = {
    keystoresRead: 0,
    peakKeystoresHeld: 0,
    peakInFlight: 0,
    peakResultsHeld: 0,
  };

  /** Counts a keystore as held while `use` runs (from reading its bytes to the last use). */
  async holding<T>(use: () => Promise<T>): Promise<T> {
    this.#held++;
    this.#stats.keystoresRead++;
    this.#stats.peakKeystoresHeld = Math.max(this.#stats.peakKeystoresHeld, this.#held);
    try {
      return await use();
    } finally {
      this.#held--;
    }
  }

  /** Counts a device as being worked on until the returned handle is disposed of. */
  working(): Disposable {
    this.#inFlight++;
    this.#stats.peakInFlight = Math.max(this.#stats.peakInFlight, this.#inFlight);
    return { [Symbol.dispose]: () => void this.#inFlight-- };
  }

  /** Notes how many results are held back now. */
  resultsHeld(n: number): void {
    this.#stats.peakResultsHeld = Math.max(this.#stats.peakResultsHeld, n);
  }

  /** The counters so far. */
  stats(): FleetStats {
    return { ...this.#stats };
  }
}

/** Opens the list and numbers its devices (the numbers are the same in both passes). */
export async function* openList(devices: FleetSource): AsyncGenerator<[FleetDevice, number]> {
  const list = typeof devices === "function" ? devices() : devices;
  let index = 0;
  for await (const device of list) yield [device, index++];
}

/**
 * Runs `work` on every item, `concurrency` at a time, pulling the next item only when a worker is
 * free (so the list is read as fast as it is worked on, not ahead). A failure to read the list
 * stops the pool (the workers finish their current item) and is thrown.
 */
export async function pool<T>(
  items: AsyncIterator<[T, number]>,
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      let next: IteratorResult<[T, number]>;
      try {
        next = await items.next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (next.done) return;
      await work(...next.value);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== undefined) throw failure.error;
}
