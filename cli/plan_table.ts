/**
 * A Plan as text a person reads: aligned tables with hex addresses and human sizes.
 * Pure (a view of the Plan; nothing here decides anything).
 *
 * Ranges print as `first-last` with an inclusive end, the way Linux prints e820 and
 * resource maps, so they can be compared with what a guest reports.
 */
import type { BarPlan, MemslotBacking, Plan, PropValue, Range, VirtioPlan } from "../plan/types.ts";

// ── number formatting (shared with svg.ts) ─────────────────────────────────

/** `0xC000_0000`: upper-case hex in groups of four, at least `minDigits` digits. */
export function hex(n: number, minDigits = 1): string {
  let s = Math.trunc(n).toString(16).toUpperCase().padStart(minDigits, "0");
  const groups: string[] = [];
  while (s.length > 4) {
    groups.unshift(s.slice(-4));
    s = s.slice(0, -4);
  }
  groups.unshift(s);
  return "0x" + groups.join("_");
}

/** Guest-physical address: 8 digits below 4 GiB so columns line up, more above. */
export function addr(n: number): string {
  return hex(n, 8);
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** `128 MiB`, `4 KiB`, `1.5 GiB`, `32 B`: the largest unit that reads well. */
export function size(n: number): string {
  if (n < 1024) return `${n} B`;
  let u = 0;
  let v = n;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (Number.isInteger(v)) return `${v} ${UNITS[u]}`;
  // Not a whole number of this unit: two decimals, or the exact smaller unit when short.
  const smaller = n / 1024 ** (u - 1);
  if (Number.isInteger(smaller) && smaller < 10_000) return `${smaller} ${UNITS[u - 1]}`;
  const r = v.toFixed(2).replace(/\.?0+$/, "");
  return `${Number(r) === v ? "" : "~"}${r} ${UNITS[u]}`;
}

/** `0xC000_0000-0xFFFF_FFFF` (inclusive end). */
export function memRange(base: number, length: number): string {
  return `${addr(base)}-${addr(base + length - 1)}`;
}

export function portRange(r: Range): string {
  return r.size === 1 ? hex(r.base) : `${hex(r.base)}-${hex(r.base + r.size - 1)}`;
}

// ── tables ─────────────────────────────────────────────────────────────────

/** Left-aligned columns separated by two spaces; no trailing blanks. */
export function table(header: string[], rows: string[][], indent = "  "): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    (indent + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  "))
      .trimEnd() + "\n";
  return line(header) + rows.map(line).join("");
}

/** A virtio device's backing, as the props column shows it. */
function virtioBacking(v: VirtioPlan | undefined): string[] {
  if (!v) return [];
  const b = v.backing;
  if (b.kind === "getrandom") return ["getrandom"];
  if (b.kind === "console") return []; // output= and input= are its props
  if (b.kind === "tap") {
    return [`tap=${/^[\w.-]+$/.test(b.tap) ? b.tap : JSON.stringify(b.tap)}`, `mac=${b.mac}`];
  }
  const parts = [`file=${/^[\w./:-]+$/.test(b.path) ? b.path : JSON.stringify(b.path)}`];
  if (b.readonly) parts.push("readonly");
  if (b.serial) parts.push(`serial=${JSON.stringify(b.serial)}`);
  return parts;
}

/** A virtio function's backing and settings (a console's output= and input=). */
function virtioColumn(v: VirtioPlan, p: Record<string, PropValue>): string {
  return [...virtioBacking(v), ...(Object.keys(p).length ? [props(p)] : [])].join(" ");
}

function virtioVectors(v: VirtioPlan): string {
  return v.transport.kind === "pci" ? `${v.transport.msix.vectors} vectors` : "";
}

function props(p: Record<string, PropValue>, virtio?: VirtioPlan): string {
  const keys = Object.keys(p).sort();
  const extra = virtioBacking(virtio);
  if (!keys.length) return extra.length ? extra.join(" ") : "-";
  return keys.map((k) => {
    const v = p[k];
    const s = typeof v === "number"
      ? (Number.isInteger(v) && v > 9 ? hex(v) : String(v))
      : typeof v === "string"
      ? (/^[\w./:-]+$/.test(v) ? v : JSON.stringify(v))
      : String(v);
    return `${k}=${s}`;
  }).concat(extra).join(" ");
}

function backing(b: MemslotBacking): string {
  switch (b.kind) {
    case "anonymous":
      return "anonymous RAM";
    case "file":
      return `file ${b.path}${b.offset ? ` @${hex(b.offset)}` : ""}`;
    case "ones_alias": {
      const n = b.present.length;
      return `all-ones alias, ${size(b.chunk_size)} chunks, ${n} present page${n === 1 ? "" : "s"}`;
    }
  }
}

function bar(b: BarPlan): string {
  const kind = b.kind === "io" ? "io" : `${b.kind}${b.prefetchable ? " pf" : ""}`;
  const where = b.kind === "io"
    ? portRange({ base: b.address, size: b.size })
    : memRange(b.address, b.size);
  return `BAR${b.index} ${kind} ${where} (${b.kind === "io" ? `${b.size} ports` : size(b.size)})`;
}

function id16(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** The whole Plan as text: sections for each part, in the order a reader needs them. */
export function planTable(plan: Plan): string {
  let s = `machine ${plan.machine}${
    plan.source ? `  (${plan.source})` : ""
  }  Plan v${plan.version}\n\n`;

  const hide = plan.cpus.cpuid.hide.length ? plan.cpus.cpuid.hide.join(", ") : "nothing";
  const pf = plan.platform;
  s += "cpus and platform\n";
  s += table(["what", "value"], [
    ["vCPUs", `${plan.cpus.count} (CPUID from ${plan.cpus.cpuid.source}, hiding ${hide})`],
    ["irqchip", `${pf.irqchip}, PIT ${pf.pit ? "on" : "off"}`],
    [
      "IOAPIC",
      `id ${pf.ioapic.id} at ${
        addr(pf.ioapic.base)
      }, ${pf.ioapic.pins} pins from GSI ${pf.ioapic.gsi_base}`,
    ],
    ["LAPIC", addr(pf.lapic_base)],
    ["TSS", `${addr(pf.tss_addr)} (3 pages), identity map ${addr(pf.identity_map_addr)}`],
  ]);

  s += "\nmemslots\n";
  s += plan.memslots.length
    ? table(
      ["slot", "name", "guest physical (inclusive)", "size", "flags", "backing"],
      plan.memslots.map((m) => [
        String(m.slot),
        m.name,
        memRange(m.guest_phys, m.size),
        size(m.size),
        m.flags.length ? m.flags.join(",") : "-",
        backing(m.backing),
      ]),
    )
    : "  (none)\n";
  const ram = plan.memslots.filter((m) => m.backing.kind === "anonymous").reduce(
    (a, m) => a + m.size,
    0,
  );
  s += `  guest RAM: ${size(ram)}\n`;

  s += "\nPCI hole\n";
  const h = plan.hole;
  if (!h) s += "  (none)\n";
  else {
    const rows: string[][] = [
      ["hole", memRange(h.base, h.size), size(h.size), `strategy ${h.strategy}`],
    ];
    if (h.ecam) {
      const e = h.ecam;
      rows.push([
        "ECAM",
        memRange(e.base, e.size),
        size(e.size),
        `segment ${e.segment}, buses ${e.bus_start}..${e.bus_end}` +
        (e.shadow_slot !== null ? `, shadow memslot ${e.shadow_slot}` : ", trapped (no memslot)"),
      ]);
    }
    rows.push([
      "MMIO32",
      memRange(h.mmio32.base, h.mmio32.size),
      size(h.mmio32.size),
      "32-bit BAR window",
    ]);
    if (h.mmio64) {
      rows.push([
        "MMIO64",
        memRange(h.mmio64.base, h.mmio64.size),
        size(h.mmio64.size),
        "64-bit BAR window",
      ]);
    }
    rows.push(["I/O", portRange(h.io), `${h.io.size} ports`, "I/O BAR window"]);
    s += table(["part", "range (inclusive)", "size", "notes"], rows);
    const used = h.strategy === "shadow" ? h.host_cost.shadow : h.host_cost.trap;
    s += `  host memory for the hole: ${size(used)} under ${h.strategy}` +
      ` (trap: ${size(h.host_cost.trap)}, shadow: ${size(h.host_cost.shadow)})\n`;
  }

  s += "\ndevices\n";
  s += plan.devices.length
    ? table(
      ["id", "kind", "ports", "MMIO", "IRQ", "props"],
      plan.devices.map((d) => [
        d.id,
        d.kind,
        d.ports.length ? d.ports.map(portRange).join(", ") : "-",
        d.mmio.length
          ? d.mmio.map((r) => `${memRange(r.base, r.size)} (${size(r.size)})`).join(", ")
          : "-",
        d.irq === null ? "-" : String(d.irq),
        props(d.props, d.virtio),
      ]),
    )
    : "  (none)\n";

  s += "\nPCI functions\n";
  if (!plan.pci.length) s += "  (none)\n";
  else {
    const rows: string[][] = [];
    for (const f of plan.pci) {
      const bars = f.bars.length ? f.bars.map(bar) : ["-"];
      const pin = f.interrupt_pin ? `INT${"ABCD"[f.interrupt_pin - 1]}` : "";
      const irq = f.irq === null ? (pin || "-") : `${pin ? pin + " " : ""}GSI ${f.irq}`;
      rows.push([
        `${f.segment ? f.segment.toString(16).padStart(4, "0") + ":" : ""}${f.bdf}`,
        f.kind,
        `${id16(f.vendor_id)}:${id16(f.device_id)}`,
        f.class_code.toString(16).padStart(6, "0"),
        String(f.revision),
        irq,
        bars[0],
        f.virtio ? `MSI-X ${virtioVectors(f.virtio)}, ${virtioColumn(f.virtio, f.props)}` : "",
      ]);
      for (const b of bars.slice(1)) rows.push(["", "", "", "", "", "", b, ""]);
    }
    s += table(["BDF", "kind", "vendor:device", "class", "rev", "IRQ", "BARs", "virtio"], rows);
  }

  s += "\ne820\n";
  s += table(
    ["range (inclusive)", "size", "type"],
    plan.e820.map((e) => [memRange(e.addr, e.size), size(e.size), e.type]),
  );

  const b = plan.boot;
  s += "\nboot\n";
  const bootRows: string[][] = [
    ["protocol", b.protocol],
    ["payload", b.path],
    ["cmdline", b.cmdline ? JSON.stringify(b.cmdline) : "(empty)"],
  ];
  if (b.initrd !== null) bootRows.push(["initrd", b.initrd]);
  if (b.load_address !== null) bootRows.push(["load", addr(b.load_address)]);
  if (b.entry !== null) bootRows.push(["entry", addr(b.entry)]);
  if (b.cpu_mode !== null) bootRows.push(["cpu mode", b.cpu_mode]);
  const l = b.layout;
  bootRows.push(
    ["start info", addr(l.info_addr)],
    ["cmdline at", `${addr(l.cmdline_addr)} (max ${l.cmdline_max} bytes)`],
    ["memmap", addr(l.memmap_addr)],
    ["GDT", addr(l.gdt_addr)],
    ["page tables", addr(l.page_tables_addr)],
    ["stack top", addr(l.stack_top)],
  );
  s += table(["what", "value"], bootRows);

  s += "\nACPI\n";
  const a = plan.acpi;
  s += a
    ? table(["what", "value"], [
      ["OEM", `${JSON.stringify(a.oem_id)} / ${JSON.stringify(a.oem_table_id)}`],
      ["RSDP", addr(a.rsdp_addr)],
      ["tables", `${memRange(a.tables_addr, a.tables_size)} (${size(a.tables_size)})`],
      ["SCI", `GSI ${a.sci_irq}`],
    ])
    : "  (none)\n";
  return s;
}
