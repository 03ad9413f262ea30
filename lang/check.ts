/**
 * Checking one machine: merge its `extends` chain, resolve each section into the checked
 * model (lang/check/model.ts), cross-check the sections, then check what the Plan must fit.
 * Every step is a module of lang/check/; this file runs them in order. Every problem is a
 * coded diagnostic; a machine with an error gets no model, so lowering (lang/lower.ts) only
 * ever sees valid machines and only places things.
 *
 * Every check is linear or n log n (overlaps are found by sorting then sweeping).
 */
import type { Diags } from "./diagnostics/make.ts";
import { type LangHost, type MachineSymbol, type Program, programContext } from "./program.ts";
import { MACHINE_PROPS, STRUCTURED_SETTINGS } from "./specs.ts";
import type { CheckOptions, ResolvedMachine } from "./check/model.ts";
import { mergeMachine } from "./check/merge.ts";
import { evalProps } from "./check/values.ts";
import { acpiWanted, resolveCpuid, resolveCpus } from "./check/machine.ts";
import { resolveEcam, resolveHole } from "./check/hole.ts";
import { resolveRam } from "./check/ram.ts";
import { checkConsole, resolveDevices } from "./check/devices.ts";
import { resolvePci } from "./check/pci.ts";
import { assignStdin } from "./check/console.ts";
import { checkNetworks } from "./check/virtio.ts";
import { checkFlatEntry, resolveBoot } from "./check/boot.ts";
import {
  checkEcamUse,
  checkIrqs,
  checkLayout,
  checkMmioDevices,
  checkPorts,
} from "./check/layout.ts";
import { checkFit } from "./check/fit.ts";
import { checkVirtioCmdline } from "./check/virtio.ts";
import { placeVirtioMmio } from "./placement.ts";
import { quietFollowOns } from "./check/cascade.ts";

export type { CheckOptions, ResolvedMachine } from "./check/model.ts";
export { checkProgram } from "./check/constants.ts";

export function checkMachine(
  program: Program,
  sym: MachineSymbol,
  host: LangHost,
  opts: CheckOptions,
  diags: Diags,
): ResolvedMachine | null {
  const start = diags.length;
  const failed = () => diags.slice(start).some((d) => d.severity === "error");
  const ctx = programContext(program, diags);
  const m = mergeMachine(program, sym, ctx, diags);
  if (!m) return null;
  const span = sym.span;
  const where = `machine \`${sym.name}\``;

  // Each section on its own. The hole comes first (the default RAM split depends on it),
  // its ECAM window after the PCI functions (`buses auto` ends at their highest bus).
  const settings = evalProps(m.props, MACHINE_PROPS, ctx, where, span, [...STRUCTURED_SETTINGS]);
  const cpus = resolveCpus(settings.get("cpus"), diags);
  const acpi = acpiWanted(settings.get("acpi"));
  const holeRange = resolveHole(m, ctx, opts, diags);
  const ram = resolveRam(m, settings.get("memory"), holeRange, ctx, span, where, diags);
  const resolvedDevices = resolveDevices(m, ctx, diags, host, program.main);
  const pci = resolvePci(m, holeRange, ctx, diags, host, program.main);
  assignStdin(resolvedDevices, pci, diags);
  checkNetworks([...resolvedDevices, ...pci].map((d) => d.virtio?.backing), diags);
  const hole = holeRange && { ...holeRange, ecam: resolveEcam(m, pci, holeRange, ctx, diags) };
  const boot = resolveBoot(m, ctx, host, opts, span, where, diags, program.main);
  const cpuidHide = resolveCpuid(m.cpuid, diags);
  // Virtio-mmio devices get their page and IRQ line once RAM, the hole and the other
  // devices' lines are known (lines above 15 only where ACPI tells the guest about them).
  const acpiTables = boot !== null && boot.protocol !== "flat" && acpi;
  const placed = placeVirtioMmio(resolvedDevices, pci, ram, hole, acpiTables);
  const devices = placed.devices;

  // The sections against each other and the platform.
  checkLayout(ram, hole, diags);
  checkMmioDevices(placed, ram, hole, diags);
  checkEcamUse(hole, pci, m, diags);
  checkPorts(devices, hole, acpi && boot?.protocol !== "flat", diags);
  checkIrqs(devices, pci, acpi, boot, diags);
  checkConsole(m, devices, where, span, diags);
  // What a syntax error may have taken away is not reported missing.
  quietFollowOns(diags, start, m);
  // (A base's merge errors were reported when it was merged first: m.chainErrors.)
  if (failed() || m.chainErrors || !boot) return null;

  // What needs the whole machine valid: the Plan's memslots and BAR windows (placed as
  // lowering will place them) and a flat binary's place in RAM.
  checkFit(ram, hole, pci, devices, span, diags);
  checkFlatEntry(boot, ram, diags);
  checkVirtioCmdline(boot, devices, acpiTables, diags);
  if (failed()) return null;
  return {
    name: sym.name,
    file: sym.file,
    span,
    cpus,
    cpuidHide,
    ram,
    hole,
    devices,
    pci,
    boot,
    acpi: acpiTables,
  };
}
