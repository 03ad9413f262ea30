/**
 * The vCPU run loop: synchronous KVM_RUN through FFI in a tight loop, exits dispatched
 * through the AddressMap. Runs on a vCPU thread (threads/vcpu_thread.ts): a worker, or for
 * a 1-vCPU machine the caller's thread, in slices between ticks (runSlice).
 *
 * The loop leaves when the guest ends, or when a kick finds the machine's REQUEST word no
 * longer `run` (pause or stop): then run() returns null and the vCPU thread decides what
 * the request means (lifecycle.ts).
 *
 * vCPU 0 owns the device models. An AP (vCPU > 0) has no devices: its PIO/MMIO exits go to
 * vCPU 0 through the control block's mailbox plus a kick; vCPU 0 only looks at the mailbox
 * when KVM_RUN returns EINTR, so its own hot path pays nothing for SMP.
 *
 * Unclaimed accesses: port reads return all-ones and writes are dropped; MMIO reads of
 * unassigned addresses return all-ones; writes to read-only memslots and to unassigned
 * MMIO are dropped. Each is counted, and the first access to each 4 KiB page is reported
 * once as a warning ("read of unassigned MMIO at 0x…", "write to read-only memory at
 * 0x…"); the guest continues, like real hardware with nothing decoding the address.
 */
import { EAGAIN, EINTR, libc } from "./host/libc.ts";
import * as host from "./host/libc.ts";
import {
  KVM_EXIT,
  KVM_EXIT_IO_OUT,
  KVM_INTERNAL_ERROR,
  KVM_RUN,
  KVM_RUN_STRUCT,
  KVM_SYSTEM_EVENT,
} from "./kvm/abi.ts";
import { isInitState, readSegment, type Vcpu } from "./kvm/vcpu.ts";
import { kvmRunFailure } from "./kvm/run_errors.ts";
import type { AddressMap } from "./address_map.ts";
import type { AccessSize, Device, Space, StopRequest } from "./devices/device.ts";
import {
  type Control,
  kickVcpu,
  MB_ADDR_HI,
  MB_ADDR_LO,
  MB_ANSWER,
  MB_IDLE,
  MB_IS_WRITE,
  MB_LOCK,
  MB_REQUEST,
  MB_SIZE,
  MB_SPACE,
  MB_STATE,
  MB_VALUE,
  request,
  wakeParked,
} from "./threads/control.ts";
import { VcpuRequest } from "./lifecycle.ts";
import { Counters, type DeviceStats, type WorkerStats } from "./stats.ts";
import type { ExitReason } from "./errors.ts";
import type { RegionInfo } from "./memory/mod.ts";

const F = KVM_RUN_STRUCT.f;
const OFF_IMMEDIATE_EXIT = F.immediate_exit.off;
const OFF_EXIT_REASON = F.exit_reason.off;
const OFF_IO_DIR = F["io.direction"].off;
const OFF_IO_SIZE = F["io.size"].off;
const OFF_IO_PORT = F["io.port"].off;
const OFF_IO_COUNT = F["io.count"].off;
/** data_offset is a u64 but always a small offset inside the kvm_run mapping: low half. */
const OFF_IO_DATA = F["io.data_offset"].off;
const OFF_MMIO_ADDR = F["mmio.phys_addr"].off;
const OFF_MMIO_DATA = F["mmio.data"].off;
const OFF_MMIO_LEN = F["mmio.len"].off;
const OFF_MMIO_WRITE = F["mmio.is_write"].off;

const enum WarnKind {
  unassignedRead = 0,
  unassignedWrite = 1,
  readonlyWrite = 2,
}
/** #onKick's answer when the machine's REQUEST is no longer `run`. */
const LEAVE = Symbol("leave");

const WARN_TEXT = [
  "read of unassigned MMIO",
  "write to unassigned MMIO",
  "write to read-only memory",
];

/** How one vCPU's loop ended. `stopped` = the machine asked it to stop (REQUEST stop). */
export interface LoopOutcome {
  reason: ExitReason | "stopped";
  /** debug_exit value. */
  value?: number;
  /** debug_exit: the value is the device's declared success value (status 0). */
  success?: boolean;
  /** One-line description for the user. */
  message: string;
  /** Register dump (triple fault and other guest faults). */
  dump?: string;
  /** For reset requests: which device. */
  source?: string;
}

export interface LoopHooks {
  /** A warning for the user (stderr in the CLI). */
  warn(message: string): void;
  /** vCPU 0, after a kick: deliver whatever the main thread queued (stdin bytes). */
  onKick?(): void;
}

export class RunLoop {
  readonly counters: Counters;
  #stop: StopRequest | null = null;
  readonly #warned = new Set<number>();
  readonly #readonly: RegionInfo[];
  /** kvm_run pages of vCPU 0 (for APs' kicks). */
  #bsp: { runBytes: Uint8Array; index: number } | null = null;

  constructor(
    readonly vcpu: Vcpu,
    readonly map: AddressMap | null,
    readonly ctl: Control,
    regions: RegionInfo[],
    readonly hooks: LoopHooks,
  ) {
    this.counters = new Counters(map ? map.devices.length : 0);
    this.#readonly = regions.filter((r) => r.readonly);
  }

  /** Devices ask the machine to stop through this (debug_exit, i8042 reset). */
  requestStop(req: StopRequest): void {
    if (this.#stop === null) this.#stop = req;
  }

  /** APs: where vCPU 0's kvm_run page is, to kick it. */
  setBsp(runBytes: Uint8Array): void {
    this.#bsp = { runBytes, index: 0 };
  }

  #warnOnce(what: WarnKind, addr: number): void {
    // A numeric key: a guest hammering one unassigned page pays a Set lookup, no strings.
    const key = Math.floor(addr / 4096) * 4 + what;
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.hooks.warn(`${WARN_TEXT[what]} at 0x${addr.toString(16)} (reported once per 4 KiB page)`);
  }

  #isReadonly(addr: number): boolean {
    for (const r of this.#readonly) {
      if (addr >= r.guestPhys && addr < r.guestPhys + r.size) return true;
    }
    return false;
  }

  /**
   * Runs until the guest ends (its outcome) or a kick finds REQUEST no longer `run` (null:
   * the vCPU thread looks at the request, parks or leaves).
   */
  run(): LoopOutcome | null {
    return this.#loop(false);
  }

  /**
   * Runs until the guest ends, or the vCPU is kicked (KVM_RUN returned EINTR); null means
   * kicked: the caller turns its event loop and looks at REQUEST, then calls runSlice()
   * again. For a vCPU run on the caller's thread (threads/caller_driver.ts), where a kick
   * is the only moment that thread's timers, signal listeners and input get a turn.
   */
  runSlice(): LoopOutcome | null {
    return this.#loop(true);
  }

  /** This vCPU's numbers, as plain data (what a worker posts back). */
  workerStats(devices: DeviceStats[]): WorkerStats {
    return this.counters.workerStats(this.vcpu.index, devices);
  }

  #loop(sliceOnKick: boolean): LoopOutcome | null {
    const sym = libc();
    const ioctl = sym.ioctl_run;
    const clock = sym.clock_gettime;
    const ts = new Int32Array(4);
    const tsb = new Uint8Array(ts.buffer);
    const fd = this.vcpu.fd;
    const run = this.vcpu.run;
    const rb = this.vcpu.runBytes;
    const c = this.counters;
    const exits = c.exits;
    const map = this.map;
    const portIndex = map?.portIndex;
    const devices: Device[] = map?.devices ?? [];
    const devCount = c.device;
    const unclaimed = c.unclaimed;

    clock(1, tsb);
    let tPrev = ts[0] * 1e9 + ts[2];
    for (;;) {
      const r = ioctl(fd, KVM_RUN, 0);
      // errno first: nothing else may run on this thread between the call and the read.
      const e = r < 0 ? host.errno() : 0;
      clock(1, tsb);
      const tNow = ts[0] * 1e9 + ts[2];
      c.guestNs += tNow - tPrev;
      c.runs++;
      if (r < 0) {
        if (e === EINTR || e === EAGAIN) {
          exits[KVM_EXIT.INTR]++;
          const out = this.#onKick();
          if (out === LEAVE) return null;
          if (out || sliceOnKick) return out;
          clock(1, tsb);
          tPrev = ts[0] * 1e9 + ts[2];
          c.vmmNs += tPrev - tNow;
          continue;
        }
        return {
          reason: "host_error",
          message: `KVM_RUN on vCPU ${this.vcpu.index} failed: ${host.errnoName(e)} (${
            kvmRunFailure(host.errnoName(e))
          })`,
        };
      }
      const reason = run.getUint32(OFF_EXIT_REASON, true);
      exits[reason]++;
      if (reason === KVM_EXIT.IO) {
        const size = rb[OFF_IO_SIZE] as AccessSize;
        const port = run.getUint16(OFF_IO_PORT, true);
        const count = run.getUint32(OFF_IO_COUNT, true);
        let off = run.getUint32(OFF_IO_DATA, true);
        const isOut = rb[OFF_IO_DIR] === KVM_EXIT_IO_OUT;
        if (map === null) {
          for (let i = 0; i < count; i++, off += size) this.#forwardIo(off, size, port, isOut);
        } else {
          const di = portIndex![port];
          if (di >= 0) {
            const d = devices[di];
            devCount[di * 2] += 1;
            for (let i = 0; i < count; i++, off += size) {
              if (isOut) d.write("pio", port, size, readData(run, off, size));
              else writeData(run, off, size, d.read("pio", port, size));
            }
          } else {
            unclaimed[isOut ? 1 : 0] += count;
            if (!isOut) rb.fill(0xff, off, off + size * count);
          }
        }
      } else if (reason === KVM_EXIT.MMIO) {
        const addr = run.getUint32(OFF_MMIO_ADDR, true) +
          run.getUint32(OFF_MMIO_ADDR + 4, true) * 4294967296;
        const len = Math.min(run.getUint32(OFF_MMIO_LEN, true), 8); // mmio.data holds 8
        const isWrite = rb[OFF_MMIO_WRITE] !== 0;
        for (let o = 0, step: AccessSize = 1; o < len; o += step) {
          step = mmioPiece(len, o);
          this.#mmio(addr + o, step, isWrite, OFF_MMIO_DATA + o, devices, devCount, unclaimed);
        }
      } else if (reason !== KVM_EXIT.INTR) {
        const out = this.#special(reason);
        if (out) return out;
      } else {
        const out = this.#onKick();
        if (out === LEAVE) return null;
        if (out || sliceOnKick) return out;
      }
      if (this.#stop !== null) return this.#stopOutcome(this.#stop);
      clock(1, tsb);
      tPrev = ts[0] * 1e9 + ts[2];
      c.vmmNs += tPrev - tNow;
    }
  }

  #mmio(
    addr: number,
    size: AccessSize,
    isWrite: boolean,
    dataOff: number,
    devices: Device[],
    devCount: Float64Array,
    unclaimed: Float64Array,
  ): void {
    const run = this.vcpu.run;
    if (this.map === null) {
      this.#forward(1, addr, size, isWrite, dataOff);
      return;
    }
    const di = this.map.mmio(addr);
    if (di >= 0) {
      devCount[di * 2 + 1] += 1;
      const d = devices[di];
      if (isWrite) d.write("mmio", addr, size, readData(run, dataOff, size));
      else writeData(run, dataOff, size, d.read("mmio", addr, size));
      return;
    }
    if (isWrite) {
      if (this.#isReadonly(addr)) {
        unclaimed[4]++;
        this.#warnOnce(WarnKind.readonlyWrite, addr);
      } else {
        unclaimed[3]++;
        this.#warnOnce(WarnKind.unassignedWrite, addr);
      }
    } else {
      unclaimed[2]++;
      this.#warnOnce(WarnKind.unassignedRead, addr);
      this.vcpu.runBytes.fill(0xff, dataOff, dataOff + size);
    }
  }

  // ── AP → vCPU 0 forwarding ─────────────────────────────────────────────────────────

  #forwardIo(off: number, size: AccessSize, port: number, isOut: boolean): void {
    this.#forward(0, port, size, isOut, off);
  }

  /** Posts one access to vCPU 0's mailbox, kicks vCPU 0, waits for the answer. */
  #forward(space: 0 | 1, addr: number, size: AccessSize, isWrite: boolean, dataOff: number): void {
    const i = this.ctl.i32;
    const run = this.vcpu.run;
    this.counters.forwarded++;
    while (Atomics.compareExchange(i, MB_LOCK, 0, 1) !== 0) {
      if (request(this.ctl) === VcpuRequest.stop) return;
      Atomics.wait(i, MB_LOCK, 1, 20);
    }
    try {
      Atomics.store(i, MB_SPACE, space);
      Atomics.store(i, MB_ADDR_LO, addr % 4294967296);
      Atomics.store(i, MB_ADDR_HI, Math.floor(addr / 4294967296));
      Atomics.store(i, MB_SIZE, size);
      Atomics.store(i, MB_IS_WRITE, isWrite ? 1 : 0);
      Atomics.store(i, MB_VALUE, isWrite ? readData(run, dataOff, size) : 0);
      Atomics.store(i, MB_STATE, MB_REQUEST);
      // vCPU 0 answers when kicked out of KVM_RUN, or, parked (a pause), when woken.
      this.#kickBsp();
      wakeParked(this.ctl);
      while (Atomics.load(i, MB_STATE) !== MB_ANSWER) {
        if (request(this.ctl) === VcpuRequest.stop) {
          Atomics.store(i, MB_STATE, MB_IDLE);
          return;
        }
        Atomics.wait(i, MB_STATE, MB_REQUEST, 20);
      }
      if (!isWrite) writeData(run, dataOff, size, Atomics.load(i, MB_VALUE) >>> 0);
      Atomics.store(i, MB_STATE, MB_IDLE);
    } finally {
      Atomics.store(i, MB_LOCK, 0);
      Atomics.notify(i, MB_LOCK, 1);
    }
  }

  #kickBsp(): void {
    if (this.#bsp !== null) kickVcpu(this.ctl, 0, this.#bsp.runBytes);
  }

  /** vCPU 0: answer a forwarded access, if one is posted (also while parked). */
  serveForwarded(): void {
    const i = this.ctl.i32;
    if (Atomics.load(i, MB_STATE) !== MB_REQUEST || this.map === null) return;
    const space: Space = Atomics.load(i, MB_SPACE) === 0 ? "pio" : "mmio";
    const addr = (Atomics.load(i, MB_ADDR_LO) >>> 0) +
      (Atomics.load(i, MB_ADDR_HI) >>> 0) * 4294967296;
    const size = Atomics.load(i, MB_SIZE) as AccessSize;
    const isWrite = Atomics.load(i, MB_IS_WRITE) === 1;
    const value = Atomics.load(i, MB_VALUE) >>> 0;
    const di = space === "pio" ? this.map.port(addr) : this.map.mmio(addr);
    let result = 0;
    const mask = size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
    if (di >= 0) {
      this.counters.device[di * 2 + (space === "pio" ? 0 : 1)]++;
      const d = this.map.devices[di];
      if (isWrite) d.write(space, addr, size, value);
      else result = d.read(space, addr, size);
    } else {
      const u = this.counters.unclaimed;
      if (space === "pio") u[isWrite ? 1 : 0]++;
      else if (isWrite && this.#isReadonly(addr)) {
        u[4]++;
        this.#warnOnce(WarnKind.readonlyWrite, addr);
      } else {
        u[isWrite ? 3 : 2]++;
        if (!isWrite || space === "mmio") {
          this.#warnOnce(isWrite ? WarnKind.unassignedWrite : WarnKind.unassignedRead, addr);
        }
      }
      result = mask;
    }
    Atomics.store(i, MB_VALUE, (result & mask) | 0);
    Atomics.store(i, MB_STATE, MB_ANSWER);
    Atomics.notify(i, MB_STATE);
  }

  /**
   * KVM_RUN returned EINTR (or KVM_EXIT_INTR): someone kicked this vCPU. LEAVE when the
   * machine asks for something other than `run` (immediate_exit is cleared first, so a
   * request written before a later kick is never missed).
   */
  #onKick(): LoopOutcome | null | typeof LEAVE {
    this.vcpu.runBytes[OFF_IMMEDIATE_EXIT] = 0;
    if (request(this.ctl) !== VcpuRequest.run) return LEAVE;
    if (this.map !== null) {
      this.serveForwarded();
      this.hooks.onKick?.();
    }
    if (this.#stop !== null) return this.#stopOutcome(this.#stop);
    return null;
  }

  #stopOutcome(req: StopRequest): LoopOutcome {
    if (req.kind === "debug_exit") {
      return {
        reason: "debug_exit",
        value: req.value,
        success: req.success === true,
        message: `guest wrote ${req.value} to debug_exit${req.success ? " (success)" : ""}`,
      };
    }
    if (req.kind === "poweroff") {
      return {
        reason: "poweroff",
        source: req.source,
        message: `guest powered off (${req.source})`,
      };
    }
    return {
      reason: "reset",
      source: req.source,
      message: `guest requested reset (${req.source})`,
    };
  }

  /** Exits other than IO/MMIO/INTR. Returns an outcome to end the loop, or null to go on. */
  #special(reason: number): LoopOutcome | null {
    const run = this.vcpu.run;
    const v = this.vcpu.index;
    switch (reason) {
      case KVM_EXIT.HLT: {
        const rflags = this.vcpu.getRegs().get("rflags");
        if ((rflags & 0x200) === 0) {
          return {
            reason: "halted",
            message: `guest halted (vCPU ${v} executed HLT with interrupts disabled)`,
            dump: this.dump(),
          };
        }
        return null;
      }
      case KVM_EXIT.SHUTDOWN:
        return {
          reason: "triple_fault",
          message: `guest triple fault (vCPU ${v})`,
          dump: this.#shutdownDump(),
        };
      case KVM_EXIT.FAIL_ENTRY: {
        const hw = run.getBigUint64(F["fail_entry.hardware_entry_failure_reason"].off, true);
        const cpu = run.getUint32(F["fail_entry.cpu"].off, true);
        return {
          reason: "fail_entry",
          message: `VM entry failed on vCPU ${v}: hardware_entry_failure_reason 0x${
            hw.toString(16)
          } (cpu ${cpu})`,
          dump: this.dump(),
        };
      }
      case KVM_EXIT.INTERNAL_ERROR: {
        const sub = run.getUint32(F["internal.suberror"].off, true);
        const n = Math.min(run.getUint32(F["internal.ndata"].off, true), 16);
        const data: string[] = [];
        for (let k = 0; k < n; k++) {
          data.push("0x" + run.getBigUint64(F["internal.data"].off + 8 * k, true).toString(16));
        }
        const names: Record<number, string> = {
          [KVM_INTERNAL_ERROR.EMULATION]: "emulation failure",
          [KVM_INTERNAL_ERROR.SIMUL_EX]: "simultaneous exceptions",
          [KVM_INTERNAL_ERROR.DELIVERY_EV]: "event delivery failure",
          [KVM_INTERNAL_ERROR.UNEXPECTED_EXIT_REASON]: "unexpected exit reason",
        };
        return {
          reason: "internal_error",
          message: `KVM internal error on vCPU ${v}: suberror ${sub} (${names[sub] ?? "unknown"})${
            data.length ? `, data ${data.join(" ")}` : ""
          }`,
          dump: this.dump(),
        };
      }
      case KVM_EXIT.SYSTEM_EVENT: {
        const type = run.getUint32(F["system_event.type"].off, true);
        if (type === KVM_SYSTEM_EVENT.SHUTDOWN) {
          return { reason: "poweroff", message: "guest powered off" };
        }
        if (type === KVM_SYSTEM_EVENT.RESET) {
          return { reason: "reset", source: "kvm", message: "guest requested reset" };
        }
        return {
          reason: "crash",
          message: `guest crashed (system event ${type})`,
          dump: this.dump(),
        };
      }
      case KVM_EXIT.IRQ_WINDOW_OPEN:
        return null;
      default:
        return {
          reason: "internal_error",
          message: `unexpected KVM exit ${reason} on vCPU ${v}`,
          dump: this.dump(),
        };
    }
  }

  /**
   * The dump after a shutdown, or, where KVM has already reset the vCPU (AMD SVM does:
   * see isInitState), a note saying so instead of registers that would point at the
   * reset vector rather than at the fault.
   */
  #shutdownDump(): string {
    try {
      if (isInitState(this.vcpu.getRegs(), this.vcpu.getSregs())) {
        return "  registers unavailable: KVM reset this vCPU when the guest shut down (KVM on " +
          "AMD SVM does),\n  so they hold the reset state (rip 0x0000fff0, cs base " +
          "0xffff0000), not the state at the fault";
      }
    } catch {
      // dump() says why the registers cannot be read
    }
    return this.dump();
  }

  /** rip, rsp, rflags, cr0/cr3/cr4, efer, cs/ss: enough to find where a guest died. */
  dump(): string {
    try {
      const r = this.vcpu.getRegs();
      const s = this.vcpu.getSregs();
      const h = (n: number | bigint) => "0x" + n.toString(16).padStart(8, "0");
      const cs = readSegment(s, "cs");
      const ss = readSegment(s, "ss");
      return [
        `  rip ${h(r.get64("rip"))}  rsp ${h(r.get64("rsp"))}  rflags ${h(r.get64("rflags"))}`,
        `  rax ${h(r.get64("rax"))}  rbx ${h(r.get64("rbx"))}  rcx ${h(r.get64("rcx"))}  rdx ${
          h(r.get64("rdx"))
        }`,
        `  cr0 ${h(s.get64("cr0"))}  cr3 ${h(s.get64("cr3"))}  cr4 ${h(s.get64("cr4"))}  efer ${
          h(s.get64("efer"))
        }`,
        `  cs ${h(cs.selector)} base ${h(cs.base)} limit ${h(cs.limit)}  ss ${
          h(ss.selector)
        } base ${h(ss.base)} limit ${h(ss.limit)}`,
      ].join("\n");
    } catch (e) {
      return `  (registers unavailable: ${(e as Error).message})`;
    }
  }
}

function readData(run: DataView, off: number, size: number): number {
  return size === 1
    ? run.getUint8(off)
    : size === 2
    ? run.getUint16(off, true)
    : run.getUint32(off, true);
}

function writeData(run: DataView, off: number, size: number, v: number): void {
  if (size === 1) run.setUint8(off, v & 0xff);
  else if (size === 2) run.setUint16(off, v & 0xffff, true);
  else run.setUint32(off, v >>> 0, true);
}

/**
 * The size of the piece of a `len`-byte MMIO access that starts `done` bytes in: devices take
 * 1, 2 or 4 bytes. KVM reports 1..8 (kvm_run.mmio.data holds 8): an 8-byte access becomes two
 * 4-byte halves, and the pieces of a page-crossing access KVM split (3, 5, 6, 7 bytes, seen by
 * the guest fuzzer) become 4/2/1 pieces, low address first. A length beyond 8 stops at 8.
 */
export function mmioPiece(len: number, done: number): AccessSize {
  const rest = Math.min(len, 8) - done;
  return rest >= 4 ? 4 : rest >= 2 ? 2 : 1;
}
