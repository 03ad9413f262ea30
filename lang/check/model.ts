/**
 * The checked model: one machine after checking, every value evaluated and every span kept,
 * ready for lowering (lang/lower.ts) to place into a Plan. Checking (lang/check.ts and the
 * modules of this folder) builds it; nothing in it is left to default or validate.
 */
import type { Span } from "../diagnostics/types.ts";
import type {
  BarKind,
  BootProtocol,
  HoleStrategy,
  PciFunctionPlan,
  PropValue,
  VirtioPlan,
} from "../../plan/types.ts";

export interface RamRange {
  name: string;
  base: bigint;
  size: bigint;
  span: Span;
}

export interface ResolvedEcam {
  base: bigint;
  busStart: number;
  busEnd: number;
  span: Span;
}

export interface ResolvedHole {
  base: bigint;
  size: bigint;
  span: Span;
  strategy: HoleStrategy;
  ecam: ResolvedEcam | null;
}

export interface PortClaim {
  base: number;
  size: number;
  span: Span | null;
  owner: string;
}

export interface ResolvedDevice {
  id: string;
  kind: string;
  span: Span;
  ports: PortClaim[];
  /** A page of MMIO registers (virtio-mmio devices), or null. */
  mmio: MmioClaim | null;
  /** The GSI it raises; a virtio-mmio device without `irq` has null until placement. */
  irq: number | null;
  irqSpan: Span | null;
  props: Record<string, PropValue>;
  /** Console-like devices: where `input` was written (lang/check/console.ts). */
  inputSpan?: Span;
  /** virtio-mmio devices: the Plan's virtio entry. */
  virtio?: VirtioPlan;
}

export interface MmioClaim {
  /** Guest-physical base: as written, or null until placement (lang/placement.ts) picks it. */
  base: bigint | null;
  size: bigint;
  /** Where the address was written (the device when it was not). */
  span: Span;
}

export interface ResolvedBar {
  index: number;
  kind: BarKind;
  size: bigint;
  prefetchable: boolean;
  span: Span;
}

/**
 * A PCI function as its Plan entry will be, before lowering adds what depends on the whole
 * machine (the header type, from its siblings; the BAR addresses, from placement).
 */
export interface ResolvedPci extends Omit<PciFunctionPlan, "header_type" | "bars"> {
  span: Span;
  bars: ResolvedBar[];
  irqSpan: Span | null;
  /** Console-like functions: where `input` was written (lang/check/console.ts). */
  inputSpan?: Span;
}

export interface ResolvedBoot {
  protocol: BootProtocol;
  /** As written (relative to the .vmdesc directory), or the --kernel override as given. */
  path: string;
  cmdline: string;
  initrd: string | null;
  load: bigint | null;
  entry: bigint | null;
  mode: "protected" | "real" | null;
  span: Span;
}

export interface ResolvedMachine {
  name: string;
  file: string;
  span: Span;
  cpus: number;
  cpuidHide: string[];
  ram: RamRange[];
  hole: ResolvedHole | null;
  devices: ResolvedDevice[];
  pci: ResolvedPci[];
  boot: ResolvedBoot;
  acpi: boolean;
}

export interface CheckOptions {
  holeStrategy?: HoleStrategy;
  kernel?: string;
  cmdline?: string;
}
