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
import type { Plan } from "../lang/plan/types.ts";
import { libc, pthreadSelf } from "./host/libc.ts";
import { Vcpu } from "./kvm/vcpu.ts";
import { setIrqLine } from "./kvm/vm.ts";
import { EXITED, GO, READY, ringTake, STOP, viewControl } from "./control.ts";
import { type LoopOutcome, RunLoop } from "./run_loop.ts";
import { AddressMap } from "./address_map.ts";
import type { Device, DeviceContext, InputSource } from "./devices/device.ts";
import { GuestMemory, type RegionInfo } from "./memory/mod.ts";
import { RuntimeError } from "./errors.ts";
// Static, so the device models load while the main thread is still building the VM.
import { DEVICE_MODELS } from "./devices/registry.ts";
import type { DeviceStats, WorkerStats } from "./stats.ts";

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
// still compiling and building the VM (vmdesc boot starts this worker first): opening
// libc (dlopen binds every symbol, ~4 ms in a fresh isolate) and loading the shadow
// binding module. Done at init time instead, both delayed the guest's start.
libc();
const onesAlias: Promise<Record<string, unknown> | null> = import(
  new URL("./memory/ones_alias.ts", import.meta.url).href
).catch(() => null);

self.onmessage = async (ev: MessageEvent<WorkerInit>) => {
  self.onmessage = null;
  try {
    await main(ev.data);
  } catch (e) {
    const re = e instanceof RuntimeError ? e : null;
    post({
      type: "error",
      code: re?.code ?? (e as { code?: string }).code ?? null,
      message: re ? re.message : (e as Error)?.stack ?? String(e),
      hint: re?.hint ?? (e as { hint?: string }).hint ?? null,
    });
  }
};

async function main(init: WorkerInit): Promise<void> {
  const ctl = viewControl(init.ctl);
  const vcpu = new Vcpu(init.index, init.fd, BigInt(init.runAddr), init.runSize);
  const isBsp = init.index === 0;

  let loop: RunLoop | null = null;
  let devices: Device[] = [];
  const inputSinks: ((b: Uint8Array) => void)[] = [];
  const flushers: (() => void)[] = [];
  let map: AddressMap | null = null;

  if (isBsp) {
    const memory = new GuestMemory(init.regions);
    const ctx: DeviceContext & { memory: GuestMemory } = {
      setIrq: (gsi, level) => setIrqLine(init.vmFd, gsi, level),
      requestStop: (req) => loop?.requestStop(req),
      output: (id, bytes) => post({ type: "output", id, bytes: bytes.slice() }),
      now: () => performance.now(),
      input: (id): InputSource | null =>
        id === init.stdinDevice
          ? {
            subscribe(onData) {
              inputSinks.push(onData);
              return () => {
                const i = inputSinks.indexOf(onData);
                if (i >= 0) inputSinks.splice(i, 1);
              };
            },
          }
          : null,
      memory,
    };
    try {
      for (const entry of init.plan.devices) {
        const make = DEVICE_MODELS.get(entry.kind);
        if (!make) {
          throw new RuntimeError(
            "E1006",
            `device ${entry.id}: no runtime model for kind "${entry.kind}"`,
            `known kinds: ${[...DEVICE_MODELS.keys()].join(", ")}`,
          );
        }
        try {
          devices.push(make(entry, ctx, init.plan));
        } catch (e) {
          // A model refusing its Plan entry (missing port, bad property) is a Plan problem.
          if (e instanceof RuntimeError) throw e;
          throw new RuntimeError(
            "E1006",
            `device ${entry.id} (${entry.kind}): ${(e as Error)?.message ?? String(e)}`,
            "check this device's entry in the Plan (ports, mmio, irq, props)",
          );
        }
      }
      await bindShadow(init.plan, devices, memory);
      for (const d of devices) {
        const f = (d as { flush?: unknown }).flush;
        if (typeof f === "function") flushers.push(() => f.call(d));
      }
      map = new AddressMap(devices);
    } catch (e) {
      closeDevices(devices);
      devices = [];
      throw e;
    }
  }

  loop = new RunLoop(vcpu, map, ctl, init.regions, {
    warn: (message) => post({ type: "warn", message }),
    onKick: isBsp
      ? () => {
        const bytes = ringTake(ctl);
        if (bytes) { for (const sink of inputSinks) sink(bytes); }
        // The main thread kicks vCPU 0 every OUTPUT_TICK_MS (machine.ts): models that buffer
        // output (the UART keeps TX until a newline) hand over what they hold, so a prompt
        // without a newline shows up even while the guest sits in HLT waiting for input.
        for (const f of flushers) f();
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
      closeDevices(devices);
      Atomics.add(ctl.i32, EXITED, 1);
      throw e;
    }
  }
  const deviceStats: DeviceStats[] = devices.map((d, i) => ({
    id: d.id,
    kind: d.kind,
    pio_exits: loop!.counters.device[i * 2],
    mmio_exits: loop!.counters.device[i * 2 + 1],
    model: d.stats(),
  }));
  closeDevices(devices);
  Atomics.add(ctl.i32, EXITED, 1);
  const c = loop.counters;
  post({
    type: "done",
    outcome,
    stats: {
      vcpu: {
        vcpu: init.index,
        runs: c.runs,
        exits: c.exitsByName(),
        guest_ns: c.guestNs,
        vmm_ns: c.vmmNs,
      },
      devices: deviceStats,
      unclaimed: [...c.unclaimed],
      forwarded: c.forwarded,
    },
  });
}

/** Device models release what they hold (and flush buffered output) exactly once. */
function closeDevices(devices: Device[]): void {
  for (const d of devices) {
    try {
      d.close?.();
    } catch {
      // a model failing to close must not hide the run's outcome
    }
  }
}

/**
 * Under the `shadow` hole strategy the pci_host model keeps the present functions' config
 * pages inside the ones_alias memslot current; `memory/ones_alias.ts` knows that layout
 * and may export `bindShadowDevices(plan, devices, memory)` to connect them.
 */
async function bindShadow(plan: Plan, devices: Device[], memory: GuestMemory): Promise<void> {
  if (!plan.memslots.some((m) => m.backing.kind === "ones_alias")) return;
  try {
    const mod = await onesAlias;
    if (typeof mod?.bindShadowDevices === "function") mod.bindShadowDevices(plan, devices, memory);
  } catch (e) {
    if (e instanceof RuntimeError) throw e;
  }
}
