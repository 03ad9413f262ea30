/**
 * `vmdesc plan FILE [--machine NAME] [--format table|json|svg] [--svg OUT.svg]`: what a
 * machine lowers to. A table by default, the Plan itself as JSON (`--json` is an alias),
 * a memory-map picture as SVG (on stdout, or into a file with `--svg`).
 * Any error in the file: the diagnostics (on stderr), no Plan, exit 1.
 */
import { suggest } from "./args.ts";
import { DenoHost } from "./host.ts";
import {
  chosenFormat,
  err,
  failure,
  out,
  printDiagnostics,
  startCommand,
  usageError,
  writeOutput,
} from "./output.ts";
import { readInput, reportUnreadable } from "./input.ts";
import { compile } from "../lang/compile.ts";
import { withOhmOnDemand } from "../lang/ohm_on_demand.ts";
import { counts } from "../lang/diagnostics/report.ts";
import { planTable } from "./plan_table.ts";
import { planSvg } from "./plan_svg.ts";
import type { Plan } from "../plan/types.ts";

export const HELP = `Show the Plan a machine lowers to.

Usage: vmdesc plan [options] FILE

  FILE              a .vmdesc file; '-' reads standard input

Options:
  --format table|json|svg
                    table (default; also: text): memslots, hole, devices, PCI,
                      e820, boot
                    json: the Plan (version 1, schema in plan/schema.json;
                      stable key order; no "$schema" key)
                    svg: a picture of the guest physical memory map
  --json            the same as --format json
  --machine NAME    the machine to show (needed with json/svg when the file
                    defines several; the table shows them all)
  --svg OUT.svg     also write the memory map picture to OUT.svg
  --no-color        no colors in diagnostics (also NO_COLOR=1)
  -h, --help        show this help

Errors in the file are reported as diagnostics (see 'vmdesc check') and no Plan
is printed. Exit status: 0 ok, 1 errors, 2 usage error.
`;

export async function run(args: string[]): Promise<number> {
  const parsed = startCommand("plan", args, {
    machine: { type: "string", short: "m" },
    format: { type: "string" },
    json: { type: "boolean" },
    svg: { type: "string" },
  }, HELP);
  if (typeof parsed === "number") return parsed;
  if (parsed.positionals.length !== 1) {
    return usageError(
      {
        message: parsed.positionals.length ? "plan takes one file" : "no input file",
        hint: "vmdesc plan FILE [--machine NAME]",
      },
      "plan",
    );
  }
  const machine = parsed.flags.machine as string | undefined;
  let format = chosenFormat("plan", parsed, ["table", "json", "svg"], { text: "table" });
  if (typeof format === "number") return format;
  if (parsed.flags.json === true) {
    if (parsed.flags.format !== undefined && format !== "json") {
      return usageError({
        message: `--json and --format ${parsed.flags.format} ask for two formats`,
        hint: "--json is short for --format json; give one of them",
      }, "plan");
    }
    format = "json";
  }
  const svgPath = parsed.flags.svg as string | undefined;

  const host = new DenoHost();
  const input = await readInput(parsed.positionals[0], host);
  if ("error" in input) {
    reportUnreadable(parsed.positionals[0], input.error);
    return 2;
  }
  const result = await withOhmOnDemand(() =>
    compile(input.text, { file: input.name, host, machine })
  );
  const n = counts(result.diagnostics);
  if (n.error > 0) {
    await printDiagnostics(result.diagnostics, host.source);
    return 1;
  }
  // Warnings do not stop a Plan, but the user should still see them (on stderr, so
  // `plan --json > plan.json` stays clean).
  if (result.diagnostics.length) {
    await printDiagnostics(result.diagnostics, host.source);
  }

  let plans: Plan[] = [...result.plans.values()];
  if (machine !== undefined) plans = plans.filter((p) => p.machine === machine);
  if (plans.length === 0) {
    // compile() reports an unknown --machine itself; this covers a file with no machine.
    const names = [...result.plans.keys()];
    const best = machine ? suggest(machine, names) : null;
    failure(
      machine ? "E0105" : "E0404",
      machine
        ? `no machine named '${machine}' in ${input.name}`
        : `${input.name} defines no machine`,
      best ? `did you mean '${best}'?` : names.length ? `machines: ${names.join(", ")}` : null,
    );
    return 1;
  }
  if ((format !== "table" || svgPath) && plans.length > 1) {
    return usageError(
      {
        message: `${input.name} defines ${plans.length} machines; pick one for ${
          format !== "table" ? `--format ${format}` : "--svg"
        }`,
        hint: `add --machine with one of: ${plans.map((p) => p.machine).join(", ")}`,
      },
      "plan",
    );
  }

  if (
    svgPath &&
    !(await writeOutput(svgPath, planSvg(plans[0]), "check the directory exists and is writable"))
  ) {
    return 1;
  }
  if (format === "json") out(planJson(plans[0]));
  else if (format === "svg") out(planSvg(plans[0]));
  else if (!svgPath) out(plans.map(planTable).join("\n"));
  if (svgPath) err(`wrote ${svgPath} (machine ${plans[0].machine})\n`);
  return 0;
}

/**
 * The Plan as JSON: 2-space indent, trailing newline, and keys in the order
 * `plan/types.ts` declares them (whatever order lowering built the objects in), so
 * the output and the golden files only change when the Plan does. Free-form maps
 * (`props`) are sorted by key.
 */
export function planJson(plan: Plan): string {
  return JSON.stringify(canonical(plan), null, 2) + "\n";
}

/** Field orders of every object type in Plan v1, as declared in plan/types.ts. */
const ORDERS: string[][] = [
  [
    "$schema",
    "version",
    "machine",
    "source",
    "cpus",
    "platform",
    "memslots",
    "hole",
    "devices",
    "pci",
    "boot",
    "e820",
    "acpi",
  ],
  ["count", "cpuid"],
  ["source", "hide"],
  ["irqchip", "pit", "tss_addr", "identity_map_addr", "ioapic", "lapic_base"],
  ["id", "base", "gsi_base", "pins"],
  ["slot", "name", "guest_phys", "size", "flags", "backing"],
  ["kind", "path", "offset"],
  ["kind", "chunk_size", "present"],
  ["offset", "bdf"],
  ["base", "size", "strategy", "ecam", "mmio32", "mmio64", "io", "host_cost"],
  ["trap", "shadow"],
  ["base", "size", "segment", "bus_start", "bus_end", "shadow_slot"],
  ["id", "kind", "ports", "mmio", "irq", "props", "virtio"],
  ["index", "kind", "size", "address", "prefetchable"],
  [
    "bdf",
    "segment",
    "bus",
    "device",
    "function",
    "kind",
    "vendor_id",
    "device_id",
    "class_code",
    "revision",
    "subsystem_vendor_id",
    "subsystem_id",
    "header_type",
    "bars",
    "interrupt_pin",
    "irq",
    "props",
    "virtio",
  ],
  ["device_type", "queue_sizes", "transport", "backing"],
  [
    "kind",
    "bar",
    "common_cfg",
    "isr_cfg",
    "device_cfg",
    "notify_cfg",
    "notify_off_multiplier",
    "msix",
  ],
  ["vectors", "table", "pba"],
  ["offset", "size"],
  ["kind", "version"],
  ["kind", "path", "readonly", "serial"],
  ["kind", "tap", "mac"],
  ["protocol", "path", "cmdline", "initrd", "load_address", "entry", "cpu_mode", "layout"],
  [
    "info_addr",
    "cmdline_addr",
    "cmdline_max",
    "memmap_addr",
    "gdt_addr",
    "page_tables_addr",
    "stack_top",
  ],
  ["addr", "size", "type"],
  ["oem_id", "oem_table_id", "rsdp_addr", "tables_addr", "tables_size", "sci_irq"],
  ["base", "size"],
];

function canonical(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => canonical(v));
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  let sorted: string[];
  if (key === "props") sorted = [...keys].sort();
  else {
    // The declared order that knows most of these keys; keys it does not know (a field
    // added to the Plan later) keep their place after the known ones.
    let best: string[] = [];
    let score = 0;
    for (const o of ORDERS) {
      const n = keys.filter((k) => o.includes(k)).length;
      if (n > score || (n === score && n > 0 && o.length < best.length)) {
        best = o;
        score = n;
      }
    }
    const known = keys.filter((k) => best.includes(k)).sort((a, b) =>
      best.indexOf(a) - best.indexOf(b)
    );
    sorted = [...known, ...keys.filter((k) => !best.includes(k))];
  }
  const out: Record<string, unknown> = {};
  for (const k of sorted) out[k] = canonical(obj[k], k);
  return out;
}
