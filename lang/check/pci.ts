/**
 * PCI functions: the kind is known (E0301, with a pointer to `device` for a platform
 * kind), a hole exists for them (E0216), the properties are typed by the kind's table
 * (IDs default to the kind's, the IRQ to the INTx swizzle), and each BAR has a valid index,
 * kind and power-of-two size and does not overlap another BAR's registers (E0214). A kind
 * whose model brings its own BAR (the virtio functions) refuses `bar` (E0302) and gets its
 * BAR and virtio entry here (lang/check/virtio.ts).
 */
import { type Diags, error } from "../diagnostics/make.ts";
import { type EvalContext, evalExpr, hex, humanSize, type LangHost } from "../program.ts";
import { BAR_KINDS, DEVICE_KINDS, PCI_KINDS } from "../specs.ts";
import { suggest } from "../suggest.ts";
import type { PropValue } from "../../plan/types.ts";
import type { ResolvedBar, ResolvedHole, ResolvedPci } from "./model.ts";
import type { Merged, MergedPci } from "./merge.ts";
import { evalProps } from "./values.ts";
import { isVirtioKind, pciTransport, resolveBacking, virtioBar, virtioPlan } from "./virtio.ts";
import { CONSOLE_KINDS, resolveConsoleIo } from "./console.ts";

function isPow2(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

export function resolvePci(
  m: Merged,
  hole: ResolvedHole | null,
  ctx: EvalContext,
  diags: Diags,
  host: LangHost,
  mainFile: string,
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
    let bars: ResolvedBar[];
    let virtio: ResolvedPci["virtio"];
    if (spec.bars === false) {
      for (const bar of f.bars.values()) {
        diags.push(
          error(
            "E0302",
            `\`bar\` is not a setting of a \`${kind}\` PCI function`,
            bar.span,
            isVirtioKind(kind)
              ? "a virtio function brings its own BAR, placed for you in the hole's 32-bit window (`mmio64 on` puts it above 4 GiB)"
              : `a \`${kind}\` function brings its own BARs`,
          ),
        );
      }
      bars = [];
    } else bars = resolveBars(f, ctx, diags);
    if (isVirtioKind(kind)) {
      const backing = resolveBacking(kind, v, host, mainFile, diags, `${m.sym.name}/${f.key}`);
      if (!backing) continue;
      const mmio64 = (v.get("mmio64")?.value as boolean | undefined) ?? false;
      bars = [virtioBar(mmio64, v.get("mmio64")?.span ?? f.node.span)];
      virtio = virtioPlan(kind, pciTransport(kind), backing);
    }
    const props: Record<string, PropValue> = {};
    const inputSpan = CONSOLE_KINDS.has(kind)
      ? resolveConsoleIo(v, host, mainFile, props, diags)
      : null;
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
      props,
      ...(inputSpan ? { inputSpan } : {}),
      ...(virtio ? { virtio } : {}),
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
