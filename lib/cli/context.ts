/**
 * What one run of the command line carries: where its output goes, the passwords it has seen
 * and the standard-input line it has read, so that two runs in one process share nothing.
 *
 * @module
 */

import type { Values } from "./options.ts";

/** What the command line writes to; tests may pass their own. */
export interface Io {
  /** Writes a line to standard output. */
  out(line: string): void;
  /** Writes a line to standard error. */
  err(line: string): void;
}

/** Standard output and standard error through the console. */
export const consoleIo: Io = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/**
 * Passwords shorter than this are not scrubbed: replacing them would garble messages and reveal
 * the password.
 */
const MIN_SCRUBBED = 4;

/** The state of one run, created by `run()` and dropped when it returns. */
export class RunContext {
  /**
   * Passwords seen in this run. The tool's own messages never contain them; error reports are
   * scrubbed of them all the same, because a dependency's error text may quote its input. Normal
   * output is not touched (a short password would garble a token).
   */
  readonly secrets: Set<string> = new Set();
  /** The first line of standard input, once a `stdin` password has asked for it. */
  stdinLine: Promise<string> | undefined;
  /** The stages a failed `check` got through, for the `--json` error report. */
  checkStages: StageReport[] | undefined;

  constructor(readonly io: Io) {}

  /** `text` with every password of this run of at least 4 characters replaced by `***`. */
  scrub(text: string): string {
    let result = text;
    for (const secret of this.secrets) {
      if (secret.length >= MIN_SCRUBBED) result = result.split(secret).join("***");
    }
    return result;
  }
}

/** One stage of `check`, as printed and put in the JSON output. */
export interface StageReport {
  stage: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

/** What a command works with: the run, its parsed options and the output flags. */
export interface CommandContext {
  run: RunContext;
  io: Io;
  values: Values;
  json: boolean;
  quiet: boolean;
}
