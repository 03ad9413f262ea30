/**
 * The KVM ABI as the runtime uses it (x86-64): ioctl numbers, capabilities, exit reasons
 * and every structure layout, each defined exactly once. `abi_test.ts` compiles a C
 * program against <linux/kvm.h> and checks every number, size and offset here.
 */
import { layout } from "./layout.ts";

// ── ioctl numbers (asm-generic/ioctl.h encoding) ────────────────────────────────────
const KVMIO = 0xae;
const IOC_WRITE = 1;
const IOC_READ = 2;
function ioc(dir: number, nr: number, size: number): number {
  // dir << 30 can exceed int32: compute in floating point to keep it unsigned.
  return dir * 2 ** 30 + (size << 16) + (KVMIO << 8) + nr;
}
const io = (nr: number) => ioc(0, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

// ── structures ─────────────────────────────────────────────────────────────────────
export const KVM_USERSPACE_MEMORY_REGION = layout("struct kvm_userspace_memory_region", 32, {
  slot: [0, 4],
  flags: [4, 4],
  guest_phys_addr: [8, 8],
  memory_size: [16, 8],
  userspace_addr: [24, 8],
});

export const KVM_REGS = layout("struct kvm_regs", 144, {
  rax: [0, 8],
  rbx: [8, 8],
  rcx: [16, 8],
  rdx: [24, 8],
  rsi: [32, 8],
  rdi: [40, 8],
  rsp: [48, 8],
  rbp: [56, 8],
  r8: [64, 8],
  r9: [72, 8],
  r10: [80, 8],
  r11: [88, 8],
  r12: [96, 8],
  r13: [104, 8],
  r14: [112, 8],
  r15: [120, 8],
  rip: [128, 8],
  rflags: [136, 8],
});
export type RegName = keyof typeof KVM_REGS.f;

export const KVM_SEGMENT = layout("struct kvm_segment", 24, {
  base: [0, 8],
  limit: [8, 4],
  selector: [12, 2],
  type: [14, 1],
  present: [15, 1],
  dpl: [16, 1],
  db: [17, 1],
  s: [18, 1],
  l: [19, 1],
  g: [20, 1],
  avl: [21, 1],
  unusable: [22, 1],
});

export const KVM_DTABLE = layout("struct kvm_dtable", 16, {
  base: [0, 8],
  limit: [8, 2],
});

/** Segment and descriptor-table members are at the offsets below; their insides follow
 * KVM_SEGMENT / KVM_DTABLE (size recorded as the nested structure's size). */
export const KVM_SREGS = layout("struct kvm_sregs", 312, {
  cs: [0, 24],
  ds: [24, 24],
  es: [48, 24],
  fs: [72, 24],
  gs: [96, 24],
  ss: [120, 24],
  tr: [144, 24],
  ldt: [168, 24],
  gdt: [192, 16],
  idt: [208, 16],
  cr0: [224, 8],
  cr2: [232, 8],
  cr3: [240, 8],
  cr4: [248, 8],
  cr8: [256, 8],
  efer: [264, 8],
  apic_base: [272, 8],
  interrupt_bitmap: [280, 8, 4],
});
export type SegName = "cs" | "ds" | "es" | "fs" | "gs" | "ss" | "tr" | "ldt";

export const KVM_CPUID_ENTRY2 = layout("struct kvm_cpuid_entry2", 40, {
  function: [0, 4],
  index: [4, 4],
  flags: [8, 4],
  eax: [12, 4],
  ebx: [16, 4],
  ecx: [20, 4],
  edx: [24, 4],
});

export const KVM_CPUID2 = layout("struct kvm_cpuid2", 8, {
  nent: [0, 4],
  entries: [8, 40, 0],
});

export const KVM_PIT_CONFIG = layout("struct kvm_pit_config", 64, {
  flags: [0, 4],
});

export const KVM_IRQ_LEVEL = layout("struct kvm_irq_level", 8, {
  irq: [0, 4],
  level: [4, 4],
});

/** An MSI for KVM_SIGNAL_MSI: the address/data pair a guest programs into MSI/MSI-X. */
export const KVM_MSI = layout("struct kvm_msi", 32, {
  address_lo: [0, 4],
  address_hi: [4, 4],
  data: [8, 4],
  flags: [12, 4],
  devid: [16, 4],
});

export const KVM_MP_STATE = layout("struct kvm_mp_state", 4, {
  mp_state: [0, 4],
});

/** The VM's kvmclock (KVM_GET_CLOCK / KVM_SET_CLOCK): guest nanoseconds. */
export const KVM_CLOCK_DATA = layout("struct kvm_clock_data", 48, {
  clock: [0, 8],
  flags: [8, 4],
  realtime: [16, 8],
  host_tsc: [24, 8],
});

/** KVM_GET_MSRS / KVM_SET_MSRS: a header followed by `nmsrs` kvm_msr_entry. */
export const KVM_MSRS = layout("struct kvm_msrs", 8, {
  nmsrs: [0, 4],
  entries: [8, 16, 0],
});

export const KVM_MSR_ENTRY = layout("struct kvm_msr_entry", 16, {
  index: [0, 4],
  data: [8, 8],
});

/** A vCPU (or device) attribute: KVM_{HAS,GET,SET}_DEVICE_ATTR; `addr` points at the value. */
export const KVM_DEVICE_ATTR = layout("struct kvm_device_attr", 24, {
  flags: [0, 4],
  group: [4, 4],
  attr: [8, 8],
  addr: [16, 8],
});

/** The shared vCPU page (mmap of the vCPU fd). Exit unions start at offset 32. */
export const KVM_RUN_STRUCT = layout("struct kvm_run", 2352, {
  request_interrupt_window: [0, 1],
  immediate_exit: [1, 1],
  exit_reason: [8, 4],
  ready_for_interrupt_injection: [12, 1],
  if_flag: [13, 1],
  flags: [14, 2],
  cr8: [16, 8],
  apic_base: [24, 8],
  "hw.hardware_exit_reason": [32, 8],
  "fail_entry.hardware_entry_failure_reason": [32, 8],
  "fail_entry.cpu": [40, 4],
  "io.direction": [32, 1],
  "io.size": [33, 1],
  "io.port": [34, 2],
  "io.count": [36, 4],
  "io.data_offset": [40, 8],
  "mmio.phys_addr": [32, 8],
  "mmio.data": [40, 1, 8],
  "mmio.len": [48, 4],
  "mmio.is_write": [52, 1],
  "internal.suberror": [32, 4],
  "internal.ndata": [36, 4],
  "internal.data": [40, 8, 16],
  "system_event.type": [32, 4],
  "system_event.ndata": [36, 4],
  "system_event.data": [40, 8, 16],
  kvm_valid_regs: [288, 8],
  kvm_dirty_regs: [296, 8],
});

// ── ioctls ──────────────────────────────────────────────────────────────────────────
export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_GET_SUPPORTED_CPUID = iowr(0x05, KVM_CPUID2.size);
export const KVM_CREATE_VCPU = io(0x41);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, KVM_USERSPACE_MEMORY_REGION.size);
export const KVM_SET_TSS_ADDR = io(0x47);
export const KVM_SET_IDENTITY_MAP_ADDR = iow(0x48, 8);
export const KVM_CREATE_IRQCHIP = io(0x60);
export const KVM_IRQ_LINE = iow(0x61, KVM_IRQ_LEVEL.size);
export const KVM_CREATE_PIT2 = iow(0x77, KVM_PIT_CONFIG.size);
export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, KVM_REGS.size);
export const KVM_SET_REGS = iow(0x82, KVM_REGS.size);
export const KVM_GET_SREGS = ior(0x83, KVM_SREGS.size);
export const KVM_SET_SREGS = iow(0x84, KVM_SREGS.size);
export const KVM_SET_CPUID2 = iow(0x90, KVM_CPUID2.size);
export const KVM_SIGNAL_MSI = iow(0xa5, KVM_MSI.size);
export const KVM_GET_MP_STATE = ior(0x98, KVM_MP_STATE.size);
export const KVM_SET_MP_STATE = iow(0x99, KVM_MP_STATE.size);
export const KVM_GET_TSC_KHZ = io(0xa3);
export const KVM_SET_CLOCK = iow(0x7b, KVM_CLOCK_DATA.size);
export const KVM_GET_CLOCK = ior(0x7c, KVM_CLOCK_DATA.size);
export const KVM_GET_MSRS = iowr(0x88, KVM_MSRS.size);
export const KVM_SET_MSRS = iow(0x89, KVM_MSRS.size);
export const KVM_KVMCLOCK_CTRL = io(0xad);
export const KVM_SET_DEVICE_ATTR = iow(0xe1, KVM_DEVICE_ATTR.size);
export const KVM_GET_DEVICE_ATTR = iow(0xe2, KVM_DEVICE_ATTR.size);
export const KVM_HAS_DEVICE_ATTR = iow(0xe3, KVM_DEVICE_ATTR.size);

/** vCPU attribute group and attribute of the guest's TSC offset (Linux 5.16+). */
export const KVM_VCPU_TSC_CTRL = 0;
export const KVM_VCPU_TSC_OFFSET = 0;
/** The time-stamp counter MSR (asm/msr-index.h; not in the uapi headers). */
export const MSR_IA32_TSC = 0x10;

export const KVM_API_VERSION = 12;

// ── capabilities ────────────────────────────────────────────────────────────────────
export const KVM_CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  PIT2: 33,
  SET_IDENTITY_MAP_ADDR: 37,
  GET_TSC_KHZ: 61,
  ADJUST_CLOCK: 39,
  MAX_VCPUS: 66,
  KVMCLOCK_CTRL: 76,
  SIGNAL_MSI: 77,
  READONLY_MEM: 81,
  VCPU_ATTRIBUTES: 127,
  IMMEDIATE_EXIT: 136,
} as const;
export type CapName = keyof typeof KVM_CAP;

export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_MEM_READONLY = 2;

// ── exits ───────────────────────────────────────────────────────────────────────────
export const KVM_EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

export const KVM_EXIT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(KVM_EXIT).map(([k, v]) => [v, k.toLowerCase()]),
);

export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

export const KVM_SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3 } as const;

export const KVM_INTERNAL_ERROR = {
  EMULATION: 1,
  SIMUL_EX: 2,
  DELIVERY_EV: 3,
  UNEXPECTED_EXIT_REASON: 4,
} as const;

export const KVM_MP_STATE_RUNNABLE = 0;
export const KVM_MP_STATE_UNINITIALIZED = 1;

/** KVM_GET_SUPPORTED_CPUID needs a buffer with room; 256 entries is what QEMU-like VMMs use. */
export const CPUID_MAX_ENTRIES = 256;
