/**
 * Passwords: the specs the options give (`pass:`, `env:`, `file:`, `stdin`), resolving them, and
 * asking on the terminal.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { parsePasswordSpec } from "../stores/password_spec.ts";
import type { PasswordSpec } from "../stores/password_spec.ts";
import type { RunContext } from "./context.ts";
import { readBounded } from "./files.ts";
import type { Command, Values } from "./options.ts";
import { errorMessage } from "./output.ts";

/** The password options the command line gives, with their parsed specs: `[option, spec]`. */
export function passwordSpecs(values: Values, command: Command): [string, PasswordSpec][] {
  const names = command === "emulate"
    ? ["trust-password"]
    : ["keystore-password", "key-password", "truststore-password"];
  const specs: [string, PasswordSpec][] = [];
  for (const name of names) {
    const raw = values[name as keyof Values];
    if (typeof raw === "string") specs.push([`--${name}`, parsePasswordSpec(raw, `--${name}`)]);
  }
  return specs;
}

/**
 * Checks that at most one password option reads standard input (there is one line to read), so
 * that the conflict is reported as a usage error before anything is read.
 */
export function checkPasswordSources(values: Values, command: Command): void {
  const stdin = passwordSpecs(values, command).filter(([, spec]) => spec.kind === "stdin");
  if (stdin.length > 1) {
    throw new UsageError(
      `${stdin.map(([option]) => option).join(" and ")} cannot both read from stdin`,
      {
        code: "PASSWORD_SOURCE",
        hint: "Give one of them as env:NAME or file:PATH.",
      },
    );
  }
}

/** A password file is read up to this size (its first line is the password). */
const MAX_PASSWORD_FILE = 64 * 1024;

async function readStdinLine(): Promise<string> {
  let text = "";
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    // Standard input is read once per run (the line is shared), so it can be closed here.
    await reader.cancel();
  }
  return text.split(/\r?\n/)[0] ?? "";
}

/** The password a spec names, resolved. */
export async function resolvePassword(
  run: RunContext,
  spec: PasswordSpec,
  option: string,
): Promise<string> {
  let password: string;
  switch (spec.kind) {
    case "pass":
      password = spec.value;
      break;
    case "env": {
      const value = Deno.env.get(spec.name);
      if (value === undefined) {
        throw new UsageError(`${option} env:${spec.name}: the variable ${spec.name} is not set`, {
          code: "PASSWORD_SOURCE",
          hint: `Export ${spec.name}, and run deno with --allow-env=${spec.name}.`,
        });
      }
      password = value;
      break;
    }
    case "file": {
      try {
        const text = new TextDecoder().decode(await readBounded(spec.path, MAX_PASSWORD_FILE));
        password = text.split(/\r?\n/)[0] ?? "";
      } catch (cause) {
        throw new UsageError(`${option} file:${spec.path}: ${errorMessage(cause)}`, {
          code: "PASSWORD_SOURCE",
          hint: "The file's first line is the password.",
          cause,
        });
      }
      break;
    }
    case "stdin":
      // On a terminal, standard input is the user typing: ask, and do not echo what is typed.
      if (Deno.stdin.isTerminal()) {
        return await promptPassword(run, `${cap(option.slice(2).replaceAll("-", " "))}`, option);
      }
      run.stdinLine ??= readStdinLine();
      password = await run.stdinLine;
      break;
  }
  return password;
}

// deno-lint-ignore no-control-regex
const ESCAPES = /\x1b(\[[0-9;]*[A-Za-z~]|O[A-Za-z]|.)?/g;

/**
 * Asks for a password on the terminal without echo; fails when there is no terminal, saying why
 * the password is needed (`because`: the store's own message, which may say what the file really
 * is, e.g. a `truststore.jks` that is PKCS#12).
 */
export async function promptPassword(
  _run: RunContext,
  question: string,
  option: string,
  because?: string,
): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    const why = because === undefined ? "" : ` (${because})`;
    throw new UsageError(`${question} is needed and there is no terminal to ask for it${why}`, {
      code: "PASSWORD_REQUIRED",
      hint: `Give ${option} pass:VALUE, env:NAME, file:PATH or stdin.`,
    });
  }
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(`${question}: `));
  Deno.stdin.setRaw(true);
  let typed = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64);
  try {
    outer: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      // Escape sequences (arrow keys and the like) are not part of a password.
      const text = decoder.decode(buffer.subarray(0, n), { stream: true }).replace(ESCAPES, "");
      for (const char of text) {
        if (char === "\r" || char === "\n" || char === "\x04") break outer; // Enter, Ctrl-D
        if (char === "\x03") throw new UsageError("Cancelled", { code: "PASSWORD_REQUIRED" });
        if (char === "\x7f" || char === "\b") typed = [...typed].slice(0, -1).join("");
        else if (char >= " ") typed += char;
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  return typed;
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
