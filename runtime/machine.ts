/**
 * A machine: the VM built from a Plan, its boot payload loaded, its vCPU threads, and its
 * lifecycle (created → running ⇄ paused → stopping → exited; lifecycle.ts draws it).
 *
 * The Machine owns what both ways of running vCPUs share: the states and their
 * transitions, the REQUEST word every vCPU thread obeys (threads/control.ts), the stop
 * sources (AbortSignal, Ctrl-C, SIGTERM, close()), and turning how the vCPUs ended into one
 * RunResult. Where the vCPU threads live is a driver's business (threads/driver.ts): one
 * Worker per vCPU, or, with `vcpuThread: "caller"` and one vCPU, the caller's thread.
 *
 * Stopping (works even for a guest spinning without exits): REQUEST becomes stop, then
 * every vCPU is kicked: `immediate_exit = 1` in its kvm_run page and SIGUSR2 to its thread
 * (pthread_kill). A no-op SIGUSR2 listener is installed with the first machine (and kept),
 * so the signal only interrupts KVM_RUN (EINTR) instead of killing the process (not
 * SIGUSR1: Deno opens its inspector on that one); immediate_exit covers the window where
 * the signal lands just before the thread re-enters KVM_RUN. Pausing is the same with
 * REQUEST pause: each thread parks and says so in its state word.
 *
 * Why one file of ~660 lines: the Machine class is the one owner of a machine's life, and
 * every method reads and moves the same private state (the state, how it ended, a pause in
 * progress, the held guest clocks, the times); split across modules, that state would be
 * shared and mutable from several places. What needs none of it is elsewhere: the states
 * and transitions (lifecycle.ts), events (events.ts), the vCPU threads and their drivers
 * (threads/), statistics (stats.ts), the run loop (run_loop.ts).
 */
import type { Plan } from "../plan/types.ts";
import { MAX_CPUS } from "../plan/limits.ts";
import * as host from "./host/libc.ts";
import { KVM_MP_STATE_RUNNABLE } from "./kvm/abi.ts";
import { Vm, type VmOptions } from "./kvm/vm.ts";
import { boot } from "./boot/mod.ts";
import type { LoopOutcome } from "./run_loop.ts";
import {
  EXIT_STATUS,
  type ExitReason,
  type HostFailure,
  RuntimeError,
  statusFor,
} from "./errors.ts";
import {
  type DeviceStats,
  liveStats,
  mergeStats,
  type RunStats,
  type WorkerStats,
} from "./stats.ts";
import type { InputSource } from "./devices/device.ts";
import {
  machineCanMove,
  type MachineState,
  StateError,
  VCPU_STATE_NAMES,
  VcpuRequest,
  VcpuState,
} from "./lifecycle.ts";
import {
  allVcpusIn,
  type Control,
  createControl,
  request,
  setRequest,
  vcpuState,
  viewControl,
} from "./threads/control.ts";
import type { DriverEnd, VcpuDriver } from "./threads/driver.ts";
import type { CallAnswer } from "./threads/vcpu_thread.ts";
import { CallerDriver } from "./threads/caller_driver.ts";
import { GuestClock, type HeldTime, type TimeRelease } from "./kvm/guest_time.ts";
import { type DiskInfo, openDiskImages, type OpenDisks } from "./io/disk_images.ts";
import { stdinOwner } from "./io/consoles.ts";

export interface MachineOptions extends VmOptions {
  /** Directory relative payload paths are resolved against (default: the Plan's source dir, else cwd). */
  baseDir?: string;
  /** Guest text output (serial TX), by device id. Default: discarded. */
  output?: (deviceId: string, bytes: Uint8Array) => void;
  /** Warnings about guest behaviour (unassigned MMIO, writes to read-only memory). Default: stderr. */
  warn?: (message: string) => void;
  /** Bytes for the guest's first serial port (or `stdinDevice`), e.g. stdinInput(). */
  stdin?: InputSource | null;
  /** Device id that receives `stdin`; default: the console the Plan gives it to. */
  stdinDevice?: string;
  /**
   * Console device ids whose output is shown on a terminal: a virtio console among them
   * offers the terminal's size (VIRTIO_CONSOLE_F_SIZE). Default: none.
   */
  terminals?: readonly string[];
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
  /**
   * Stop after the guest has run this many seconds (reason "timeout", status 6). Time
   * paused does not count: the guest's clocks stand still then too (kvm/guest_time.ts).
   */
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

/** A move of the machine's state, as listeners hear it. */
export interface StateChange {
  from: MachineState;
  to: MachineState;
}

const noop = () => {};
/** How long live stats wait for vCPU 0 to hand over its models' counters. */
const DEVICE_STATS_WAIT_MS = 1000;
/**
 * How long a disk swap waits for vCPU 0 (parked: it answers at once). Past it the new
 * image stays open with the old one until the machine closes, since vCPU 0 may still
 * take it.
 */
const DISK_SWAP_WAIT_MS = 5000;
/** How old the models' counters in live stats may be (the exit counters are always live). */
const DEVICE_STATS_FRESH_MS = 20;

/** How a run is ending: the first of these decides the result. */
interface Ending {
  /** A host failure on any vCPU thread. */
  failure: HostFailure | null;
  /** The first vCPU outcome that is the guest's own (not "stopped"). */
  guest: LoopOutcome | null;
  /** A stop the machine's side asked for (timeout, signal, close) before the guest ended. */
  stop: { reason: ExitReason; message: string } | null;
  stats: WorkerStats[];
}

/** The result of a run from how it ended. */
function resultOf(e: Ending, stats: RunStats): RunResult {
  if (e.failure) {
    return {
      reason: "host_error",
      exitStatus: EXIT_STATUS.hostError,
      message: e.failure.message,
      code: e.failure.code ?? undefined,
      hint: e.failure.hint,
      stats,
    };
  }
  if (e.guest) {
    const reason = e.guest.reason as ExitReason;
    return {
      reason,
      exitStatus: e.guest.success ? EXIT_STATUS.ok : statusFor(reason, e.guest.value ?? 0),
      message: e.guest.message,
      dump: e.guest.dump,
      debugValue: e.guest.value,
      stats,
    };
  }
  const r = e.stop ?? { reason: "aborted" as const, message: "stopped" };
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

const CF9_PORT = 0xcf9;

/** The device through which a machine built from `plan` can be reset, or null. */
export function resetPath(plan: Plan): string | null {
  for (const d of plan.devices) {
    if (d.kind === "i8042") return d.id;
    if (d.kind === "pci_host") {
      // The model decodes CF8..CFF when its entry lists no ports.
      const ports = d.ports.length > 0 ? d.ports : [{ base: 0xcf8, size: 8 }];
      if (ports.some((r) => r.base <= CF9_PORT && CF9_PORT < r.base + r.size)) return d.id;
    }
  }
  return null;
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
  readonly #driver: VcpuDriver;
  readonly #opts: MachineOptions;
  /** Block devices' images, opened before the VM (closed after the models). */
  readonly #disks: OpenDisks;
  #state: MachineState = "created";
  readonly #listeners = new Set<(change: StateChange) => void>();
  #closed = false;
  /** The run in progress: how it is ending so far. */
  #ending: Ending | null = null;
  /** A pause() waiting for every vCPU to park; `settle` looks again. */
  #pausing: { promise: Promise<void>; settle: () => void } | null = null;
  /** The guest's clocks, held while paused (kvm/guest_time.ts). */
  readonly #clock: GuestClock;
  #held: HeldTime | null = null;
  #timeRelease: TimeRelease | null = null;
  /** performance.now() when run() began, when the current pause began, time paused. */
  #startedAt: number | null = null;
  /** Date.now() when run() began. */
  #startedWall = 0;
  #pausedAt: number | null = null;
  #pausedMs = 0;
  /** performance.now() when the machine reached `exited` after a run. */
  #endedAt: number | null = null;
  /** Each vCPU's counters (shared memory its thread keeps), once it is ready. */
  readonly #counters: (SharedArrayBuffer | undefined)[] = [];
  /** How the run ended, once it has. */
  #result: RunResult | null = null;
  /** The last device-stats call (in flight or answered), which stats() callers share. */
  #deviceStats: { at: number; answer: Promise<CallAnswer> } | null = null;

  private constructor(vm: Vm, driver: VcpuDriver, opts: MachineOptions, disks: OpenDisks) {
    this.#vm = vm;
    this.#driver = driver;
    this.#opts = opts;
    this.#disks = disks;
    this.#ctl = viewControl(createControl());
    this.#clock = new GuestClock(vm.vmFd, vm.vcpus.map((v) => v.fd));
    installKickHandler();
  }

  #warn(message: string): void {
    (this.#opts.warn ?? ((s: string) => console.error(`vmdesc: warning: ${s}`)))(message);
  }

  /**
   * The device that gets stdin: `stdinDevice`, else the console the Plan gives it to
   * (io/consoles.ts); null without stdin.
   */
  get #stdinDevice(): string | null {
    const o = this.#opts;
    return o.stdin ? (o.stdinDevice ?? stdinOwner(this.#vm.plan)) : null;
  }

  /**
   * Builds the VM, loads the payload, and readies the vCPU threads (parked at the start
   * gate until run()): the machine is `created`.
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
    if (opts.stdin && opts.stdinDevice === undefined) stdinOwner(plan); // E1050 before anything exists
    // Workers are spawned first: their isolates and modules load while this thread builds
    // the VM and loads the payload (they wait for attach()). The worker driver's module
    // loads only for them (`vmdesc boot` runs on the caller's thread and never needs it).
    // Disk images first: one that cannot be opened is E1018 before anything else exists.
    const disks = openDiskImages(
      plan,
      planBaseDir(plan, opts.baseDir),
      opts.warn ?? ((s) => console.error(`vmdesc: warning: ${s}`)),
    );
    let driver: VcpuDriver | null = null;
    let vm: Vm;
    try {
      driver = opts.vcpuThread === "caller" && n === 1
        ? new CallerDriver()
        : (await import("./threads/worker_driver.ts")).WorkerDriver.spawn(n);
      vm = await Vm.create(plan, opts);
    } catch (e) {
      driver?.close();
      disks.close();
      throw e;
    }
    const m = new Machine(vm, driver, opts, disks);
    try {
      // The vCPU threads build their state (vCPU 0: the device models) while this thread
      // loads the payload: neither touches what the other writes (the models own the
      // shadow config pages, the loader RAM and registers; nothing runs before run()).
      const ready = driver.attach({
        vm,
        ctl: m.#ctl,
        routes: {
          output: opts.output ?? noop,
          warn: (s) => m.#warn(s),
          state: () => m.#pausing?.settle(),
          counters: (i, buffer) => m.#counters[i] = buffer,
        },
        stdinDevice: m.#stdinDevice,
        disks: disks.images,
        terminals: opts.terminals,
      });
      ready.catch(() => {}); // handled below; a rejection during boot() is not "unhandled"
      try {
        await bootVcpus(plan, vm, planBaseDir(plan, opts.baseDir), opts);
      } catch (e) {
        // Let the threads finish with guest memory before close() releases it.
        await ready.catch(() => {});
        throw e;
      }
      await ready;
      return m;
    } catch (e) {
      m.close(); // ends the vCPU threads too
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

  /** Where the machine is in its life (lifecycle.ts). */
  get state(): MachineState {
    return this.#state;
  }

  /** Each vCPU thread's state: "starting", "ready", "running", "paused" or "exited". */
  get vcpuStates(): string[] {
    return this.#vm.vcpus.map((v) => VCPU_STATE_NAMES[vcpuState(this.#ctl, v.index)]);
  }

  /** Calls `listener` at every state change; returns what removes it. */
  onStateChange(listener: (change: StateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #move(to: MachineState): void {
    const from = this.#state;
    if (from === to) return;
    if (!machineCanMove(from, to)) {
      throw new Error(`vmdesc bug: machine state ${from} → ${to} is not in the diagram`);
    }
    this.#state = to;
    for (const l of [...this.#listeners]) {
      try {
        l({ from, to });
      } catch {
        // a listener failing must not break the lifecycle
      }
    }
  }

  /** Asks every vCPU thread to stop for good (first caller's reason wins). */
  #stop(reason?: { reason: ExitReason; message: string }): void {
    const e = this.#ending;
    if (e && reason && e.stop === null && e.guest === null && e.failure === null) e.stop = reason;
    if (setRequest(this.#ctl, VcpuRequest.stop)) this.#driver.requestChanged();
    if (this.#state === "running" || this.#state === "paused") this.#move("stopping");
    this.#pausing?.settle();
  }

  /** A vCPU thread ended: the first guest outcome or failure ends the whole machine. */
  #onEnd(e: Ending, end: DriverEnd): void {
    if (end.kind === "failed") {
      e.failure ??= end.failure;
    } else {
      e.stats.push(end.stats);
      if (end.outcome.reason !== "stopped" && e.guest === null && e.stop === null) {
        e.guest = end.outcome;
      }
    }
    this.#stop();
  }

  /**
   * The stop sources the caller asked for: the AbortSignal, and Ctrl-C/SIGTERM. Returns
   * what removes them.
   */
  #listen(opts: RunOptions): (() => void)[] {
    const cleanups: (() => void)[] = [];
    if (opts.signal) {
      const onAbort = () => this.#stop({ reason: "aborted", message: "stopped by the caller" });
      if (opts.signal.aborted) onAbort();
      else {
        opts.signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => opts.signal!.removeEventListener("abort", onAbort));
      }
    }
    if (opts.sigint) {
      const onInt = () => this.#stop({ reason: "interrupted", message: "interrupted (Ctrl-C)" });
      Deno.addSignalListener("SIGINT", onInt);
      cleanups.push(() => Deno.removeSignalListener("SIGINT", onInt));
      // SIGTERM (kill, `timeout`) ends the guest the same clean way, so the terminal is
      // restored and stats are written; status 143 as shells report it.
      const onTerm = () => this.#stop({ reason: "terminated", message: "terminated (SIGTERM)" });
      Deno.addSignalListener("SIGTERM", onTerm);
      cleanups.push(() => Deno.removeSignalListener("SIGTERM", onTerm));
    }
    return cleanups;
  }

  /** Runs the guest until it ends or is stopped: created → running → … → exited. Once. */
  run(opts: RunOptions = {}): Promise<RunResult> {
    if (this.#closed) throw new StateError("run", this.#state, "machine is closed");
    if (this.#state !== "created") {
      throw new StateError("run", this.#state, "a machine runs once; create a new one");
    }
    return this.#run(opts);
  }

  async #run(opts: RunOptions): Promise<RunResult> {
    const ending: Ending = this.#ending = { failure: null, guest: null, stop: null, stats: [] };
    const t0 = this.#startedAt = performance.now();
    this.#startedWall = Date.now();
    const timeout = opts.timeout !== undefined && opts.timeout > 0 ? opts.timeout : undefined;
    this.#move("running");
    // The workers start here (they wait on REQUEST); the listeners below cost this thread
    // several ms on first use, and nothing they catch can happen before this function
    // awaits (signals and timers arrive as later events). The caller's-thread driver
    // starts its vCPU only in run() below, after them.
    setRequest(this.#ctl, VcpuRequest.run);
    const cleanups = this.#listen(opts);
    try {
      await this.#driver.run({
        stdin: this.#opts.stdin ?? null,
        deadline: () =>
          timeout === undefined || this.#pausedAt !== null
            ? Infinity
            : t0 + timeout * 1000 + this.#pausedMs,
        onDeadline: () =>
          this.#stop({
            reason: "timeout",
            message: `timeout: guest still running after ${opts.timeout} s`,
          }),
        onEnd: (_i, end) => this.#onEnd(ending, end),
        closed: () => this.#closed,
      });
    } finally {
      for (const c of cleanups) c();
    }
    this.#stop();
    const end = this.#endedAt = performance.now();
    if (this.#pausedAt !== null) this.#pausedMs += end - this.#pausedAt;
    this.#pausedAt = null;
    const result = this.#result = resultOf(ending, mergeStats(ending.stats, end - t0));
    this.#move("exited");
    return result;
  }

  /**
   * running → paused: every vCPU out of KVM_RUN and parked (device models idle, output
   * they held flushed). Resolves once all are parked; rejects with StateError when the
   * machine is not running, or stops before every vCPU parked.
   */
  pause(): Promise<void> {
    if (this.#pausing) return this.#pausing.promise;
    if (this.#state !== "running") return Promise.reject(new StateError("pause", this.#state));
    const n = this.#vm.vcpus.length;
    const parked = [VcpuState.paused, VcpuState.exited] as const;
    let settle = noop;
    const promise = new Promise<void>((resolve, reject) => {
      // Called at every vCPU state change the driver hears of, and at a stop.
      settle = () => {
        if (this.#state !== "running" || request(this.#ctl) !== VcpuRequest.pause) {
          this.#pausing = null;
          reject(new StateError("pause", this.#state, "the machine stopped while pausing"));
        } else if (allVcpusIn(this.#ctl, n, parked)) {
          this.#pausing = null;
          this.#pausedAt = performance.now();
          this.#holdTime();
          this.#move("paused");
          resolve();
        }
      };
    });
    this.#pausing = { promise, settle };
    setRequest(this.#ctl, VcpuRequest.pause);
    this.#driver.requestChanged();
    settle();
    return promise;
  }

  /** paused → running: every parked vCPU re-enters KVM_RUN. StateError when not paused. */
  resume(): Promise<void> {
    if (this.#state !== "paused") return Promise.reject(new StateError("resume", this.#state));
    this.#releaseTime();
    if (this.#pausedAt !== null) this.#pausedMs += performance.now() - this.#pausedAt;
    this.#pausedAt = null;
    this.#move("running");
    setRequest(this.#ctl, VcpuRequest.run);
    this.#driver.requestChanged();
    return Promise.resolve();
  }

  /** Every vCPU is parked: the guest's clocks as they are now, to be put back at resume. */
  #holdTime(): void {
    try {
      this.#held = this.#clock.hold();
    } catch (e) {
      this.#held = null;
      this.#warn(`cannot read the guest's clocks at the pause: ${(e as Error).message}`);
    }
  }

  /** The guest's clocks go on from where the pause found them (vCPUs still parked). */
  #releaseTime(): void {
    const held = this.#held;
    this.#held = null;
    if (held === null) return;
    try {
      const r = this.#clock.release(held);
      if (r.tscHeld === false && this.#timeRelease?.tscHeld !== false) {
        this.#warn(
          "this host's KVM ignores TSC offsets: the guest's TSC ran on while paused " +
            "(its kvmclock was held)",
        );
      }
      this.#timeRelease = {
        kvmclockHeld: r.kvmclockHeld,
        tscHeld: r.tscHeld ?? this.#timeRelease?.tscHeld ?? null,
      };
    } catch (e) {
      this.#warn(`cannot hold the guest's clocks across the pause: ${(e as Error).message}`);
    }
  }

  /**
   * When run() began (`startedAt`, ms since the epoch), the time since then (until the
   * end, once exited) and how much of it the machine spent paused (ms); null before run().
   */
  get times(): { startedAt: number; uptimeMs: number; pausedMs: number } | null {
    if (this.#startedAt === null) return null;
    const now = this.#endedAt ?? performance.now();
    const paused = this.#pausedMs + (this.#pausedAt === null ? 0 : now - this.#pausedAt);
    return { startedAt: this.#startedWall, uptimeMs: now - this.#startedAt, pausedMs: paused };
  }

  /** How the run ended: null until the machine is `exited` after run(). */
  get result(): RunResult | null {
    return this.#result;
  }

  /**
   * The run's numbers so far: live while the machine runs or is paused (the vCPUs'
   * shared counters plus vCPU 0's models, asked for theirs), the final ones once it has
   * exited, zeros before it ran.
   */
  async stats(): Promise<RunStats> {
    if (this.#result) return this.#result.stats;
    // Callers asking at the same time share one call, and an answer younger than
    // DEVICE_STATS_FRESH_MS is reused: however fast clients ask, vCPU 0 is taken out of
    // KVM_RUN for the models' counters at most ~50 times a second.
    const fresh = this.#deviceStats &&
      performance.now() - this.#deviceStats.at < DEVICE_STATS_FRESH_MS;
    if (!this.#closed && !fresh) {
      const at = performance.now();
      const answer = this.#driver.call({ op: "device-stats" }, DEVICE_STATS_WAIT_MS);
      this.#deviceStats = { at, answer };
    }
    const answer = this.#closed ? null : await this.#deviceStats!.answer;
    const ended = this.result; // the run may have ended meanwhile
    if (ended) return ended.stats;
    const devices = answer?.ok ? answer.value as DeviceStats[] : null;
    const wall = this.times?.uptimeMs ?? 0;
    return liveStats(this.#counters, devices, this.#vm.plan.devices, wall);
  }

  /** What the last resume managed to hold of the guest's clocks (null before one). */
  get guestTime(): TimeRelease | null {
    return this.#timeRelease;
  }

  /** The machine's disks as they are now (after any swap). */
  get disks(): DiskInfo[] {
    return this.#disks.list();
  }

  /** Swaps run one at a time (each waits for vCPU 0's answer). */
  #swapping: Promise<unknown> = Promise.resolve();

  /**
   * Disk `id` (a virtio_blk device's name or its PCI function's BDF) takes the image at
   * `path` (absolute; `readonly` defaults to the disk's mode now), while the machine is
   * paused, as Firecracker's PATCH /drives does: the new image is opened and checked
   * first (E1018: a bad one leaves the old in place), vCPU 0 hands it to the device, which
   * takes its capacity and raises a configuration change, then the old one is closed.
   * E1071 unless paused, E1070 for no such disk, E1072 for a writable image on a disk
   * built read-only, E1073 when the device did not take it.
   */
  swapDisk(id: string, opts: { path: string; readonly?: boolean }): Promise<DiskInfo> {
    const next = this.#swapping.then(() => this.#swapDiskNow(id, opts));
    this.#swapping = next.catch(() => {});
    return next;
  }

  async #swapDiskNow(id: string, opts: { path: string; readonly?: boolean }): Promise<DiskInfo> {
    if (this.#state !== "paused" || this.#closed) {
      throw new RuntimeError(
        "E1071",
        `cannot swap disk '${id}': the machine is ${this.#state}`,
        this.#state === "running"
          ? "pause it first (`vmdesc ctl NAME pause`), swap, then resume it"
          : "a disk is swapped while the machine is paused",
      );
    }
    const prepared = this.#disks.prepareSwap(id, opts.path, opts.readonly);
    const answer = await this.#driver.call(
      { op: "disk-swap", args: { id, image: prepared.image } },
      DISK_SWAP_WAIT_MS,
    );
    if (!answer.ok) {
      // No answer in time: vCPU 0 may take it yet, so both images stay open until the
      // machine closes. Any other refusal: the device kept its image.
      if (!answer.timedOut) prepared.abandon();
      throw new RuntimeError(
        "E1073",
        `disk '${id}' did not take ${opts.path}: ${answer.error}`,
        "the disk keeps its image; the machine may have stopped meanwhile",
      );
    }
    return prepared.commit();
  }

  /**
   * Ends the run cleanly on request: the vCPUs leave KVM_RUN, the models flush what they
   * hold, and run() resolves with reason "stopped" (status 0). StateError unless the
   * machine is running or paused; a machine already stopping is left to finish.
   */
  stop(): void {
    if (this.#state === "stopping") return;
    if (this.#state !== "running" && this.#state !== "paused") {
      throw new StateError("stop", this.#state);
    }
    this.#stop({ reason: "stopped", message: "stopped on request" });
  }

  /**
   * The device whose reset line ends the machine (an i8042, a pci_host decoding port
   * 0xcf9), or null when the Plan has none.
   */
  get resetPath(): string | null {
    return resetPath(this.#vm.plan);
  }

  /**
   * Presses the machine's reset line from outside: the run ends as when the guest resets
   * it (reason "reset", status 0; vmdesc does not reboot in place). StateError when the
   * machine has no reset path, or is not running or paused.
   */
  reset(): void {
    const path = this.resetPath;
    if (path === null) {
      throw new StateError("reset", this.#state, "this machine has no reset path");
    }
    if (this.#state !== "running" && this.#state !== "paused") {
      throw new StateError("reset", this.#state);
    }
    this.#stop({ reason: "reset", message: `reset on request (${path})` });
  }

  /** Stops the vCPUs if still running, ends their threads, releases the VM. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop({ reason: "aborted", message: "machine closed while running" });
    this.#driver.close(); // returns once no vCPU thread can touch the VM
    if (this.#state === "created") this.#move("exited");
    this.#vm.close();
    this.#disks.close(); // after the models, which synced what the guest wrote
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
