/**
 * A vCPU worker: the script each Worker of worker_driver.ts runs. It rebuilds its vCPU
 * from plain numbers (fds and mappings are process-wide) and hands it to VcpuThread, the
 * same host the caller's-thread driver uses; then it blocks in that thread's run.
 *
 * Protocol (all plain data):
 *   machine → worker, once:  WorkerInit
 *   worker → machine:        {type:"state"} at each move of its state word: "ready" once
 *                            its state is built (vCPU 0: the device models) and its
 *                            thread id published, then running/paused/exited;
 *                            {type:"counters"} once, before "ready" (shared memory);
 *                            {type:"output"}, {type:"warn"} while running;
 *                            {type:"reply"}: vCPU 0's answer to a call (control.ts);
 *                            {type:"done"} with the outcome and stats, or {type:"error"}.
 * Everything the machine asks after the init (run, pause, stop) goes through the control
 * block; the worker stays idle after "done" until it is terminated.
 */
/// <reference lib="deno.worker" />
import type { Plan } from "../../plan/types.ts";
import { libc } from "../host/libc.ts";
import { Vcpu } from "../kvm/vcpu.ts";
import { GuestMemory, type RegionInfo } from "../memory/mod.ts";
import { failureOf, type HostFailure } from "../errors.ts";
import type { DiskImage } from "../devices/device.ts";
import { enterVcpuState, viewControl } from "./control.ts";
import { VcpuState } from "../lifecycle.ts";
// Static, so the device models load while the machine's thread is still building the VM.
import { type CallAnswer, type VcpuEnd, VcpuThread } from "./vcpu_thread.ts";

export interface WorkerInit {
  index: number;
  fd: number;
  runAddr: string;
  runSize: number;
  vmFd: number;
  /** vCPU 0's kvm_run page (APs kick it when they forward an access). */
  bspRunAddr: string;
  regions: RegionInfo[];
  plan: Plan;
  ctl: SharedArrayBuffer;
  /** Device id that gets the machine's stdin, or null. */
  stdinDevice: string | null;
  /** Disk images the machine opened (fds are process-wide). */
  disks: DiskImage[];
  /** Console device ids whose output is shown on a terminal. */
  terminals: string[];
}

export type WorkerMessage =
  | { type: "state"; state: VcpuState }
  | { type: "counters"; buffer: SharedArrayBuffer }
  | { type: "reply"; seq: number; answer: CallAnswer }
  | { type: "output"; id: string; bytes: Uint8Array }
  | { type: "warn"; message: string }
  | { type: "done"; end: VcpuEnd }
  | { type: "error"; failure: HostFailure };

const post = (m: WorkerMessage) => self.postMessage(m);

// Work that needs nothing from the init message is done now, while the machine's thread is
// still building the VM: opening libc (dlopen binds every symbol, ~4 ms in a fresh
// isolate). Done at init time instead, it delayed the guest's start.
libc();

self.onmessage = (ev: MessageEvent<WorkerInit>) => {
  self.onmessage = null;
  try {
    main(ev.data);
  } catch (e) {
    post({ type: "error", failure: failureOf(e) });
  }
};

function main(init: WorkerInit): void {
  const ctl = viewControl(init.ctl);
  let thread: VcpuThread;
  try {
    thread = VcpuThread.build({
      vcpu: new Vcpu(init.index, init.fd, BigInt(init.runAddr), init.runSize),
      plan: init.plan,
      ctl,
      vmFd: init.vmFd,
      memory: new GuestMemory(init.regions),
      bspRunBytes: init.index === 0
        ? undefined
        : new Vcpu(0, -1, BigInt(init.bspRunAddr), init.runSize).runBytes,
      stdinDevice: init.stdinDevice,
      disks: init.disks,
      terminals: init.terminals,
    }, {
      output: (id, bytes) => post({ type: "output", id, bytes }),
      warn: (message) => post({ type: "warn", message }),
      state: (_index, state) => post({ type: "state", state }),
      counters: (_index, buffer) => post({ type: "counters", buffer }),
      reply: (seq, answer) => post({ type: "reply", seq, answer }),
    });
  } catch (e) {
    // starting → exited: this thread touches nothing of the VM from here on.
    enterVcpuState(ctl, init.index, VcpuState.exited);
    throw e;
  }
  thread.ready(true);
  post({ type: "done", end: thread.runToEnd() });
}
