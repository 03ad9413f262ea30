/**
 * Platform devices (serial, debug_exit, i8042, and virtio devices on the virtio-mmio
 * transport): the kind is known (E0301, with a pointer to `pci` for a PCI kind), the name is
 * free (E0306), the properties are typed by the kind's table, the ports fit below 0x10000,
 * a virtio-mmio device's page is 4 KiB aligned (E0207), and defaults are filled in (a
 * UART's IRQ from its port, i8042 at 0x60; a virtio-mmio device's page and IRQ come from
 * placement later); a machine without a serial device gets W0002.
 */
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error, warning } from "../diagnostics/make.ts";
import { type EvalContext, hex, type LangHost } from "../program.ts";
import { DEVICE_KINDS, PCI_KINDS, UART_PORT_IRQ } from "../specs.ts";
import { suggest } from "../suggest.ts";
import type { PropValue } from "../../plan/types.ts";
import { VIRTIO_MMIO_SIZE } from "../specs.ts";
import type { MmioClaim, PortClaim, ResolvedDevice } from "./model.ts";
import type { Merged } from "./merge.ts";
import { checkPage, evalProps } from "./values.ts";
import { isVirtioKind, resolveBacking, virtioPlan } from "./virtio.ts";
import { CONSOLE_KINDS, resolveConsoleIo } from "./console.ts";

export function resolveDevices(
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
    let mmio: MmioClaim | null = null;
    let virtio: ResolvedDevice["virtio"];
    const props: Record<string, PropValue> = {};
    let irq: number | null = null;
    let irqSpan: Span | null = null;
    let inputSpan: Span | null = null;
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
      inputSpan = resolveConsoleIo(v, host, mainFile, props, diags);
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
    } else if (isVirtioKind(d.kind)) {
      const backing = resolveBacking(d.kind, v, host, mainFile, diags, `${m.sym.name}/${d.id}`);
      if (!backing) continue;
      const address = v.get("address");
      if (address) {
        checkPage(address.value as bigint, address.span, "the virtio-mmio address", diags);
      }
      mmio = {
        base: address ? address.value as bigint : null,
        size: VIRTIO_MMIO_SIZE,
        span: address ? address.span : d.node.span,
      };
      virtio = virtioPlan(d.kind, { kind: "mmio", version: 2 }, backing);
      if (CONSOLE_KINDS.has(d.kind)) inputSpan = resolveConsoleIo(v, host, mainFile, props, diags);
    }
    out.push({
      id: d.id,
      kind: d.kind,
      span: d.node.span,
      ports,
      mmio,
      irq,
      irqSpan,
      props,
      ...(inputSpan ? { inputSpan } : {}),
      ...(virtio ? { virtio } : {}),
    });
  }
  return out;
}

/**
 * W0002: without a serial device (or a virtio console) the guest's console goes nowhere. A serial device that
 * has an error of its own, or a device of an unknown kind (a misspelt `serial`?), is
 * reported already: no warning on top.
 */
export function checkConsole(
  m: Merged,
  devices: ResolvedDevice[],
  where: string,
  span: Span,
  diags: Diags,
) {
  if (devices.some((d) => d.kind === "serial")) return;
  for (const d of m.devices.values()) {
    // A virtio console is the guest's console too.
    if (d.kind === "serial" || d.kind === "virtio_console" || !(d.kind in DEVICE_KINDS)) return;
  }
  for (const f of m.pci.values()) if (f.node.deviceKind.name === "virtio_console") return;
  {
    diags.push(
      warning(
        "W0002",
        `${where} has no serial device`,
        span,
        "add `device serial com1 { port 0x3f8 irq 4 }` to see the guest's console",
      ),
    );
  }
}
