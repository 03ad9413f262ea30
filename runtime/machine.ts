/**
 * A machine: the VM built from a Plan, its boot payload loaded, and one worker per vCPU.
 *
 * Threads: the main thread creates the VM, loads the payload, and then only supervises:
 * timeouts, Ctrl-C, AbortSignal, stdin, output. Each vCPU runs a synchronous KVM_RUN loop
 * in its own Worker; vCPU 0's worker owns the device models.
 *
 * Or, with `vcpuThread: "caller"` and one vCPU, the loop runs on the caller's thread, which
 * saves the second isolate (~15-20 ms of start-up); caller_thread.ts says how a thread that
 * sits in KVM_RUN still hears timeouts, signals and stdin.
 *
 * Stopping (works even for a guest spinning without exits): the main thread stores a stop
 * code in the control block, sets `immediate_exit = 1` in each vCPU's kvm_run page and
 * sends SIGUSR2 to each vCPU thread (pthread_kill). A no-op SIGUSR2 listener is installed
 * with the first machine (and kept), so the signal only interrupts KVM_RUN (EINTR) instead of killing
 * the process (not SIGUSR1: Deno opens its inspector on that one); immediate_exit covers
 * the window where the signal lands just before the worker re-enters KVM_RUN.
 */
import type { Plan } from "../plan/types.ts";
import { MAX_CPUS } from "../plan/limits.ts";
import * as host from "./host/libc.ts";
import { KVM_MP_STATE_RUNNABLE, KVM_RUN_STRUCT } from "./kvm/abi.ts";
import { Vm, type VmOptions } from "./kvm/vm.ts";
import { boot } from "./boot/mod.ts";
import {
  type Control,
  createControl,
  EXITED,
  GO,
  MB_STATE,
  READY,
  ringPush,
  STOP,
  StopCode,
  viewControl,
} from "./control.ts";
import type { WorkerInit, WorkerMessage } from "./vcpu_worker.ts";
import { spawnVcpuWorker } from "./vcpu_spawn.ts";
import { type LoopOutcome, RunLoop } from "./run_loop.ts";
import {
  EXIT_STATUS,
  type ExitReason,
  failureOf,
  type HostFailure,
  RuntimeError,
  statusFor,
} from "./errors.ts";
import { mergeStats, type RunStats, type WorkerStats } from "./stats.ts";
import type { InputSource, PolledInput } from "./devices/device.ts";
import { DeviceSet } from "./device_set.ts";
import { setIrqLine } from "./kvm/vm.ts";
import { runSlices } from "./caller_thread.ts";

export interface MachineOptions extends VmOptions {
  /** Directory relative payload paths are resolved against (default: the Plan's source dir, else cwd). */
  baseDir?: string;
  /** Guest text output (serial TX), by device id. Default: discarded. */
  output?: (deviceId: string, bytes: Uint8Array) => void;
  /** Warnings about guest behaviour (unassigned MMIO, writes to read-only memory). Default: stderr. */
  warn?: (message: string) => void;
  /** Bytes for the guest's first serial port (or `stdinDevice`), e.g. stdinInput(). */
  stdin?: InputSource | null;
  /** Device id that receives `stdin`; default: the first `serial` device. */
  stdinDevice?: string;
  /**
   * Start every AP at the boot entry with the BSP's registers (mp_state RUNNABLE) instead of
   * waiting for the guest's INIT/SIPI. For flat payloads written for that model, and tests.
   */
  apsAtEntry?: boolean;
  /**
   * Where the vCPU loops run. "worker" (the default): one Worker per vCPU, and this thread
   * stays free while the guest runs. "caller": a 1-vCPU machine runs its loop on the thread
   * that calls run(), which starts the guest ~15-20 ms sooner (no second isolate); while
   * the guest runs, that thread's event loop gets a turn only every 100 ms (and after a
   * signal), so timers, signal listeners and stream input are served then. `vmdesc boot`
   * uses it for 1-vCPU machines. Machines with more vCPUs always use workers.
   */
  vcpuThread?: "worker" | "caller";
}

export interface RunOptions {
  /** Stop after this many seconds (reason "timeout", status 6). */
  timeout?: number;
  /** Stop when aborted (reason "aborted", status 8). */
  signal?: AbortSignal;
  /**
   * Stop on Ctrl-C (reason "interrupted", status 130) and SIGTERM (reason "terminated",
   * status 143). The CLI turns this on.
   */
  sigint?: boolean;
}

export interface RunResult {
  reason: ExitReason;
  /** Process exit status for this outcome (see errors.ts). */
  exitStatus: number;
  /** One line for the user ("guest triple fault (vCPU 0)", "timeout after 5 s", ...). */
  message: string;
  /** Register dump for guest faults. */
  dump?: string;
  /** The value written to debug_exit. */
  debugValue?: number;
  /** For host errors: the runtime error code. */
  code?: string;
  hint?: string | null;
  stats: RunStats;
}

const OFF_IMMEDIATE_EXIT = KVM_RUN_STRUCT.f.immediate_exit.off;
const noop = () => {};
/** How often vCPU 0 is kicked to flush buffered device output (ms). */
const OUTPUT_TICK_MS = 100;

/** The result of a run from how it ended: a host failure, a vCPU's outcome, or a stop. */
function resultOf(
  hostError: HostFailure | null,
  first: LoopOutcome | null,
  mainReason: { reason: ExitReason; message: string } | null,
  stats: RunStats,
): RunResult {
  if (hostError) {
    return {
      reason: "host_error",
      exitStatus: EXIT_STATUS.hostError,
      message: hostError.message,
      code: hostError.code ?? undefined,
      hint: hostError.hint,
      stats,
    };
  }
  if (first) {
    const reason = first.reason as ExitReason;
    return {
      reason,
      exitStatus: first.success ? EXIT_STATUS.ok : statusFor(reason, first.value ?? 0),
      message: first.message,
      dump: first.dump,
      debugValue: first.value,
      stats,
    };
  }
  const r = mainReason ?? { reason: "aborted" as const, message: "stopped" };
  return { reason: r.reason, exitStatus: statusFor(r.reason), message: r.message, stats };
}

let kickHandler = false;

/**
 * Installs the no-op kick-signal handler once, for the life of the process. It is never
 * removed: a kick still in flight when a machine closes must find a handler, or the
 * default action (terminate) would kill the process. It does not keep the process alive.
 */
function installKickHandler(): void {
  if (kickHandler) return;
  kickHandler = true;
  Deno.addSignalListener(host.KICK_SIGNAL_NAME, noop);
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

/** Where a Plan's relative paths (payload, serial output files) resolve from. */
export function planBaseDir(plan: Plan, baseDir?: string): string {
  return baseDir ?? (plan.source ? dirname(plan.source) : Deno.cwd());
}

/** Loads the payload and sets vCPU 0's entry state (and the APs', with `apsAtEntry`). */
async function bootVcpus(plan: Plan, vm: Vm, baseDir: string, opts: MachineOptions) {
  await boot(plan, vm.memory, vm.vcpus[0], baseDir);
  if (opts.apsAtEntry) {
    const regs = vm.vcpus[0].getRegs();
    const sregs = vm.vcpus[0].getSregs();
    for (const ap of vm.vcpus.slice(1)) {
      // Each vCPU keeps its own APIC base (sregs.apic_base carries the BSP flag).
      sregs.set("apic_base", ap.getSregs().get("apic_base"));
      ap.setSregs(sregs);
      ap.setRegs(regs);
      ap.setMpState(KVM_MP_STATE_RUNNABLE);
    }
  }
}

export class Machine {
  readonly #vm: Vm;
  readonly #ctl: Control;
  /** One per vCPU, spawned before the VM was built; none in "caller" mode. */
  readonly #workers: Worker[];
  readonly #opts: MachineOptions;
  /** "caller" mode: vCPU 0's devices and loop, on this thread. Null with workers. */
  #inline: { set: DeviceSet; loop: RunLoop } | null = null;
  #closed = false;
  #ran = false;
  #ready: Promise<void> = Promise.resolve();
  #onMessage: ((index: number, m: WorkerMessage) => void) | null = null;
  #workerError: HostFailure | null = null;
  /** Ends a run in progress when the machine is closed under it. */
  #endRun: (() => void) | null = null;

  private constructor(vm: Vm, opts: MachineOptions, workers: Worker[]) {
    this.#vm = vm;
    this.#opts = opts;
    this.#workers = workers;
    this.#ctl = viewControl(createControl());
    installKickHandler();
  }

  #warn(message: string): void {
    (this.#opts.warn ?? ((s: string) => console.error(`vmdesc: warning: ${s}`)))(message);
  }

  /** The device that gets stdin: `stdinDevice`, else the first serial port; null without stdin. */
  get #stdinDevice(): string | null {
    const o = this.#opts;
    return o.stdin
      ? (o.stdinDevice ?? this.#vm.plan.devices.find((d) => d.kind === "serial")?.id ?? null)
      : null;
  }

  /** Sends each worker its init; #ready settles when all have built their state. */
  #startWorkers(): void {
    const workers = this.#workers;
    const vm = this.#vm;
    const init = (i: number): WorkerInit => {
      const v = vm.vcpus[i];
      return {
        index: i,
        fd: v.fd,
        runAddr: v.runAddr.toString(),
        runSize: v.runSize,
        vmFd: vm.vmFd,
        bspRunAddr: vm.vcpus[0].runAddr.toString(),
        regions: vm.regions,
        plan: vm.plan,
        ctl: this.#ctl.sab,
        stdinDevice: this.#stdinDevice,
      };
    };
    let pending = workers.length;
    this.#ready = new Promise<void>((resolve, reject) => {
      workers.forEach((w, i) => {
        w.onmessage = (ev: MessageEvent<WorkerMessage>) => {
          const m = ev.data;
          if (m.type === "ready") {
            if (--pending === 0) resolve();
          } else if (m.type === "error" && this.#onMessage === null) {
            reject(
              m.code
                ? new RuntimeError(m.code as RuntimeError["code"], m.message, m.hint)
                : new Error(`vCPU ${i} worker: ${m.message}`),
            );
          } else if (m.type === "output") {
            this.#opts.output?.(m.id, m.bytes);
          } else if (m.type === "warn") {
            this.#warn(m.message);
          }
          this.#onMessage?.(i, m);
        };
        w.onerror = (ev) => {
          ev.preventDefault();
          const msg = {
            type: "error" as const,
            code: null,
            message: `vCPU ${i} worker crashed: ${ev.message}`,
            hint: null,
          };
          if (this.#onMessage === null) reject(new Error(msg.message));
          this.#onMessage?.(i, msg);
        };
        w.postMessage(init(i));
      });
    });
  }

  /** "caller" mode: vCPU 0's device models and run loop, built on this thread. */
  #buildInline(): void {
    const vm = this.#vm;
    let loop: RunLoop | null = null;
    const set = DeviceSet.build(vm.plan, {
      setIrq: (gsi, level) => setIrqLine(vm.vmFd, gsi, level),
      requestStop: (req) => loop?.requestStop(req),
      // A copy: a model may reuse its buffer, and a sink (a stream) may keep the bytes.
      output: (id, bytes) => this.#opts.output?.(id, bytes.slice()),
      memory: vm.memory,
      stdinDevice: this.#stdinDevice,
    });
    loop = new RunLoop(vm.vcpus[0], set.map, this.#ctl, vm.regions, {
      warn: (message) => this.#warn(message),
      onKick: () => set.flush(),
    });
    this.#inline = { set, loop };
  }

  /**
   * Builds the VM, loads the payload, and starts the vCPU workers (parked until run()); in
   * "caller" mode, builds vCPU 0's devices on this thread instead.
   */
  static async create(plan: Plan, opts: MachineOptions = {}): Promise<Machine> {
    const n = plan.cpus?.count;
    if (!Number.isInteger(n) || n < 1 || n > MAX_CPUS) {
      throw new RuntimeError(
        "E1006",
        `the Plan has ${n} vCPUs; vmdesc runs 1..${MAX_CPUS}`,
        `set \`cpus\` between 1 and ${MAX_CPUS}`,
      );
    }
    const inline = opts.vcpuThread === "caller" && n === 1;
    // Workers start first: their isolates and modules load while this thread builds the VM
    // and loads the payload (they wait for their init message).
    const workers: Worker[] = [];
    let vm: Vm;
    try {
      if (!inline) { for (let i = 0; i < n; i++) workers.push(spawnVcpuWorker()); }
      vm = await Vm.create(plan, opts);
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    const m = new Machine(vm, opts, workers);
    try {
      const baseDir = planBaseDir(plan, opts.baseDir);
      if (inline) {
        m.#buildInline();
        await bootVcpus(plan, vm, baseDir, opts);
        return m;
      }
      // The workers get their init now and build the device models while this thread
      // loads the payload: neither touches what the other writes (the models own the
      // shadow config pages, the loader RAM and registers; nothing runs before GO).
      m.#startWorkers();
      const ready = m.#ready;
      ready.catch(() => {}); // handled below; a rejection during boot() is not "unhandled"
      try {
        await bootVcpus(plan, vm, baseDir, opts);
      } catch (e) {
        // Let the workers finish with guest memory before close() releases it.
        await ready.catch(() => {});
        throw e;
      }
      await ready;
      return m;
    } catch (e) {
      m.close(); // terminates the workers too
      throw e;
    }
  }

  get plan(): Plan {
    return this.#vm.plan;
  }

  /** Guest memory (for tests and scripts that inspect the guest). */
  get memory() {
    return this.#vm.memory;
  }

  /** Sets the stop code and kicks every vCPU out of KVM_RUN. */
  #stop(code: number): void {
    const i = this.#ctl.i32;
    if (Atomics.compareExchange(i, STOP, 0, code) !== 0) return;
    Atomics.notify(i, MB_STATE);
    Atomics.store(i, GO, 1);
    Atomics.notify(i, GO);
    this.#kickAll();
  }

  /** Takes one vCPU out of KVM_RUN (or keeps it from entering): immediate_exit + a signal. */
  #kick(v: Vm["vcpus"][number]): void {
    v.runBytes[OFF_IMMEDIATE_EXIT] = 1;
    const tid = Atomics.load(this.#ctl.tids, v.index);
    if (tid !== 0n) host.pthreadKill(BigInt.asUintN(64, tid), host.KICK_SIGNAL);
  }

  #kickAll(): void {
    for (const v of this.#vm.vcpus) this.#kick(v);
  }

  /**
   * The stop sources both modes share: the caller's AbortSignal, and Ctrl-C/SIGTERM when
   * asked. Returns what removes them.
   */
  #listen(
    opts: RunOptions,
    stopFor: (code: number, reason: ExitReason, message: string) => void,
  ): (() => void)[] {
    const cleanups: (() => void)[] = [];
    if (opts.signal) {
      const onAbort = () => stopFor(StopCode.aborted, "aborted", "stopped by the caller");
      if (opts.signal.aborted) onAbort();
      else {
        opts.signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => opts.signal!.removeEventListener("abort", onAbort));
      }
    }
    if (opts.sigint) {
      const onInt = () => stopFor(StopCode.interrupted, "interrupted", "interrupted (Ctrl-C)");
      Deno.addSignalListener("SIGINT", onInt);
      cleanups.push(() => Deno.removeSignalListener("SIGINT", onInt));
      // SIGTERM (kill, `timeout`) ends the guest the same clean way, so the terminal is
      // restored and stats are written; status 143 as shells report it.
      const onTerm = () => stopFor(StopCode.interrupted, "terminated", "terminated (SIGTERM)");
      Deno.addSignalListener("SIGTERM", onTerm);
      cleanups.push(() => Deno.removeSignalListener("SIGTERM", onTerm));
    }
    return cleanups;
  }

  /** Runs the guest until it ends or is stopped. A machine runs once. */
  run(opts: RunOptions = {}): Promise<RunResult> {
    if (this.#closed) throw new Error("machine is closed");
    if (this.#ran) throw new Error("a machine runs once; create a new one");
    this.#ran = true;
    return this.#inline ? this.#runInline(opts) : this.#runWorkers(opts);
  }

  #runWorkers(opts: RunOptions): Promise<RunResult> {
    const n = this.#vm.vcpus.length;
    const outcomes: (LoopOutcome | null)[] = new Array(n).fill(null);
    const stats: WorkerStats[] = [];
    let first: LoopOutcome | null = null;
    let mainReason: { reason: ExitReason; message: string } | null = null;
    let done = 0;
    const t0 = performance.now();

    return new Promise<RunResult>((resolve) => {
      let finished = false;
      const cleanups: (() => void)[] = [];
      const finish = () => {
        if (finished) return;
        finished = true;
        this.#endRun = null;
        for (const c of cleanups) c();
        const merged = mergeStats(stats, performance.now() - t0);
        resolve(resultOf(this.#workerError, first, mainReason, merged));
      };

      this.#onMessage = (i, m) => {
        if (m.type === "done") {
          if (outcomes[i] !== null) return;
          outcomes[i] = m.outcome;
          stats.push(m.stats);
          if (m.outcome.reason !== "stopped" && first === null && mainReason === null) {
            first = m.outcome;
          }
          this.#stop(StopCode.machine);
          if (++done === n) finish();
        } else if (m.type === "error") {
          if (this.#workerError === null) {
            this.#workerError = { code: m.code, message: m.message, hint: m.hint };
          }
          if (outcomes[i] === null) {
            outcomes[i] = { reason: "host_error", message: m.message };
            this.#stop(StopCode.machine);
            if (++done === n) finish();
          }
        }
      };

      const stopFor = (code: number, reason: ExitReason, message: string) => {
        if (mainReason === null && first === null) mainReason = { reason, message };
        this.#stop(code);
      };
      // Start the vCPUs first: the listeners and the tick below cost this thread several ms
      // on first use (Deno loads its timer code lazily), and nothing they catch can happen
      // before this function returns (messages, signals and timers arrive as later events).
      Atomics.store(this.#ctl.i32, GO, 1);
      Atomics.notify(this.#ctl.i32, GO);
      if (opts.timeout !== undefined && opts.timeout > 0) {
        const t = setTimeout(
          () =>
            stopFor(
              StopCode.timeout,
              "timeout",
              `timeout: guest still running after ${opts.timeout} s`,
            ),
          opts.timeout * 1000,
        );
        cleanups.push(() => clearTimeout(t));
      }
      cleanups.push(...this.#listen(opts, stopFor));
      if (this.#opts.stdin) {
        const unsubscribe = this.#opts.stdin.subscribe((bytes) => {
          let off = 0;
          while (off < bytes.length) {
            const n = ringPush(this.#ctl, bytes.subarray(off));
            if (n === 0) break; // ring full: the guest is not reading; drop the rest
            off += n;
          }
          this.#kickBsp();
        });
        cleanups.push(unsubscribe);
      }
      // Periodic kick of vCPU 0 so buffered guest output gets flushed (~10 exits per second).
      const tick = setInterval(() => this.#kickBsp(), OUTPUT_TICK_MS);
      cleanups.push(() => clearInterval(tick));
      this.#endRun = () => {
        if (mainReason === null && first === null) {
          mainReason = { reason: "aborted", message: "machine closed while running" };
        }
        finish();
      };
    });
  }

  /** "caller" mode: vCPU 0's loop on this thread, in slices (see caller_thread.ts). */
  async #runInline(opts: RunOptions): Promise<RunResult> {
    const { set, loop } = this.#inline!;
    const t0 = performance.now();
    let mainReason: { reason: ExitReason; message: string } | null = null;
    const stopFor = (code: number, reason: ExitReason, message: string) => {
      if (mainReason === null) mainReason = { reason, message };
      this.#stop(code);
    };
    const cleanups = this.#listen(opts, stopFor);
    let input: PolledInput | null = null;
    const source = this.#opts.stdin;
    if (source?.openPolled) {
      const polled = source.openPolled();
      input = polled;
      cleanups.push(() => polled.close());
    } else if (source) {
      cleanups.push(source.subscribe((bytes) => set.deliver(bytes)));
    }
    let outcome: LoopOutcome | null = null;
    let hostError: HostFailure | null = null;
    try {
      const end = await runSlices({
        loop,
        input,
        deliver: (bytes) => set.deliver(bytes),
        deadline: opts.timeout !== undefined && opts.timeout > 0
          ? t0 + opts.timeout * 1000
          : Infinity,
        stopRequested: () => Atomics.load(this.#ctl.i32, STOP) !== 0,
        closed: () => this.#closed,
      });
      if (end.kind === "outcome") outcome = end.outcome;
      else if (end.kind === "timeout") {
        stopFor(
          StopCode.timeout,
          "timeout",
          `timeout: guest still running after ${opts.timeout} s`,
        );
      } else if (end.kind === "closed" && mainReason === null) {
        mainReason = { reason: "aborted", message: "machine closed while running" };
      }
    } catch (e) {
      hostError = failureOf(e);
    } finally {
      for (const c of cleanups) c();
    }
    const devices = set.stats(loop);
    set.close(); // flushes what the models still hold
    const first = outcome !== null && outcome.reason !== "stopped" && mainReason === null
      ? outcome
      : null;
    const stats = mergeStats([loop.workerStats(devices)], performance.now() - t0);
    return resultOf(hostError, first, mainReason, stats);
  }

  #kickBsp(): void {
    this.#kick(this.#vm.vcpus[0]);
  }

  /** Stops the vCPUs if still running, ends the workers, releases the VM. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop(StopCode.aborted);
    // Wait (briefly) until every worker that could be inside KVM_RUN has left it, so no
    // thread touches kvm_run pages, guest memory or fds after they are released below.
    // ("caller" mode: this thread is not in KVM_RUN while this runs.)
    const i = this.#ctl.i32;
    const deadline = performance.now() + 2000;
    for (;;) {
      const exited = Atomics.load(i, EXITED);
      if (exited >= Atomics.load(i, READY) || performance.now() > deadline) break;
      this.#kickAll();
      Atomics.wait(i, EXITED, exited, 5);
    }
    for (const w of this.#workers) w.terminate();
    this.#endRun?.();
    this.#inline?.set.close();
    this.#vm.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
