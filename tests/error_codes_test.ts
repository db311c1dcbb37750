/**
 * The error codes are listed once: the `ErrorCode` union in `lib/errors.ts` with its table, and
 * the `ProblemCode` union in `lib/types.ts` with the table of `lib/diagnose/diagnose.ts`. These tests read
 * the sources and check that the unions, the tables and the codes the code uses agree.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const permissions = { read: [ROOT] };
const source = (path: string): string => Deno.readTextFileSync(new URL(path, ROOT));

/** The string members of `export type <name> = | "A" | "B" ...;` in a source file. */
function unionMembers(text: string, name: string): Set<string> {
  const start = text.indexOf(`export type ${name} =`);
  assert.ok(start >= 0, `no union ${name}`);
  const body = text.slice(start, text.indexOf(";", start));
  return new Set([...body.matchAll(/"([A-Z0-9_]+)"/g)].map((m) => m[1]));
}

/** The codes in backticks in the first column of the markdown table of a doc comment. */
function tableCodes(doc: string): Set<string> {
  const codes = new Set<string>();
  for (const line of doc.split("\n")) {
    const row = /^\s*\*\s*\|([^|]*)\|/.exec(line);
    if (!row) continue;
    for (const m of row[1].matchAll(/`([A-Z0-9_]+)`/g)) codes.add(m[1]);
  }
  return codes;
}

/** Every `code: "X"` written in the TypeScript files under the given folders and files. */
function usedCodes(paths: string[]): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (path: string): void => {
    const url = new URL(path, ROOT);
    if (Deno.statSync(url).isDirectory) {
      for (const entry of Deno.readDirSync(url)) visit(`${path}/${entry.name}`);
    } else if (path.endsWith(".ts")) {
      for (const m of source(path).matchAll(/\bcode: "([A-Z][A-Z0-9_]*)"/g)) found.set(m[1], path);
    }
  };
  for (const path of paths) visit(path);
  return found;
}

const errors = source("lib/errors.ts");
const errorCodes = unionMembers(errors, "ErrorCode");
const problemCodes = unionMembers(source("lib/types.ts"), "ProblemCode");

Deno.test({
  name: "ErrorCode: the union and its table list the same codes",
  permissions,
}, () => {
  const doc = errors.slice(0, errors.indexOf("export type ErrorCode ="));
  const table = tableCodes(doc.slice(doc.lastIndexOf("/**")));
  // The table names problem codes as examples of the CertificateError row.
  const missing = [...errorCodes].filter((c) => !table.has(c));
  const extra = [...table].filter((c) => !errorCodes.has(c) && !problemCodes.has(c));
  assert.deepEqual(missing, [], "codes of the union missing from the table");
  assert.deepEqual(extra, [], "codes in the table but not in the union");
});

Deno.test({
  name: "ProblemCode: the union and the severity table of diagnose() list the same codes",
  permissions,
}, () => {
  const diagnose = source("lib/diagnose/diagnose.ts");
  const table = tableCodes(diagnose.slice(0, diagnose.indexOf("@module")));
  assert.deepEqual([...problemCodes].filter((c) => !table.has(c)), []);
  assert.deepEqual([...table].filter((c) => !problemCodes.has(c)), []);
});

Deno.test({
  name: "every code the library and the command line use is an ErrorCode or a ProblemCode",
  permissions,
}, () => {
  const paths = ["lib", "cli.ts"];
  const unknown = [...usedCodes(paths)]
    .filter(([code]) => !errorCodes.has(code) && !problemCodes.has(code))
    .map(([code, file]) => `${code} (${file})`);
  assert.deepEqual(unknown, []);
});
