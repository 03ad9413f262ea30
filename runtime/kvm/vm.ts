/**
 * A KVM virtual machine built from a Plan: /dev/kvm checks, the VM fd, platform pieces
 * (TSS, identity map, irqchip, PIT), memslots exactly as listed, and vCPUs with CPUID and
 * their kvm_run pages. Construction is all-or-nothing: whatever was created before a
 * failure is released before the error propagates, and `close()` releases everything.
 */
import type { Plan } from "../../plan/types.ts";
import * as host from "../host/libc.ts";
import { HostError } from "../host/libc.ts";
import {
  type CapName,
  KVM_API_VERSION,
  KVM_CAP,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_IRQCHIP,
  KVM_CREATE_PIT2,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_GET_API_VERSION,
  KVM_GET_VCPU_MMAP_SIZE,
  KVM_IRQ_LEVEL,
  KVM_IRQ_LINE,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_MSI,
  KVM_PIT_CONFIG,
  KVM_SET_IDENTITY_MAP_ADDR,
  KVM_SET_TSS_ADDR,
  KVM_SET_USER_MEMORY_REGION,
  KVM_SIGNAL_MSI,
  KVM_USERSPACE_MEMORY_REGION,
} from "./abi.ts";
import { Struct } from "./layout.ts";
import { Vcpu } from "./vcpu.ts";
import { encodeCpuid, supportedCpuid, tscKhz, vcpuCpuid } from "./cpuid.ts";
import { RuntimeError } from "../errors.ts";
import { GuestMemory, type HostMapping, mapMemslot, type RegionInfo } from "../memory/mod.ts";

export const KVM_DEVICE = "/dev/kvm";

/** Releases resources in reverse order of acquisition; never throws. */
export class Releaser {
  #fns: (() => void)[] = [];
  add(fn: () => void): void {
    this.#fns.push(fn);
  }
  releaseAll(): void {
    while (this.#fns.length > 0) {
      const fn = this.#fns.pop()!;
      try {
        fn();
      } catch {
        // Releasing must go on; a failed munmap/close here has nothing left to fix.
      }
    }
  }
}

/** Opens /dev/kvm with the errors users actually meet turned into E1001/E1002. */
export function openKvm(path = KVM_DEVICE): number {
  try {
    return host.open(path, host.O_RDWR);
  } catch (e) {
    if (
      e instanceof HostError &&
      (e.errnoName === "ENOENT" || e.errnoName === "ENODEV" || e.errnoName === "ENXIO")
    ) {
      throw new RuntimeError(
        "E1001",
        `${path} not found (${e.errnoName})`,
        "is the kvm module loaded? is this a VM without nested virtualization? " +
          "(`vmdesc doctor` tells which)",
      );
    }
    if (e instanceof HostError && (e.errnoName === "EACCES" || e.errnoName === "EPERM")) {
      throw new RuntimeError(
        "E1002",
        `permission denied opening ${path}`,
        "add yourself to the kvm group (sudo usermod -aG kvm $USER) and log in again",
      );
    }
    throw e;
  }
}

/** Wraps a failed KVM call into E1005 with the call's name. */
function kvmCall<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw kvmError(what, e);
  }
}

/** A failed KVM call as E1005 with a hint for its errno; other errors as they are. */
function kvmError(what: string, e: unknown): unknown {
  return e instanceof HostError
    ? new RuntimeError("E1005", `${what} failed: ${e.errnoName}`, kvmHint(e.errnoName))
    : e;
}

function kvmHint(errnoName: string): string {
  switch (errnoName) {
    case "EEXIST":
      return "two memslots overlap or reuse a slot id; check the Plan's memslots";
    case "EINVAL":
      return "KVM rejected an argument: check alignment (4 KiB) and sizes in the Plan";
    case "ENOMEM":
      return "the host is out of memory or mappings (vm.max_map_count)";
    default:
      return "see dmesg for KVM messages";
  }
}

export interface VmOptions {
  /** Path of the KVM device (tests point it elsewhere to exercise E1001). */
  device?: string;
}

export class Vm {
  readonly vcpus: Vcpu[] = [];
  readonly memory: GuestMemory;
  readonly regions: RegionInfo[];
  #rel: Releaser;
  #closed = false;

  private constructor(
    readonly kvmFd: number,
    readonly vmFd: number,
    rel: Releaser,
    regions: RegionInfo[],
    readonly plan: Plan,
  ) {
    this.#rel = rel;
    this.regions = regions;
    this.memory = new GuestMemory(regions);
  }

  /** Builds the VM described by the Plan; releases everything it made if any step fails. */
  static async create(plan: Plan, opts: VmOptions = {}): Promise<Vm> {
    const rel = new Releaser();
    // Guest memory is unmapped last, after the VM is gone: unmapping it while the VM lives
    // makes KVM invalidate every range through its MMU notifier (the shadow hole's 257
    // aliases cost ~10 ms that way; after the VM fd is closed, ~1 ms).
    const memory = new Releaser();
    rel.add(() => memory.releaseAll());
    // Memslots are registered on Deno's thread pool: KVM takes ~5 ms for 128 MiB of RAM
    // here, which then overlaps building the ECAM window, the vCPUs and their CPUID.
    const registering: Promise<unknown>[] = [];
    try {
      const kvmFd = openKvm(opts.device);
      rel.add(() => host.close(kvmFd));
      checkKvm(kvmFd, plan);
      const vmFd = kvmCall("KVM_CREATE_VM", () => host.ioctl(kvmFd, KVM_CREATE_VM, 0));
      rel.add(() => host.close(vmFd));

      const p = plan.platform;
      kvmCall("KVM_SET_TSS_ADDR", () => host.ioctl(vmFd, KVM_SET_TSS_ADDR, p.tss_addr));
      const idmap = new BigUint64Array([BigInt(p.identity_map_addr)]);
      kvmCall(
        "KVM_SET_IDENTITY_MAP_ADDR",
        () => host.ioctlBuf(vmFd, KVM_SET_IDENTITY_MAP_ADDR, new Uint8Array(idmap.buffer)),
      );
      kvmCall("KVM_CREATE_IRQCHIP", () => host.ioctl(vmFd, KVM_CREATE_IRQCHIP, 0));
      if (p.pit) {
        const pit = new Struct(KVM_PIT_CONFIG);
        kvmCall("KVM_CREATE_PIT2", () => host.ioctlBuf(vmFd, KVM_CREATE_PIT2, pit.bytes));
      }

      const regions: RegionInfo[] = [];
      for (const slot of plan.memslots) {
        const m: HostMapping = mapMemslot(slot);
        memory.add(() => m.release());
        const readonly = slot.flags.includes("readonly");
        let flags = 0;
        if (readonly) flags |= KVM_MEM_READONLY;
        if (slot.flags.includes("log_dirty_pages")) flags |= KVM_MEM_LOG_DIRTY_PAGES;
        const r = new Struct(KVM_USERSPACE_MEMORY_REGION)
          .set("slot", slot.slot)
          .set("flags", flags)
          .set("guest_phys_addr", slot.guest_phys)
          .set("memory_size", slot.size)
          .set("userspace_addr", m.addr);
        const what = `KVM_SET_USER_MEMORY_REGION (slot ${slot.slot} "${slot.name}")`;
        const done = host.ioctlBufInBackground(vmFd, KVM_SET_USER_MEMORY_REGION, r.bytes, what)
          .catch((e) => {
            throw kvmError(what, e);
          });
        done.catch(() => {}); // awaited below, after the work it overlaps
        registering.push(done);
        regions.push({
          name: slot.name,
          guestPhys: slot.guest_phys,
          size: slot.size,
          hostAddr: m.addr.toString(),
          readonly,
          ram: !readonly && slot.backing.kind !== "ones_alias",
        });
      }

      const vm = new Vm(kvmFd, vmFd, rel, regions, plan);
      const mmapSize = kvmCall(
        "KVM_GET_VCPU_MMAP_SIZE",
        () => host.ioctl(kvmFd, KVM_GET_VCPU_MMAP_SIZE, 0),
      );
      const cpuid = kvmCall("KVM_GET_SUPPORTED_CPUID", () => supportedCpuid(kvmFd));
      let tsc: number | null = null;
      for (let i = 0; i < plan.cpus.count; i++) {
        const fd = kvmCall(`KVM_CREATE_VCPU ${i}`, () => host.ioctl(vmFd, KVM_CREATE_VCPU, i));
        rel.add(() => host.close(fd));
        const run = kvmCall(
          "mmap kvm_run",
          () => host.mmap(0n, mmapSize, host.PROT_READ | host.PROT_WRITE, host.MAP_SHARED, fd, 0),
        );
        rel.add(() => host.munmap(run, mmapSize));
        const v = new Vcpu(i, fd, run, mmapSize);
        // One rate for the machine: KVM gives every vCPU the rate of the VM (the host's).
        if (i === 0) tsc = kvmCall("KVM_GET_TSC_KHZ", () => tscKhz(kvmFd, fd));
        const table = vcpuCpuid(cpuid, {
          hide: plan.cpus.cpuid.hide,
          apicId: i,
          cpuCount: plan.cpus.count,
          tscKhz: tsc,
        });
        kvmCall("KVM_SET_CPUID2", () => v.setCpuid(encodeCpuid(table)));
        vm.vcpus.push(v);
      }
      await Promise.all(registering);
      return vm;
    } catch (e) {
      // Nothing is released under a registration still in flight.
      await Promise.allSettled(registering);
      rel.releaseAll();
      throw e;
    }
  }

  /** KVM_IRQ_LINE on the in-kernel irqchip. */
  setIrq(gsi: number, level: boolean): void {
    setIrqLine(this.vmFd, gsi, level);
  }

  /** KVM_SIGNAL_MSI (see signalMsi below). */
  signalMsi(address: number, data: number): boolean {
    return signalMsi(this.vmFd, address, data);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Releases vCPUs, memory and fds; idempotent. Workers must have stopped first. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rel.releaseAll();
  }
}

const irqBuf = new Struct(KVM_IRQ_LEVEL);
export function setIrqLine(vmFd: number, gsi: number, level: boolean): void {
  irqBuf.set("irq", gsi).set("level", level ? 1 : 0);
  host.ioctlBuf(vmFd, KVM_IRQ_LINE, irqBuf.bytes, "KVM_IRQ_LINE");
}

const msiBuf = new Struct(KVM_MSI);
/**
 * KVM_SIGNAL_MSI: delivers the message a guest programmed into an MSI capability or an
 * MSI-X table entry (address 0xFEExxxxx names the destination LAPIC, data the vector).
 * True when delivered, false when the guest's interrupt controller blocked it.
 */
export function signalMsi(vmFd: number, address: number, data: number): boolean {
  msiBuf.set("address_lo", address % 4294967296)
    .set("address_hi", Math.floor(address / 4294967296))
    .set("data", data >>> 0)
    .set("flags", 0)
    .set("devid", 0);
  try {
    return host.ioctlBuf(vmFd, KVM_SIGNAL_MSI, msiBuf.bytes, "KVM_SIGNAL_MSI") > 0;
  } catch (e) {
    // The address and data are the guest's: a message KVM refuses (kvm-amd answers EPERM
    // or EINVAL for some the guest fuzzer programmed) is not delivered, as hardware drops
    // a malformed MSI; it must not stop the machine as a host error.
    if (e instanceof HostError && (e.errnoName === "EPERM" || e.errnoName === "EINVAL")) {
      return false;
    }
    throw e;
  }
}

/** One capability or limit the runtime needs from KVM, as this host answers it. */
export interface KvmRequirement {
  /** "KVM_CAP_USER_MEMORY", "KVM_CAP_NR_MEMSLOTS", ... */
  name: string;
  /** What vmdesc uses it for. */
  why: string;
  /** Needed by every machine (false: only by some, see `why`; `ok` is then informational). */
  always: boolean;
  /** A capability (present or not) or a limit (a count). */
  kind: "capability" | "limit";
  ok: boolean;
  /** The host's answer: KVM_CHECK_EXTENSION's value (0: absent). */
  have: number;
  /** The E1004 message and hint when it is not met. */
  message: string;
  hint: string;
}

/**
 * The capabilities vmdesc uses, with which machines need them (`when`); `vmdesc doctor`
 * reports this same list, so there is one list.
 */
const CAPABILITIES: readonly {
  cap: CapName;
  why: string;
  when?: (plan: Plan) => boolean;
  hint?: string;
}[] = [
  { cap: "USER_MEMORY", why: "guest memory from host mappings" },
  { cap: "IRQCHIP", why: "in-kernel PIC, IOAPIC and LAPICs" },
  { cap: "SET_TSS_ADDR", why: "the TSS page KVM needs on Intel" },
  { cap: "SET_IDENTITY_MAP_ADDR", why: "the identity-map page KVM needs on Intel" },
  { cap: "EXT_CPUID", why: "the guest's CPUID table" },
  { cap: "IMMEDIATE_EXIT", why: "stopping a running vCPU" },
  { cap: "PIT2", why: "the in-kernel PIT (machines with a PIT)", when: (p) => p.platform.pit },
  {
    cap: "READONLY_MEM",
    why: "read-only memslots (the `shadow` PCI hole, the default)",
    when: (p) => p.memslots.some((m) => m.flags.includes("readonly")),
    hint: "use the `trap` hole strategy (--hole-strategy trap), which needs no read-only memslots",
  },
];

/** KVM_GET_API_VERSION, as E1005 when the ioctl fails (a file that is not KVM: ENOTTY). */
export function kvmApiVersion(kvmFd: number): number {
  return kvmCall("KVM_GET_API_VERSION", () => host.ioctl(kvmFd, KVM_GET_API_VERSION, 0));
}

/**
 * Every capability and limit the Plan needs, as this KVM answers them. Without a Plan:
 * every capability vmdesc uses (`always` tells which every machine needs) and the limits
 * as they are.
 */
export function kvmRequirements(kvmFd: number, plan: Plan | null): KvmRequirement[] {
  const cap = (name: CapName) => host.ioctl(kvmFd, KVM_CHECK_EXTENSION, KVM_CAP[name]);
  const out: KvmRequirement[] = [];
  for (const c of CAPABILITIES) {
    if (plan && c.when && !c.when(plan)) continue;
    const have = cap(c.cap);
    out.push({
      name: `KVM_CAP_${c.cap}`,
      why: c.why,
      always: c.when === undefined,
      kind: "capability",
      ok: have > 0,
      have,
      message: `KVM lacks capability KVM_CAP_${c.cap}`,
      hint: c.hint ?? "this KVM is too old or restricted for vmdesc",
    });
  }
  const slots = cap("NR_MEMSLOTS");
  const slotsNeeded = plan
    ? Math.max(plan.memslots.length, Math.max(-1, ...plan.memslots.map((m) => m.slot)) + 1)
    : 1;
  out.push({
    name: "KVM_CAP_NR_MEMSLOTS",
    why: plan ? `memslots: the machine uses ${slotsNeeded}` : "memslots per VM",
    always: true,
    kind: "limit",
    ok: slotsNeeded <= slots,
    have: slots,
    message: `KVM_CAP_NR_MEMSLOTS is ${slots}, the Plan needs ${slotsNeeded}`,
    hint: "use fewer memory ranges",
  });
  const maxVcpus = cap("MAX_VCPUS") || cap("NR_VCPUS");
  const cpus = plan ? plan.cpus.count : 1;
  out.push({
    name: "KVM_CAP_MAX_VCPUS",
    why: plan ? `vCPUs: the machine has ${cpus}` : "vCPUs per VM",
    always: true,
    kind: "limit",
    ok: cpus <= maxVcpus,
    have: maxVcpus,
    message: `KVM supports ${maxVcpus} vCPUs, the Plan has ${cpus}`,
    hint: "lower `cpus`",
  });
  return out;
}

/** API version and every capability the Plan needs (E1003, E1004). */
function checkKvm(kvmFd: number, plan: Plan): void {
  const version = kvmApiVersion(kvmFd);
  if (version !== KVM_API_VERSION) {
    throw new RuntimeError(
      "E1003",
      `KVM API version is ${version}, vmdesc needs ${KVM_API_VERSION}`,
      "this kernel's KVM is incompatible; use a Linux kernel with the stable KVM API",
    );
  }
  const unmet = kvmRequirements(kvmFd, plan).find((r) => !r.ok);
  if (unmet) throw new RuntimeError("E1004", unmet.message, unmet.hint);
}
