/**
 * The Plan's console-like devices: serial ports and virtio consoles (virtio-mmio devices
 * and PCI functions), which share the output routing (`props.output`, serial_outputs.ts)
 * and compete for the machine's stdin (`props.input`).
 *
 * The compiler writes `props.input` on every console ("stdin" on one, lang/check/console.ts);
 * a Plan without it anywhere (written before consoles had a choice) gives stdin to its
 * first serial port, as vmdesc always did. Two owners are refused (E1050).
 */
import type { Plan, PropValue } from "../../plan/types.ts";
import { RuntimeError } from "../errors.ts";

export interface ConsoleEntry {
  /** The id the device's output and input are routed by: a device id, or a function's BDF. */
  id: string;
  kind: string;
  props: Record<string, PropValue>;
}

const CONSOLE_KINDS = new Set(["serial", "virtio_console"]);

/** Every console-like entry: platform devices, then PCI functions, in Plan order. */
export function consoleEntries(plan: Plan): ConsoleEntry[] {
  return [
    ...plan.devices.filter((d) => CONSOLE_KINDS.has(d.kind)),
    ...plan.pci.filter((f) => CONSOLE_KINDS.has(f.kind)).map((f) => ({ ...f, id: f.bdf })),
  ].map(({ id, kind, props }) => ({ id, kind, props }));
}

/** The id of the device that receives stdin, or null for none; E1050 for two. */
export function stdinOwner(plan: Plan): string | null {
  const consoles = consoleEntries(plan);
  const owners = consoles.filter((c) => c.props.input === "stdin");
  if (owners.length > 1) {
    throw new RuntimeError(
      "E1050",
      `the Plan gives stdin to both ${owners[0].id} and ${owners[1].id}`,
      'set props.input "stdin" on one console (a serial or virtio_console entry) and "none" on the others',
    );
  }
  if (owners.length === 1) return owners[0].id;
  if (consoles.some((c) => c.props.input !== undefined)) return null;
  return consoles.find((c) => c.kind === "serial")?.id ?? null;
}
