/**
 * Bounded reads of the files the command line names (stores, keys, password files), with each
 * failure turned into a one-line error.
 *
 * @module
 */

import { StoreError } from "../errors.ts";
import { MAX_STORE_BYTES } from "../stores/read_store.ts";
import { errorMessage } from "./output.ts";

/**
 * Reads at most `limit + 1` bytes of a file through one handle, so that a FIFO, `/dev/zero` or a
 * file that grows after a size check cannot make the tool read without end.
 */
export async function readBounded(path: string, limit: number): Promise<Uint8Array> {
  // What the path is, before it is opened (links followed): opening a FIFO waits for a writer
  // forever, so anything but a regular file is refused here.
  const before = await Deno.stat(path);
  if (before.isDirectory) throw new IsADirectory();
  if (!before.isFile) throw new NotARegularFile();
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (info.isDirectory) throw new IsADirectory();
  if (!info.isFile) throw new NotARegularFile();
  const out = new Uint8Array(Math.min(limit + 1, info.isFile ? info.size + 1 : limit + 1));
  let filled = 0;
  while (filled < out.length) {
    const n = await file.read(out.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  if (filled > limit) throw new TooLarge(info.isFile ? info.size : undefined, limit);
  return out.subarray(0, filled);
}

class IsADirectory extends Error {}

/** A FIFO, socket or device: refused before it is opened. */
export class NotARegularFile extends Error {
  constructor() {
    super("it is not a regular file (a FIFO, socket or device)");
  }
}

class TooLarge extends Error {
  constructor(readonly size: number | undefined, limit: number) {
    super(`the file is larger than ${formatBytes(limit)}`);
  }
}

/** Reads a keystore-sized file, turning each way it can fail into a `StoreError`. */
export async function readStoreFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readBounded(path, MAX_STORE_BYTES);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new StoreError(`The ${what} "${path}" does not exist`, {
        code: "STORE_NOT_FOUND",
        hint: "Check the path (it is relative to the current directory).",
        cause,
      });
    }
    if (cause instanceof IsADirectory) {
      throw new StoreError(`The ${what} "${path}" is a directory, not a file`, {
        code: "STORE_IS_DIRECTORY",
        hint: "Give the path of the keystore file itself.",
      });
    }
    if (cause instanceof NotARegularFile) {
      throw new StoreError(
        `The ${what} "${path}" is not a regular file (a FIFO, socket or device)`,
        {
          code: "STORE_NOT_A_FILE",
          hint: "Give the path of the keystore file itself, not a pipe or device.",
        },
      );
    }
    if (cause instanceof TooLarge) {
      const size = cause.size === undefined ? "larger" : `${formatBytes(cause.size)}, more`;
      throw new StoreError(
        `The ${what} "${path}" is ${size} than the ${
          formatBytes(MAX_STORE_BYTES)
        } a keystore can sensibly be`,
        { code: "STORE_TOO_LARGE", hint: "Check that this is the right file." },
      );
    }
    if (cause instanceof Deno.errors.NotCapable || cause instanceof Deno.errors.PermissionDenied) {
      throw cause;
    }
    throw new StoreError(`Cannot read the ${what} "${path}": ${errorMessage(cause)}`, {
      code: "STORE_UNREADABLE",
      cause,
    });
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
