/**
 * Every device model the runtime knows, by the Plan's `kind`. Adding a device = its
 * folder + one line here. Models needing host-side extras get them from the context
 * (serial: `ctx.input`; pci_host: `ctx.shadowConfigPage`). Nothing outside
 * runtime/devices/ imports a device's folder: it goes through this map and device.ts.
 */
import type { DeviceFactory } from "./device.ts";
import { createSerial } from "./serial/mod.ts";
import { createDebugExit } from "./debug_exit/mod.ts";
import { createI8042 } from "./i8042/mod.ts";
import { createPciHost } from "./pci_host/mod.ts";
import { createAcpiSleep } from "./acpi_sleep/mod.ts";

export const DEVICE_MODELS: ReadonlyMap<string, DeviceFactory> = new Map<string, DeviceFactory>([
  ["serial", (e, ctx, p) => createSerial(e, ctx, p, { input: ctx.input?.(e.id) ?? null })],
  ["debug_exit", createDebugExit],
  ["i8042", createI8042],
  ["pci_host", createPciHost],
  ["acpi_sleep", createAcpiSleep],
]);
