/**
 * Every device model the runtime knows, by the Plan's `kind`. Adding a device = its
 * folder + one line here. Models needing host-side extras get them from the context
 * (serial, virtio_console: `ctx.input`; pci_host: `ctx.shadowConfigPage`, `ctx.pciEndpoint`;
 * virtio_blk: `ctx.disk`; virtio_net: `ctx.waker`). Nothing outside runtime/devices/ imports a device's folder: it goes through
 * these maps and device.ts.
 */
import type { DeviceFactory, PciFunctionFactory } from "./device.ts";
import { createSerial } from "./serial/mod.ts";
import { createDebugExit } from "./debug_exit/mod.ts";
import { createI8042 } from "./i8042/mod.ts";
import { createPciHost } from "./pci_host/mod.ts";
import { createAcpiSleep } from "./acpi_sleep/mod.ts";
import { virtioMmio } from "./virtio/mmio.ts";
import { virtioPci } from "./virtio/pci.ts";
import { createBlk } from "./virtio/blk/mod.ts";
import { createRng } from "./virtio/rng/mod.ts";
import { createConsole } from "./virtio/console/mod.ts";
import { createNet } from "./virtio/net/mod.ts";

/** Platform devices (the Plan's `devices`). */
export const DEVICE_MODELS: ReadonlyMap<string, DeviceFactory> = new Map<string, DeviceFactory>([
  ["serial", (e, ctx, p) => createSerial(e, ctx, p, { input: ctx.input?.(e.id) ?? null })],
  ["debug_exit", createDebugExit],
  ["i8042", createI8042],
  ["pci_host", createPciHost],
  ["acpi_sleep", createAcpiSleep],
  ["virtio_blk", virtioMmio(createBlk)],
  ["virtio_rng", virtioMmio(createRng)],
  ["virtio_console", virtioMmio(createConsole)],
  ["virtio_net", virtioMmio(createNet)],
]);

/**
 * PCI functions with a model of their own (the Plan's `pci` entries that carry `virtio`);
 * every other function is a config-space header the PCI host bridge presents.
 */
export const PCI_FUNCTION_DEVICES: ReadonlyMap<string, PciFunctionFactory> = new Map<
  string,
  PciFunctionFactory
>([
  ["virtio_blk", virtioPci(createBlk)],
  ["virtio_rng", virtioPci(createRng)],
  ["virtio_console", virtioPci(createConsole)],
  ["virtio_net", virtioPci(createNet)],
]);
