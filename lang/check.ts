/**
 * Checking one machine: merge its `extends` chain, evaluate every setting, and validate
 * it into a ResolvedMachine (plain numbers with spans) that lowering turns into a Plan.
 *
 * Every check here is linear or n log n (overlaps are found by sorting then sweeping).
 */
import type * as A from "./ast.ts";
import type { Label, Span } from "./diagnostics/types.ts";
import {
  type Diags,
  error,
  type EvalContext,
  evalExpr,
  hex,
  humanSize,
  type LangHost,
  type MachineSymbol,
  type Program,
  programContext,
  warning,
} from "./program.ts";
import {
  ACPI_SCI_IRQ,
  BAR_KINDS,
  BOOT_LAYOUT,
  BOOT_OPTIONS,
  BOOT_OPTIONS_BY_PROTOCOL,
  BOOT_PROTOCOLS,
  CPUID_FEATURES,
  DEFAULT_LOW_RAM_LIMIT,
  DEVICE_KINDS,
  EXCESS_BUSES,
  FOUR_GIB,
  HIGH_MEMORY,
  HOLE_PROPS,
  HOLE_STRUCTURED,
  LARGE_ECAM_BUSES,
  MACHINE_PROPS,
  MAX_CPUS,
  MiB,
  PAGE,
  PCI_CONFIG_PORTS,
  PCI_IO_WINDOW,
  PCI_KINDS,
  PLATFORM_IRQS,
  PLATFORM_PORTS,
  PLATFORM_REGIONS,
  PROBES_PER_BUS,
  type PropSpec,
  type PropTable,
  STRUCTURED_SETTINGS,
  UART_PORT_IRQ,
} from "./specs.ts";
import { suggest } from "./suggest.ts";
import type { HoleStrategy, PropValue } from "../plan/types.ts";
import { MAX_GUEST_PHYS } from "../plan/types.ts";
import { basename, dirname, relativePath } from "../plan/paths.ts";

const MAX_PHYS = BigInt(MAX_GUEST_PHYS);
/** Serial `output` values that name a stream, not a file. */
const SERIAL_STREAMS = new Set(["stdout", "stderr", "null"]);

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
  irq: number | null;
  irqSpan: Span | null;
  props: Record<string, PropValue>;
}

export interface ResolvedBar {
  index: number;
  kind: "mem32" | "mem64" | "io";
  size: bigint;
  prefetchable: boolean;
  span: Span;
}

export interface ResolvedPci {
  bdf: string;
  segment: number;
  bus: number;
  device: number;
  function: number;
  kind: string;
  span: Span;
  vendor_id: number;
  device_id: number;
  class_code: number;
  revision: number;
  subsystem_vendor_id: number;
  subsystem_id: number;
  bars: ResolvedBar[];
  interrupt_pin: number;
  irq: number | null;
  irqSpan: Span | null;
  props: Record<string, PropValue>;
}

export interface ResolvedBoot {
  protocol: "pvh" | "linux" | "flat";
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

// ── merging the extends chain ────────────────────────────────────────────

interface MergedBody {
  props: Map<string, A.Prop>;
  bars: Map<string, A.Bar>;
}

interface MergedDevice extends MergedBody {
  node: A.Device;
  id: string;
  kind: string;
}

interface MergedPci extends MergedBody {
  node: A.Pci;
  key: string;
  addr: { segment: number; bus: number; device: number; fn: number };
}

interface Merged {
  sym: MachineSymbol;
  props: Map<string, A.Prop>;
  ram: A.Prop[];
  hole: { node: A.PciHole; strategy: A.Prop | null; ecam: A.Ecam | null } | null;
  devices: Map<string, MergedDevice>;
  pci: Map<string, MergedPci>;
  boot: { node: A.Boot; options: Map<string, A.Prop> } | null;
  cpuid: A.Ident[];
}

/** The chain [root, ..., machine], or null on an unknown base / cycle (reported). */
function extendsChain(program: Program, sym: MachineSymbol, diags: Diags): MachineSymbol[] | null {
  const chain: MachineSymbol[] = [sym];
  const seen = new Set([sym.name]);
  let cur = sym;
  while (cur.node.base) {
    const baseName = cur.node.base.name;
    const base = program.machines.get(baseName);
    if (!base) {
      const s = suggest(baseName, program.machines.keys());
      diags.push(
        error(
          "E0105",
          `cannot find the machine \`${baseName}\` to extend`,
          cur.node.base.span,
          s
            ? `did you mean \`${s}\`?`
            : "define it in this file or import the file that defines it",
          [],
          s
            ? [{ title: `change to \`${s}\``, span: cur.node.base.span, replacement: s }]
            : undefined,
        ),
      );
      return null;
    }
    if (seen.has(baseName)) {
      // Report a cycle once, at its first machine in source order; a machine that only
      // leads into a cycle gets its own error.
      const order = [...chain].reverse().map((m) => m.name);
      const cycle = order.slice(order.indexOf(baseName));
      const members = cycle.map((n) => program.machines.get(n)!);
      const first = members.reduce((a, b) =>
        a.span.file < b.span.file || (a.span.file === b.span.file && a.span.start <= b.span.start)
          ? a
          : b
      );
      if (!cycle.includes(sym.name)) {
        diags.push(
          error(
            "E0106",
            `machine \`${sym.name}\` extends a machine in an extends cycle (${
              [...cycle, baseName].join(" → ")
            })`,
            sym.node.base!.span,
            "break the cycle",
          ),
        );
        return null;
      }
      if (first !== sym) return null;
      const names = [...cycle, baseName];
      diags.push(
        error(
          "E0106",
          `machine \`${sym.name}\` extends itself: ${names.join(" → ")}`,
          sym.node.base!.span,
          "break the cycle: a machine cannot be its own ancestor",
          cur === sym ? [] : [{
            span: cur.node.base.span,
            message: `\`${cur.name}\` extends \`${baseName}\` here`,
          }],
        ),
      );
      return null;
    }
    seen.add(baseName);
    chain.unshift(base);
    cur = base;
  }
  return chain;
}

function parsePciAddress(
  a: A.PciAddress,
  diags: Diags,
): { segment: number; bus: number; device: number; fn: number } | null {
  const m = /^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-9a-fA-F]+)$/.exec(
    a.raw,
  );
  const bad = (why: string) => {
    diags.push(
      error(
        "E0213",
        `invalid PCI address \`${a.raw}\`: ${why}`,
        a.span,
        "write BB:DD.F in hex: bus 00-ff, device 00-1f, function 0-7",
      ),
    );
    return null;
  };
  if (!m) return bad("expected BB:DD.F");
  const segment = m[1] ? parseInt(m[1], 16) : 0;
  const bus = parseInt(m[2], 16);
  const device = parseInt(m[3], 16);
  const fn = parseInt(m[4], 16);
  if (segment !== 0) return bad("only PCI segment 0 exists");
  if (device > 31) return bad(`device ${hex(device)} is above 0x1F`);
  if (fn > 7) return bad(`function ${fn} is above 7`);
  return { segment, bus, device, fn };
}

export function bdfString(bus: number, device: number, fn: number): string {
  return `${bus.toString(16).padStart(2, "0")}:${device.toString(16).padStart(2, "0")}.${
    fn.toString(16)
  }`;
}

/** Adds `body` props into `target`; repeated names in one body are E0305. */
function mergeBody(
  body: A.BodyItem[] | null,
  target: MergedBody,
  ctx: EvalContext,
  diags: Diags,
  where: string,
) {
  const seenProps = new Map<string, A.Prop>();
  const seenBars = new Map<string, A.Bar>();
  for (const item of body ?? []) {
    if (item.kind === "Prop") {
      const name = item.name.name;
      const prev = seenProps.get(name);
      if (prev) {
        diags.push(
          error(
            "E0305",
            `\`${name}\` is set twice in ${where}`,
            item.name.span,
            "keep one of them",
            [
              { span: prev.name.span, message: "first set here" },
            ],
          ),
        );
      }
      seenProps.set(name, item);
      target.props.set(name, item);
    } else {
      const idx = evalExpr(item.index, { ...ctx, diagnostics: [] });
      const key = idx === null ? `?${item.span.start}` : String(idx);
      const prev = seenBars.get(key);
      if (prev) {
        diags.push(
          error(
            "E0214",
            `BAR ${key} is declared twice in ${where}`,
            item.span,
            "each BAR index appears once",
            [
              { span: prev.span, message: "first declared here" },
            ],
          ),
        );
      }
      seenBars.set(key, item);
      target.bars.set(key, item);
    }
  }
}

function merge(chain: MachineSymbol[], ctx: EvalContext, diags: Diags): Merged {
  const m: Merged = {
    sym: chain[chain.length - 1],
    props: new Map(),
    ram: [],
    hole: null,
    devices: new Map(),
    pci: new Map(),
    boot: null,
    cpuid: [],
  };
  for (const sym of chain) {
    const block = sym.node;
    const seen = new Map<string, Span>(); // same-block repeats → W0007
    const seenDevices = new Map<string, A.Device>();
    const seenPci = new Map<string, A.Pci>();
    const blockRam: A.Prop[] = [];
    const overridden = (key: string, span: Span, what: string) => {
      const prev = seen.get(key);
      if (prev) {
        diags.push(
          warning(
            "W0007",
            `${what} is set again later in \`${block.name.name}\`; this one has no effect`,
            prev,
            "remove one of them",
            [
              { span, message: "this later setting wins" },
            ],
          ),
        );
      }
      seen.set(key, span);
    };
    for (const s of block.settings) {
      switch (s.kind) {
        case "Prop": {
          const name = s.name.name;
          if (name === "ram") {
            blockRam.push(s);
            break;
          }
          overridden(name, s.span, `\`${name}\``);
          m.props.set(name, s);
          break;
        }
        case "PciHole": {
          overridden("pci_hole", s.span, "`pci_hole`");
          const prev = m.hole;
          let strategy: A.Prop | null = prev?.strategy ?? null;
          let ecam: A.Ecam | null = prev?.ecam ?? null;
          const seenHole = new Map<string, Span>();
          for (const it of s.body ?? []) {
            const key = it.kind === "Ecam" ? "ecam" : it.name.name;
            const p = seenHole.get(key);
            const span = it.kind === "Ecam" ? it.span : it.name.span;
            if (p) {
              diags.push(
                error(
                  "E0305",
                  `\`${key}\` is set twice in this pci_hole`,
                  span,
                  "keep one of them",
                  [
                    { span: p, message: "first set here" },
                  ],
                ),
              );
            }
            seenHole.set(key, span);
            if (it.kind === "Ecam") ecam = it;
            else if (it.name.name === "strategy") strategy = it;
            else unknownProp(it, HOLE_PROPS, [...HOLE_STRUCTURED], "a pci_hole", diags);
          }
          m.hole = { node: s, strategy, ecam };
          break;
        }
        case "Device": {
          const id = (s.name ?? s.deviceKind).name;
          const prevSame = seenDevices.get(id);
          if (prevSame) {
            diags.push(
              error(
                "E0306",
                `two devices are named \`${id}\` in \`${block.name.name}\``,
                (s.name ?? s.deviceKind).span,
                `give one of them another name: \`device ${s.deviceKind.name} NAME { ... }\``,
                [{
                  span: (prevSame.name ?? prevSame.deviceKind).span,
                  message: "first device with this name",
                }],
              ),
            );
          }
          seenDevices.set(id, s);
          const prev = m.devices.get(id);
          const target: MergedDevice = prev && prev.kind === s.deviceKind.name
            ? { ...prev, node: s, props: new Map(prev.props), bars: new Map(prev.bars) }
            : { node: s, id, kind: s.deviceKind.name, props: new Map(), bars: new Map() };
          mergeBody(s.body, target, ctx, diags, `device \`${id}\``);
          m.devices.set(id, target);
          break;
        }
        case "Pci": {
          const addr = parsePciAddress(s.address, diags);
          if (!addr) break;
          const key = bdfString(addr.bus, addr.device, addr.fn);
          const prevSame = seenPci.get(key);
          if (prevSame) {
            diags.push(
              error(
                "E0204",
                `two PCI functions at ${key}`,
                s.address.span,
                "give each function its own bus:device.function",
                [
                  { span: prevSame.address.span, message: "first function at this address" },
                ],
              ),
            );
          }
          seenPci.set(key, s);
          const prev = m.pci.get(key);
          const target: MergedPci = prev && prev.node.deviceKind.name === s.deviceKind.name
            ? { ...prev, node: s, props: new Map(prev.props), bars: new Map(prev.bars) }
            : { node: s, key, addr, props: new Map(), bars: new Map() };
          mergeBody(s.body, target, ctx, diags, `PCI function ${key}`);
          m.pci.set(key, target);
          break;
        }
        case "Boot": {
          overridden("boot", s.span, "`boot`");
          const options = m.boot && m.boot.node.protocol.name === s.protocol.name
            ? new Map(m.boot.options)
            : new Map<string, A.Prop>();
          const tmp: MergedBody = { props: options, bars: new Map() };
          mergeBody(s.body, tmp, ctx, diags, "boot");
          for (const [, bar] of tmp.bars) {
            diags.push(
              error(
                "E0302",
                "`bar` is not a boot option",
                bar.span,
                "BARs belong to `pci` functions",
              ),
            );
          }
          m.boot = { node: s, options };
          break;
        }
        case "Cpuid":
          for (const it of s.items) m.cpuid.push(...it.features);
          break;
      }
    }
    if (blockRam.length) m.ram = blockRam;
  }
  return m;
}

// ── typed property values ────────────────────────────────────────────────

function typeName(v: A.Value): string {
  switch (v.kind) {
    case "String":
      return "a string";
    case "Bool":
      return "a boolean";
    case "Range":
      return v.form === "to" ? "a range" : "a sum";
    default:
      return "a number";
  }
}

export function evalInt(v: A.Value, ctx: EvalContext, what: string): bigint | null {
  if (v.kind === "Range" && v.form === "plus") {
    // `a + b` in a number position is plain addition, with the arithmetic's own checks.
    const sum: A.Binary = {
      kind: "Binary",
      op: "+",
      left: v.left,
      right: v.right,
      opSpan: v.span,
      span: v.span,
    };
    return evalExpr(sum, ctx);
  }
  if (v.kind === "String" || v.kind === "Bool" || v.kind === "Range") {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be a number, found ${typeName(v)}`,
        v.span,
        v.kind === "Range"
          ? "a range names a span of addresses; give its size or base as a number"
          : "write a number, e.g. 0x3f8, 4 or 128 MiB",
      ),
    );
    return null;
  }
  return evalExpr(v, ctx);
}

export function evalRange(
  v: A.Value,
  ctx: EvalContext,
  what: string,
): { base: bigint; size: bigint } | null {
  if (v.kind !== "Range") {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be a range, found ${typeName(v)}`,
        v.span,
        "write `base .. end` (end exclusive) or `base + size`",
      ),
    );
    return null;
  }
  const l = evalExpr(v.left, ctx);
  const r = evalExpr(v.right, ctx);
  if (l === null || r === null) return null;
  if (v.form === "to") {
    if (r <= l) {
      ctx.diagnostics.push(
        error(
          "E0211",
          `the range ${hex(l)} .. ${hex(r)} is ${r === l ? "empty" : "inverted"}`,
          v.span,
          "the end is exclusive and must be above the start",
        ),
      );
      return null;
    }
    return { base: l, size: r - l };
  }
  if (r === 0n) {
    ctx.diagnostics.push(
      error("E0211", `the range ${hex(l)} + 0 is empty`, v.span, "give it a size above 0"),
    );
    return null;
  }
  return { base: l, size: r };
}

function evalString(v: A.Value, ctx: EvalContext, what: string): string | null {
  if (v.kind !== "String") {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be a string in double quotes, found ${typeName(v)}`,
        v.span,
        "put the text in double quotes",
      ),
    );
    return null;
  }
  return v.value;
}

function evalOnOff(v: A.Value, ctx: EvalContext, what: string): boolean | null {
  if (v.kind === "Bool") return v.value;
  if (v.kind === "Name") {
    if (v.name === "on") return true;
    if (v.name === "off") return false;
    const s = suggest(v.name, ["on", "off"]);
    ctx.diagnostics.push(
      error(
        "E0304",
        `${what} is \`on\` or \`off\`, not \`${v.name}\``,
        v.span,
        s ? `did you mean \`${s}\`?` : "write `on` or `off`",
        [],
        s ? [{ title: `change to \`${s}\``, span: v.span, replacement: s }] : undefined,
      ),
    );
    return null;
  }
  ctx.diagnostics.push(
    error(
      "E0005",
      `${what} must be \`on\` or \`off\`, found ${typeName(v)}`,
      v.span,
      "write `on` or `off`",
    ),
  );
  return null;
}

function evalEnum<T extends string>(
  v: A.Value,
  values: readonly T[],
  ctx: EvalContext,
  what: string,
): T | null {
  const word = v.kind === "Name" ? v.name : v.kind === "String" ? v.value : null;
  if (word === null) {
    ctx.diagnostics.push(
      error(
        "E0005",
        `${what} must be one of ${values.join(", ")}; found ${typeName(v)}`,
        v.span,
        `write one of the words ${values.join(", ")}`,
      ),
    );
    return null;
  }
  if ((values as readonly string[]).includes(word)) return word as T;
  const s = suggest(word, values);
  ctx.diagnostics.push(
    error(
      "E0304",
      `\`${word}\` is not a valid ${what}`,
      v.span,
      s
        ? `did you mean \`${s}\`? (one of ${values.join(", ")})`
        : `use one of ${values.join(", ")}`,
      [],
      s ? [{ title: `change to \`${s}\``, span: v.span, replacement: s }] : undefined,
    ),
  );
  return null;
}

/** Checks an int against a spec's bounds (E0304). */
function inBounds(
  v: bigint | null,
  spec: PropSpec,
  span: Span,
  what: string,
  diags: Diags,
): bigint | null {
  if (v === null || spec.type.t !== "int") return v;
  const { min, max } = spec.type;
  if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
    // Small ranges (IRQ lines, bus numbers, byte values) read best in decimal; ports and
    // addresses in hex.
    const show = (x: bigint) => (max !== undefined && max <= 255n ? x.toString() : hex(x));
    diags.push(
      error(
        "E0304",
        `${what} ${show(v)} is out of range`,
        span,
        `it must be between ${show(min ?? 0n)} and ${show(max ?? 0n)}`,
      ),
    );
    return null;
  }
  return v;
}

function unknownProp(p: A.Prop, table: PropTable, extra: string[], where: string, diags: Diags) {
  const names = [...Object.keys(table), ...extra];
  const s = suggest(p.name.name, names);
  diags.push(
    error(
      "E0302",
      `\`${p.name.name}\` is not a property of ${where}`,
      p.name.span,
      s ? `did you mean \`${s}\`?` : `known here: ${names.join(", ")}`,
      [],
      s ? [{ title: `change to \`${s}\``, span: p.name.span, replacement: s }] : undefined,
    ),
  );
}

/**
 * Validates a property map against a table; returns the evaluated values (ints as bigint,
 * strings, booleans, enum words). Reports E0302 unknown, E0303 missing, type errors.
 */
function evalProps(
  props: Map<string, A.Prop>,
  table: PropTable,
  ctx: EvalContext,
  where: string,
  anchor: Span,
  extraNames: string[] = [],
): Map<string, { value: bigint | string | boolean; span: Span }> {
  const out = new Map<string, { value: bigint | string | boolean; span: Span }>();
  for (const [name, p] of props) {
    const spec = table[name];
    if (!spec) {
      unknownProp(p, table, extraNames, where, ctx.diagnostics);
      continue;
    }
    const what = `\`${name}\``;
    let v: bigint | string | boolean | null = null;
    switch (spec.type.t) {
      case "int":
        v = inBounds(evalInt(p.value, ctx, what), spec, p.value.span, what, ctx.diagnostics);
        break;
      case "string":
        v = evalString(p.value, ctx, what);
        break;
      case "onoff":
        v = evalOnOff(p.value, ctx, what);
        break;
      case "enum":
        v = evalEnum(p.value, spec.type.values, ctx, `value of ${what}`);
        break;
      case "range":
        break; // handled by the caller
    }
    if (v !== null) out.set(name, { value: v, span: p.value.span });
  }
  for (const [name, spec] of Object.entries(table)) {
    if (spec.required && !props.has(name)) {
      ctx.diagnostics.push(
        error("E0303", `${where} needs \`${name}\``, anchor, `add \`${name} ...\` (${spec.doc})`),
      );
    }
  }
  return out;
}

// ── the checker ──────────────────────────────────────────────────────────

interface Region {
  base: bigint;
  end: bigint;
  what: string;
  span: Span | null;
}

function overlapLabel(r: Region): Label[] {
  return r.span ? [{ span: r.span, message: `${r.what} is here` }] : [];
}

function alignUp(v: bigint, a: bigint): bigint {
  return (v + a - 1n) / a * a;
}

/** E0207 for a value that must be page aligned, with a fix when it is a plain literal. */
function checkPage(v: bigint, span: Span, what: string, diags: Diags, node?: A.Expr) {
  if (v % PAGE === 0n) return;
  const up = alignUp(v, PAGE);
  const fixes = node && node.kind === "Number"
    ? [{ title: `round up to ${hex(up)}`, span: node.span, replacement: hex(up) }]
    : undefined;
  diags.push(
    error(
      "E0207",
      `${what} ${hex(v)} is not a multiple of 4 KiB`,
      span,
      `KVM maps memory in 4 KiB pages; use ${hex(up)}`,
      [],
      fixes,
    ),
  );
}

export function checkMachine(
  program: Program,
  sym: MachineSymbol,
  host: LangHost,
  opts: CheckOptions,
  diags: Diags,
): ResolvedMachine | null {
  const start = diags.length;
  const ctx = programContext(program, diags);
  const chain = extendsChain(program, sym, diags);
  if (!chain) return null;
  const m = merge(chain, ctx, diags);
  const nameSpan = sym.span;
  const where = `machine \`${sym.name}\``;

  // Machine-level settings.
  const mp = evalProps(m.props, MACHINE_PROPS, ctx, where, nameSpan, [...STRUCTURED_SETTINGS]);
  let cpus = 1;
  const cpusV = mp.get("cpus");
  if (cpusV) {
    const n = cpusV.value as bigint;
    if (n < 1n || n > BigInt(MAX_CPUS)) {
      diags.push(
        error(
          "E0403",
          `${n} vCPUs is out of range`,
          cpusV.span,
          `a machine has 1 to ${MAX_CPUS} vCPUs`,
        ),
      );
    } else cpus = Number(n);
  }
  const acpiSetting = mp.get("acpi");

  // The hole first: the default RAM split depends on it.
  const hole = resolveHole(m, ctx, opts, diags);
  const ram = resolveRam(m, mp.get("memory"), hole, ctx, nameSpan, where, diags);

  const devices = resolveDevices(m, ctx, diags, host, program.main);
  const pci = resolvePci(m, hole, ctx, diags);
  if (hole?.ecam && hole.ecam.busEnd < 0) {
    // `buses auto`: narrow to the buses in use (at least bus 0).
    hole.ecam.busEnd = pci.reduce((mx, f) => Math.max(mx, f.bus), 0);
  }
  const boot = resolveBoot(m, ctx, host, opts, nameSpan, where, diags, program.main);

  checkLayout(ram, hole, diags);
  checkEcamUse(hole, pci, m, diags);
  checkPorts(devices, hole, diags);
  checkIrqs(devices, pci, acpiSetting ? acpiSetting.value !== false : true, boot, diags);

  if (!devices.some((d) => d.kind === "serial")) {
    diags.push(
      warning(
        "W0002",
        `${where} has no serial device`,
        nameSpan,
        "add `device serial com1 { port 0x3f8 irq 4 }` to see the guest's console",
      ),
    );
  }

  const cpuidHide: string[] = [];
  for (const f of m.cpuid) {
    if (!CPUID_FEATURES.includes(f.name)) {
      const s = suggest(f.name, CPUID_FEATURES);
      diags.push(
        error(
          "E0304",
          `\`${f.name}\` is not a CPU feature vmdesc knows`,
          f.span,
          s
            ? `did you mean \`${s}\`? (Linux /proc/cpuinfo names)`
            : "use a Linux /proc/cpuinfo flag name such as cx16 or x2apic",
          [],
          s ? [{ title: `change to \`${s}\``, span: f.span, replacement: s }] : undefined,
        ),
      );
    } else if (!cpuidHide.includes(f.name)) cpuidHide.push(f.name);
  }

  if (diags.slice(start).some((d) => d.severity === "error") || !boot) return null;
  return {
    name: sym.name,
    file: sym.file,
    span: nameSpan,
    cpus,
    cpuidHide,
    ram,
    hole,
    devices,
    pci,
    boot,
    acpi: boot.protocol !== "flat" && (acpiSetting ? acpiSetting.value !== false : true),
  };
}

function resolveHole(
  m: Merged,
  ctx: EvalContext,
  opts: CheckOptions,
  diags: Diags,
): ResolvedHole | null {
  if (!m.hole) return null;
  const node = m.hole.node;
  const r = evalRange(node.range, ctx, "the PCI hole");
  let strategy: HoleStrategy = "shadow";
  if (m.hole.strategy) {
    const s = evalEnum(m.hole.strategy.value, ["trap", "shadow"] as const, ctx, "hole strategy");
    if (s) strategy = s;
  }
  if (opts.holeStrategy) strategy = opts.holeStrategy;
  if (!r) return null;
  const end = r.base + r.size;
  if (end > FOUR_GIB) {
    diags.push(
      error(
        "E0304",
        `the PCI hole ${hex(r.base)} .. ${hex(end)} reaches above 4 GiB`,
        node.range.span,
        "the 32-bit PCI hole lies below 4 GiB, e.g. `pci_hole 0xC000_0000 .. 4 GiB`",
      ),
    );
    return null;
  }
  checkPage(r.base, node.range.left.span, "the PCI hole start", diags, node.range.left);
  checkPage(
    end,
    node.range.right.span,
    "the PCI hole end",
    diags,
    node.range.form === "to" ? node.range.right : undefined,
  );
  const hole: ResolvedHole = {
    base: r.base,
    size: r.size,
    span: node.range.span,
    strategy,
    ecam: null,
  };
  const e = m.hole.ecam;
  if (e) {
    const base = evalExpr(e.base, ctx);
    let busStart = 0;
    let busEnd = 255;
    if (e.buses?.kind === "Auto") busEnd = -1; // filled in once PCI functions are known
    else if (e.buses) {
      const l = evalExpr(e.buses.left, ctx);
      const rr = evalExpr(e.buses.right, ctx);
      if (l !== null && rr !== null) {
        // Bus ranges are inclusive (`0..255`), unlike address ranges.
        const last = e.buses.form === "to" ? rr : l + rr - 1n;
        if (l > 255n || last > 255n || last < l) {
          diags.push(
            error(
              "E0210",
              `invalid bus range ${l}..${last}`,
              e.buses.span,
              "buses are numbered 0..255 and the range is inclusive: `buses 0..255`",
            ),
          );
          return hole;
        }
        busStart = Number(l);
        busEnd = Number(last);
      } else return hole;
    }
    if (base === null) return hole;
    if (base % MiB !== 0n) {
      const up = alignUp(base, MiB);
      diags.push(
        error(
          "E0205",
          `the ECAM window at ${hex(base)} is not aligned to 1 MiB`,
          e.base.span,
          `each bus takes 1 MiB of ECAM, so the window starts on a 1 MiB boundary; use ${hex(up)}`,
          [],
          e.base.kind === "Number"
            ? [{ title: `round up to ${hex(up)}`, span: e.base.span, replacement: hex(up) }]
            : undefined,
        ),
      );
      return hole;
    }
    hole.ecam = { base, busStart, busEnd, span: e.span };
  }
  return hole;
}

function resolveRam(
  m: Merged,
  memory: { value: bigint | string | boolean; span: Span } | undefined,
  hole: ResolvedHole | null,
  ctx: EvalContext,
  nameSpan: Span,
  where: string,
  diags: Diags,
): RamRange[] {
  const explicit: RamRange[] = [];
  for (const p of m.ram) {
    const r = evalRange(p.value, ctx, "`ram`");
    if (!r) continue;
    const v = p.value as A.RangeExpr;
    checkPage(r.base, v.left.span, "the RAM start", diags, v.left);
    if (v.form === "to") checkPage(r.base + r.size, v.right.span, "the RAM end", diags, v.right);
    else checkPage(r.size, v.right.span, "the RAM size", diags, v.right);
    explicit.push({ name: "", base: r.base, size: r.size, span: p.value.span });
  }
  explicit.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  explicit.forEach((r, i) => (r.name = `ram-${i}`));
  const total = memory ? (memory.value as bigint) : null;
  if (total === null && explicit.length === 0) {
    if (m.ram.length === 0 && !m.props.has("memory")) {
      diags.push(
        error(
          "E0401",
          `${where} has no memory`,
          nameSpan,
          "add `memory 128 MiB` (or explicit `ram` ranges)",
        ),
      );
    }
    return [];
  }
  if (total !== null) {
    if (total === 0n) {
      diags.push(
        error(
          "E0401",
          `${where} has 0 bytes of memory`,
          memory!.span,
          "give it some RAM, e.g. `memory 128 MiB`",
        ),
      );
      return [];
    }
    checkPage(total, memory!.span, "the memory size", diags);
    if (total % (2n * MiB) !== 0n && total % PAGE === 0n) {
      diags.push(
        warning(
          "W0003",
          `memory ${humanSize(total)} is not a multiple of 2 MiB`,
          memory!.span,
          "guests map RAM with 2 MiB pages; round to a multiple of 2 MiB",
        ),
      );
    }
  }
  for (const r of explicit) {
    if (r.size % (2n * MiB) !== 0n && r.size % PAGE === 0n) {
      diags.push(
        warning(
          "W0003",
          `the RAM range of ${humanSize(r.size)} is not a multiple of 2 MiB`,
          r.span,
          "guests map RAM with 2 MiB pages",
        ),
      );
    }
  }
  if (explicit.length === 0) {
    // Split around the hole like QEMU q35 and Firecracker: below it, then from 4 GiB.
    const limit = hole ? hole.base : DEFAULT_LOW_RAM_LIMIT;
    const low = total! < limit ? total! : limit;
    const out: RamRange[] = [];
    if (low > 0n) out.push({ name: "ram-low", base: 0n, size: low, span: memory!.span });
    const high = total! - low;
    if (high > 0n) {
      if (FOUR_GIB + high > MAX_PHYS) {
        diags.push(
          error(
            "E0208",
            `memory ${humanSize(total!)} does not fit: RAM above 4 GiB would end at ${
              hex(FOUR_GIB + high)
            }`,
            memory!.span,
            "the guest-physical address space ends at 4 PiB (52 bits)",
          ),
        );
        return out;
      }
      out.push({ name: "ram-high", base: FOUR_GIB, size: high, span: memory!.span });
    }
    return out;
  }
  if (total === null) return explicit;
  // `memory` with explicit ranges: fill the ranges in address order.
  const capacity = explicit.reduce((s, r) => s + r.size, 0n);
  if (total > capacity) {
    diags.push(
      error(
        "E0208",
        `memory ${humanSize(total)} does not fit in the ${explicit.length} RAM range(s) given (${
          humanSize(capacity)
        })`,
        memory!.span,
        "make the `ram` ranges larger or the memory smaller",
        explicit.map((r) => ({ span: r.span, message: `${humanSize(r.size)} here` })),
      ),
    );
    return explicit;
  }
  let left = total;
  const out: RamRange[] = [];
  for (const r of explicit) {
    if (left === 0n) break;
    const size = r.size < left ? r.size : left;
    out.push({ ...r, size });
    left -= size;
  }
  return out;
}

function resolveDevices(
  m: Merged,
  ctx: EvalContext,
  diags: Diags,
  host: LangHost,
  mainFile: string,
): ResolvedDevice[] {
  const out: ResolvedDevice[] = [];
  for (const d of m.devices.values()) {
    const kindSpec = DEVICE_KINDS[d.kind];
    const kindSpan = d.node.deviceKind.span;
    if (!kindSpec) {
      const known = Object.keys(DEVICE_KINDS);
      const s = suggest(d.kind, [...known, ...Object.keys(PCI_KINDS)]);
      const isPci = s !== null && s in PCI_KINDS;
      diags.push(
        error(
          "E0301",
          `unknown device kind \`${d.kind}\``,
          kindSpan,
          d.kind === "pci_host"
            ? "the PCI host bridge is created automatically when the machine has a `pci_hole`"
            : isPci
            ? `\`${s}\` is a PCI function: write \`pci 00:02.0 ${s}\``
            : s
            ? `did you mean \`${s}\`? (known: ${known.join(", ")})`
            : `known device kinds: ${known.join(", ")}`,
          [],
          s && !isPci
            ? [{ title: `change to \`${s}\``, span: kindSpan, replacement: s }]
            : undefined,
        ),
      );
      continue;
    }
    if (d.id === "pci_host") {
      diags.push(
        error(
          "E0306",
          "the name `pci_host` is taken by the implicit PCI host bridge",
          d.node.name?.span ?? kindSpan,
          "choose another name",
        ),
      );
    }
    for (const bar of d.bars.values()) {
      diags.push(
        error(
          "E0302",
          "`bar` is not a property of a platform device",
          bar.span,
          "BARs belong to `pci` functions",
        ),
      );
    }
    const where = `a \`${d.kind}\` device`;
    const v = evalProps(d.props, kindSpec.props, ctx, where, d.node.span);
    const port = v.get("port");
    const ports: PortClaim[] = [];
    const props: Record<string, PropValue> = {};
    let irq: number | null = null;
    let irqSpan: Span | null = null;
    const irqV = v.get("irq");
    if (irqV) {
      irq = Number(irqV.value);
      irqSpan = irqV.span;
    }
    if (d.kind === "serial") {
      if (!port) continue;
      const p = Number(port.value);
      if (p + 8 > 0x10000) {
        diags.push(
          error(
            "E0304",
            `the UART's 8 ports from ${hex(p)} pass 0xFFFF`,
            port.span,
            "I/O ports are 0..0xFFFF",
          ),
        );
        continue;
      }
      ports.push({ base: p, size: 8, span: port.span, owner: `device \`${d.id}\`` });
      if (!irqV && p in UART_PORT_IRQ) irq = UART_PORT_IRQ[p];
      if (!irqV && irq !== null) irqSpan = d.node.span;
      const output = v.get("output");
      const o = (output?.value as string | undefined) ?? "stdout";
      if (output && o === "") {
        diags.push(
          error(
            "E0304",
            "`output` is empty",
            output.span,
            'say "stdout", "stderr", "null" or a file path',
          ),
        );
      }
      // A file path is relative to the file that declares the device, like boot paths;
      // "stdout", "stderr" and "null" are streams ("./stdout" is a file).
      props.output = SERIAL_STREAMS.has(o) || !output || o === ""
        ? o
        : rebaseOnMain(host, mainFile, output.span.file, o);
    } else if (d.kind === "debug_exit") {
      if (!port) continue;
      const size = Number((v.get("size")?.value as bigint | undefined) ?? 1n);
      if (size !== 1 && size !== 2 && size !== 4) {
        diags.push(
          error(
            "E0304",
            `\`size\` ${size} is not 1, 2 or 4`,
            v.get("size")!.span,
            "I/O accesses are 1, 2 or 4 bytes",
          ),
        );
        continue;
      }
      const p = Number(port.value);
      if (p + size > 0x10000) {
        diags.push(
          error(
            "E0304",
            `ports ${hex(p)} + ${size} pass 0xFFFF`,
            port.span,
            "I/O ports are 0..0xFFFF",
          ),
        );
        continue;
      }
      ports.push({ base: p, size, span: port.span, owner: `device \`${d.id}\`` });
      props.size = size;
      const success = v.get("success");
      if (success) {
        // The guest can only write `size` bytes, so a wider value could never match.
        const value = success.value as bigint; // typed by the spec: int(0, 0xffff_ffff)
        if (value >= 1n << BigInt(8 * size)) {
          diags.push(
            error(
              "E0304",
              `\`success\` ${hex(Number(value))} does not fit in ${size} byte${
                size === 1 ? "" : "s"
              }`,
              success.span,
              `the guest writes ${size}-byte values to this port: pick a value below ${
                hex(2 ** (8 * size))
              }, or widen \`size\``,
            ),
          );
          continue;
        }
        props.success = Number(value);
      }
    } else if (d.kind === "i8042") {
      const p = port ? Number(port.value) : 0x60;
      const span = port ? port.span : d.node.span;
      ports.push({ base: p, size: 1, span, owner: `device \`${d.id}\`` });
      ports.push({ base: p + 4, size: 1, span, owner: `device \`${d.id}\` (command port)` });
    }
    out.push({ id: d.id, kind: d.kind, span: d.node.span, ports, irq, irqSpan, props });
  }
  return out;
}

function isPow2(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

function resolvePci(
  m: Merged,
  hole: ResolvedHole | null,
  ctx: EvalContext,
  diags: Diags,
): ResolvedPci[] {
  const out: ResolvedPci[] = [];
  for (const f of m.pci.values()) {
    const kind = f.node.deviceKind.name;
    const spec = PCI_KINDS[kind];
    const kindSpan = f.node.deviceKind.span;
    if (!spec) {
      const known = Object.keys(PCI_KINDS);
      const s = suggest(kind, [...known, ...Object.keys(DEVICE_KINDS)]);
      const isPlatform = s !== null && s in DEVICE_KINDS;
      diags.push(
        error(
          "E0301",
          `unknown PCI function kind \`${kind}\``,
          kindSpan,
          isPlatform
            ? `\`${s}\` is a platform device: write \`device ${s} { ... }\``
            : s
            ? `did you mean \`${s}\`? (known: ${known.join(", ")})`
            : `known PCI kinds: ${known.join(", ")}`,
          [],
          s && !isPlatform
            ? [{ title: `change to \`${s}\``, span: kindSpan, replacement: s }]
            : undefined,
        ),
      );
      continue;
    }
    if (!hole) {
      diags.push(
        error(
          "E0216",
          `PCI function ${f.key} needs a PCI hole`,
          f.node.address.span,
          "add `pci_hole 0xC000_0000 .. 4 GiB { ecam 0xE000_0000 buses auto }`: the host bridge comes with the hole",
        ),
      );
    }
    const v = evalProps(f.props, spec.props, ctx, `a \`${kind}\` PCI function`, f.node.span);
    const num = (k: string, d: number) => {
      const x = v.get(k);
      return x ? Number(x.value as bigint) : d;
    };
    const bars = resolveBars(f, ctx, diags);
    const pin = num("pin", 1);
    const irqV = v.get("irq");
    const irq = pin === 0 ? null : irqV ? Number(irqV.value) : 16 + ((f.addr.device + pin - 1) % 4);
    out.push({
      bdf: f.key,
      segment: 0,
      bus: f.addr.bus,
      device: f.addr.device,
      function: f.addr.fn,
      kind,
      span: f.node.span,
      vendor_id: num("vendor", spec.vendor_id),
      device_id: num("device", spec.device_id),
      class_code: num("class", spec.class_code),
      revision: num("revision", spec.revision),
      subsystem_vendor_id: num("subsystem_vendor", spec.subsystem_vendor_id),
      subsystem_id: num("subsystem", spec.subsystem_id),
      bars,
      interrupt_pin: pin,
      irq,
      irqSpan: irqV ? irqV.span : null,
      props: {},
    });
  }
  return out;
}

function resolveBars(f: MergedPci, ctx: EvalContext, diags: Diags): ResolvedBar[] {
  const bars: ResolvedBar[] = [];
  const used = new Map<number, ResolvedBar>();
  for (const b of f.bars.values()) {
    const index = evalExpr(b.index, ctx);
    const size = evalExpr(b.size, ctx);
    if (index === null || size === null) continue;
    const kindName = b.barKind.name;
    if (!(BAR_KINDS as readonly string[]).includes(kindName)) {
      const s = suggest(kindName, BAR_KINDS);
      diags.push(
        error(
          "E0214",
          `\`${kindName}\` is not a BAR kind`,
          b.barKind.span,
          `use one of ${BAR_KINDS.join(", ")}`,
          [],
          s ? [{ title: `change to \`${s}\``, span: b.barKind.span, replacement: s }] : undefined,
        ),
      );
      continue;
    }
    const kind = kindName as ResolvedBar["kind"];
    const bad = (msg: string, hint: string, span = b.span) =>
      diags.push(error("E0214", msg, span, hint));
    if (index > 5n) {
      bad(`BAR index ${index} is above 5`, "a function has BARs 0..5", b.index.span);
      continue;
    }
    const idx = Number(index);
    if (kind === "mem64" && idx === 5) {
      bad(
        "a mem64 BAR cannot use index 5",
        "a 64-bit BAR takes two registers (index and index + 1)",
        b.index.span,
      );
      continue;
    }
    const min = kind === "io" ? 4n : 16n;
    const max = kind === "io" ? 256n : kind === "mem32" ? 2n ** 31n : 2n ** 40n;
    if (!isPow2(size) || size < min || size > max) {
      bad(
        `BAR ${idx} size ${size} (${hex(size)}) is invalid`,
        `${kind} BAR sizes are powers of two from ${humanSize(min)} to ${humanSize(max)}`,
        b.size.span,
      );
      continue;
    }
    if (b.prefetchable && kind === "io") {
      bad(
        "an io BAR cannot be prefetchable",
        "only memory BARs are prefetchable",
        b.prefetchable.span,
      );
      continue;
    }
    const clash = used.get(idx) ?? (kind === "mem64" ? used.get(idx + 1) : undefined);
    if (clash) {
      bad(
        `BAR ${idx} overlaps BAR ${clash.index}`,
        "a mem64 BAR uses two BAR registers (index and index + 1)",
        b.span,
      );
      continue;
    }
    const bar: ResolvedBar = {
      index: idx,
      kind,
      size,
      prefetchable: b.prefetchable !== null,
      span: b.span,
    };
    used.set(idx, bar);
    if (kind === "mem64") used.set(idx + 1, bar);
    bars.push(bar);
  }
  bars.sort((a, b) => a.index - b.index);
  return bars;
}

function resolveBoot(
  m: Merged,
  ctx: EvalContext,
  host: LangHost,
  opts: CheckOptions,
  nameSpan: Span,
  where: string,
  diags: Diags,
  mainFile: string,
): ResolvedBoot | null {
  if (!m.boot) {
    if (opts.kernel) {
      return {
        protocol: "linux",
        path: opts.kernel,
        cmdline: opts.cmdline ?? "",
        initrd: null,
        load: null,
        entry: null,
        mode: null,
        span: nameSpan,
      };
    }
    diags.push(
      error(
        "E0402",
        `${where} has nothing to boot`,
        nameSpan,
        'add `boot pvh "guest.elf"` (or `boot linux "bzImage"`, `boot flat "x.bin" { load 0x10_0000 }`)',
      ),
    );
    return null;
  }
  const node = m.boot.node;
  const proto = node.protocol.name;
  if (!(BOOT_PROTOCOLS as readonly string[]).includes(proto)) {
    const s = suggest(proto, BOOT_PROTOCOLS);
    diags.push(
      error(
        "E0502",
        `unknown boot protocol \`${proto}\``,
        node.protocol.span,
        `use one of ${BOOT_PROTOCOLS.join(", ")}`,
        [],
        s ? [{ title: `change to \`${s}\``, span: node.protocol.span, replacement: s }] : undefined,
      ),
    );
    return null;
  }
  const protocol = proto as ResolvedBoot["protocol"];
  const v = evalProps(m.boot.options, BOOT_OPTIONS, ctx, "boot", node.span);
  const allowed = BOOT_OPTIONS_BY_PROTOCOL[protocol];
  for (const [name, p] of m.boot.options) {
    if (name in BOOT_OPTIONS && !allowed.includes(name)) {
      diags.push(
        error(
          "E0502",
          `\`${name}\` does not apply to \`boot ${protocol}\``,
          p.name.span,
          `\`boot ${protocol}\` takes ${allowed.join(", ")}`,
        ),
      );
    }
  }
  const path = node.path.value;
  if (path === "" || path.endsWith("/")) {
    diags.push(
      error(
        "E0501",
        path === ""
          ? "the boot payload path is empty"
          : `the boot payload \`${path}\` names a directory`,
        node.path.span,
        "name the kernel or guest binary file",
      ),
    );
    return null;
  }
  const str = (k: string) => v.get(k)?.value as string | undefined;
  const big = (k: string) => v.get(k)?.value as bigint | undefined;
  const cmdline = opts.cmdline ?? str("cmdline") ?? "";
  if (cmdline.length + 1 > BOOT_LAYOUT.cmdline_max) {
    diags.push(
      error(
        "E0502",
        `the command line is ${cmdline.length} bytes; at most ${BOOT_LAYOUT.cmdline_max - 1} fit`,
        v.get("cmdline")?.span ?? node.span,
        "shorten it",
      ),
    );
  }
  const initrd = str("initrd") ?? null;
  let load: bigint | null = null;
  let entry: bigint | null = null;
  let mode: ResolvedBoot["mode"] = null;
  if (protocol === "flat") {
    load = big("load") ?? null;
    if (load === null && !m.boot.options.has("load")) {
      diags.push(
        error(
          "E0303",
          "`boot flat` needs `load`",
          node.span,
          "add `load 0x10_0000` (where the binary goes in guest memory)",
        ),
      );
    }
    entry = big("entry") ?? load;
    mode = (str("mode") as ResolvedBoot["mode"]) ?? "protected";
  }
  // Plan paths are relative to the Plan's source (the main file): a path written in an
  // imported file elsewhere is re-expressed from the main file's directory.
  const rebase = (p: string) => rebaseOnMain(host, mainFile, node.span.file, p);
  const finalPath = opts.kernel ?? rebase(path);
  // W0006: the payload (and initrd) should exist when checking; booting makes it an error.
  const missing = (p: string, span: Span, what: string, override: boolean) => {
    const resolved = override ? p : host.resolve(node.span.file, p);
    if (!host.fileExists(resolved)) {
      diags.push(
        warning(
          "W0006",
          `the ${what} \`${p}\` was not found`,
          span,
          override
            ? "the path given with --kernel is used as is"
            : `looked for ${resolved}; paths are relative to this file. Build it before booting`,
        ),
      );
    }
  };
  missing(opts.kernel ?? path, node.path.span, "boot payload", opts.kernel !== undefined);
  if (initrd !== null) missing(initrd, v.get("initrd")!.span, "initrd", false);
  return {
    protocol,
    path: finalPath,
    cmdline,
    initrd: initrd === null ? null : rebase(initrd),
    load,
    entry,
    mode,
    span: node.span,
  };
}

/** RAM, hole and platform regions must not overlap; ECAM must sit inside the hole. */
function checkLayout(ram: RamRange[], hole: ResolvedHole | null, diags: Diags) {
  const regions: Region[] = ram.map((r) => ({
    base: r.base,
    end: r.base + r.size,
    what: `RAM ${r.name}`,
    span: r.span,
  }));
  if (hole) {
    regions.push({
      base: hole.base,
      end: hole.base + hole.size,
      what: "the PCI hole",
      span: hole.span,
    });
  }
  for (const r of regions) {
    if (r.end > MAX_PHYS) {
      diags.push(
        error(
          "E0212",
          `${r.what} ends at ${hex(r.end)}, beyond the 52-bit physical address space`,
          r.span,
          "guest-physical addresses stop at 0x10_0000_0000_0000 (4 PiB)",
        ),
      );
    }
  }
  sweep(regions, (a, b) =>
    diags.push(
      error(
        "E0201",
        `${b.what} (${hex(b.base)} .. ${hex(b.end)}) overlaps ${a.what} (${hex(a.base)} .. ${
          hex(a.end)
        })`,
        b.span,
        "move or shrink one of them; with `memory`, RAM is placed around the hole for you",
        overlapLabel(a),
      ),
    ));
  // RAM may not cover the fixed platform MMIO (the hole normally contains it).
  for (const p of PLATFORM_REGIONS) {
    const pend = p.base + p.size;
    for (const r of ram) {
      if (r.base < pend && p.base < r.base + r.size) {
        diags.push(
          error(
            "E0201",
            `RAM ${r.name} (${hex(r.base)} .. ${hex(r.base + r.size)}) overlaps ${p.name} at ${
              hex(p.base)
            }`,
            r.span,
            "keep RAM below 0xC000_0000 or above 4 GiB; the platform uses 0xFEC0_0000 .. 4 GiB",
          ),
        );
      }
    }
  }
  if (ram.length && !ram.some((r) => r.base === 0n && r.size >= BigInt(HIGH_MEMORY))) {
    diags.push(
      error(
        "E0401",
        "no RAM covers 0x0 .. 0x10_0000, where boot data goes",
        ram[0].span,
        "start RAM at 0 with at least 1 MiB (the default split does this)",
      ),
    );
  }
  if (hole?.ecam) {
    const e = hole.ecam;
    const size = BigInt(e.busEnd - e.busStart + 1) * MiB;
    if (e.busEnd < e.busStart) return;
    const end = e.base + size;
    if (e.base < hole.base || end > hole.base + hole.size) {
      diags.push(
        error(
          "E0206",
          `the ECAM window ${hex(e.base)} .. ${hex(end)} (${
            e.busEnd - e.busStart + 1
          } buses) is not inside the PCI hole`,
          e.span,
          "move `ecam` inside the hole or narrow its bus range",
          [{
            span: hole.span,
            message: `the hole is ${hex(hole.base)} .. ${hex(hole.base + hole.size)}`,
          }],
        ),
      );
      return;
    }
    for (const p of PLATFORM_REGIONS) {
      if (e.base < p.base + p.size && p.base < end) {
        diags.push(
          error(
            "E0201",
            `the ECAM window ${hex(e.base)} .. ${hex(end)} overlaps ${p.name} at ${hex(p.base)}`,
            e.span,
            "put ECAM lower in the hole, e.g. at 0xE000_0000 or 0xB000_0000",
          ),
        );
      }
    }
  }
}

/** Calls onOverlap(earlier, later) for each region overlapping one before it (sorted sweep). */
function sweep<T extends { base: bigint; end: bigint }>(
  items: T[],
  onOverlap: (a: T, b: T) => void,
) {
  const sorted = [...items].sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  let active: T | null = null;
  for (const it of sorted) {
    if (active && it.base < active.end) onOverlap(active, it);
    if (!active || it.end > active.end) active = it;
  }
}

function checkEcamUse(hole: ResolvedHole | null, pci: ResolvedPci[], m: Merged, diags: Diags) {
  const e = hole?.ecam;
  if (!hole || !e) return;
  const explicit = m.hole?.ecam?.buses?.kind === "Range";
  for (const f of pci) {
    if (f.bus < e.busStart || f.bus > e.busEnd) {
      diags.push(
        error(
          "E0215",
          `PCI function ${f.bdf} is on bus ${f.bus}, outside the ECAM buses ${e.busStart}..${e.busEnd}`,
          f.span,
          "widen `buses` or move the function",
          [
            { span: e.span, message: "the ECAM bus range" },
          ],
        ),
      );
    }
  }
  const buses = e.busEnd - e.busStart + 1;
  const used = new Set(pci.map((f) => f.bus)).size || 1;
  const maxUsed = pci.reduce((mx, f) => Math.max(mx, f.bus), e.busStart);
  const excess = e.busEnd - maxUsed;
  if (hole.strategy === "trap" && explicit && excess >= EXCESS_BUSES && buses >= 4 * used) {
    diags.push(
      warning(
        "W0004",
        `the ECAM window declares ${buses} buses but functions use ${used}`,
        m.hole!.ecam!.buses!.span,
        `a guest scanning every bus makes ${
          excess * PROBES_PER_BUS
        } extra config probes (${excess} buses × 32 devices, function 0 of each), each a VM exit under \`trap\`; use \`buses auto\` or \`buses ${e.busStart}..${maxUsed}\``,
        [],
        [{
          title: `narrow to ${e.busStart}..${maxUsed}`,
          span: m.hole!.ecam!.buses!.span,
          replacement: `${e.busStart}..${maxUsed}`,
        }],
      ),
    );
  } else if (hole.strategy === "trap" && buses >= LARGE_ECAM_BUSES) {
    diags.push(
      warning(
        "W0001",
        `the \`trap\` strategy with a ${buses}-bus ECAM window makes every config probe exit`,
        e.span,
        `a full scan makes ${
          buses * PROBES_PER_BUS
        } config probes (${buses} buses × 32 devices, function 0 of each), each a VM exit to the VMM; \`strategy shadow\` answers absent functions without exits`,
      ),
    );
  }
}

function checkPorts(devices: ResolvedDevice[], hole: ResolvedHole | null, diags: Diags) {
  const claims: (PortClaim & { end: number })[] = [];
  for (const d of devices) for (const p of d.ports) claims.push({ ...p, end: p.base + p.size });
  for (const p of PLATFORM_PORTS) {
    claims.push({ base: p.base, size: p.size, end: p.base + p.size, span: null, owner: p.name });
  }
  if (hole) {
    claims.push({
      ...PCI_CONFIG_PORTS,
      end: PCI_CONFIG_PORTS.base + PCI_CONFIG_PORTS.size,
      span: null,
      owner: "the PCI host bridge (0xCF8..0xCFF)",
    });
    claims.push({
      ...PCI_IO_WINDOW,
      end: PCI_IO_WINDOW.base + PCI_IO_WINDOW.size,
      span: null,
      owner: "the PCI I/O BAR window (0xC000..0xFFFF)",
    });
  }
  const asBig = claims.map((c) => ({ ...c, base: BigInt(c.base), end: BigInt(c.end), c }));
  sweep(asBig, (a, b) => {
    // Report at whichever claim the user wrote (platform ones have no span).
    const [user, other] = b.c.span ? [b.c, a.c] : [a.c, b.c];
    if (!user.span) return;
    diags.push(
      error(
        "E0202",
        `I/O ports ${hex(user.base)}..${
          hex(user.base + user.size - 1)
        } of ${user.owner} overlap ${other.owner} (${hex(other.base)}..${
          hex(other.base + other.size - 1)
        })`,
        user.span,
        "move one of them to free ports",
        other.span ? [{ span: other.span, message: `${other.owner} is here` }] : [],
      ),
    );
  });
}

function checkIrqs(
  devices: ResolvedDevice[],
  pci: ResolvedPci[],
  acpi: boolean,
  boot: ResolvedBoot | null,
  diags: Diags,
) {
  // ISA-style (edge) interrupts cannot be shared; PCI INTx lines may share among themselves.
  const owners = new Map<number, { who: string; span: Span | null }>();
  for (const [g, who] of Object.entries(PLATFORM_IRQS)) owners.set(Number(g), { who, span: null });
  if (acpi && boot && boot.protocol !== "flat") {
    owners.set(ACPI_SCI_IRQ, { who: "the ACPI SCI", span: null });
  }
  const report = (irq: number, who: string, span: Span, prev: { who: string; span: Span | null }) =>
    diags.push(
      error(
        "E0203",
        `${who} uses IRQ ${irq}, already taken by ${prev.who}`,
        span,
        "give it another IRQ",
        prev.span ? [{ span: prev.span, message: `${prev.who} uses it here` }] : [],
      ),
    );
  for (const d of devices) {
    if (d.irq === null) continue;
    const prev = owners.get(d.irq);
    const span = d.irqSpan ?? d.span;
    if (prev) report(d.irq, `device \`${d.id}\``, span, prev);
    else owners.set(d.irq, { who: `device \`${d.id}\``, span });
  }
  const pciOwners = new Map<number, true>();
  for (const f of pci) {
    if (f.irq === null) continue;
    const prev = owners.get(f.irq);
    if (prev && !pciOwners.has(f.irq)) {
      report(f.irq, `PCI function ${f.bdf}`, f.irqSpan ?? f.span, prev);
    } else if (!prev) {
      owners.set(f.irq, { who: `PCI function ${f.bdf}`, span: f.irqSpan ?? f.span });
      pciOwners.set(f.irq, true);
    }
  }
}

/** Diagnostics shared by all machines: unused constants in the main file (W0005). */
export function checkProgram(program: Program, diags: Diags) {
  for (const sym of program.lets.values()) {
    if (sym.file !== program.main || sym.uses.length) continue;
    diags.push(
      warning(
        "W0005",
        `the constant \`${sym.name}\` is never used`,
        sym.span,
        "remove it, or use it",
        [],
        [
          { title: `remove \`let ${sym.name}\``, span: sym.node.span, replacement: "" },
        ],
      ),
    );
  }
}

/**
 * A path written in `fromFile`, re-expressed relative to the main file's directory (Plan
 * paths are relative to the Plan's source, the main file).
 */
function rebaseOnMain(host: LangHost, mainFile: string, fromFile: string, p: string): string {
  return fromFile === mainFile || p.startsWith("/") ? p : relativePath(
    dirname(host.resolve(mainFile, basename(mainFile))),
    host.resolve(fromFile, p),
  );
}
