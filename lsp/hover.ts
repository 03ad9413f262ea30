/**
 * Hover: keywords and setting names (what they are, their settings, a link to
 * docs/language.md; lsp/keywords.ts); numbers in hex, decimal and size units; ranges with
 * start, end, size and what they overlap in the lowered Plan; devices and PCI functions
 * with the resources they claim; diagnostic codes (written in the text or carried by a diagnostic under the
 * cursor) with their explanation from docs/diagnostics.md.
 */
import { type Hover, type HoverParams, MarkupKind } from "vscode-languageserver";
import type * as A from "../lang/ast.ts";
import {
  evalExpr,
  evalValue,
  hex,
  humanSize,
  type Program,
  programContext,
} from "../lang/program.ts";
import type { Plan, Range as PlanRange, VirtioPlan } from "../plan/types.ts";
import {
  BOOT_OPTIONS,
  DEVICE_KINDS,
  HOLE_PROPS,
  MACHINE_PROPS,
  PCI_KINDS,
  PLATFORM_REGIONS,
} from "../lang/specs.ts";
import { innermost } from "./ast_query.ts";
import { nodePathAt } from "../lang/query.ts";
import { rangeOf } from "./convert.ts";
import { explainCode } from "./explain.ts";
import { languageWordHover } from "./keywords.ts";
import { resolvePath } from "../plan/paths.ts";
import type { Workspace } from "./mod.ts";
import type { Analysis } from "./analysis.ts";

export function hover(ws: Workspace, p: HoverParams): Hover | null {
  const a = ws.analysis(p.textDocument.uri);
  const d = ws.get(p.textDocument.uri);
  if (!a || !d) return null;
  const offset = d.doc.offsetAt(p.position);
  const parts: string[] = [];
  let span: A.Span | null = null;

  // A code written in the text (a comment like `// allow W0002`).
  const word = wordAt(a.text, offset);
  if (word && /^[EW]\d{4}$/.test(word.text)) {
    const doc = explainCode(word.text);
    if (doc) {
      parts.push(doc);
      span = { file: d.path, start: word.start, end: word.end };
    }
  }

  // A keyword or a setting's name: what it is, its settings, a link to the docs.
  if (!parts.length && word) {
    const doc = languageWordHover(nodePathAt(a.ast, offset), word);
    if (doc) {
      parts.push(doc);
      span = { file: d.path, start: word.start, end: word.end };
    }
  }

  if (!parts.length) {
    const path = nodePathAt(a.ast, offset);
    const found = describeNode(a, path);
    if (found) {
      parts.push(found.markdown);
      span = found.span;
    }
  }

  // Diagnostics under the cursor: their hint and what their code means.
  for (const diag of a.diagnostics) {
    if (!diag.span || diag.span.file !== d.path) continue;
    if (offset < diag.span.start || offset > diag.span.end) continue;
    const lines = [`**${diag.code}** ${diag.message}`];
    if (diag.hint) lines.push(`help: ${diag.hint}`);
    const doc = explainCode(diag.code);
    if (doc) lines.push(doc);
    parts.push(lines.join("\n\n"));
    span ??= diag.span;
  }
  if (!parts.length) return null;
  return {
    contents: { kind: MarkupKind.Markdown, value: parts.join("\n\n---\n\n") },
    ...(span ? { range: rangeOf(d.doc, span.start, span.end) } : {}),
  };
}

function wordAt(text: string, offset: number): { text: string; start: number; end: number } | null {
  let s = offset;
  let e = offset;
  while (s > 0 && /\w/.test(text[s - 1])) s--;
  while (e < text.length && /\w/.test(text[e])) e++;
  return e > s ? { text: text.slice(s, e), start: s, end: e } : null;
}

interface Found {
  markdown: string;
  span: A.Span;
}

function value(a: Analysis, e: A.Expr): bigint | null {
  if (!a.program) return e.kind === "Number" ? e.value : null;
  return evalExpr(e, programContext(a.program, []));
}

/** `0xE000_0000` · `3758096384` · `3.50 GiB` */
export function describeNumber(v: bigint): string {
  const parts = [`\`${hex(v)}\``, `\`${v}\``];
  if (v >= 1024n) parts.push(`\`${humanSize(v)}\``);
  return parts.join(" · ");
}

function describeNode(a: Analysis, path: A.Node[]): Found | null {
  const node = path[path.length - 1];
  const parent = path[path.length - 2];
  const machine = innermost(path, "Machine");
  const plan = machine ? a.plans.get(machine.name.name) : undefined;

  // Devices and PCI functions: hovering the kind, name or address.
  const device = innermost(path, "Device");
  if (device && node.kind === "Ident" && (node === device.deviceKind || node === device.name)) {
    return { markdown: describeDevice(device, plan), span: node.span };
  }
  const pci = innermost(path, "Pci");
  if (pci && (node === pci.address || node === pci.deviceKind)) {
    return { markdown: describePci(pci, plan), span: node.span };
  }
  if (machine && node.kind === "Ident" && (node === machine.name || node === machine.base)) {
    const target = node === machine.name ? machine : a.program?.machines.get(node.name)?.node;
    if (target) {
      return { markdown: describeMachine(target, a.plans.get(target.name.name)), span: node.span };
    }
  }
  if (node.kind === "String" && parent?.kind === "Import" && a.program) {
    const resolved = resolvePath(a.program.main, node.value);
    const target = a.program.files.has(resolved) ? resolved : null;
    const lines = [`**import** \`${target ?? node.value}\``];
    if (target) {
      const lets = [...a.program.lets.values()].filter((l) => l.file === target).map((l) =>
        `\`${l.name}\``
      );
      const ms = [...a.program.machines.values()].filter((m) => m.file === target).map((m) =>
        `\`${m.name}\``
      );
      lines.push(`constants: ${lets.join(", ") || "none"}  \nmachines: ${ms.join(", ") || "none"}`);
    } else {
      lines.push("_(not loaded)_");
    }
    return { markdown: lines.join("\n\n"), span: node.span };
  }
  const bar = innermost(path, "Bar");
  if (pci && bar && node.kind === "Ident" && node === bar.barKind) {
    return { markdown: describeBar(a, pci, bar, plan), span: bar.span };
  }

  const hole = innermost(path, "PciHole");
  const ecam = innermost(path, "Ecam");
  const range = innermost(path, "Range");
  const prop = innermost(path, "Prop");
  const expr = innermostExpr(path);
  const out: string[] = [];
  let span: A.Span | null = null;

  // A word value that is not a constant (`strategy shadow`, `acpi off`): its setting's doc.
  if (prop && node.kind === "Name" && !a.program?.lets.has(node.name)) {
    const doc = propDoc(path, prop.name.name);
    if (doc) return { markdown: `\`${prop.name.name} ${node.name}\`: ${doc}`, span: node.span };
  }

  // A string constant, or strings joined with `+`: the text.
  const text = expr && a.program ? evalValue(expr, programContext(a.program, [])) : null;
  if (expr && text !== null && typeof text !== "bigint") {
    const label = expr.kind === "Name" ? `\`${expr.name}\` = ` : "";
    out.push(`${label}\`${JSON.stringify(text.text)}\``);
    const sym = expr.kind === "Name" ? a.program?.lets.get(expr.name) : undefined;
    if (sym && sym.file !== a.program?.main) out.push(`defined in \`${sym.file}\``);
    span = expr.span;
  } else if (expr) {
    const v = value(a, expr);
    if (v !== null) {
      const label = expr.kind === "Name" ? `\`${expr.name}\` = ` : "";
      out.push(`${label}${describeNumber(v)}`);
      if (expr.kind === "Name") {
        const sym = a.program?.lets.get(expr.name);
        if (sym && sym.file !== a.program?.main) out.push(`defined in \`${sym.file}\``);
      }
      span = expr.span;
      // An I/O port: which device claims it.
      if (plan && prop?.name.name === "port" && !range) {
        const owners = plan.devices.filter((d) =>
          d.ports.some((r) => BigInt(r.base) <= v && v < BigInt(r.base + r.size))
        );
        if (owners.length) {
          out.push(
            owners.map((d) => `port of \`${d.id}\` (${fmtRanges(d.ports, "ports")})`).join("  \n"),
          );
        }
      }
    }
  }
  if (ecam && range && ecam.buses === range) {
    // `buses a..b` is inclusive: one MiB of ECAM per bus.
    const lo = value(a, range.left);
    const hi = value(a, range.right);
    if (lo !== null && hi !== null && hi >= lo) {
      const n = hi - lo + 1n;
      const lines = [
        `**buses** ${lo}..${hi} (inclusive): ${n} bus${n === 1n ? "" : "es"}, ECAM ${
          humanSize(n << 20n)
        }`,
      ];
      const e = plan?.hole?.ecam;
      if (e) lines.push(`ECAM window \`${hex(e.base)} .. ${hex(e.base + e.size)}\``);
      out.push(lines.join("  \n"));
      span ??= range.span;
    }
  } else if (range) {
    const lo = value(a, range.left);
    const hi0 = value(a, range.right);
    if (lo !== null && hi0 !== null) {
      const end = range.form === "to" ? hi0 : lo + hi0;
      const size = end - lo;
      const ports = isPortRange(path);
      out.push(
        [
          `**range** \`${hex(lo)} .. ${hex(end)}\``,
          `start ${describeNumber(lo)}`,
          `end ${describeNumber(end)} (exclusive)`,
          `size ${describeNumber(size)}`,
        ].join("  \n"),
      );
      if (plan && size > 0n) {
        const hits = overlaps(plan, lo, end, ports);
        if (hits.length) out.push(`overlaps:\n${hits.map((h) => `- ${h}`).join("\n")}`);
      }
      span ??= range.span;
    }
  }
  if ((hole || ecam) && !out.length && plan?.hole) {
    return { markdown: describeHole(plan), span: (ecam ?? hole)!.span };
  }
  if (!out.length) return null;
  return { markdown: out.join("\n\n"), span: span ?? node.span };
}

function describeBar(a: Analysis, pci: A.Pci, bar: A.Bar, plan: Plan | undefined): string {
  const index = value(a, bar.index);
  const size = value(a, bar.size);
  const lines = [
    `**BAR ${index ?? "?"}** ${bar.barKind.name}${bar.prefetchable ? " prefetchable" : ""}` +
    (size !== null ? `, ${humanSize(size)}` : ""),
  ];
  const bdf = parseBdf(pci.address.raw);
  const f = bdf &&
    plan?.pci.find((x) => x.bus === bdf[0] && x.device === bdf[1] && x.function === bdf[2]);
  const b = f?.bars.find((x) => BigInt(x.index) === index);
  if (b) {
    lines.push(
      b.kind === "io"
        ? `placed at ports \`0x${b.address.toString(16)}..0x${(b.address + b.size).toString(16)}\``
        : `placed at \`${hex(b.address)} .. ${hex(b.address + b.size)}\``,
    );
  }
  return lines.join("\n\n");
}

function innermostExpr(path: A.Node[]): A.Expr | null {
  // From the innermost node outwards: stop at the first number, name or sized value;
  // a Sized wrapping a bare number (`128 MiB`) is what the user means.
  for (let i = path.length - 1; i >= 0; i--) {
    const n = path[i];
    if (n.kind === "Number" || n.kind === "Name" || n.kind === "Sized") {
      const up = path[i - 1];
      if (up && up.kind === "Sized" && n.kind !== "Sized") return up;
      return n;
    }
    if (n.kind === "Binary" || n.kind === "Paren") return n;
  }
  return null;
}

function isPortRange(path: A.Node[]): boolean {
  const prop = innermost(path, "Prop");
  return !!prop && prop.name.name === "port";
}

function overlaps(plan: Plan, lo: bigint, end: bigint, ports: boolean): string[] {
  const hits: string[] = [];
  const test = (what: string, r: PlanRange) => {
    const b = BigInt(r.base);
    const e = b + BigInt(r.size);
    if (b < end && lo < e) {
      hits.push(`${what} \`${hex(b)} .. ${hex(e)}\` (${humanSize(BigInt(r.size))})`);
    }
  };
  if (ports) {
    for (const dev of plan.devices) for (const r of dev.ports) test(`ports of \`${dev.id}\``, r);
    return hits;
  }
  for (const m of plan.memslots) {
    test(`memslot ${m.slot} \`${m.name}\`${m.flags.length ? ` [${m.flags.join(", ")}]` : ""}`, {
      base: m.guest_phys,
      size: m.size,
    });
  }
  if (plan.hole) {
    test("the PCI hole", plan.hole);
    if (plan.hole.ecam) {
      test(
        `the ECAM window (buses ${plan.hole.ecam.bus_start}..${plan.hole.ecam.bus_end})`,
        plan.hole.ecam,
      );
    }
    test("the 32-bit BAR window", plan.hole.mmio32);
    if (plan.hole.mmio64) test("the 64-bit BAR window", plan.hole.mmio64);
  }
  for (const dev of plan.devices) for (const r of dev.mmio) test(`MMIO of \`${dev.id}\``, r);
  for (const f of plan.pci) {
    for (const b of f.bars) {
      if (b.kind !== "io") {
        test(`BAR ${b.index} of ${f.bdf} (${f.kind})`, { base: b.address, size: b.size });
      }
    }
  }
  for (const r of PLATFORM_REGIONS) test(r.name, { base: Number(r.base), size: Number(r.size) });
  return hits;
}

function fmtRanges(rs: PlanRange[], unit: "ports" | "mmio"): string {
  return rs.map((r) => {
    const e = r.base + r.size;
    return unit === "ports"
      ? `\`0x${r.base.toString(16)}..0x${e.toString(16)}\` (${r.size} port${
        r.size === 1 ? "" : "s"
      })`
      : `\`${hex(r.base)} .. ${hex(e)}\` (${humanSize(r.size)})`;
  }).join(", ");
}

function describeDevice(dev: A.Device, plan: Plan | undefined): string {
  const id = dev.name?.name ?? dev.deviceKind.name;
  const spec = DEVICE_KINDS[dev.deviceKind.name];
  const lines = [`**device ${dev.deviceKind.name}** \`${id}\``];
  if (spec) lines.push(spec.doc);
  const p = plan?.devices.find((x) => x.id === id);
  if (p) {
    const claims: string[] = [];
    if (p.ports.length) claims.push(`ports ${fmtRanges(p.ports, "ports")}`);
    if (p.mmio.length) claims.push(`MMIO ${fmtRanges(p.mmio, "mmio")}`);
    if (p.irq !== null) claims.push(`IRQ (GSI) ${p.irq}`);
    lines.push(`claims: ${claims.length ? claims.join("; ") : "nothing"}`);
    const props = Object.entries(p.props);
    if (props.length) {
      lines.push(`settings: ${props.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")}`);
    }
    if (p.virtio) lines.push(describeVirtio(p.virtio));
  } else if (plan === undefined) {
    lines.push("_(no Plan: the machine has errors)_");
  }
  return lines.join("\n\n");
}

/** A virtio device's transport and backing, as the Plan has them. */
function describeVirtio(v: VirtioPlan): string {
  const t = v.transport.kind === "pci"
    ? `virtio 1.x PCI: BAR ${v.transport.bar}, MSI-X ${v.transport.msix.vectors} vectors`
    : "virtio-mmio version 2";
  const b = v.backing.kind === "file"
    ? `disk \`${v.backing.path}\`${v.backing.readonly ? " (read-only)" : ""}${
      v.backing.serial ? `, serial "${v.backing.serial}"` : ""
    }`
    : "entropy from the host's getrandom";
  return `${t}; ${b}; queue sizes ${v.queue_sizes.join(", ")}`;
}

function parseBdf(raw: string): [number, number, number] | null {
  const m = /^(?:([0-9a-fA-F]+):)?([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-7])$/.exec(raw);
  if (!m) return null;
  return [parseInt(m[2], 16), parseInt(m[3], 16), parseInt(m[4], 16)];
}

function describePci(pci: A.Pci, plan: Plan | undefined): string {
  const spec = PCI_KINDS[pci.deviceKind.name];
  const lines = [`**pci ${pci.address.raw}** ${pci.deviceKind.name}`];
  if (spec) lines.push(spec.doc);
  const bdf = parseBdf(pci.address.raw);
  const f = bdf &&
    plan?.pci.find((x) => x.bus === bdf[0] && x.device === bdf[1] && x.function === bdf[2]);
  if (f) {
    const id = (n: number, w: number) => n.toString(16).padStart(w, "0");
    lines.push(
      `IDs \`${id(f.vendor_id, 4)}:${id(f.device_id, 4)}\` class \`0x${
        id(f.class_code, 6)
      }\` rev ${f.revision}` +
        ` subsystem \`${id(f.subsystem_vendor_id, 4)}:${id(f.subsystem_id, 4)}\``,
    );
    if (plan?.hole?.ecam) {
      const cfg = plan.hole.ecam.base + ((f.bus - plan.hole.ecam.bus_start) << 20) +
        (f.device << 15) + (f.function << 12);
      lines.push(`config space: ECAM \`${hex(cfg)} .. ${hex(cfg + 4096)}\``);
    }
    for (const b of f.bars) {
      const where = b.kind === "io"
        ? `ports \`0x${b.address.toString(16)}\``
        : `\`${hex(b.address)}\``;
      lines.push(
        `BAR ${b.index}: ${b.kind}${b.prefetchable ? " prefetchable" : ""} ${
          humanSize(b.size)
        } at ${where}`,
      );
    }
    lines.push(
      f.interrupt_pin
        ? `interrupt: INT${"ABCD"[f.interrupt_pin - 1]}# → GSI ${f.irq}`
        : "interrupt: none",
    );
    if (f.virtio) lines.push(describeVirtio(f.virtio));
  } else if (plan === undefined) {
    lines.push("_(no Plan: the machine has errors)_");
  }
  return lines.join("\n\n");
}

function describeHole(plan: Plan): string {
  const h = plan.hole!;
  const lines = [
    `**PCI hole** \`${hex(h.base)} .. ${hex(h.base + h.size)}\` (${
      humanSize(h.size)
    }), strategy \`${h.strategy}\``,
  ];
  if (h.ecam) {
    lines.push(
      `ECAM \`${hex(h.ecam.base)} .. ${
        hex(h.ecam.base + h.ecam.size)
      }\` buses ${h.ecam.bus_start}..${h.ecam.bus_end}` +
        (h.ecam.shadow_slot !== null ? ` (shadow memslot ${h.ecam.shadow_slot})` : ""),
    );
  }
  lines.push(`32-bit BARs: ${fmtRanges([h.mmio32], "mmio")}`);
  if (h.mmio64) lines.push(`64-bit BARs: ${fmtRanges([h.mmio64], "mmio")}`);
  lines.push(
    `host memory: trap ${humanSize(h.host_cost.trap)}, shadow ${humanSize(h.host_cost.shadow)}`,
  );
  return lines.join("\n\n");
}

function describeMachine(m: A.Machine, plan: Plan | undefined): string {
  const lines = [`**machine ${m.name.name}**${m.base ? ` extends \`${m.base.name}\`` : ""}`];
  if (!plan) {
    lines.push("_(no Plan: the machine has errors)_");
    return lines.join("\n\n");
  }
  const ram = plan.memslots.filter((s) => s.backing.kind === "anonymous").reduce(
    (n, s) => n + s.size,
    0,
  );
  lines.push(
    `${plan.cpus.count} vCPU${plan.cpus.count === 1 ? "" : "s"}, RAM ${
      humanSize(ram)
    } in ${plan.memslots.length} memslot(s)`,
  );
  lines.push(
    `devices: ${
      plan.devices.map((d) => `\`${d.id}\``).join(", ") || "none"
    }; PCI functions: ${plan.pci.length}`,
  );
  lines.push(`boot: ${plan.boot.protocol} \`${plan.boot.path}\``);
  return lines.join("\n\n");
}

function propDoc(path: A.Node[], name: string): string | null {
  const device = innermost(path, "Device");
  if (device) return DEVICE_KINDS[device.deviceKind.name]?.props[name]?.doc ?? null;
  const pci = innermost(path, "Pci");
  if (pci) return PCI_KINDS[pci.deviceKind.name]?.props[name]?.doc ?? null;
  if (innermost(path, "Boot")) return BOOT_OPTIONS[name]?.doc ?? null;
  if (innermost(path, "PciHole")) return HOLE_PROPS[name]?.doc ?? null;
  if (innermost(path, "Machine")) return MACHINE_PROPS[name]?.doc ?? null;
  return null;
}

export type { Program };
