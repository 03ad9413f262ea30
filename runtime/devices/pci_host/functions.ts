/**
 * PCI function models: what each kind of function looks like in config space.
 *
 * These are config-space-only (BARs are decoded by nobody; the point is enumeration,
 * sizing and the hole). The Plan already carries explicit IDs, class and BARs for every
 * function; a model fills in what a kind implies when the Plan leaves a field 0 (the
 * transitional virtio IDs of a config-space-only virtio function). A function with a real
 * model (virtio-pci, when its Plan entry has `virtio`) is built from the registry instead
 * and presented through `ctx.pciEndpoint` (runtime/devices/registry.ts).
 */
import type { PciFunctionPlan } from "../../../plan/types.ts";
import {
  COMMAND_IO,
  COMMAND_MASTER,
  COMMAND_MEMORY,
  type ConfigSpaceInit,
} from "./config_space.ts";

export type PciFunctionModel = (fn: PciFunctionPlan) => ConfigSpaceInit;

/** Red Hat / QEMU vendor and its generic "PCIe host bridge" device: no chipset quirks in guests. */
export const HOST_BRIDGE_VENDOR = 0x1b36;
export const HOST_BRIDGE_DEVICE = 0x0008;
export const HOST_BRIDGE_CLASS = 0x060000;

const VIRTIO_VENDOR = 0x1af4;

/** Transitional virtio PCI IDs (device 0x1000 + type - 1 family) and their subsystem type. */
const VIRTIO = {
  virtio_net: { device: 0x1000, type: 1, classCode: 0x020000 },
  virtio_blk: { device: 0x1001, type: 2, classCode: 0x010000 },
  virtio_rng: { device: 0x1005, type: 4, classCode: 0x00ff00 },
} as const;

function firmwareCommand(fn: PciFunctionPlan): number {
  // Firmware enables decoding for the BAR kinds it programmed (we program them all).
  let cmd = 0;
  for (const bar of fn.bars) cmd |= bar.kind === "io" ? COMMAND_IO : COMMAND_MEMORY;
  return cmd;
}

/** The header exactly as the Plan gives it. */
export function fromPlan(fn: PciFunctionPlan): ConfigSpaceInit {
  return {
    vendorId: fn.vendor_id,
    deviceId: fn.device_id,
    classCode: fn.class_code,
    revision: fn.revision,
    headerType: fn.header_type,
    subsystemVendorId: fn.subsystem_vendor_id,
    subsystemId: fn.subsystem_id,
    bars: fn.bars,
    interruptPin: fn.interrupt_pin,
    interruptLine: fn.interrupt_pin > 0 ? (fn.irq ?? 0xff) : 0,
    command: firmwareCommand(fn),
  };
}

function virtio(kind: keyof typeof VIRTIO): PciFunctionModel {
  const ids = VIRTIO[kind];
  return (fn) => {
    const init = fromPlan(fn);
    if (init.vendorId === 0) init.vendorId = VIRTIO_VENDOR;
    if (init.deviceId === 0) init.deviceId = ids.device;
    if (init.classCode === 0) init.classCode = ids.classCode;
    if (init.subsystemVendorId === 0) init.subsystemVendorId = VIRTIO_VENDOR;
    if (init.subsystemId === 0) init.subsystemId = ids.type;
    return init;
  };
}

function hostBridge(fn: PciFunctionPlan): ConfigSpaceInit {
  const init = fromPlan(fn);
  if (init.vendorId === 0) init.vendorId = HOST_BRIDGE_VENDOR;
  if (init.deviceId === 0) init.deviceId = HOST_BRIDGE_DEVICE;
  if (init.classCode === 0) init.classCode = HOST_BRIDGE_CLASS;
  init.command |= COMMAND_MEMORY | COMMAND_MASTER;
  return init;
}

export const PCI_FUNCTION_MODELS: ReadonlyMap<string, PciFunctionModel> = new Map<
  string,
  PciFunctionModel
>([
  ["generic", fromPlan],
  ["virtio_rng", virtio("virtio_rng")],
  ["virtio_net", virtio("virtio_net")],
  ["virtio_blk", virtio("virtio_blk")],
  ["host_bridge", hostBridge],
]);

/** The host bridge at bus_start:00.0 when the Plan does not list a function there itself. */
export function syntheticHostBridge(bus: number): PciFunctionPlan {
  return {
    bdf: formatBdf(bus, 0, 0),
    segment: 0,
    bus,
    device: 0,
    function: 0,
    kind: "host_bridge",
    vendor_id: HOST_BRIDGE_VENDOR,
    device_id: HOST_BRIDGE_DEVICE,
    class_code: HOST_BRIDGE_CLASS,
    revision: 0,
    subsystem_vendor_id: 0x1af4,
    subsystem_id: 0x1100,
    header_type: 0,
    bars: [],
    interrupt_pin: 0,
    irq: null,
    props: {},
  };
}

export function formatBdf(bus: number, dev: number, fn: number): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, "0");
  return `${h(bus, 2)}:${h(dev, 2)}.${fn.toString(16)}`;
}
