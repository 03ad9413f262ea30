/**
 * How a machine's vCPU threads are run: the one interface both drivers implement.
 *
 * - `worker_driver.ts`: one Worker per vCPU; the machine's thread stays free while the
 *   guest runs (the library default, and every machine with more than one vCPU).
 * - `caller_driver.ts`: a 1-vCPU machine's loop on the thread that calls run(), in slices
 *   between timer ticks (what `vmdesc boot` uses: no second isolate to start).
 *
 * What is common lives in the Machine (runtime/machine.ts), not here: the lifecycle, the
 * REQUEST word and the kicks (threads/control.ts), Ctrl-C/SIGTERM and AbortSignals. A
 * driver owns only what differs: where the vCPU threads live, how output, warnings and
 * stdin travel between them and the machine's thread, how the timeout is noticed, and how
 * the threads are ended.
 */
import type { Vm } from "../kvm/vm.ts";
import type { DiskImage, InputSource } from "../devices/device.ts";
import type { HostFailure } from "../errors.ts";
import type { Control, VcpuCall } from "./control.ts";
import type { CallAnswer, MachineRoutes, VcpuEnd } from "./vcpu_thread.ts";

/** What the machine's thread hands the vCPU threads. */
export interface DriverAttach {
  vm: Vm;
  ctl: Control;
  /** Where guest output, warnings, state moves and counters go (on the machine's thread). */
  routes: MachineRoutes;
  /** Device id that gets `stdin`, or null. */
  stdinDevice: string | null;
  /** Disk images opened for the machine's block devices (plain data). */
  disks: readonly DiskImage[];
  /** Console device ids whose output is shown on a terminal (virtio-console's size). */
  terminals?: readonly string[];
}

/** One vCPU thread's end, as the driver reports it. */
export type DriverEnd =
  | ({ kind: "ended" } & VcpuEnd)
  /** The thread failed (a host error escaped its loop, or the worker crashed). */
  | { kind: "failed"; failure: HostFailure };

/** What a run needs from the machine. */
export interface DriverRun {
  stdin: InputSource | null;
  /**
   * performance.now() at which the run times out as things stand, or Infinity (no
   * timeout, or paused: paused time does not count, so the deadline moves on by the
   * length of every pause; look again after a resume).
   */
  deadline(): number;
  /** The deadline passed: the machine stops the vCPUs. */
  onDeadline(): void;
  /** A vCPU thread ended (in the order they end). */
  onEnd(index: number, end: DriverEnd): void;
  /** close() was called under the run: the driver touches nothing more and returns. */
  closed(): boolean;
}

export interface VcpuDriver {
  /**
   * Hands the built VM to the vCPU threads. Resolves once every thread is `ready` (its
   * state built, vCPU 0's device models too, parked at the start gate), rejects with the
   * first failure.
   */
  attach(a: DriverAttach): Promise<void>;
  /**
   * Supervises the vCPU threads once the machine has set REQUEST run, until every one has
   * ended (each reported through `onEnd`) or the machine is closed.
   */
  run(r: DriverRun): Promise<void>;
  /**
   * The REQUEST word changed (pause, resume, stop): make every vCPU thread see it (kick
   * the ones inside KVM_RUN, wake the parked ones).
   */
  requestChanged(): void;
  /**
   * Has vCPU 0 run `call` on its device models (vcpu_thread.ts VCPU0_CALLS) and answers
   * what it returned; `{ ok: false }` when no vCPU 0 thread can take it now (ended, not
   * built) or it did not answer within `timeoutMs`.
   */
  call(call: VcpuCall, timeoutMs: number): Promise<CallAnswer>;
  /**
   * Ends the vCPU threads and releases what the driver holds; returns only once none of
   * them can touch the VM any more (the machine releases it next). Idempotent.
   */
  close(): void;
}
