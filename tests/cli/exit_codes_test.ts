import assert from "node:assert/strict";
import { EXIT_CODES, EXIT_TABLE } from "../../lib/cli/exit_codes.ts";
import { HELP } from "../../lib/cli/help.ts";
import { ExitCode } from "../../lib/errors.ts";

const readme = new URL("../../README.md", import.meta.url);

/** The rows of the README's "Exit codes" table: `[code, class]`. */
async function readmeExitCodes(): Promise<[number, string][]> {
  const text = await Deno.readTextFile(readme);
  const section = text.split(/^## /m).find((s) => s.startsWith("Exit codes\n"));
  assert.ok(section, 'README.md has no "## Exit codes" section');
  const rows: [number, string][] = [];
  for (const line of section.split("\n")) {
    const cells = line.match(/^\|\s*(\d+)\s*\|\s*([^|]*?)\s*\|/);
    if (cells) rows.push([Number(cells[1]), cells[2]!]);
  }
  return rows;
}

Deno.test({
  name: "the README's exit-code table lists the codes and classes --help prints, in order",
  permissions: { read: [readme] },
  fn: async () => {
    const rows = await readmeExitCodes();
    assert.deepEqual(rows, EXIT_CODES.map((row) => [row.code, row.class]));
  },
});

Deno.test("the exit table has every ExitCode once, each line starting with its class", () => {
  assert.deepEqual(
    EXIT_CODES.map((row) => row.code),
    Object.values(ExitCode).toSorted((a, b) => a - b),
  );
  for (const row of EXIT_CODES) {
    assert.ok(row.help.startsWith(row.class), `exit ${row.code}: "${row.help}"`);
  }
});

Deno.test("each error class ends in the exit code of its row", () => {
  for (const row of EXIT_CODES) {
    if (row.error === undefined) {
      assert.equal(row.code, ExitCode.OK);
      continue;
    }
    assert.equal(new row.error("test", { code: "INTERNAL" }).exitCode, row.code, row.class);
  }
});

Deno.test("--help ends with the exit table", () => {
  assert.ok(HELP.endsWith(`\n${EXIT_TABLE}\n`));
  assert.match(HELP, /^ {2}9 {2}permission: Deno lacks a permission/m);
});
