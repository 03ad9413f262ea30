/**
 * The runtime's typed library API, for people who script VMs in TypeScript.
 *
 * ```ts
 * import { createMachine } from "./runtime/mod.ts";
 * using m = await createMachine(plan);            // a Plan object (from lang's compile() or JSON)
 * const text = new Response(m.serial).text();     // guest serial output as a stream
 * const r = await m.run({ timeout: 10 });         // { reason, exitStatus, message, stats }
 * ```
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
} from "./machine.ts";
import { openSerialOutputs } from "./devices/serial/output.ts";
import type { InputSource } from "./devices/device.ts";

export type { Plan } from "../plan/types.ts";
export type { MachineOptions, RunOptions, RunResult } from "./machine.ts";
export type { RunStats } from "./stats.ts";
export { formatStats } from "./stats.ts";
export { debugExitStatus, EXIT_STATUS, type ExitReason, RuntimeError } from "./errors.ts";
export { Machine } from "./machine.ts";

export interface CreateMachineOptions {
  /**
   * Where guest serial output goes: a callback, a WritableStream, or nothing — then read
   * it from `machine.serial`. A serial device whose Plan entry says `output` "null" or a
   * file writes there instead (as under `vmdesc boot`); "stdout" and "stderr" mean here.
   */
  serial?: ((bytes: Uint8Array, deviceId: string) => void) | WritableStream<Uint8Array>;
  /** Bytes for the guest's first serial port: a stream, a string, or an InputSource. */
  stdin?: ReadableStream<Uint8Array> | string | Uint8Array | InputSource;
  /** Warnings about the guest (unassigned MMIO, writes to read-only memory). Default: stderr. */
  warn?: (message: string) => void;
  /** Directory relative payload paths resolve against (default: the Plan's source dir, else cwd). */
  baseDir?: string;
  /**
   * "worker" (default) or "caller": run a 1-vCPU machine's loop on the thread that calls
   * run() (faster start; this thread's event loop then turns only every 100 ms while
   * the guest runs). See MachineOptions.vcpuThread.
   */
  vcpuThread?: MachineOptions["vcpuThread"];
}

export interface VmdescMachine extends Disposable {
  readonly plan: Plan;
  /** Serial output when no `serial` sink was given; ends when the run ends. */
  readonly serial: ReadableStream<Uint8Array>;
  run(opts?: RunOptions): Promise<RunResult>;
  /** Idempotent. */
  close(): void;
}

function toInput(src: CreateMachineOptions["stdin"]): InputSource | null {
  if (src === undefined) return null;
  if (typeof src === "object" && "subscribe" in src) return src;
  return {
    subscribe(onData) {
      let stopped = false;
      if (typeof src === "string" || src instanceof Uint8Array) {
        const bytes = typeof src === "string" ? new TextEncoder().encode(src) : src;
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

/** Builds a machine from a Plan: VM created, payload loaded, vCPU threads parked. */
export async function createMachine(
  plan: Plan,
  opts: CreateMachineOptions = {},
): Promise<VmdescMachine> {
  let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  const serial = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
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
  let output: MachineOptions["output"];
  let writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  if (typeof opts.serial === "function") {
    const fn = opts.serial;
    output = (id, bytes) => fn(bytes, id);
    end();
  } else if (opts.serial) {
    const w = opts.serial.getWriter();
    writer = w;
    output = (_id, bytes) => void w.write(bytes).catch(() => {});
    end();
  } else {
    output = (_id, bytes) => {
      if (!ended) controller?.enqueue(bytes);
    };
  }
  // The machine never existed: the caller's stream is left open and unlocked.
  const abandon = () => {
    end();
    writer?.releaseLock();
    writer = null;
  };
  // Devices whose Plan entry names a file (or "null") write there, as under `vmdesc boot`;
  // the rest reach the caller's sink. Files open before the VM exists (E1017 leaves none).
  const toCaller = output;
  let outputs: ReturnType<typeof openSerialOutputs>;
  try {
    outputs = openSerialOutputs(
      plan,
      planBaseDir(plan, opts.baseDir),
      { stdout: () => {}, stderr: () => {} },
      opts.warn ?? ((m) => console.error(`vmdesc: warning: ${m}`)),
    );
  } catch (e) {
    abandon();
    throw e;
  }
  const routed = outputs;
  output = (id, bytes) => {
    const target = routed.targets.get(id);
    if (target === undefined || target === "stdout" || target === "stderr") toCaller(id, bytes);
    else routed.write(id, bytes);
  };
  const m = await Machine.create(plan, {
    output,
    warn: opts.warn,
    baseDir: opts.baseDir,
    stdin: toInput(opts.stdin),
    vcpuThread: opts.vcpuThread,
  }).catch((e) => {
    routed.abandon();
    abandon();
    throw e;
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
    m.close();
    finish();
  };
  const machine: VmdescMachine = {
    plan,
    serial,
    async run(runOpts?: RunOptions) {
      try {
        return await m.run(runOpts);
      } finally {
        finish();
      }
    },
    close,
    [Symbol.dispose]: close,
  };
  return machine;
}
