// The CLI's lean path: lang/compile.ts parses well-formed files without ohm-js, and
// withOhmOnDemand gives exactly what lang/mod.ts's compile gives on a syntax error. Run
// in a fresh process: this test process has lang/parse.ts (and Ohm) loaded already.
import { compile as fullCompile, createMemoryHost } from "./mod.ts";

const GOOD = 'machine a {\n  memory 128 MiB\n  boot pvh "a.elf"\n}\n';
const BAD = "machine a {\n  memory 128 Mib\n  cpus 1\n}\n";

const SCRIPT = `
import { compile } from "${new URL("./compile.ts", import.meta.url).href}";
import { OhmNotLoaded } from "${new URL("./parse_lean.ts", import.meta.url).href}";
import { withOhmOnDemand } from "${new URL("./ohm_on_demand.ts", import.meta.url).href}";
import { createMemoryHost } from "${new URL("./host_memory.ts", import.meta.url).href}";
const [good, bad] = JSON.parse(Deno.args[0]);
const host = createMemoryHost({ "/m/a.vmdesc": good, "/m/b.vmdesc": bad });
const g = compile(good, { file: "/m/a.vmdesc", host });
let threw = false;
try { compile(bad, { file: "/m/b.vmdesc", host }); } catch (e) { threw = e instanceof OhmNotLoaded; }
const b = await withOhmOnDemand(() => compile(bad, { file: "/m/b.vmdesc", host }));
console.log(JSON.stringify({ good: g.diagnostics.map((d) => d.code), plans: [...g.plans.keys()], threw, bad: b.diagnostics }));
`;

Deno.test("CLI path: compile without Ohm for a good file, Ohm on demand for a syntax error", async () => {
  const config = new URL("../deno.json", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", config, SCRIPT, JSON.stringify([GOOD, BAD])],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`subprocess failed: ${stderr}`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  const host = createMemoryHost({ "/m/a.vmdesc": GOOD, "/m/b.vmdesc": BAD });
  const fullGood = fullCompile(GOOD, { file: "/m/a.vmdesc", host });
  const fullBad = fullCompile(BAD, { file: "/m/b.vmdesc", host });
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(r.good, fullGood.diagnostics.map((d) => d.code))) throw new Error(`good: ${r.good}`);
  if (!same(r.plans, ["a"])) throw new Error(`plans: ${r.plans}`);
  // Without Ohm loaded, the syntax error cannot be reported: compile says so by throwing.
  if (!r.threw) throw new Error("compile of a broken file did not throw OhmNotLoaded");
  if (!fullBad.diagnostics.some((d) => d.code === "E0001")) throw new Error("expected E0001");
  if (!same(r.bad, fullBad.diagnostics)) {
    throw new Error(
      `on-demand result differs:\n${JSON.stringify(r.bad)}\n${JSON.stringify(fullBad.diagnostics)}`,
    );
  }
});
