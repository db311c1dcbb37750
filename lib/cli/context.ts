/**
 * What one run of the command line carries: where its output goes, the passwords it has seen
 * and the standard-input line it has read, so that two runs in one process share nothing.
 *
 * @module
 */

import type { Values } from "./options.ts";
import type { StageReport } from "./stages.ts";

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

/** The state of one run, created by `run()` and dropped when it returns. */
export class RunContext {
  /** The first line of standard input, once a `stdin` password has asked for it. */
  stdinLine: Promise<string> | undefined;
  /** The stages a failed `check` got through, for the `--json` error report. */
  checkStages: StageReport[] | undefined;

  constructor(readonly io: Io) {}
}

/** What a command works with: the run, its parsed options and the output flags. */
export interface CommandContext {
  run: RunContext;
  io: Io;
  values: Values;
  json: boolean;
  quiet: boolean;
}
