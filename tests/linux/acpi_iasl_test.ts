/**
 * The ACPI tables vmdesc builds, checked by ACPICA's own tools (Debian `acpica-tools`):
 * `iasl -d` disassembles every table, the DSDT's disassembly is compiled again, the RSDP
 * is compared byte for byte with the one `iasl` compiles from the same field values, and
 * `acpiexec` loads the whole set and evaluates the root bridge's _CRS. Any error or
 * warning from them fails the test; then key facts are read back from the disassembly.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { buildAcpi } from "../../runtime/boot/acpi/mod.ts";
import { samplePlan } from "../../runtime/boot/acpi/testing.ts";
import type { Plan } from "../../plan/types.ts";
import { skipReason } from "../skip.ts";

// iasl is a test dependency (CI installs acpica-tools, and counts a skip as a failure).
const IGNORE = skipReason("ACPI iasl tests", { tools: ["iasl", "acpiexec"] }) !== null;

const PROBLEM = /error|warning|incorrect|invalid|should be|unknown|not found|failure/i;

async function run(cmd: string, args: string[], cwd: string) {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/** Lines of tool output that report a problem (banner and summary lines excluded). */
function problems(text: string): string[] {
  return text.split("\n").filter((l) =>
    PROBLEM.test(l) && !/^Compilation successful\. 0 Errors, 0 Warnings/.test(l.trim()) &&
    !/ASL\+ Optimizing Compiler\/Disassembler/.test(l)
  );
}

async function withTempDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-acpi-" });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function hex(n: number, width: number): string {
  return n.toString(16).toUpperCase().padStart(width, "0");
}

/** Disassembles every table but the RSDP; returns the .dsl text by signature. */
async function disassemble(dir: string, plan: Plan): Promise<Map<string, string>> {
  const build = buildAcpi(plan);
  const dsl = new Map<string, string>();
  for (const t of build.tables) {
    if (t.signature === "RSDP") continue;
    const file = `${t.signature.toLowerCase()}.dat`;
    await Deno.writeFile(`${dir}/${file}`, t.bytes);
    const r = await run("iasl", ["-d", file], dir);
    assertEquals(r.code, 0, `iasl -d ${file} failed:\n${r.text}`);
    const text = await Deno.readTextFile(`${dir}/${t.signature.toLowerCase()}.dsl`);
    const bad = [...problems(r.text), ...problems(text)];
    assertEquals(bad, [], `iasl reports problems in ${t.signature}:\n${bad.join("\n")}`);
    dsl.set(t.signature, text);
  }
  return dsl;
}

const PLANS: [string, () => Plan][] = [
  ["2 vCPUs, buses 0..255, mmio64, i8042", () => samplePlan()],
  [
    "4 vCPUs, buses 16..31, no mmio64, no sleep registers",
    () => samplePlan({ cpus: 4, busStart: 16, busEnd: 31, mmio64: false, sleep: false }),
  ],
];

for (const [label, make] of PLANS) {
  Deno.test({
    name: `acpi: iasl disassembles every table without complaint (${label})`,
    ignore: IGNORE,
    fn: () =>
      withTempDir(async (dir) => {
        const plan = make();
        const dsl = await disassemble(dir, plan);
        const ecam = plan.hole!.ecam!;

        // MCFG: exactly the Plan's window (its base counted from bus 0, as the spec says).
        const mcfg = dsl.get("MCFG")!;
        const bus0 = ecam.base - ecam.bus_start * 0x10_0000;
        assertMatch(mcfg, new RegExp(`Base Address : ${hex(bus0, 16)}`));
        assertMatch(mcfg, /Segment Group Number : 0000/);
        assertMatch(mcfg, new RegExp(`Start Bus Number : ${hex(ecam.bus_start, 2)}`));
        assertMatch(mcfg, new RegExp(`End Bus Number : ${hex(ecam.bus_end, 2)}`));

        // MADT: one local APIC per vCPU, the IOAPIC, both overrides.
        const madt = dsl.get("APIC")!;
        assertEquals(madt.match(/\[Processor Local APIC\]/g)?.length, plan.cpus.count);
        assertMatch(madt, /\[I\/O APIC\]/);
        assertMatch(madt, new RegExp(`Address : ${hex(plan.platform.ioapic.base, 8)}`));
        assertEquals(madt.match(/\[Interrupt Source Override\]/g)?.length, 2);
        assertMatch(madt, /\[Local APIC NMI\]/);

        // FADT: hardware-reduced, DSDT reachable.
        const fadt = dsl.get("FACP")!;
        assertMatch(fadt, /Hardware Reduced \(V5\) : 1/);
        assertMatch(fadt, new RegExp(`SCI Interrupt : ${hex(plan.acpi!.sci_irq, 4)}`));
        // ... and its sleep registers: the acpi_sleep device's two ports, or none.
        const sleep = plan.devices.find((d) => d.kind === "acpi_sleep");
        const sleepRegs = [...fadt.matchAll(
          /(Sleep (?:Control|Status) Register) : \[Generic Address Structure\][^\n]*\n.*?Space ID : (\w+).*?\n.*?Bit Width : (\w+)[\s\S]*?Address : (\w+)/g,
        )].map((m) => [m[1], m[2], m[3], Number(`0x${m[4]}`)]);
        assertEquals(sleepRegs, [
          [
            "Sleep Control Register",
            sleep ? "01" : "00",
            sleep ? "08" : "00",
            sleep?.ports[0].base ?? 0,
          ],
          [
            "Sleep Status Register",
            sleep ? "01" : "00",
            sleep ? "08" : "00",
            sleep ? sleep.ports[0].base + 1 : 0,
          ],
        ]);

        // DSDT: the PCIe root bridge with the Plan's bus range and windows, and COM1.
        const dsdt = dsl.get("DSDT")!;
        assertMatch(dsdt, /EisaId \("PNP0A08"\)/);
        assertMatch(dsdt, /EisaId \("PNP0A03"\)/);
        assertMatch(dsdt, /EisaId \("PNP0501"\)/);
        assertMatch(dsdt, /EisaId \("PNP0C02"\)/);
        assertMatch(dsdt, /Name \(_SEG, Zero\)/);
        assertMatch(dsdt, new RegExp(`${hex(ecam.bus_end, 4)},\\s+// Range Maximum`));
        assertMatch(dsdt, new RegExp(`${hex(plan.hole!.mmio32.base, 8)},\\s+// Range Minimum`));
        assertMatch(dsdt, /0x03F8,\s+\/\/ Range Minimum/);
        // \_S5 (soft-off) at the root when the machine has sleep registers, with SLP_TYP 5.
        if (sleep) assertMatch(dsdt, /Name \(\\_S5, Package \(0x01\)[^{]*\{\s*0x05\s*\}\)/);
        else assert(!/_S5/.test(dsdt), "no \\_S5 without sleep registers");
        for (const sig of ["DSDT", "FACP", "APIC", "MCFG", "XSDT"]) {
          assertMatch(dsl.get(sig)!, /"VMDESC"/, `${sig} carries the OEM id`);
        }

        // The DSDT's disassembly compiles again without errors or warnings.
        const re = await run("iasl", ["-p", "recompiled", "dsdt.dsl"], dir);
        assertEquals(re.code, 0, re.text);
        assertMatch(re.text, /0 Errors, 0 Warnings/);
      }),
  });
}

Deno.test({
  name: "acpi: the RSDP matches iasl's own compilation of the same fields",
  ignore: IGNORE,
  fn: () =>
    withTempDir(async (dir) => {
      const build = buildAcpi(samplePlan());
      const ours = build.tables.find((t) => t.signature === "RSDP")!.bytes;
      const xsdt = build.tables.find((t) => t.signature === "XSDT")!.addr;
      // iasl's data-table compiler fills in both checksums itself.
      const src = [
        '[0008]                          Signature : "RSD PTR "',
        "[0001]                           Checksum : 00",
        '[0006]                             Oem ID : "VMDESC"',
        "[0001]                           Revision : 02",
        "[0004]                       RSDT Address : 00000000",
        "[0004]                             Length : 00000024",
        `[0008]                       XSDT Address : ${hex(xsdt, 16)}`,
        "[0001]                  Extended Checksum : 00",
        "[0003]                           Reserved : 000000",
        "",
      ].join("\n");
      await Deno.writeTextFile(`${dir}/rsdp.asl`, src);
      const r = await run("iasl", ["rsdp.asl"], dir);
      assertEquals(r.code, 0, r.text);
      const theirs = await Deno.readFile(`${dir}/rsdp.aml`);
      assertEquals([...ours], [...theirs]);
    }),
});

Deno.test({
  name: "acpi: acpiexec loads all tables and evaluates the root bridge _CRS",
  ignore: IGNORE,
  fn: () =>
    withTempDir(async (dir) => {
      const plan = samplePlan();
      const build = buildAcpi(plan);
      const files: string[] = [];
      for (const t of build.tables) {
        if (t.signature === "RSDP") continue;
        const f = `${t.signature.toLowerCase()}.dat`;
        await Deno.writeFile(`${dir}/${f}`, t.bytes);
        files.push(f);
      }
      const r = await run(
        "acpiexec",
        ["-b", "evaluate \\_SB.PCI0._CRS; evaluate \\_S5", ...files],
        dir,
      );
      assertEquals(r.code, 0, r.text);
      assertEquals(problems(r.text), [], r.text);
      assertMatch(r.text, /Evaluation of \\_SB\.PCI0\._CRS returned object/);
      assertMatch(
        r.text,
        /Evaluation of \\_S5 returned object[\s\S]*?\[Integer\] = 0000000000000005/,
      );
      assertMatch(r.text, /4 Devices/);
    }),
});

Deno.test({
  name: "acpi: the iasl check does catch a corrupted table (negative control)",
  ignore: IGNORE,
  fn: () =>
    withTempDir(async (dir) => {
      const mcfg = buildAcpi(samplePlan()).tables.find((t) => t.signature === "MCFG")!;
      const bytes = mcfg.bytes.slice();
      bytes[9] ^= 0x55;
      await Deno.writeFile(`${dir}/mcfg.dat`, bytes);
      const r = await run("iasl", ["-d", "mcfg.dat"], dir);
      const text = r.text + await Deno.readTextFile(`${dir}/mcfg.dsl`);
      assert(problems(text).length > 0, "a bad checksum must be reported");
    }),
});

Deno.test({
  name: "acpi: a machine without a PCI hole gets no MCFG and no root bridge, still clean",
  ignore: IGNORE,
  fn: () =>
    withTempDir(async (dir) => {
      const plan = samplePlan({ cpus: 1 });
      plan.hole = null;
      plan.pci = [];
      const dsl = await disassemble(dir, plan);
      assertEquals([...dsl.keys()].sort(), ["APIC", "DSDT", "FACP", "XSDT"]);
      const dsdt = dsl.get("DSDT")!;
      assert(!/PNP0A0[38]/.test(dsdt), "no PCI root bridge");
      assertMatch(dsdt, /EisaId \("PNP0501"\)/);
      const re = await run("iasl", ["-p", "recompiled", "dsdt.dsl"], dir);
      assertMatch(re.text, /0 Errors, 0 Warnings/);
    }),
});
