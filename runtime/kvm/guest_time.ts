/**
 * Guest time across a pause: what the guest reads from its clocks must not run ahead
 * while no vCPU runs, or a paused guest wakes up to find its timers late, its watchdogs
 * firing and its measurements wrong. KVM offers two knobs, both used here while every vCPU
 * is parked (no vCPU is inside KVM_RUN, so the vCPU ioctls below may come from any thread):
 *
 * - **kvmclock** (the paravirtual clock Linux guests use): the VM's clock is read with
 *   KVM_GET_CLOCK at the pause and written back with KVM_SET_CLOCK at the resume, so it
 *   goes on from where it stopped (QEMU does the same when a VM stops). Then
 *   KVM_KVMCLOCK_CTRL tells each vCPU's guest it was stopped (its soft-lockup watchdog
 *   then does not fire); EINVAL means the guest never enabled kvmclock.
 * - **the TSC** (what `rdtsc` returns): its value is read (KVM_GET_MSRS, MSR_IA32_TSC) on
 *   every vCPU at the pause; at the resume the time that passed (vCPU 0's TSC now minus at
 *   the pause) is taken off every vCPU's TSC offset through the vCPU attribute
 *   KVM_VCPU_TSC_OFFSET (Linux 5.16+). The same amount for every vCPU keeps their TSCs in
 *   step. A KVM without the attribute gets each vCPU's paused value written back as
 *   MSR_IA32_TSC (KVM's write-synchronisation then keeps the vCPUs together). KVM's own
 *   kvmclock is computed from the TSC, so the TSC is set first and the clock after.
 *
 * Whether the TSC really stopped is checked, not assumed: some KVMs accept the offset and
 * ignore it. This host's software KVM (`kvm_pvm`) is one: the guest's TSC is the host's,
 * the attribute and MSR writes succeed and change nothing (measured with a guest reading
 * rdtsc). On a KVM with hardware virtualization (kvm-amd, checked in the nested test bed)
 * the offset holds the guest's TSC. `release()` reports what held, and the machine warns
 * once when the TSC did not.
 */
import * as host from "../host/libc.ts";
import { HostError } from "../host/libc.ts";
import {
  KVM_CLOCK_DATA,
  KVM_DEVICE_ATTR,
  KVM_GET_CLOCK,
  KVM_GET_DEVICE_ATTR,
  KVM_GET_MSRS,
  KVM_HAS_DEVICE_ATTR,
  KVM_KVMCLOCK_CTRL,
  KVM_MSR_ENTRY,
  KVM_MSRS,
  KVM_SET_CLOCK,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_MSRS,
  KVM_VCPU_TSC_CTRL,
  KVM_VCPU_TSC_OFFSET,
  MSR_IA32_TSC,
} from "./abi.ts";
import { Struct } from "./layout.ts";

const ENXIO = 6;
const EINVAL = 22;

/** The guest's clocks as they were when the machine paused. */
export interface HeldTime {
  /** kvmclock (ns), or null when the host could not read it. */
  kvmclock: bigint | null;
  /** Each vCPU's TSC, in vCPU order. */
  tsc: bigint[];
}

/** What `release()` managed. */
export interface TimeRelease {
  /** kvmclock goes on from its paused value. */
  kvmclockHeld: boolean;
  /**
   * The TSC goes on from its paused value: true, false (the host ignored the offset), or
   * null (the pause was too short to tell, or the TSC could not be read).
   */
  tscHeld: boolean | null;
}

/** TSC ticks the pause must have lasted before a check of the offset means anything. */
const MIN_CHECKABLE_TICKS = 1_000_000n;

/** The guest-visible clocks of one VM and its vCPUs (by fd). */
export class GuestClock {
  /** null until probed: whether the vCPUs have the TSC-offset attribute. */
  #offsetAttr: boolean | null = null;

  constructor(readonly vmFd: number, readonly vcpuFds: readonly number[]) {}

  /** Reads the clocks of a parked machine. */
  hold(): HeldTime {
    let kvmclock: bigint | null = null;
    try {
      const c = new Struct(KVM_CLOCK_DATA);
      host.ioctlBuf(this.vmFd, KVM_GET_CLOCK, c.bytes, "KVM_GET_CLOCK");
      kvmclock = c.get64("clock");
    } catch (e) {
      if (!(e instanceof HostError)) throw e;
    }
    const tsc: bigint[] = [];
    for (const fd of this.vcpuFds) {
      const t = readTsc(fd);
      if (t === null) return { kvmclock, tsc: [] };
      tsc.push(t);
    }
    return { kvmclock, tsc };
  }

  /** Puts the clocks back where `held` found them; the vCPUs are still parked. */
  release(held: HeldTime): TimeRelease {
    const tscHeld = held.tsc.length === this.vcpuFds.length ? this.#releaseTsc(held.tsc) : null;
    let kvmclockHeld = false;
    if (held.kvmclock !== null) {
      const c = new Struct(KVM_CLOCK_DATA);
      c.set("clock", held.kvmclock);
      try {
        host.ioctlBuf(this.vmFd, KVM_SET_CLOCK, c.bytes, "KVM_SET_CLOCK");
        kvmclockHeld = true;
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
      }
    }
    for (const fd of this.vcpuFds) {
      if (host.libc().ioctl_u64(fd, KVM_KVMCLOCK_CTRL, 0n) < 0) {
        const e = host.errno();
        // EINVAL: this vCPU's guest never enabled kvmclock; nothing to tell it.
        if (e !== EINVAL) break;
      }
    }
    return { kvmclockHeld, tscHeld };
  }

  #releaseTsc(paused: bigint[]): boolean | null {
    const now = readTsc(this.vcpuFds[0]);
    if (now === null) return null;
    const elapsed = now - paused[0];
    if (elapsed <= 0n) return null;
    if (this.#hasOffsetAttr()) {
      for (const fd of this.vcpuFds) {
        const offset = tscOffset(fd);
        setTscOffset(fd, BigInt.asUintN(64, offset - elapsed));
      }
    } else {
      this.vcpuFds.forEach((fd, i) => writeTsc(fd, paused[i]));
    }
    if (elapsed < MIN_CHECKABLE_TICKS) return null;
    const after = readTsc(this.vcpuFds[0]);
    return after !== null && after - paused[0] < elapsed / 2n;
  }

  #hasOffsetAttr(): boolean {
    if (this.#offsetAttr === null) {
      const a = tscOffsetAttr(null);
      this.#offsetAttr = host.libc().ioctl_buf(this.vcpuFds[0], KVM_HAS_DEVICE_ATTR, a.bytes) >= 0;
      if (!this.#offsetAttr && host.errno() !== ENXIO) host.fail("KVM_HAS_DEVICE_ATTR");
    }
    return this.#offsetAttr;
  }
}

/** A kvm_device_attr naming the TSC offset, its value at `value` (8 bytes) when given. */
function tscOffsetAttr(value: BigUint64Array | null): Struct<keyof typeof KVM_DEVICE_ATTR.f> {
  const a = new Struct(KVM_DEVICE_ATTR);
  a.set("group", KVM_VCPU_TSC_CTRL);
  a.set("attr", KVM_VCPU_TSC_OFFSET);
  if (value) a.set("addr", Deno.UnsafePointer.value(Deno.UnsafePointer.of(value)));
  return a;
}

function tscOffset(vcpuFd: number): bigint {
  const v = new BigUint64Array(1);
  host.ioctlBuf(vcpuFd, KVM_GET_DEVICE_ATTR, tscOffsetAttr(v).bytes, "KVM_GET_DEVICE_ATTR");
  return BigInt.asIntN(64, v[0]);
}

function setTscOffset(vcpuFd: number, offset: bigint): void {
  const v = new BigUint64Array([offset]);
  host.ioctlBuf(vcpuFd, KVM_SET_DEVICE_ATTR, tscOffsetAttr(v).bytes, "KVM_SET_DEVICE_ATTR");
}

/** One-entry kvm_msrs for MSR_IA32_TSC. */
function tscMsrs(value = 0n): { bytes: Uint8Array<ArrayBuffer>; dv: DataView } {
  const bytes = new Uint8Array(KVM_MSRS.size + KVM_MSR_ENTRY.size);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(KVM_MSRS.f.nmsrs.off, 1, true);
  const e = KVM_MSRS.f.entries.off;
  dv.setUint32(e + KVM_MSR_ENTRY.f.index.off, MSR_IA32_TSC, true);
  dv.setBigUint64(e + KVM_MSR_ENTRY.f.data.off, value, true);
  return { bytes, dv };
}

/** The vCPU's TSC now, or null when KVM does not give it (KVM_GET_MSRS read no entry). */
function readTsc(vcpuFd: number): bigint | null {
  const m = tscMsrs();
  const n = host.ioctlBuf(vcpuFd, KVM_GET_MSRS, m.bytes, "KVM_GET_MSRS");
  if (n !== 1) return null;
  return m.dv.getBigUint64(KVM_MSRS.f.entries.off + KVM_MSR_ENTRY.f.data.off, true);
}

function writeTsc(vcpuFd: number, value: bigint): void {
  host.ioctlBuf(vcpuFd, KVM_SET_MSRS, tscMsrs(value).bytes, "KVM_SET_MSRS");
}
