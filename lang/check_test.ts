/** Targeted checker behaviour beyond the one-case-per-code files. */
import { compile, createMemoryHost } from "./mod.ts";

function codes(text: string): string[] {
  const host = createMemoryHost({ "m.vmdesc": text }, ["g.elf"]);
  return compile(text, { file: "m.vmdesc", host }).diagnostics.map((d) => d.code);
}
function eq(a: unknown, b: unknown, what: string) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  }
}
const tail = `  device serial com1 { port 0x3f8 }\n  boot pvh "g.elf"\n}\n`;

Deno.test("overlaps are found among many ranges (sorted sweep), each reported once", () => {
  let t = "machine m {\n  ram 0 .. 64 MiB\n";
  for (let i = 1; i <= 200; i++) t += `  ram ${i} GiB + 2 MiB\n`;
  t += "  ram (100 GiB + 1 MiB) + 2 MiB\n"; // overlaps the 100 GiB range only
  eq(codes(t + tail), ["E0201"], "one overlap");
});

Deno.test("W0004 and W0001 never fire together; neither under shadow", () => {
  const hole = (s: string, buses: string) =>
    `machine m {\n  memory 64 MiB\n  pci_hole 0xC000_0000 .. 4 GiB {\n    strategy ${s}\n    ecam 0xE000_0000 buses ${buses}\n  }\n  pci 00:02.0 virtio_rng\n` +
    tail;
  eq(codes(hole("trap", "0..255")), ["W0004"], "trap, explicit, mostly unused");
  eq(codes(hole("trap", "auto")), [], "trap, auto: 1 bus");
  eq(codes(hole("shadow", "0..255")), [], "shadow is free");
  eq(codes(hole("trap", "0..15")), ["W0001"], "trap, 16 buses, range close to use");
});

Deno.test("W0004/W0001 count one probe per device slot (function 0 of absent devices)", () => {
  const hints = (s: string, buses: string) => {
    const t =
      `machine m {\n  memory 64 MiB\n  pci_hole 0xC000_0000 .. 4 GiB {\n    strategy ${s}\n    ecam 0xE000_0000 buses ${buses}\n  }\n  pci 00:02.0 virtio_rng\n` +
      tail;
    const host = createMemoryHost({ "m.vmdesc": t }, ["g.elf"]);
    return compile(t, { file: "m.vmdesc", host }).diagnostics.map((d) => d.hint ?? "");
  };
  // 63 unused buses x 32 device slots; a scan reads functions 1-7 only of present
  // multi-function devices, so x 8 would overstate it eightfold.
  const [w4] = hints("trap", "0..63");
  eq(/ 2016 extra config probes \(63 buses × 32 devices/.test(w4), true, w4);
  const [w1] = hints("trap", "0..15");
  eq(/ 512 config probes \(16 buses × 32 devices/.test(w1), true, w1);
});

Deno.test("extends: devices merge by name, properties merge, a cycle feeder gets its own error", () => {
  const t = `machine a {
  memory 64 MiB
  device serial com1 { port 0x3f8 irq 4 }
  boot pvh "g.elf"
}
machine b extends a {
  device serial com1 { irq 3 }
}
machine x extends y { memory 1 GiB }
machine y extends x { memory 1 GiB }
machine z extends x { memory 1 GiB }
`;
  const host = createMemoryHost({ "m.vmdesc": t }, ["g.elf"]);
  const r = compile(t, { file: "m.vmdesc", host });
  const b = r.plans.get("b")!;
  eq(b.devices[0].ports, [{ base: 0x3f8, size: 8 }], "port kept from a");
  eq(b.devices[0].irq, 3, "irq from b");
  eq(r.diagnostics.map((d) => d.code), ["E0106", "E0106"], "one error for the cycle, one for z");
});

Deno.test("typed values: `a + b` adds where a number is expected; ranges where a range is", () => {
  eq(codes(`machine m {\n  memory 64 MiB + 64 MiB\n` + tail), [], "sum");
  eq(codes(`machine m {\n  memory 0 .. 64 MiB\n` + tail), ["E0005"], "range is not a number");
  eq(codes(`machine m {\n  ram 64 MiB\n` + tail), ["E0005"], "number is not a range");
  eq(codes(`machine m {\n  memory 64 MiB\n  acpi maybe\n` + tail), ["E0304"], "on/off");
});

Deno.test("cpuid hide names are checked, with a suggestion", () => {
  eq(
    codes(`machine m {\n  memory 64 MiB\n  cpuid { hide cx61 }\n` + tail),
    ["E0304"],
    "unknown feature",
  );
  eq(
    codes(`machine m {\n  memory 64 MiB\n  cpuid { hide cx16 x2apic }\n` + tail),
    [],
    "known features",
  );
});

Deno.test("E0304 range messages: small ranges in decimal, ports and addresses in hex", () => {
  const diag = (text: string) => {
    const host = createMemoryHost({ "m.vmdesc": text }, ["g.elf"]);
    const d = compile(text, { file: "m.vmdesc", host }).diagnostics.find((x) => x.code === "E0304");
    return d ? `${d.message} / ${d.hint}` : "none";
  };
  const m = (dev: string) => `machine m {\n  memory 64 MiB\n  ${dev}\n  boot pvh "g.elf"\n}\n`;
  eq(
    diag(m("device serial com1 { port 0x3f8 irq 99 }")),
    "`irq` 99 is out of range / it must be between 0 and 23",
    "irq",
  );
  eq(
    diag(m("device serial com1 { port 0x1_0000 }")),
    "`port` 0x1_0000 is out of range / it must be between 0x0 and 0xFFFF",
    "port",
  );
});

Deno.test("E0205: the ECAM window is aligned to its size, counted from bus 0 (issue 14, item 2)", () => {
  const check = (ecam: string, pciBus = "00", hole = "0xA000_0000") => {
    const t = `machine m {
  memory 64 MiB
  pci_hole ${hole} .. 4 GiB {
    ecam ${ecam}
  }
  pci ${pciBus}:02.0 virtio_rng
${tail}`;
    const host = createMemoryHost({ "m.vmdesc": t }, ["g.elf"]);
    return compile(t, { file: "m.vmdesc", host }).diagnostics;
  };
  const e0205 = (ecam: string, pciBus?: string, hole?: string) => {
    const ds = check(ecam, pciBus, hole);
    eq(ds.map((d) => d.code), ["E0205"], ecam);
    return ds[0];
  };
  // The two windows of the issue: 1 MiB aligned, but not to their size.
  let d = e0205("0xB800_0000 buses 0..255");
  eq(d.message, "the ECAM window at 0xB800_0000 (buses 0..255) is not aligned to 256 MiB", "msg");
  eq(d.fixes?.map((f) => f.replacement), ["0xB000_0000"], "the nearest aligned base in the hole");
  d = e0205("0xB080_0000 buses 0..15");
  eq(d.fixes?.map((f) => f.replacement), ["0xB000_0000"], "16 MiB");
  eq(/narrow the window to `buses 0\.\.7`/.test(d.hint ?? ""), true, d.hint ?? "");
  // A partial bus range: the region starts at bus 0, 16 MiB below this window.
  eq(check("0xE100_0000 buses 16..31", "10").map((d) => d.code), [], "bus 0 at 0xE000_0000");
  d = e0205("0xE180_0000 buses 16..31", "10");
  eq(d.fixes?.map((f) => f.replacement), ["0xE100_0000"], "bus 0 at 0xE000_0000 again");
  // A one-bus window still decodes one bus-number bit (PCIe: 1 <= n <= 8).
  e0205("0xE010_0000 buses 0..0");
  eq(check("0xE000_0000 buses auto").map((d) => d.code), [], "auto: bus 0 only");
  // No aligned place in the hole: no fix, only the rule.
  d = e0205("0xE800_0000 buses 0..255", "00", "0xE800_0000");
  eq(d.fixes, undefined, "no 256 MiB boundary in the hole leaves room below the APICs");
  // An expression is not rewritten; the hint still says where.
  const expr = check("0xB000_0000 + 8 MiB buses 0..15");
  eq(expr.map((d) => [d.code, d.fixes]), [["E0205", undefined]], "expression");
});

Deno.test("E0002: a number glued to a unit typo (`256MB`) gets the unit it means as a fix", () => {
  const t = `machine m {\n  memory 256MB\n  ram 0 .. 1gb\n${tail}`;
  const host = createMemoryHost({ "m.vmdesc": t }, ["g.elf"]);
  const ds = compile(t, { file: "m.vmdesc", host }).diagnostics;
  eq(ds.map((d) => [d.code, d.fixes?.[0]?.replacement]), [["E0002", "256 MiB"], [
    "E0002",
    "1 GiB",
  ]], "fixes");
});
