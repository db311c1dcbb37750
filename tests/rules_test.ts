/**
 * The rules of the tree (issue 11): the core under `lib/` (outside `lib/cli/`) is pure, `mod.ts`
 * and the emulator's entry reach nothing of the command line, and no module imports itself back.
 * The module graph is the one `deno info --json` gives.
 */

import assert from "node:assert/strict";
import { OPTION_SPEC } from "../lib/cli/options.ts";

const ROOT = new URL("../", import.meta.url);
const LIB = new URL("lib/", ROOT);
const CLI = new URL("lib/cli/", ROOT).href;
const permissions = { read: [ROOT], run: [Deno.execPath()] };

/** What the core may not touch: the process's arguments, environment, exit, and files. */
const FORBIDDEN: [RegExp, string][] = [
  [/\bDeno\.args\b/, "Deno.args"],
  [/\bDeno\.env\b/, "Deno.env"],
  [/\bDeno\.exit\b/, "Deno.exit"],
  [
    /\bDeno\.(?:readFile|readTextFile|writeFile|writeTextFile|open|create|stat|lstat|readDir|remove|rename|mkdir|makeTemp(?:File|Dir)|truncate|realPath|readLink|copyFile|symlink|chmod|chown|cwd|chdir)(?:Sync)?\b/,
    "a Deno file API",
  ],
  [/["']node:fs(?:\/promises)?["']/, "node:fs"],
  [/\bprocess\.(?:argv|env|exit|cwd)\b/, "process.argv/env/exit/cwd"],
];

/** The `.ts` files under a directory, recursively. */
function tsFiles(dir: URL): URL[] {
  const out: URL[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) out.push(...tsFiles(url));
    else if (entry.name.endsWith(".ts")) out.push(url);
  }
  return out;
}

/** The code of a file without its comments (doc examples read files; the code may not). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/** Module specifier -> the local modules it imports, for the modules reachable from `entry`. */
async function moduleGraph(
  entry: string,
): Promise<Map<string, { code: string[]; type: string[] }>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
    }[];
  };
  const graph = new Map<string, { code: string[]; type: string[] }>();
  for (const module of info.modules) {
    if (!module.specifier.startsWith("file:")) continue;
    const local = (s: string | undefined): s is string => s?.startsWith("file:") ?? false;
    const deps = module.dependencies ?? [];
    graph.set(module.specifier, {
      code: deps.map((d) => d.code?.specifier).filter(local),
      type: deps.map((d) => d.type?.specifier).filter(local),
    });
  }
  return graph;
}

/** The import cycles of a graph (its strongly connected components of two or more modules). */
function cycles(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component);
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

const relative = (specifier: string): string => specifier.slice(ROOT.href.length);

Deno.test({
  name: "nothing under lib/ outside lib/cli/ touches arguments, the environment, exit or files",
  permissions,
  fn(): void {
    const core = tsFiles(LIB).filter((url) => !url.href.startsWith(CLI));
    assert.ok(core.length > 30, `expected the core's files, found ${core.length}`);
    const found: string[] = [];
    for (const url of core) {
      const text = code(Deno.readTextFileSync(url));
      for (const [pattern, what] of FORBIDDEN) {
        if (pattern.test(text)) found.push(`${relative(url.href)} uses ${what}`);
      }
    }
    assert.deepEqual(found, []);
  },
});

Deno.test({
  name: "the core speaks in options: no code under lib/ outside lib/cli/ names a flag of the CLI",
  permissions,
  fn(): void {
    const flags = Object.keys(OPTION_SPEC).map((name) => new RegExp(`--${name}(?![a-z-])`));
    const found: string[] = [];
    for (const url of tsFiles(LIB).filter((url) => !url.href.startsWith(CLI))) {
      const text = code(Deno.readTextFileSync(url));
      for (const flag of flags) {
        const m = flag.exec(text);
        if (m) found.push(`${relative(url.href)} names ${m[0]}`);
      }
    }
    assert.deepEqual(found, []);
  },
});

Deno.test({
  name: "mod.ts and the emulator's entry reach no module of lib/cli/",
  permissions,
  async fn(): Promise<void> {
    for (const entry of ["mod.ts", "lib/emulator/mod.ts"]) {
      const graph = await moduleGraph(entry);
      assert.ok(graph.size > 10, `${entry}: expected its module graph`);
      const reached = [...graph.keys()].filter((s) => s.startsWith(CLI)).map(relative);
      assert.deepEqual(reached, [], `${entry} reaches the command line`);
    }
  },
});

Deno.test({
  name: "no module imports itself back (no import cycles from cli.ts, mod.ts or the emulator)",
  permissions,
  async fn(): Promise<void> {
    const edges = new Map<string, string[]>();
    for (const entry of ["cli.ts", "mod.ts", "lib/emulator/mod.ts"]) {
      for (const [module, deps] of await moduleGraph(entry)) edges.set(module, deps.code);
    }
    assert.ok(edges.has(new URL("lib/cli/run.ts", ROOT).href), "cli.ts reaches lib/cli/run.ts");
    assert.deepEqual(cycles(edges).map((c) => c.map(relative).sort()), []);
  },
});

Deno.test("the cycle finder finds a cycle and only a cycle", () => {
  const edges = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a", "d"]], ["d", []]]);
  assert.deepEqual(cycles(edges).map((c) => c.sort()), [["a", "b", "c"]]);
  assert.deepEqual(cycles(new Map([["a", ["b"]], ["b", []]])), []);
});
