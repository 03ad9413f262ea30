/**
 * Merging a machine's `extends` chain into one set of settings (the rules are in
 * lang/README.md: later settings win, `ram` lines replace, devices merge by name and PCI
 * functions by address, boot options merge for the same protocol, cpuid hides add up),
 * with what only the chain shows: unknown bases and cycles (E0105, E0106), a setting twice
 * in one block (E0305, W0007), two devices or functions at one name or address (E0306,
 * E0204), malformed PCI addresses (E0213) and BAR indexes declared twice (E0214).
 */
import type * as A from "../ast.ts";
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error, warning } from "../diagnostics/make.ts";
import {
  type EvalContext,
  evalExpr,
  hex,
  type MachineSymbol,
  nameSuggestion,
  type Program,
  suggestionBudget,
} from "../program.ts";
import { HOLE_PROPS, HOLE_STRUCTURED } from "../specs.ts";
import { unknownProp } from "./values.ts";

export interface MergedBody {
  props: Map<string, A.Prop>;
  bars: Map<string, A.Bar>;
}

export interface MergedDevice extends MergedBody {
  node: A.Device;
  id: string;
  kind: string;
}

export interface MergedPci extends MergedBody {
  node: A.Pci;
  key: string;
  addr: { segment: number; bus: number; device: number; fn: number };
}

export interface Merged {
  sym: MachineSymbol;
  /**
   * Text a syntax error took from this machine or a base it extends (error recovery's
   * `lost` spans): what is missing may have been there.
   */
  lost: Span[];
  props: Map<string, A.Prop>;
  ram: A.Prop[];
  hole: { node: A.PciHole; strategy: A.Prop | null; ecam: A.Ecam | null } | null;
  devices: Map<string, MergedDevice>;
  pci: Map<string, MergedPci>;
  boot: { node: A.Boot; options: Map<string, A.Prop> } | null;
  cpuid: A.Ident[];
  /**
   * Whether merging this machine or a base it extends reported an error. Each machine's
   * merge is computed once per program and its diagnostics reported then; a machine
   * extending it later knows from this that its chain is broken.
   */
  chainErrors: boolean;
}

/**
 * Merges computed so far, per program (a program is one compile): a machine extending a
 * merged one starts from a copy of it, so a chain of n machines costs n merges, not n².
 */
const merges = new WeakMap<Program, Map<MachineSymbol, Merged>>();

/**
 * The chain [root or the nearest base merged already, ..., machine] (`from`: that base's
 * merge), or null on an unknown base / cycle (reported).
 */
function extendsChain(
  program: Program,
  sym: MachineSymbol,
  diags: Diags,
  done: Map<MachineSymbol, Merged>,
): { chain: MachineSymbol[]; from: Merged | null } | null {
  const chain: MachineSymbol[] = [sym];
  const seen = new Set([sym.name]);
  let cur = sym;
  while (cur.node.base) {
    const baseName = cur.node.base.name;
    const base = program.machines.get(baseName);
    const merged = base && done.get(base);
    if (merged) return { chain, from: merged };
    if (!base) {
      const s = nameSuggestion(baseName, program.machines.keys(), suggestionBudget(program));
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
  return { chain, from: null };
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

function bdfString(bus: number, device: number, fn: number): string {
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

/**
 * The machine's settings merged over its bases, or null when its chain is broken
 * (reported). Do not change the result: it is kept for the machines that extend it.
 */
export function mergeMachine(
  program: Program,
  sym: MachineSymbol,
  ctx: EvalContext,
  diags: Diags,
): Merged | null {
  let done = merges.get(program);
  if (!done) merges.set(program, done = new Map());
  const known = done.get(sym);
  if (known) return known;
  const walk = extendsChain(program, sym, diags, done);
  if (!walk) return null;
  let m = walk.from;
  for (const block of walk.chain) {
    const start = diags.length;
    m = withBlock(m, block, ctx, diags);
    for (let k = start; k < diags.length; k++) {
      if (diags[k].severity === "error") m.chainErrors = true;
    }
    done.set(block, m);
  }
  return m;
}

/** `base` (not changed; null for a root) with the settings of `sym`'s block merged over it. */
function withBlock(
  base: Merged | null,
  sym: MachineSymbol,
  ctx: EvalContext,
  diags: Diags,
): Merged {
  const m: Merged = {
    sym,
    lost: sym.node.lost?.length ? [...(base?.lost ?? []), ...sym.node.lost] : base?.lost ?? [],
    props: new Map(base?.props),
    ram: base?.ram ?? [],
    hole: base?.hole ?? null,
    devices: new Map(base?.devices),
    pci: new Map(base?.pci),
    boot: base?.boot ?? null,
    cpuid: [...(base?.cpuid ?? [])],
    chainErrors: base?.chainErrors ?? false,
  };
  {
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
          for (const it of s.items) for (const f of it.features) m.cpuid.push(f);
          break;
      }
    }
    if (blockRam.length) m.ram = blockRam;
  }
  return m;
}
