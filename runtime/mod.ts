/**
 * The runtime's front door: the one way to run a Plan, for people who script VMs in
 * TypeScript and for `vmdesc boot` alike.
 *
 * ```ts
 * import { createMachine } from "./runtime/mod.ts";
 * using m = await createMachine(plan);            // a Plan object (from lang's compile() or JSON)
 * const text = new Response(m.serial).text();     // guest serial output as a stream
 * const r = await m.run({ timeout: 10 });         // { reason, exitStatus, message, stats }
 * ```
 *
 * What it does for every caller: checks a Plan from outside the compiler against the
 * schema (E1006), routes each console's output (serial ports, virtio consoles: the
 * caller's sink, the process's stdout/stderr, a file or nowhere, as the Plan says), feeds
 * stdin to the console the Plan gives it to (io/consoles.ts), reports every failure before the guest starts as a RuntimeError with a code, and
 * keeps a progress display (hooks) out of the way of the guest's text and vmdesc's
 * warnings. The machine it returns has the lifecycle of runtime/lifecycle.ts: run(),
 * pause(), resume(), stop(), reset(), close(), `state`; live `stats()`; and `events()`,
 * its state changes, warnings and exit as they happen (events.ts). A control API serves
 * exactly this object (api/server.ts).
 *
 * `runtime/` only ever sees Plans; compiling `.vmdesc` text lives in the root `mod.ts`
 * (compileText / compileFile), which joins `lang/` and this module.
 */
import type { Plan } from "../plan/types.ts";
import {
  Machine,
  type MachineOptions,
  planBaseDir,
  type RunOptions,
  type RunResult,
  type StateChange,
} from "./machine.ts";
import type { MachineState } from "./lifecycle.ts";
import { EventHub, type EventReader } from "./events.ts";
import type { RunStats } from "./stats.ts";
import type { TimeRelease } from "./kvm/guest_time.ts";
import type { DiskInfo } from "./io/disk_images.ts";
import { openSerialOutputs, type Sink, streamSink } from "./io/serial_outputs.ts";
import { stdinInput } from "./io/stdin.ts";
import { stdinOwner } from "./io/consoles.ts";
import type { InputSource } from "./devices/device.ts";
import { type RuntimeCode, RuntimeError } from "./errors.ts";

export type { Plan } from "../plan/types.ts";
export type { MachineOptions, RunOptions, RunResult, StateChange } from "./machine.ts";
export type { RunStats } from "./stats.ts";
export { formatStats } from "./stats.ts";
export {
  debugExitStatus,
  EXIT_STATUS,
  EXIT_STATUS_HELP,
  type ExitReason,
  RuntimeError,
} from "./errors.ts";
export { Machine } from "./machine.ts";
export { type MachineState, StateError } from "./lifecycle.ts";
export type { EventReader, MachineEvent } from "./events.ts";
export type { TimeRelease } from "./kvm/guest_time.ts";
export type { DiskInfo } from "./io/disk_images.ts";
export type { InputSource, PolledInput } from "./devices/device.ts";

/**
 * A progress display the front door keeps out of the way (`vmdesc boot`'s progress line
 * on a terminal, cli/progress.ts).
 */
export interface ProgressHooks {
  /** The guest starts running. */
  start(): void;
  /** A piece of guest serial output, from any device, before it is written anywhere. */
  output(bytes: Uint8Array): void;
  /** Something is about to be written to the process's stderr: off the screen for now. */
  clear(): void;
  /** The run ended, or input reached the guest (an interactive guest needs no progress). */
  stop(): void;
}

export interface CreateMachineOptions {
  /**
   * Where guest serial output goes: a callback, a WritableStream, "stdio" (the process's
   * stdout and stderr, as `vmdesc boot` does), or nothing — then read it from
   * `machine.serial`. A serial device whose Plan entry says `output` "null" or a file
   * writes there instead; "stdout" and "stderr" mean this sink (with "stdio": those
   * streams).
   */
  serial?: ((bytes: Uint8Array, deviceId: string) => void) | WritableStream<Uint8Array> | "stdio";
  /**
   * Bytes for the console that takes stdin (the Plan's `props.input` "stdin"; by default
   * the first serial port): a stream, a string, an InputSource, or "stdio" (the process's
   * stdin; a terminal is put in raw mode while the guest runs, and only a machine with
   * such a console reads it).
   */
  stdin?: ReadableStream<Uint8Array> | string | Uint8Array | InputSource | "stdio";
  /**
   * Warnings about the guest (unassigned MMIO, writes to read-only memory). Default:
   * "vmdesc: warning: …" on stderr.
   */
  warn?: (message: string) => void;
  /** Directory relative payload paths resolve against (default: the Plan's source dir, else cwd). */
  baseDir?: string;
  /**
   * "worker" (default) or "caller": run a 1-vCPU machine's loop on the thread that calls
   * run() (faster start; this thread's event loop then turns only every 100 ms while
   * the guest runs). See MachineOptions.vcpuThread.
   */
  vcpuThread?: MachineOptions["vcpuThread"];
  /** A progress display to keep out of the way of the guest's output and vmdesc's own. */
  progress?: ProgressHooks;
  /**
   * The Plan was lowered by lang's compile() in this process and not changed since: it is
   * not checked against the schema again (the compiler's tests hold every lowered Plan to
   * it), which saves loading the validator (~70 ms here). Any other Plan (JSON, written by
   * hand, edited after compiling) is checked, and refused with E1006 naming the problems.
   */
  fromCompiler?: boolean;
  /** How messages about the Plan name it, e.g. its file ("plan.json is not a valid Plan"). */
  planName?: string;
}

export interface VmdescMachine extends Disposable {
  readonly plan: Plan;
  /** Serial output when no `serial` sink was given; ends when the run ends. */
  readonly serial: ReadableStream<Uint8Array>;
  /** Where the machine is in its life (runtime/lifecycle.ts). */
  readonly state: MachineState;
  /** Each vCPU thread's state ("ready", "running", "paused", "exited", ...). */
  readonly vcpuStates: string[];
  /**
   * When run() began (ms since the epoch), the time since (frozen at the end) and how much
   * of it was paused (ms); null before run().
   */
  readonly times: { startedAt: number; uptimeMs: number; pausedMs: number } | null;
  /** How the run ended; null until the machine has exited after run(). */
  readonly result: RunResult | null;
  /** What the last resume held of the guest's clocks (kvmclock, TSC); null before one. */
  readonly guestTime: TimeRelease | null;
  /** The device whose reset line reset() presses, or null: the machine has none. */
  readonly resetPath: string | null;
  run(opts?: RunOptions): Promise<RunResult>;
  /**
   * Every vCPU out of KVM_RUN and parked, the guest's clocks held; StateError unless
   * running.
   */
  pause(): Promise<void>;
  /** Back to running, the guest's clocks going on from the pause; StateError unless paused. */
  resume(): Promise<void>;
  /**
   * Ends the run cleanly (run() resolves with reason "stopped", status 0); StateError
   * unless running or paused.
   */
  stop(): void;
  /**
   * The run ends as when the guest resets the machine (reason "reset", status 0);
   * StateError without a reset path, or unless running or paused.
   */
  reset(): void;
  /** The numbers so far: live while running or paused, final once exited. */
  stats(): Promise<RunStats>;
  /** The block devices' images as they are now (after any swap). */
  readonly disks: DiskInfo[];
  /**
   * While paused, disk `id` (a virtio_blk device's name or PCI function's BDF) takes the
   * image at `path` (absolute): opened and checked first (E1018; a bad one leaves the old
   * in place), handed to the device, which takes its capacity and raises a configuration
   * change; then the old image is closed. E1071 unless paused, E1070 no such disk, E1072 a
   * writable image for a disk built read-only, E1073 the device did not take it.
   */
  swapDisk(id: string, opts: { path: string; readonly?: boolean }): Promise<DiskInfo>;
  /**
   * The machine's events from now on (state changes, warnings, the exit), ending after
   * the last one; a reader that falls behind is told what it missed (events.ts).
   */
  events(): EventReader;
  /** Calls `listener` at every state change; returns what removes it. */
  onStateChange(listener: (change: StateChange) => void): () => void;
  /** Idempotent. */
  close(): void;
}

const toStderr = streamSink(Deno.stderr);
const encoder = new TextEncoder();

/** The consoles whose output reaches a terminal through the process's stdout or stderr. */
function terminalConsoles(targets: ReadonlyMap<string, string>): string[] {
  const tty = {
    stdout: Deno.stdout.isTerminal(),
    stderr: Deno.stderr.isTerminal(),
  } as Record<string, boolean>;
  return [...targets].filter(([, target]) => tty[target] === true).map(([id]) => id);
}

function toInput(src: Exclude<CreateMachineOptions["stdin"], "stdio">): InputSource | null {
  if (src === undefined) return null;
  if (typeof src === "object" && "subscribe" in src) return src;
  return {
    subscribe(onData) {
      let stopped = false;
      if (typeof src === "string" || src instanceof Uint8Array) {
        const bytes = typeof src === "string" ? encoder.encode(src) : src;
        queueMicrotask(() => !stopped && onData(bytes));
        return () => stopped = true;
      }
      const reader = src.getReader();
      (async () => {
        try {
          while (!stopped) {
            const { value, done } = await reader.read();
            if (done) break;
            if (value && !stopped) onData(value);
          }
        } catch {
          // the stream failed: no more input
        }
      })();
      return () => {
        stopped = true;
        reader.cancel().catch(() => {});
      };
    },
  };
}

/** The same source, calling `seen` whenever bytes come out of it (subscribed or polled). */
function watched(src: InputSource, seen: () => void): InputSource {
  const polled = src.openPolled;
  return {
    subscribe: (onData) =>
      src.subscribe((bytes) => {
        seen();
        onData(bytes);
      }),
    ...(polled
      ? {
        openPolled() {
          const p = polled.call(src);
          return {
            read() {
              const bytes = p.read();
              if (bytes) seen();
              return bytes;
            },
            close: () => p.close(),
          };
        },
      }
      : {}),
  };
}

/** A Plan from outside the compiler, checked against plan/schema.json (E1006 if not). */
async function checkPlan(plan: unknown, name: string): Promise<void> {
  if ((plan as { version?: unknown } | null)?.version !== 1) {
    throw new RuntimeError(
      "E1006",
      `${name} is not a version 1 Plan`,
      "write it with 'vmdesc plan --json'",
    );
  }
  // Loaded only here: ajv and the compiled schema cost ~70 ms, which compiled Plans skip.
  const problems = (await import("../plan/validate.ts")).planSchemaErrors(plan);
  if (problems.length > 0) {
    const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : "";
    throw new RuntimeError(
      "E1006",
      `${name} is not a valid Plan: ${problems.slice(0, 3).join("; ")}${more}`,
      "write it with 'vmdesc plan --json', or fix the fields named (plan/schema.json)",
    );
  }
}

/**
 * A failure before the guest starts, as the RuntimeError it stands for: one with an E1xxx
 * code (from a worker, say) becomes a RuntimeError; anything else is a bug and is left as is.
 */
function asRuntimeError(e: unknown): unknown {
  if (e instanceof RuntimeError) return e;
  const c = e as { code?: unknown; message?: string; hint?: string | null } | null;
  if (typeof c?.code === "string" && /^E1\d{3}$/.test(c.code)) {
    return new RuntimeError(c.code as RuntimeCode, c.message ?? String(e), c.hint ?? null);
  }
  return e;
}

/**
 * Builds a machine from a Plan: Plan checked, outputs opened, VM created, payload loaded,
 * vCPU threads parked (`created`). Every failure is a RuntimeError and leaves nothing
 * behind (the caller's stream is left open and unlocked).
 */
export async function createMachine(
  plan: Plan,
  opts: CreateMachineOptions = {},
): Promise<VmdescMachine> {
  if (!opts.fromCompiler) await checkPlan(plan, opts.planName ?? "the Plan");
  // Which console reads stdin (E1050 for a Plan that names two), before anything is opened.
  const stdinDevice = stdinOwner(plan);
  const progress = opts.progress;
  // `machine.serial`: live only when the caller gave no sink; otherwise an empty stream,
  // made when asked for (`vmdesc boot` never asks: constructing one costs start-up time).
  let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  let stream: ReadableStream<Uint8Array> | null = opts.serial === undefined
    ? new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
    })
    : null;
  const serial = () => stream ??= new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    try {
      controller?.close();
    } catch {
      // already closed or errored
    }
  };
  // vmdesc's own writes to stderr (warnings, a device whose `output` is "stderr" under
  // "stdio") take a progress display off the screen first.
  const stderrSink: Sink = (bytes) => {
    progress?.clear();
    toStderr(bytes);
  };
  // Where devices whose `output` is "stdout" or "stderr" write: the caller's sink, or with
  // "stdio" (caller null) the process's streams, which openSerialOutputs routes to.
  let caller: ((id: string, bytes: Uint8Array) => void) | null;
  let writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  if (opts.serial === "stdio") {
    caller = null;
    end();
  } else if (typeof opts.serial === "function") {
    const fn = opts.serial;
    caller = (id, bytes) => fn(bytes, id);
    end();
  } else if (opts.serial) {
    const w = opts.serial.getWriter();
    writer = w;
    caller = (_id, bytes) => void w.write(bytes).catch(() => {});
    end();
  } else {
    caller = (_id, bytes) => {
      if (!ended) controller?.enqueue(bytes);
    };
  }
  // Every warning is also an event; `hub` is bound once the machine exists.
  let hub: EventHub | null = null;
  const userWarn = opts.warn ??
    ((m: string) => stderrSink(encoder.encode(`vmdesc: warning: ${m}\n`)));
  const warn = (message: string) => {
    hub?.emit({ type: "warning", message });
    userWarn(message);
  };
  // The machine never existed: the caller's stream is left open and unlocked.
  const abandon = () => {
    end();
    writer?.releaseLock();
    writer = null;
  };
  // Each serial device's `output`, opened before the VM exists: a file that cannot be
  // opened is E1017 and leaves nothing behind.
  const baseDir = planBaseDir(plan, opts.baseDir);
  let outputs: ReturnType<typeof openSerialOutputs>;
  try {
    outputs = openSerialOutputs(
      plan,
      baseDir,
      caller ? { stdout: () => {}, stderr: () => {} } : {
        stdout: streamSink(Deno.stdout),
        stderr: stderrSink,
      },
      warn,
    );
  } catch (e) {
    abandon();
    throw e;
  }
  const routed = outputs;
  let stdin = opts.stdin === "stdio"
    ? (stdinDevice !== null ? stdinInput() : null)
    : toInput(opts.stdin);
  // The first byte typed ends a progress display (it would draw over what the guest echoes).
  if (stdin && progress) stdin = watched(stdin, () => progress.stop());
  let m: Machine;
  try {
    m = await Machine.create(plan, {
      output: (id, bytes) => {
        progress?.output(bytes);
        const target = routed.targets.get(id);
        if (caller && (target === undefined || target === "stdout" || target === "stderr")) {
          caller(id, bytes);
        } else routed.write(id, bytes);
      },
      warn,
      baseDir: opts.baseDir,
      stdin,
      vcpuThread: opts.vcpuThread,
      terminals: caller ? [] : terminalConsoles(routed.targets),
    });
  } catch (e) {
    routed.abandon();
    abandon();
    throw asRuntimeError(e);
  }
  const machine = m;
  const events = hub = new EventHub(() => machine.times?.uptimeMs ?? 0);
  machine.onStateChange(({ from, to }) => {
    events.emit({ type: "state", from, to });
    if (to !== "exited") return;
    const r = machine.result;
    if (r) {
      events.emit({
        type: "exit",
        reason: r.reason,
        exit_status: r.exitStatus,
        message: r.message,
      });
    }
    events.end();
  });
  const finish = () => {
    routed.close();
    end();
    if (writer) {
      const w = writer;
      writer = null;
      w.close().catch(() => {});
    }
  };
  const close = () => {
    machine.close();
    finish();
  };
  return {
    plan,
    get serial() {
      return serial();
    },
    get state() {
      return machine.state;
    },
    get vcpuStates() {
      return machine.vcpuStates;
    },
    get times() {
      return machine.times;
    },
    get result() {
      return machine.result;
    },
    get guestTime() {
      return machine.guestTime;
    },
    get resetPath() {
      return machine.resetPath;
    },
    async run(runOpts?: RunOptions) {
      try {
        progress?.start();
        return await machine.run(runOpts);
      } finally {
        progress?.stop();
        finish();
      }
    },
    pause: () => machine.pause(),
    resume: () => machine.resume(),
    stop: () => machine.stop(),
    reset: () => machine.reset(),
    stats: () => machine.stats(),
    get disks() {
      return machine.disks;
    },
    async swapDisk(id, o) {
      const disk = await machine.swapDisk(id, o);
      events.emit({ type: "disk", disk });
      return disk;
    },
    events: () => events.read(),
    onStateChange: (listener) => machine.onStateChange(listener),
    close,
    [Symbol.dispose]: close,
  };
}
