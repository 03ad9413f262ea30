/**
 * What runs on a vCPU's thread, whichever thread that is: a vCPU worker (worker_entry.ts)
 * or, for a 1-vCPU machine, the caller's own thread (caller_driver.ts). Both drivers use
 * this one module, so vCPU 0's wiring is written once:
 *
 * - vCPU 0 hosts every device model (device_set.ts) and dispatches its exits to them;
 *   an AP has no devices and forwards its accesses to vCPU 0 (run_loop.ts).
 * - A kick on vCPU 0 takes stdin bytes from the control block's ring to the input device,
 *   has the models take in host-side work (`Device.poll`: frames a TAP waiter woke it for,
 *   through the `waker` the models get) and flush buffered output (the machine kicks it
 *   every 100 ms for that).
 * - Output and warnings leave through the routes the driver gives: postMessage from a
 *   worker, a direct call on the caller's thread.
 * - The thread's counters (stats.ts) are shared memory, handed to the machine when the
 *   thread is ready, so the machine reads them live.
 * - vCPU 0 answers the machine's calls (control.ts `postCall`): work on the device models
 *   the machine's thread cannot do itself, because the models live here. It takes them
 *   when kicked, while parked and at the start gate. `device-stats` (the models' own
 *   counters, for live stats) and `disk-swap` (a block device's image swapped while the
 *   machine is paused) are the calls; another operation on the models is one more entry
 *   in VCPU0_CALLS.
 * - The thread's state word (lifecycle.ts) moves only here: starting → ready → running ⇄
 *   paused → exited.
 */
import type { Plan } from "../../plan/types.ts";
import { KICK_SIGNAL, libc, pthreadSelf } from "../host/libc.ts";
import { KVM_RUN_STRUCT } from "../kvm/abi.ts";
import type { Vcpu } from "../kvm/vcpu.ts";
import { setIrqLine, signalMsi } from "../kvm/vm.ts";
import type { GuestMemory } from "../memory/mod.ts";
import type { DiskImage } from "../devices/device.ts";
import { DeviceSet } from "../device_set.ts";
import { type LoopOutcome, RunLoop } from "../run_loop.ts";
import type { WorkerStats } from "../stats.ts";
import { VcpuRequest, VcpuState } from "../lifecycle.ts";
import {
  type Control,
  enterVcpuState,
  request,
  ringTake,
  takeCall,
  type VcpuCall,
  vcpuState,
  waitForWake,
  wakeCount,
} from "./control.ts";

/** What a vCPU thread is built from (live objects: workers rebuild them from numbers). */
export interface VcpuThreadInit {
  vcpu: Vcpu;
  plan: Plan;
  ctl: Control;
  /** The VM fd: interrupt lines and MSIs are raised through it. */
  vmFd: number;
  /** Every memslot as the VMM maps it. */
  memory: GuestMemory;
  /** APs: vCPU 0's kvm_run page, to kick it when they forward an access. */
  bspRunBytes?: Uint8Array;
  /** Device id that gets the machine's stdin, or null. */
  stdinDevice: string | null;
  /** Disk images the machine opened (vCPU 0's models use them). */
  disks: readonly DiskImage[];
  /** Console device ids whose output is shown on a terminal. */
  terminals?: readonly string[];
}

/** Where what a vCPU thread produces goes (the machine's side: threads/driver.ts). */
export interface MachineRoutes {
  /** Guest output by device id. The bytes are the thread's to give away (a copy). */
  output(deviceId: string, bytes: Uint8Array): void;
  warn(message: string): void;
  /** vCPU `index` moved to `state` (after its control-block word says so). */
  state(index: number, state: VcpuState): void;
  /** vCPU `index`'s counters, shared memory the machine may read at any time (once, at ready). */
  counters(index: number, buffer: SharedArrayBuffer): void;
}

/** The machine's routes plus where vCPU 0's answers to calls go (the driver's business). */
export interface VcpuRoutes extends MachineRoutes {
  /** vCPU 0's answer to the machine's call number `seq`. */
  reply(seq: number, answer: CallAnswer): void;
}

/** What a call returns: its result, or why it failed. */
export type CallAnswer =
  | { ok: true; value: unknown }
  /** `timedOut`: no answer in time; vCPU 0 may still run the call. */
  | { ok: false; error: string; timedOut?: boolean };

/**
 * The calls vCPU 0 answers, by operation. Each runs on vCPU 0's thread, between exits or
 * while parked, with the device models at rest.
 */
const VCPU0_CALLS: Record<string, (thread: VcpuThread, args: unknown) => unknown> = {
  /** Every model's counters and exits, now (live stats). */
  "device-stats": (t) => t.devices?.stats(t.loop) ?? [],
  /**
   * A block device takes another image (Machine.swapDisk, the machine paused); the
   * machine opened it and closes the old one once this answers.
   */
  "disk-swap": (t, args) => {
    const { id, image } = args as { id: string; image: DiskImage };
    if (!t.devices) throw new Error("no device models on this thread");
    t.devices.swapImage(id, image);
    return null;
  },
};

/** How a vCPU thread's run ended, as plain data (what a worker posts back). */
export interface VcpuEnd {
  outcome: LoopOutcome;
  stats: WorkerStats;
}

const STOPPED: LoopOutcome = { reason: "stopped", message: "stopped" };

export class VcpuThread {
  readonly index: number;
  readonly loop: RunLoop;
  /** vCPU 0's device models; null on an AP. */
  readonly devices: DeviceSet | null;
  readonly #ctl: Control;
  readonly #routes: VcpuRoutes;
  #finished = false;

  private constructor(
    index: number,
    loop: RunLoop,
    devices: DeviceSet | null,
    ctl: Control,
    routes: VcpuRoutes,
  ) {
    this.index = index;
    this.loop = loop;
    this.devices = devices;
    this.#ctl = ctl;
    this.#routes = routes;
  }

  #enter(to: VcpuState): void {
    enterVcpuState(this.#ctl, this.index, to);
    this.#routes.state(this.index, to);
  }

  /** Builds the thread's state (vCPU 0: the device models too). Stays `starting`. */
  static build(init: VcpuThreadInit, routes: VcpuRoutes): VcpuThread {
    const { vcpu, ctl, vmFd } = init;
    let loop: RunLoop | null = null;
    const devices = vcpu.index === 0
      ? DeviceSet.build(init.plan, {
        setIrq: (gsi, level) => setIrqLine(vmFd, gsi, level),
        signalMsi: (address, data) => signalMsi(vmFd, address, data),
        // Lazily bound: the run loop is built after the models.
        requestStop: (req) => loop?.requestStop(req),
        // A copy: a model may reuse its buffer, and a sink (a stream) may keep the bytes.
        output: (id, bytes) => routes.output(id, bytes.slice()),
        warn: routes.warn,
        memory: init.memory,
        stdinDevice: init.stdinDevice,
        disks: init.disks,
        terminals: init.terminals,
        waker: {
          thread: pthreadSelf(),
          flagAddress: vcpu.runAddr + BigInt(KVM_RUN_STRUCT.f.immediate_exit.off),
          signal: KICK_SIGNAL,
        },
      })
      : null;
    try {
      loop = new RunLoop(vcpu, devices?.map ?? null, ctl, init.memory.regions.slice(), {
        warn: routes.warn,
        onKick: devices
          ? () => {
            const bytes = ringTake(ctl);
            if (bytes) devices.deliver(bytes);
            devices.poll();
            devices.flush();
            thread?.serveCall();
          }
          : undefined,
      });
      if (init.bspRunBytes) loop.setBsp(init.bspRunBytes);
    } catch (e) {
      devices?.close();
      throw e;
    }
    const thread: VcpuThread = new VcpuThread(vcpu.index, loop, devices, ctl, routes);
    return thread;
  }

  /** Runs one call on this thread (vCPU 0; an AP has no models to call). */
  call(call: VcpuCall): CallAnswer {
    const fn = Object.hasOwn(VCPU0_CALLS, call.op) ? VCPU0_CALLS[call.op] : null;
    if (!fn) return { ok: false, error: `no call named '${call.op}'` };
    if (this.#finished) return { ok: false, error: "the vCPU thread has ended" };
    try {
      return { ok: true, value: fn(this, call.args) };
    } catch (e) {
      return { ok: false, error: (e as Error)?.message ?? String(e) };
    }
  }

  /** vCPU 0: answers the machine's call, if one is posted. */
  serveCall(): void {
    if (this.index !== 0) return;
    const posted = takeCall(this.#ctl);
    if (posted) this.#routes.reply(posted.seq, this.call(posted.call));
  }

  /**
   * starting → ready. A worker publishes its thread ids first: the pthread_t so the
   * machine's kicks can reach it inside KVM_RUN (a stop that finds no id relies on the
   * thread reading REQUEST after this: both are sequentially consistent atomics), and the
   * kernel's id so the machine can tell when the thread has ended.
   */
  ready(publishThreadId: boolean): void {
    if (publishThreadId) {
      Atomics.store(this.#ctl.kernelTids, this.index, libc().gettid());
      Atomics.store(this.#ctl.tids, this.index, BigInt.asIntN(64, pthreadSelf()));
    }
    this.#routes.counters(this.index, this.loop.counters.buffer);
    this.#enter(VcpuState.ready);
  }

  /** Bytes for the input device, delivered on this thread (the caller's-thread driver). */
  deliver(bytes: Uint8Array): void {
    this.devices?.deliver(bytes);
  }

  /** ready → running, or paused → running. */
  enterRunning(): void {
    this.#enter(VcpuState.running);
  }

  /** running → paused: output the models hold is handed over first. */
  enterPaused(): void {
    this.devices?.flush();
    this.#enter(VcpuState.paused);
  }

  /**
   * A worker's whole run, blocking its thread: wait at the start gate, run, park while
   * REQUEST is pause (vCPU 0 still answers the APs' in-flight accesses), leave on stop
   * or when the guest ends. Throws what the loop throws (after finishing the thread).
   */
  runToEnd(): VcpuEnd {
    const ctl = this.#ctl;
    try {
      let req = this.#wait(VcpuRequest.hold);
      if (req === VcpuRequest.stop) {
        return this.finish({ reason: "stopped", message: "stopped before start" });
      }
      this.enterRunning();
      for (;;) {
        const outcome = this.loop.run();
        if (outcome) return this.finish(outcome);
        req = request(ctl);
        if (req === VcpuRequest.stop) return this.finish(STOPPED);
        if (req === VcpuRequest.pause) {
          this.enterPaused();
          req = this.#wait(VcpuRequest.pause);
          if (req === VcpuRequest.stop) return this.finish(STOPPED);
          this.enterRunning();
        }
      }
    } catch (e) {
      this.finish(STOPPED);
      throw e;
    }
  }

  /**
   * Blocks while REQUEST is `req` (hold: the start gate; pause: parked); returns the
   * request that ended the wait. vCPU 0 still answers the machine's calls meanwhile, and,
   * parked, an AP's access that was in flight when the pause came (the AP waits for it).
   */
  #wait(req: VcpuRequest): VcpuRequest {
    const ctl = this.#ctl;
    for (;;) {
      const seen = wakeCount(ctl);
      const now = request(ctl);
      if (now !== req) return now;
      if (this.devices) {
        if (req === VcpuRequest.pause) this.loop.serveForwarded();
        this.serveCall();
      }
      waitForWake(ctl, seen);
    }
  }

  /**
   * The end of the thread's run: the numbers, the models closed (they flush what they
   * hold), and the state `exited`, after which the thread touches nothing of the VM.
   * Idempotent: a second call closes nothing and reports the same numbers.
   */
  finish(outcome: LoopOutcome): VcpuEnd {
    const devices = this.devices?.stats(this.loop) ?? [];
    if (!this.#finished) {
      this.#finished = true;
      this.devices?.close();
      if (vcpuState(this.#ctl, this.index) !== VcpuState.exited) this.#enter(VcpuState.exited);
    }
    return { outcome, stats: this.loop.workerStats(devices) };
  }
}
