/**
 * The PCI host bridge: legacy CF8/CFC configuration mechanism #1 and ECAM (MMCONFIG)
 * MMIO, both reaching the same type-0 config spaces of the functions the Plan declares.
 *
 * - 00:00.0 (on the ECAM window's first bus) is always present: the Plan's own function
 *   there if it lists one, else a host bridge 1b36:0008 class 060000 (the generic
 *   "QEMU PCIe host bridge" ID: no chipset-specific quirks fire in Linux, unlike an Intel
 *   MCH ID whose MMCONFIG-register probe would run).
 * - CF8 (4-byte accesses only) holds the config address: bit 31 enable, bus 23:16,
 *   device 15:11, function 10:8, register 7:2, and AMD's extended register bits 27:24.
 *   CFC..CFF is the data window, any width at any offset inside the dword. CF9 is the
 *   reset control register: a write with bit 2 (reset CPU) set ends the machine as a reset.
 * - ECAM: offset = (bus - bus_start) << 20 | dev << 15 | fn << 12 | reg from ecam.base.
 * - Absent functions read all-ones; writes to them are dropped.
 *
 * A function whose model does more than its header (virtio-pci: `ctx.pciEndpoint`) gets its
 * capabilities chained into its config space and hears every config write; its BARs stay
 * where the Plan placed them (a write that would move one reverts, once warned about), since
 * the model decodes them at that address.
 *
 * Under the `shadow` hole strategy the context hands out each present function's 4 KiB
 * page (the private page mapped into the read-only ECAM slot, `ctx.shadowConfigPage`); the
 * model builds the function's config space in that very page and reads and writes it
 * there, so exit-less guest reads always see the current state. A function inside the
 * ECAM window without a page would read as absent under `shadow` and present under
 * `trap`: such a Plan is refused (E1006).
 */
import type { AccessSize, Device, DeviceContext, PciEndpoint, Space } from "../device.ts";
import type { DevicePlan, PciFunctionPlan, Plan, Range } from "../../../plan/types.ts";
import { ConfigSpace } from "./config_space.ts";
import { formatBdf, fromPlan, PCI_FUNCTION_MODELS, syntheticHostBridge } from "./functions.ts";
import { invalidPlan } from "../errors.ts";

export { CONFIG_SPACE_SIZE, ConfigSpace } from "./config_space.ts";
export {
  HOST_BRIDGE_CLASS,
  HOST_BRIDGE_DEVICE,
  HOST_BRIDGE_VENDOR,
  PCI_FUNCTION_MODELS,
} from "./functions.ts";

export const CF8_PORT = 0xcf8;
export const CFC_PORT = 0xcfc;
const CF9_PORT = 0xcf9;

export interface PciHostDevice extends Device {
  /** The functions this bridge presents (Plan's + the synthetic host bridge), in BDF order. */
  readonly functions: readonly PciFunctionPlan[];
  /** Live config-space bytes of a present function, or undefined when absent. */
  configBytes(bdf: string): Uint8Array | undefined;
}

/**
 * Every function the host bridge of `plan` presents, including 00:00.0: what the `shadow`
 * strategy needs a private config page for. Pure; usable before the device exists.
 */
export function presentPciFunctions(plan: Plan): PciFunctionPlan[] {
  const firstBus = plan.hole?.ecam?.bus_start ?? 0;
  const fns = [...plan.pci];
  if (!fns.some((f) => f.bus === firstBus && f.device === 0 && f.function === 0)) {
    fns.push(syntheticHostBridge(firstBus));
  }
  return fns.sort((a, b) => key(a.bus, a.device, a.function) - key(b.bus, b.device, b.function));
}

function key(bus: number, dev: number, fn: number): number {
  return (bus << 8) | (dev << 3) | fn;
}

export function createPciHost(entry: DevicePlan, ctx: DeviceContext, plan: Plan): PciHostDevice {
  const ecam = plan.hole?.ecam ?? null;
  const functions = presentPciFunctions(plan);
  /** The function's page in the shadow ECAM slot; undefined under `trap` (own storage). */
  const shadowPage = (fn: PciFunctionPlan): Uint8Array | undefined => {
    if (!ctx.shadowConfigPage) return undefined;
    const page = ctx.shadowConfigPage(fn.bdf);
    // Functions on buses outside the ECAM window are reachable through CF8/CFC only.
    const inWindow = ecam !== null && fn.bus >= ecam.bus_start && fn.bus <= ecam.bus_end;
    if (!page && inWindow) {
      throw invalidPlan(
        `PCI function ${fn.bdf} has no config page in the shadow ECAM memslot`,
        "list every present function (including the host bridge at 00:00.0) in the ones_alias backing's `present`",
      );
    }
    return page;
  };
  const spaces = new Map<number, ConfigSpace>();
  /** Dense lookup by function key (bus << 8 | dev << 3 | fn): 65536 slots, mostly empty. */
  const byKey: (ConfigSpace | undefined)[] = new Array(65536).fill(undefined);
  const byBdf = new Map<string, ConfigSpace>();
  /** Functions whose model hears config writes, by function key. */
  const endpoints = new Map<number, PciEndpoint>();
  for (const fn of functions) {
    const endpoint = ctx.pciEndpoint?.(fn.bdf);
    const model = endpoint ? fromPlan : PCI_FUNCTION_MODELS.get(fn.kind);
    if (!model) {
      throw invalidPlan(
        `pci ${fn.bdf}: no runtime model for kind "${fn.kind}"`,
        `known PCI kinds: ${[...PCI_FUNCTION_MODELS.keys()].join(", ")}`,
      );
    }
    const init = model(fn);
    if (endpoint) {
      init.capabilities = endpoint.capabilities;
      init.pinBars = true;
    }
    const space = new ConfigSpace(init, shadowPage(fn));
    const k = key(fn.bus, fn.device, fn.function);
    spaces.set(k, space);
    byKey[k] = space;
    byBdf.set(fn.bdf, space);
    byBdf.set(formatBdf(fn.bus, fn.device, fn.function), space);
    if (endpoint) {
      endpoint.attach({
        read: (o, size) => space.read(o, size),
        set: (o, size, v) => space.set(o, size, v),
        capabilityOffsets: space.capabilityOffsets,
      });
      endpoints.set(k, endpoint);
    }
  }

  const ports: Range[] = entry.ports.length > 0
    ? entry.ports.map((r) => ({ ...r }))
    : [{ base: CF8_PORT, size: 8 }];
  const mmio: Range[] = entry.mmio.map((r) => ({ ...r }));
  if (ecam && !mmio.some((r) => r.base === ecam.base)) {
    mmio.push({ base: ecam.base, size: ecam.size });
  }

  let address = 0; // CF8 config address register
  const counters = {
    ecam_reads: 0,
    ecam_writes: 0,
    cf8_reads: 0,
    cf8_writes: 0,
    absent_reads: 0,
    absent_writes: 0,
    cf9_resets: 0,
    bar_moves_refused: 0,
  };

  function ones(size: AccessSize): number {
    return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  /** Config access by function key (bus << 8 | dev << 3 | fn) and register offset. */
  function configRead(fnKey: number, reg: number, size: AccessSize): number {
    const space = byKey[fnKey];
    if (space === undefined) {
      counters.absent_reads++;
      return ones(size);
    }
    return space.read(reg, size);
  }

  function configWrite(fnKey: number, reg: number, size: AccessSize, value: number): void {
    const space = byKey[fnKey];
    if (space === undefined) {
      counters.absent_writes++;
      return;
    }
    const refused = space.barMovesRefused;
    space.write(reg, size, value);
    if (space.barMovesRefused !== refused) {
      if (counters.bar_moves_refused++ === 0) {
        ctx.warn(
          `PCI function ${
            formatBdf(fnKey >> 8, (fnKey >> 3) & 31, fnKey & 7)
          }: the guest tried to move a BAR; it stays where the Plan placed it (reported once; \`--stats\` counts them)`,
        );
      }
    }
    endpoints.get(fnKey)?.configWritten(reg, size);
  }

  // ECAM: the offset from the window base is (bus - bus_start) << 20 | dev << 15 | fn << 12
  // | reg, so offset >>> 12 is the function key relative to bus_start. No allocation on
  // this path: it runs once per trapped access.
  const ecamBase = ecam?.base ?? 0;
  const ecamEnd = ecam ? ecam.base + ecam.size : 0;
  const ecamKeyBase = (ecam?.bus_start ?? 0) << 8;

  /** CF8 register for a data access at `port`: bits 27:24 are AMD's extended register. */
  function cf8Reg(port: number): number {
    return (address & 0xfc) | ((address >>> 16) & 0xf00) | (port - CFC_PORT);
  }

  function pioRead(port: number, size: AccessSize): number {
    if (port >= CFC_PORT && port < CFC_PORT + 4) {
      counters.cf8_reads++;
      if (!(address & 0x80000000)) return ones(size);
      return configRead((address >>> 8) & 0xffff, cf8Reg(port), size);
    }
    if (port === CF8_PORT && size === 4) return address >>> 0;
    if (port === CF9_PORT && size === 1) return 0;
    return ones(size);
  }

  function pioWrite(port: number, size: AccessSize, value: number): void {
    if (port >= CFC_PORT && port < CFC_PORT + 4) {
      counters.cf8_writes++;
      if (address & 0x80000000) configWrite((address >>> 8) & 0xffff, cf8Reg(port), size, value);
      return;
    }
    if (port === CF8_PORT && size === 4) {
      address = (value & 0x8ffffffc) >>> 0;
      return;
    }
    if (port === CF9_PORT && size === 1 && (value & 0x04)) {
      counters.cf9_resets++;
      ctx.requestStop({ kind: "reset", source: entry.id });
    }
  }

  return {
    id: entry.id,
    kind: entry.kind,
    ports,
    mmio,
    functions,
    read(space: Space, addr: number, size: AccessSize): number {
      if (space === "pio") return pioRead(addr, size);
      counters.ecam_reads++;
      if (addr < ecamBase || addr >= ecamEnd) return ones(size);
      const off = addr - ecamBase;
      return configRead(ecamKeyBase + Math.floor(off / 4096), off & 0xfff, size);
    },
    write(space: Space, addr: number, size: AccessSize, value: number): void {
      if (space === "pio") return pioWrite(addr, size, value);
      counters.ecam_writes++;
      if (addr < ecamBase || addr >= ecamEnd) return;
      const off = addr - ecamBase;
      configWrite(ecamKeyBase + Math.floor(off / 4096), off & 0xfff, size, value);
    },
    reset(): void {
      address = 0;
      for (const s of spaces.values()) s.reset();
    },
    stats(): Record<string, number> {
      return { ...counters, present_functions: spaces.size };
    },
    close(): void {
      // Config pages bound under `shadow` belong to the memslot's mapping, which the VM
      // releases; drop our references so nothing touches them afterwards.
      spaces.clear();
      byBdf.clear();
      byKey.fill(undefined);
    },
    configBytes(bdf: string): Uint8Array | undefined {
      return byBdf.get(bdf.toLowerCase())?.bytes;
    },
  };
}
