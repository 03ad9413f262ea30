/**
 * Golden Plans of every example (`plans/<example>.<machine>.json`, exactly what
 * `vmdesc plan --json` prints) and golden formatting: every example is already formatted
 * (fmt is the identity on it), and each `fmt/<name>.input.vmdesc` formats to
 * `fmt/<name>.expected.vmdesc`, idempotently. `UPDATE_GOLDEN=1` rewrites; review the diff.
 */
import { compile, format } from "../../lang/mod.ts";
import { planJson } from "../../cli/plan.ts";
import { golden, listDir, repoHost, root, updating } from "./harness.ts";

const examples = await listDir("examples/", /\.vmdesc$/);

for (const name of examples) {
  const file = `examples/${name}`;
  const base = name.replace(/\.vmdesc$/, "");

  Deno.test(`golden plan: ${file}`, async () => {
    const host = repoHost();
    const r = compile(host.readFile(file)!, { file, host });
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    if (errors.length) {
      throw new Error(`${file}: ${errors.map((d) => `${d.code} ${d.message}`).join("; ")}`);
    }
    if (r.plans.size === 0) throw new Error(`${file} lowers to no Plan`);
    const expected = new Set<string>();
    for (const [machine, plan] of r.plans) {
      const path = `tests/golden/plans/${base}.${machine}.json`;
      expected.add(`${base}.${machine}.json`);
      await golden(path, planJson(plan));
    }
    // No stale goldens for machines that no longer exist.
    const stale = (await listDir("tests/golden/plans/", new RegExp(`^${base}\\.[^.]+\\.json$`)))
      .filter((n) => !expected.has(n));
    if (stale.length && updating) {
      for (const n of stale) await Deno.remove(new URL(`tests/golden/plans/${n}`, root));
    } else if (stale.length) throw new Error(`stale golden plans: ${stale.join(", ")}`);
  });

  Deno.test(`golden fmt: ${file} is already formatted`, () => {
    const text = Deno.readTextFileSync(new URL(file, root));
    const r = format(text, file);
    if (r.diagnostics.some((d) => d.severity === "error")) {
      throw new Error(`${file}: format reported errors`);
    }
    if (r.text !== text) throw new Error(`${file} is not formatted: run 'vmdesc fmt ${file}'`);
  });
}

const inputs = await listDir("tests/golden/fmt/", /\.input\.vmdesc$/);
for (const name of inputs) {
  const stem = name.replace(/\.input\.vmdesc$/, "");
  Deno.test(`golden fmt: ${stem}`, async () => {
    const input = Deno.readTextFileSync(new URL(`tests/golden/fmt/${name}`, root));
    const r = format(input, name);
    if (r.diagnostics.some((d) => d.severity === "error")) {
      throw new Error(`${name}: format reported errors`);
    }
    await golden(`tests/golden/fmt/${stem}.expected.vmdesc`, r.text);
    const again = format(r.text, name).text;
    if (again !== r.text) throw new Error(`${stem}: formatting is not idempotent`);
  });
}

Deno.test("golden fmt: there is at least one badly laid-out input", () => {
  if (!inputs.length) throw new Error("no tests/golden/fmt/*.input.vmdesc");
});

Deno.test("plan --json orders keys as plan/types.ts declares them, whatever the build order", async () => {
  const goldens = await listDir("tests/golden/plans/", /\.json$/);
  if (!goldens.length) throw new Error("no golden plans");
  const reversed = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(reversed);
    if (v && typeof v === "object") {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(v).reverse()) o[k] = reversed((v as Record<string, unknown>)[k]);
      return o;
    }
    return v;
  };
  for (const name of goldens) {
    const text = Deno.readTextFileSync(new URL(`tests/golden/plans/${name}`, root));
    const plan = JSON.parse(text);
    if (planJson(reversed(plan) as typeof plan) !== text) {
      throw new Error(`${name}: key order depends on build order`);
    }
    // A field added to the Plan later keeps its place after the declared ones.
    const extra = planJson({ ...plan, zz_new: 1 } as typeof plan);
    if (!extra.endsWith('  "zz_new": 1\n}\n')) {
      throw new Error("unknown top-level field not kept last");
    }
  }
});
