/**
 * The layering rules of ARCHITECTURE.md ("Invariants"), checked on every import of the
 * repository, so the next drift fails the day it is written instead of being found in a
 * review months later.
 *
 * The import graph is Deno's own (`deno info --json` over every module: static imports,
 * `export ... from`, dynamic `import("…")` and type-only imports, resolved through
 * deno.json), plus Workers started from a literal `new URL("…", import.meta.url)`. A dynamic
 * import or a Worker whose target is not a literal would be invisible to that graph, so it
 * fails the test too.
 *
 * Test code: tests/ and bench/ drive every layer from outside and may import anything
 * (including cli/, whose output and help they check). A unit test beside a module
 * (`*_test.ts`) obeys its folder's rules, and may also use the shared test helpers in
 * tests/ and the guest build in examples/.
 */

const root = new URL("../", import.meta.url);
const ROOT = decodeURIComponent(root.pathname);

export interface Edge {
  /** Repository-relative path of the importing module. */
  from: string;
  /** Repository-relative path of the imported module. */
  to: string;
  line: number;
  kind: "static" | "dynamic" | "type" | "worker";
}

/** Folders that are not part of the module graph: a separate Node package, build output. */
const SKIP = new Set(["node_modules", ".git", ".cache", "build", "editors"]);

function sourceFiles(dir = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(ROOT + (dir || "."))) {
    const path = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory && !SKIP.has(e.name)) out.push(...sourceFiles(path));
    else if (e.isFile && /\.(ts|js|mjs)$/.test(e.name)) out.push(path);
  }
  return out.sort();
}

/** Every import edge between the repository's own modules. */
export async function importGraph(): Promise<{ edges: Edge[]; problems: string[] }> {
  const files = sourceFiles();
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-layering-" });
  const problems: string[] = [];
  const edges: Edge[] = [];
  try {
    const entry = `${dir}/all.ts`;
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import ${JSON.stringify(new URL(f, root).href)};\n`).join(""),
    );
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", `${ROOT}deno.json`, entry],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) throw new Error(`deno info failed:\n${new TextDecoder().decode(r.stderr)}`);
    const info = JSON.parse(new TextDecoder().decode(r.stdout)) as {
      modules: {
        specifier: string;
        error?: string;
        dependencies?: {
          isDynamic?: boolean;
          code?: { specifier?: string; span: { start: { line: number } } };
          type?: { specifier?: string; span: { start: { line: number } } };
        }[];
      }[];
    };
    const local = (url: string | undefined) =>
      url?.startsWith(root.href) ? decodeURIComponent(url.slice(root.href.length)) : null;
    for (const m of info.modules) {
      const from = local(m.specifier);
      if (!from) continue;
      if (m.error) problems.push(`${from}: ${m.error}`);
      for (const d of m.dependencies ?? []) {
        const dep = d.code ?? d.type;
        const to = local(dep?.specifier);
        if (!to || !dep) continue;
        const kind = d.isDynamic ? "dynamic" : d.code ? "static" : "type";
        edges.push({ from, to, line: dep.span.start.line + 1, kind });
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // What the graph cannot see: Workers, and imports of a computed specifier.
  for (const from of files) {
    const lines = Deno.readTextFileSync(ROOT + from).split("\n");
    lines.forEach((text, i) => {
      if (/^\s*(\/\/|\*)/.test(text)) return; // a comment
      for (const w of text.matchAll(/new Worker\(([^;]*)/g)) {
        const m = /^\s*new URL\(\s*"([^"]+)",\s*import\.meta\.url\s*\)/.exec(w[1]);
        if (!m) problems.push(`${from}:${i + 1}: a Worker whose module is not a literal URL`);
        else {
          const to = new URL(m[1], new URL(from, root)).href.slice(root.href.length);
          edges.push({ from, to, line: i + 1, kind: "worker" });
        }
      }
      // `await import(path)`, `() => import(name)`: a call, not a word in a string.
      if (/(?:\bawait|=>|[=(,:]|\breturn)\s*import\s*\(\s*[^"'\s]/.test(text)) {
        problems.push(`${from}:${i + 1}: an import() of a computed specifier`);
      }
    });
  }
  return { edges, problems };
}

/** The top folder of a path; a file at the top is its own node ("mod.ts", "deno.json"). */
export function top(path: string): string {
  const i = path.indexOf("/");
  return i < 0 ? path : path.slice(0, i);
}

/** tests/ and bench/ and every `*_test.ts`. */
function isTestCode(path: string): boolean {
  return top(path) === "tests" || top(path) === "bench" || /_test\.ts$/.test(path);
}

/** A device model's own module: runtime/devices/<kind>/... */
function isDeviceModel(path: string): boolean {
  return /^runtime\/devices\/[^/]+\//.test(path);
}

export interface Rule {
  name: string;
  /** Whether the rule speaks about imports made by `from`. */
  covers(from: string): boolean;
  allows(to: string, from: string): boolean;
}

const only = (...folders: string[]) => (to: string) => folders.includes(top(to));

export const RULES: Rule[] = [
  {
    name: "plan/ imports nothing outside plan/",
    covers: (f) => top(f) === "plan",
    allows: only("plan"),
  },
  {
    name: "lang/ imports only lang/ and plan/",
    covers: (f) => top(f) === "lang",
    allows: only("lang", "plan"),
  },
  {
    name: "runtime/ imports only runtime/ and plan/",
    covers: (f) => top(f) === "runtime",
    allows: only("runtime", "plan"),
  },
  {
    name: "host/ imports only host/, lang/ and plan/",
    covers: (f) => top(f) === "host",
    allows: only("host", "lang", "plan"),
  },
  {
    name: "lsp/ never imports cli/ or runtime/",
    covers: (f) => top(f) === "lsp",
    allows: (t) => !["cli", "runtime"].includes(top(t)),
  },
  {
    name: "the root mod.ts imports only lang/, runtime/, plan/ and host/",
    covers: (f) => f === "mod.ts",
    allows: only("lang", "runtime", "plan", "host"),
  },
  {
    name: "nothing outside cli/ imports cli/ (tests/ and bench/ drive the command line)",
    covers: (f) => top(f) !== "cli" && top(f) !== "tests" && top(f) !== "bench",
    allows: (t) => top(t) !== "cli",
  },
  {
    name: "device models are reached only through runtime/devices/registry.ts and device.ts",
    covers: (f) => !f.startsWith("runtime/devices/") && top(f) !== "tests" && top(f) !== "bench",
    allows: (t) => !isDeviceModel(t),
  },
  {
    name: "runtime/memory/ never reaches into runtime/devices/",
    covers: (f) => f.startsWith("runtime/memory/"),
    allows: (t) => !t.startsWith("runtime/devices/"),
  },
];

/** Every edge against a rule, as "rule: from:line → to". */
export function violations(edges: Edge[], rules: Rule[] = RULES): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    // A unit test beside a module may use the shared test helpers and the guest build.
    if (isTestCode(e.from) && (top(e.to) === "tests" || top(e.to) === "examples")) continue;
    for (const rule of rules) {
      if (!rule.covers(e.from) || rule.allows(e.to, e.from)) continue;
      const list = out.get(rule.name) ?? [];
      list.push(`${e.from}:${e.line} → ${e.to} (${e.kind})`);
      out.set(rule.name, list);
    }
  }
  return out;
}

/**
 * Cycles between top folders, over the code that ships (tests and benchmarks left out: they
 * import every layer, and a unit test beside a module imports the test helpers): each
 * cycle as its folders, found as the strongly connected components of the folder graph.
 */
export function folderCycles(edges: Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (isTestCode(e.from) || isTestCode(e.to)) continue;
    const [a, b] = [top(e.from), top(e.to)];
    if (a === b) continue;
    if (!next.has(a)) next.set(a, new Set());
    if (!next.has(b)) next.set(b, new Set());
    next.get(a)!.add(b);
  }
  // Tarjan's algorithm.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

const graph = importGraph();

for (const rule of RULES) {
  Deno.test(`layering: ${rule.name}`, async () => {
    const { edges } = await graph;
    const bad = violations(edges, [rule]).get(rule.name);
    if (bad) {
      throw new Error(`${bad.length} import(s) against the rule:\n  ${bad.join("\n  ")}`);
    }
  });
}

Deno.test("layering: no import cycles between folders", async () => {
  const cycles = folderCycles((await graph).edges);
  if (cycles.length) {
    throw new Error(
      `folders that import each other: ${cycles.map((c) => c.join(" ↔ ")).join("; ")}`,
    );
  }
});

Deno.test("layering: every import can be followed", async () => {
  const { edges, problems } = await graph;
  if (problems.length) throw new Error(problems.join("\n"));
  // The graph really is the repository's: the CLI reaches its commands and lang its parser.
  const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to);
  if (!has("cli/vmdesc.ts", "cli/check.ts") || !has("lang/parse.ts", "lang/parse_lean.ts")) {
    throw new Error(`the import graph misses known edges (${edges.length} edges read)`);
  }
});

Deno.test("layering: the rules catch imports against them", () => {
  // A rule that can never fire would pass forever: each must flag a bad edge and let a good
  // one through.
  const e = (from: string, to: string): Edge => ({ from, to, line: 1, kind: "static" });
  const cases: [Edge, string | null][] = [
    [e("plan/types.ts", "lang/ast.ts"), "plan/ imports nothing outside plan/"],
    [e("lang/check.ts", "runtime/machine.ts"), "lang/ imports only lang/ and plan/"],
    [e("lang/x_test.ts", "host/disk_host.ts"), "lang/ imports only lang/ and plan/"],
    [e("runtime/machine.ts", "lang/mod.ts"), "runtime/ imports only runtime/ and plan/"],
    [e("host/disk_host.ts", "cli/host.ts"), "host/ imports only host/, lang/ and plan/"],
    [e("lsp/hover.ts", "cli/host.ts"), "lsp/ never imports cli/ or runtime/"],
    [e("lsp/mod.ts", "runtime/mod.ts"), "lsp/ never imports cli/ or runtime/"],
    [e("mod.ts", "cli/output.ts"), "the root mod.ts imports only lang/, runtime/, plan/ and host/"],
    [
      e("runtime/machine.ts", "runtime/devices/serial/mod.ts"),
      "device models are reached only through runtime/devices/registry.ts and device.ts",
    ],
    [
      e("runtime/memory/ones_alias.ts", "runtime/devices/device.ts"),
      "runtime/memory/ never reaches into runtime/devices/",
    ],
    [e("runtime/device_set.ts", "runtime/devices/registry.ts"), null],
    [e("runtime/devices/serial/mod.ts", "runtime/devices/serial/uart.ts"), null],
    [e("lang/format_test.ts", "tests/lang_corpus.ts"), null],
    [e("tests/cli_test.ts", "cli/plan.ts"), null],
    [e("lsp/mod.ts", "host/disk_host.ts"), null],
  ];
  for (const [edge, rule] of cases) {
    const found = [...violations([edge]).keys()];
    const ok = rule === null ? found.length === 0 : found.includes(rule);
    if (!ok) throw new Error(`${edge.from} → ${edge.to}: expected ${rule}, got ${found}`);
  }
  const cycle = folderCycles([e("lang/a.ts", "host/b.ts"), e("host/b.ts", "lang/c.ts")]);
  if (cycle.length !== 1 || cycle[0].join() !== "host,lang") {
    throw new Error(`a two-folder cycle was not found: ${JSON.stringify(cycle)}`);
  }
  if (folderCycles([e("lang/a_test.ts", "tests/x.ts"), e("tests/x.ts", "lang/a.ts")]).length) {
    throw new Error("test code made a cycle");
  }
});
