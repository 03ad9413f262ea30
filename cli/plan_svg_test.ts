import { compile } from "../lang/mod.ts";
import { planSvg } from "./plan_svg.ts";
import { addr, size } from "./plan_table.ts";
import { checkXml } from "../tests/util/xml.ts";
import { resolvePath } from "../plan/paths.ts";

const root = new URL("../", import.meta.url);

Deno.test("svg: every example's map is well-formed and labels every memslot, BAR and chip", () => {
  let n = 0;
  for (const e of Deno.readDirSync(new URL("examples/", root))) {
    if (!e.isFile || !e.name.endsWith(".vmdesc")) continue;
    const file = `examples/${e.name}`;
    const host = {
      readFile: (p: string) => {
        try {
          return Deno.readTextFileSync(new URL(p, root));
        } catch {
          return undefined;
        }
      },
      fileExists: () => true,
      resolve: resolvePath,
    };
    const r = compile(host.readFile(file)!, { file, host });
    for (const plan of r.plans.values()) {
      const svg = planSvg(plan);
      checkXml(svg);
      const want = [
        ...plan.memslots.filter((m) => m.backing.kind === "anonymous").map((m) => `RAM ${m.name}`),
        ...plan.pci.flatMap((f) =>
          f.bars.filter((b) => b.kind !== "io").map((b) => `${f.bdf} ${f.kind} BAR${b.index}`)
        ),
        "IOAPIC",
        "LAPIC",
        addr(plan.platform.lapic_base),
      ];
      if (plan.hole) want.push("PCI hole", size(plan.hole.size));
      for (const w of want) {
        if (!svg.includes(w)) throw new Error(`${file} (${plan.machine}): the map lacks "${w}"`);
      }
      n++;
    }
  }
  if (n < 6) throw new Error(`only ${n} Plans drawn`);
});
