/**
 * A vCPU worker: one per vCPU, each running the synchronous KVM_RUN loop on its own
 * thread. vCPU 0's worker also owns every device model (see run_loop.ts for why).
 *
 * Protocol (all plain data):
 *   main → worker, once:  WorkerInit
 *   worker → main:        {type:"ready"} after devices exist and the thread id is published,
 *                         {type:"output"}, {type:"warn"} while running,
 *                         {type:"done"} with the outcome and stats, or {type:"error"}.
 * The worker then waits for the GO word, runs, and stays idle until terminated.
 */
/// <reference lib="deno.worker" />
import type { Plan } from "../plan/types.ts";
import { libc, pthreadSelf } from "./host/libc.ts";
import { Vcpu } from "./kvm/vcpu.ts";
import { setIrqLine } from "./kvm/vm.ts";
import { EXITED, GO, READY, ringTake, STOP, viewControl } from "./control.ts";
import { type LoopOutcome, RunLoop } from "./run_loop.ts";
import { GuestMemory, type RegionInfo } from "./memory/mod.ts";
import { failureOf } from "./errors.ts";
// Static, so the device models load while the main thread is still building the VM.
import { DeviceSet } from "./device_set.ts";
import type { WorkerStats } from "./stats.ts";

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
  /** Device id that gets the main thread's stdin, or null. */
  stdinDevice: string | null;
}

export type WorkerMessage =
  | { type: "ready" }
  | { type: "output"; id: string; bytes: Uint8Array }
  | { type: "warn"; message: string }
  | { type: "done"; outcome: LoopOutcome; stats: WorkerStats }
  | { type: "error"; code: string | null; message: string; hint: string | null };

const post = (m: WorkerMessage) => self.postMessage(m);

// Work that needs nothing from the init message is done now, while the main thread is
// still building the VM: opening libc (dlopen binds every symbol, ~4 ms in a fresh
// isolate). Done at init time instead, it delayed the guest's start.
libc();

self.onmessage = (ev: MessageEvent<WorkerInit>) => {
  self.onmessage = null;
  try {
    main(ev.data);
  } catch (e) {
    post({ type: "error", ...failureOf(e) });
  }
};

function main(init: WorkerInit): void {
  const ctl = viewControl(init.ctl);
  const vcpu = new Vcpu(init.index, init.fd, BigInt(init.runAddr), init.runSize);
  const isBsp = init.index === 0;

  let loop: RunLoop | null = null;
  const set = isBsp
    ? DeviceSet.build(init.plan, {
      setIrq: (gsi, level) => setIrqLine(init.vmFd, gsi, level),
      requestStop: (req) => loop?.requestStop(req),
      output: (id, bytes) => post({ type: "output", id, bytes: bytes.slice() }),
      memory: new GuestMemory(init.regions),
      stdinDevice: init.stdinDevice,
    })
    : null;

  loop = new RunLoop(vcpu, set?.map ?? null, ctl, init.regions, {
    warn: (message) => post({ type: "warn", message }),
    onKick: set
      ? () => {
        const bytes = ringTake(ctl);
        if (bytes) set.deliver(bytes);
        // The main thread kicks vCPU 0 every OUTPUT_TICK_MS (machine.ts) for this flush.
        set.flush();
      }
      : undefined,
  });
  if (!isBsp) {
    const bsp = new Vcpu(0, -1, BigInt(init.bspRunAddr), init.runSize);
    loop.setBsp(bsp.runBytes);
  }

  // Publish the thread id before looking at STOP: a stop that finds no id relies on this
  // worker seeing the STOP word below (both are sequentially consistent atomics).
  Atomics.store(ctl.tids, init.index, BigInt.asIntN(64, pthreadSelf()));
  Atomics.add(ctl.i32, READY, 1);
  post({ type: "ready" });
  while (Atomics.load(ctl.i32, GO) === 0) Atomics.wait(ctl.i32, GO, 0);

  let outcome: LoopOutcome;
  if (Atomics.load(ctl.i32, STOP) !== 0) {
    outcome = { reason: "stopped", message: "stopped before start" };
  } else {
    try {
      outcome = loop.run();
    } catch (e) {
      set?.close();
      Atomics.add(ctl.i32, EXITED, 1);
      throw e;
    }
  }
  const devices = set?.stats(loop) ?? [];
  set?.close();
  Atomics.add(ctl.i32, EXITED, 1);
  post({ type: "done", outcome, stats: loop.workerStats(devices) });
}
