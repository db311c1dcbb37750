/**
 * Rendering for people: error messages, problem lists, certificate summaries, progress lines,
 * durations.
 *
 * @module
 */

import type { CertificateSummary, Problem } from "../types.ts";
import type { CommandContext, Io } from "./context.ts";

/** The first line of an error's message (a permission error's whole message). */
export function errorMessage(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return error.message;
  }
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
  return String(error);
}

export const MARK = { error: "✗", warning: "!", info: "i" } as const;

export function printProblems(io: Io, problems: Problem[]): void {
  if (problems.length === 0) {
    io.out("problems: none found");
    return;
  }
  io.out("problems:");
  for (const p of problems) {
    io.out(`  ${MARK[p.severity]} ${p.severity} ${p.code}: ${p.message}`);
    if (p.hint) io.out(`      hint: ${p.hint}`);
  }
}

export function describeKey(summary: CertificateSummary): string {
  const type = summary.keyType.toUpperCase();
  if (summary.curve) return `${type} ${summary.curve}`;
  return summary.keySize ? `${type} ${summary.keySize}` : type;
}

export function printCertificate(
  io: Io,
  index: number,
  summary: CertificateSummary,
  alias?: string,
): void {
  const label = alias === undefined ? `[${index}]` : `[${index}] alias "${alias}"`;
  io.out(`  ${label} ${summary.subject}`);
  io.out(`      issuer   ${summary.issuer}${summary.selfSigned ? " (self-signed)" : ""}`);
  io.out(`      valid    ${summary.notBefore} .. ${summary.notAfter}`);
  io.out(
    `      key      ${describeKey(summary)}, X.509 v${summary.version}${
      summary.isCA ? ", CA" : ""
    }`,
  );
  io.out(`      sha256   ${summary.sha256}`);
}

/** A progress line on stderr, unless --quiet or --json. */
export function progress(ctx: CommandContext, line: string): void {
  if (!ctx.quiet && !ctx.json) ctx.io.err(line);
}

export function plural(n: number, prefix: string, noun: string): string {
  return `${prefix}${n} ${noun}${n === 1 ? "" : "s"}`;
}

export function ms(value: number | undefined): string {
  return value === undefined ? "-" : `${Math.round(value)} ms`;
}
