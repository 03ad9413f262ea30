/**
 * Hand-written Plans and hand-assembled guests for runtime tests (no `lang/` involved:
 * the runtime only ever sees Plans).
 */
import type { DevicePlan, Plan } from "../../plan/types.ts";
import { x86Platform } from "../../runtime/boot/acpi/testing.ts";

export const MiB = 1024 * 1024;

export interface FlatPlanOptions {
  ramSize?: number;
  cpus?: number;
  /** Path of the flat binary. */
  path: string;
  load?: number;
  entry?: number;
  mode?: "protected" | "real";
  devices?: DevicePlan[];
}

export function debugExitDevice(port = 0xf4): DevicePlan {
  return {
    id: "debug_exit",
    kind: "debug_exit",
    ports: [{ base: port, size: 1 }],
    mmio: [],
    irq: null,
    props: { port, size: 1 },
  };
}

/** A minimal machine: RAM from 0, no hole, the given devices, a flat payload. */
export function flatPlan(o: FlatPlanOptions): Plan {
  const ram = o.ramSize ?? 16 * MiB;
  const load = o.load ?? 0x10_0000;
  return {
    version: 1,
    machine: "test",
    source: null,
    cpus: { count: o.cpus ?? 1, cpuid: { source: "kvm-supported", hide: [] } },
    platform: x86Platform(),
    memslots: [{
      slot: 0,
      name: "ram-low",
      guest_phys: 0,
      size: ram,
      flags: [],
      backing: { kind: "anonymous" },
    }],
    hole: null,
    devices: o.devices ?? [debugExitDevice()],
    pci: [],
    boot: {
      protocol: "flat",
      path: o.path,
      cmdline: "",
      initrd: null,
      load_address: load,
      entry: o.entry ?? load,
      cpu_mode: o.mode ?? "protected",
      layout: {
        info_addr: 0x7000,
        cmdline_addr: 0x2_0000,
        cmdline_max: 4096,
        memmap_addr: 0x8000,
        gdt_addr: 0x500,
        page_tables_addr: 0x9000,
        stack_top: 0x8_0000,
      },
    },
    e820: [
      { addr: 0, size: 0x9_fc00, type: "ram" },
      { addr: 0x10_0000, size: ram - 0x10_0000, type: "ram" },
    ],
    acpi: null,
  };
}

/** 32-bit code: out 0xf4 <- value, then hlt forever. */
export function exitGuest(value: number): Uint8Array {
  return new Uint8Array([0xb0, value & 0xff, 0xe6, 0xf4, 0xfa, 0xf4, 0xeb, 0xfd]);
}

/** 32-bit code: `in al, port` n times, then out 0xf4 <- 0. */
export function inLoopGuest(n: number, port = 0x80): Uint8Array {
  const b = [0xb9, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]; // mov ecx, n
  b.push(0xe4, port); // in al, port
  b.push(0xe2, 0xfc); // loop -4
  b.push(0xb0, 0x00, 0xe6, 0xf4); // mov al,0; out 0xf4,al
  b.push(0xfa, 0xf4, 0xeb, 0xfd);
  return new Uint8Array(b);
}

/** 32-bit code: jmp $ (spins without exits). */
export function spinGuest(): Uint8Array {
  return new Uint8Array([0xeb, 0xfe]);
}

/** 32-bit code: cli; hlt (halted for good). */
export function haltGuest(): Uint8Array {
  return new Uint8Array([0xfa, 0xf4, 0xeb, 0xfd]);
}

/** 32-bit code: load an IDT with limit 0 and raise int3: a triple fault. */
export function tripleFaultGuest(): Uint8Array {
  // lidt [zero]: use a 6-byte descriptor of zeros placed after the code.
  // 0f 01 1d <abs32> = lidt [abs32]; cc = int3
  return new Uint8Array([
    0x0f,
    0x01,
    0x1d,
    0x10,
    0x00,
    0x10,
    0x00,
    0xcc,
    0xeb,
    0xfe,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
}

export async function writeTemp(bytes: Uint8Array, suffix = ".bin"): Promise<string> {
  const p = await Deno.makeTempFile({ prefix: "vmdesc-guest-", suffix });
  await Deno.writeFile(p, bytes);
  return p;
}

/** Writes a guest image to a temp file for `fn`, and removes it afterwards. */
export async function withGuest<T>(
  bytes: Uint8Array,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  const p = await writeTemp(bytes);
  try {
    return await fn(p);
  } finally {
    await Deno.remove(p);
  }
}

export function serialDevice(id = "com1", port = 0x3f8, irq = 4): DevicePlan {
  return {
    id,
    kind: "serial",
    ports: [{ base: port, size: 8 }],
    mmio: [],
    irq,
    props: { port, irq },
  };
}

export interface PvhPlanOptions {
  path: string;
  cpus?: number;
  cmdline?: string;
  ramSize?: number;
  devices?: DevicePlan[];
}

/** A PVH machine: RAM from 0, COM1 and debug_exit, no PCI hole. */
export function pvhPlan(o: PvhPlanOptions): Plan {
  const p = flatPlan({
    path: o.path,
    ramSize: o.ramSize,
    cpus: o.cpus,
    devices: o.devices ?? [serialDevice(), debugExitDevice()],
  });
  p.boot = {
    ...p.boot,
    protocol: "pvh",
    cmdline: o.cmdline ?? "",
    load_address: null,
    entry: null,
    cpu_mode: null,
  };
  return p;
}
