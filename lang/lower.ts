/**
 * Lowering a checked machine to a Plan v1: firmware-like placement with every address
 * explicit. The decisions (boot layout, ACPI addresses, BAR windows) are documented in
 * lang/README.md; the numbers live in lang/specs.ts, the placement rules checking shares in
 * lang/placement.ts. Checking has already refused anything that would not fit, so lowering
 * reports nothing: it only places.
 */
import type { ResolvedMachine } from "./check/model.ts";
import {
  ACPI_LAYOUT,
  ACPI_S5_SLEEP_TYPE,
  ACPI_SCI_IRQ,
  ACPI_SLEEP_PORTS,
  BOOT_LAYOUT,
  EBDA_START,
  HIGH_MEMORY,
  IDENTITY_MAP_ADDR,
  IOAPIC_BASE,
  LAPIC_BASE,
  MiB,
  PAGE,
  PCI_CONFIG_PORTS,
  PCI_IO_WINDOW,
  PLATFORM_REGIONS,
  TSS_ADDR,
} from "./specs.ts";
import {
  barWindows,
  ecamSize as ecamBytes,
  finalCmdline,
  hasShadowSlot,
  placeBars,
} from "./placement.ts";
import type {
  BarPlan,
  DevicePlan,
  E820Entry,
  HolePlan,
  Memslot,
  PciFunctionPlan,
  Plan,
} from "../plan/types.ts";
import { PLAN_VERSION } from "../plan/types.ts";

/**
 * Shadow ECAM: one memfd chunk of 0xff bytes mapped repeatedly, one bus (1 MiB) per
 * mapping: 256 maps for 256 buses, far below vm.max_map_count. The whole chunk ends up
 * resident (the kernel's fault-around maps neighbouring pages), so the chunk size is the
 * window's host cost: measured by bench/hole (Pss), 1 MiB keeps it well under 2 MiB.
 */
export const SHADOW_CHUNK = 1n * MiB;

const n = (v: bigint): number => Number(v);

export function lower(rm: ResolvedMachine, source: string | null): Plan {
  // ── memslots ──
  const memslots: Memslot[] = rm.ram.map((r, i) => ({
    slot: i,
    name: r.name,
    guest_phys: n(r.base),
    size: n(r.size),
    flags: [],
    backing: { kind: "anonymous" },
  }));

  // ── hole, ECAM and windows ──
  let hole: HolePlan | null = null;
  const e = rm.hole?.ecam ?? null;
  const ecamSize = e ? ecamBytes(e) : 0n;
  const windows = rm.hole && barWindows(rm.ram, rm.hole, rm.devices);
  if (rm.hole && windows) {
    const h = rm.hole;
    let shadowSlot: number | null = null;
    // The chunk is known under either strategy: `plan` shows what `shadow` would cost.
    // (An ECAM window is a whole number of 1 MiB buses, so the 1 MiB chunk always divides it.)
    const chunk = e ? SHADOW_CHUNK : 0n;
    const present = e
      ? rm.pci
        .filter((f) => f.bus >= e.busStart && f.bus <= e.busEnd)
        .map((f) => ({
          offset: ((f.bus - e.busStart) << 20) | (f.device << 15) | (f.function << 12),
          bdf: f.bdf,
        }))
        .sort((a, b) => a.offset - b.offset)
      : [];
    // The runtime's host bridge always presents 00:00.0 of the first bus (a synthetic
    // 1b36:0008 unless the machine declares that function), so under `shadow` it needs
    // its own config page too, or it would read as absent there and present under `trap`.
    if (e && !present.some((p) => p.offset === 0)) {
      const b = e.busStart.toString(16).padStart(2, "0");
      present.unshift({ offset: 0, bdf: `${b}:00.0` });
    }
    if (e && hasShadowSlot(h)) {
      shadowSlot = memslots.length;
      memslots.push({
        slot: shadowSlot,
        name: "ecam-shadow",
        guest_phys: n(e.base),
        size: n(ecamSize),
        flags: ["readonly"],
        backing: { kind: "ones_alias", chunk_size: n(chunk), present },
      });
    }
    hole = {
      base: n(h.base),
      size: n(h.size),
      strategy: h.strategy,
      ecam: e
        ? {
          base: n(e.base),
          size: n(ecamSize),
          segment: 0,
          bus_start: e.busStart,
          bus_end: e.busEnd,
          shadow_slot: shadowSlot,
        }
        : null,
      mmio32: { base: n(windows.mem32.base), size: n(windows.mem32.size) },
      mmio64: windows.mem64 ? { base: n(windows.mem64.base), size: n(windows.mem64.size) } : null,
      io: { ...PCI_IO_WINDOW },
      // trap costs no host memory; shadow costs one chunk plus a page per present function.
      host_cost: {
        trap: 0,
        shadow: e ? n(chunk) + present.length * n(PAGE) : 0,
      },
    };
  }

  // ── devices ──
  // Checking placed every virtio-mmio page (lang/placement.ts placeVirtioMmio).
  const devices: DevicePlan[] = rm.devices.map((d) => ({
    id: d.id,
    kind: d.kind,
    ports: d.ports.map((p) => ({ base: p.base, size: p.size })),
    mmio: d.mmio?.base != null ? [{ base: n(d.mmio.base), size: n(d.mmio.size) }] : [],
    irq: d.irq,
    props: d.props,
    ...(d.virtio ? { virtio: d.virtio } : {}),
  }));
  if (rm.hole) {
    devices.push({
      id: "pci_host",
      kind: "pci_host",
      ports: [{ ...PCI_CONFIG_PORTS }],
      // Both strategies: under shadow, reads of the window hit the read-only slot but
      // writes still exit, and the bridge owns them.
      mmio: e ? [{ base: n(e.base), size: n(ecamSize) }] : [],
      irq: null,
      props: { strategy: rm.hole.strategy },
    });
  }

  if (rm.acpi) {
    // The ACPI sleep registers (how the guest powers off); checking kept them free.
    devices.push({
      id: "acpi_sleep",
      kind: "acpi_sleep",
      ports: [{ ...ACPI_SLEEP_PORTS }],
      mmio: [],
      irq: null,
      props: { s5_type: ACPI_S5_SLEEP_TYPE },
    });
  }

  // ── PCI functions and BARs ──
  const barAddr = windows ? placeBars(rm.pci, windows).at : new Map();
  const multi = new Set<string>();
  const byDev = new Map<string, number>();
  for (const f of rm.pci) {
    const k = `${f.bus}:${f.device}`;
    byDev.set(k, (byDev.get(k) ?? 0) + 1);
  }
  for (const [k, c] of byDev) if (c > 1) multi.add(k);
  const pci: PciFunctionPlan[] = rm.pci
    .slice()
    .sort((a, b) => a.bus - b.bus || a.device - b.device || a.function - b.function)
    .map((f) => ({
      bdf: f.bdf,
      segment: f.segment,
      bus: f.bus,
      device: f.device,
      function: f.function,
      kind: f.kind,
      vendor_id: f.vendor_id,
      device_id: f.device_id,
      class_code: f.class_code,
      revision: f.revision,
      subsystem_vendor_id: f.subsystem_vendor_id,
      subsystem_id: f.subsystem_id,
      header_type: f.function === 0 && multi.has(`${f.bus}:${f.device}`) ? 0x80 : 0,
      bars: f.bars.map((b): BarPlan => ({
        index: b.index,
        kind: b.kind,
        size: n(b.size),
        address: n(barAddr.get(b) ?? 0n),
        prefetchable: b.prefetchable,
      })),
      interrupt_pin: f.interrupt_pin,
      irq: f.irq,
      props: f.props,
      ...(f.virtio ? { virtio: f.virtio } : {}),
    }));

  const b = rm.boot;

  // ── e820 ──
  const e820: E820Entry[] = [];
  for (const r of rm.ram) {
    const lo = r.base;
    const hi = r.base + r.size;
    // Keep 0x9FC00 .. 1 MiB (EBDA, VGA, BIOS area) out of usable RAM.
    const holeLo = BigInt(EBDA_START);
    const holeHi = BigInt(HIGH_MEMORY);
    if (lo < holeLo) {
      e820.push({ addr: n(lo), size: n((hi < holeLo ? hi : holeLo) - lo), type: "ram" });
    }
    const from = lo > holeHi ? lo : holeHi;
    if (hi > from) e820.push({ addr: n(from), size: n(hi - from), type: "ram" });
  }
  if (rm.acpi) {
    e820.push({
      addr: ACPI_LAYOUT.rsdp_addr,
      size: ACPI_LAYOUT.tables_addr - ACPI_LAYOUT.rsdp_addr,
      type: "reserved",
    });
    e820.push({ addr: ACPI_LAYOUT.tables_addr, size: ACPI_LAYOUT.tables_size, type: "acpi" });
  }
  if (e) e820.push({ addr: n(e.base), size: n(ecamSize), type: "reserved" });
  for (const p of PLATFORM_REGIONS) {
    e820.push({ addr: n(p.base), size: n(p.size), type: "reserved" });
  }
  e820.sort((x, y) => x.addr - y.addr);

  return {
    version: PLAN_VERSION,
    machine: rm.name,
    source,
    cpus: { count: rm.cpus, cpuid: { source: "kvm-supported", hide: rm.cpuidHide } },
    platform: {
      irqchip: "kernel",
      pit: true,
      tss_addr: n(TSS_ADDR),
      identity_map_addr: n(IDENTITY_MAP_ADDR),
      ioapic: { id: 0, base: n(IOAPIC_BASE), gsi_base: 0, pins: 24 },
      lapic_base: n(LAPIC_BASE),
    },
    memslots,
    hole,
    devices,
    pci,
    boot: {
      protocol: b.protocol,
      path: b.path,
      // Without ACPI, the guest learns of virtio-mmio devices from the command line.
      cmdline: finalCmdline(b, rm.devices, rm.acpi),
      initrd: b.initrd,
      load_address: b.load === null ? null : n(b.load),
      entry: b.entry === null ? null : n(b.entry),
      cpu_mode: b.mode,
      layout: {
        info_addr: BOOT_LAYOUT.info_addr,
        cmdline_addr: BOOT_LAYOUT.cmdline_addr,
        cmdline_max: BOOT_LAYOUT.cmdline_max,
        memmap_addr: BOOT_LAYOUT.memmap_addr,
        gdt_addr: BOOT_LAYOUT.gdt_addr,
        page_tables_addr: BOOT_LAYOUT.page_tables_addr,
        stack_top: BOOT_LAYOUT.stack_top,
      },
    },
    e820,
    acpi: rm.acpi
      ? {
        oem_id: "VMDESC",
        oem_table_id: "VMDESCPL",
        rsdp_addr: ACPI_LAYOUT.rsdp_addr,
        tables_addr: ACPI_LAYOUT.tables_addr,
        tables_size: ACPI_LAYOUT.tables_size,
        sci_irq: ACPI_SCI_IRQ,
      }
      : null,
  };
}
