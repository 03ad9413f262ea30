/**
 * The worker driver: one Worker per vCPU (worker_entry.ts), each blocking in its KVM_RUN
 * loop, while the machine's thread stays free and only supervises.
 *
 * - The workers are spawned before the VM is built: `new Worker` blocks its caller while
 *   Deno builds the isolate (~15-20 ms here), and the workers then load their modules
 *   while the machine's thread builds the VM and loads the payload.
 * - Their event loops never turn while the guest runs, so everything sent to them goes
 *   through the control block plus a kick; they talk back with postMessage (output,
 *   warnings, their end).
 * - Stdin goes into the control block's ring and vCPU 0 is kicked to take it; vCPU 0 is
 *   also kicked every OUTPUT_TICK_MS so models that buffer output (the UART holds TX until
 *   a newline) flush it, and a prompt without a newline shows while the guest waits in HLT.
 */
import type { HostFailure } from "../errors.ts";
import { RuntimeError } from "../errors.ts";
import {
  allVcpusIn,
  kickVcpu,
  postCall,
  ringPush,
  type VcpuCall,
  vcpuState,
  waitForVcpus,
} from "./control.ts";
import { VcpuState } from "../lifecycle.ts";
import type { DriverAttach, DriverRun, VcpuDriver } from "./driver.ts";
import type { WorkerInit, WorkerMessage } from "./worker_entry.ts";
import type { CallAnswer } from "./vcpu_thread.ts";

/** How often vCPU 0 is kicked to flush buffered device output (ms). */
export const OUTPUT_TICK_MS = 100;
/** How long close() waits for vCPU threads to leave KVM_RUN before ending them anyway. */
const CLOSE_WAIT_MS = 2000;

export class WorkerDriver implements VcpuDriver {
  readonly #workers: Worker[];
  #a: DriverAttach | null = null;
  /** Set while run() supervises; receives every message after attach. */
  #onMessage: ((index: number, m: WorkerMessage) => void) | null = null;
  /** Ends a run in progress when the driver is closed under it. */
  #endRun: (() => void) | null = null;
  /** Arms the timeout again (the deadline moved: a resume). */
  #armDeadline: (() => void) | null = null;
  /** The call vCPU 0 is working on (one at a time) and the ones waiting for it. */
  #calling: Promise<unknown> = Promise.resolve();
  /** Settles the call in progress: vCPU 0's answer to call `seq`, or null: it ended. */
  #answer: ((seq: number | null, answer: CallAnswer) => void) | null = null;
  #closed = false;

  private constructor(workers: Worker[]) {
    this.#workers = workers;
  }

  /** Spawns `n` workers now; they wait for attach(). */
  static spawn(n: number): WorkerDriver {
    const workers: Worker[] = [];
    try {
      for (let i = 0; i < n; i++) {
        workers.push(
          new Worker(new URL("./worker_entry.ts", import.meta.url), { type: "module" }),
        );
      }
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    return new WorkerDriver(workers);
  }

  attach(a: DriverAttach): Promise<void> {
    this.#a = a;
    const { vm, ctl } = a;
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
        ctl: ctl.sab,
        stdinDevice: a.stdinDevice,
        disks: [...a.disks],
        terminals: [...a.terminals ?? []],
      };
    };
    let pending = this.#workers.length;
    return new Promise<void>((resolve, reject) => {
      this.#workers.forEach((w, i) => {
        w.onmessage = (ev: MessageEvent<WorkerMessage>) => {
          const m = ev.data;
          if (m.type === "output") a.routes.output(m.id, m.bytes);
          else if (m.type === "warn") a.routes.warn(m.message);
          else if (m.type === "counters") a.routes.counters(i, m.buffer);
          else if (m.type === "reply") this.#answer?.(m.seq, m.answer);
          else if (m.type === "state") {
            a.routes.state(i, m.state);
            if (i === 0 && m.state === VcpuState.exited) {
              this.#answer?.(null, { ok: false, error: "vCPU 0's thread has ended" });
            }
            if (m.state === VcpuState.ready && --pending === 0) resolve();
          } else if (m.type === "error" && this.#onMessage === null) {
            const f = m.failure;
            reject(
              f.code
                ? new RuntimeError(f.code as RuntimeError["code"], f.message, f.hint)
                : new Error(`vCPU ${i} worker: ${f.message}`),
            );
          }
          this.#onMessage?.(i, m);
        };
        w.onerror = (ev) => {
          ev.preventDefault();
          const failure = {
            code: null,
            message: `vCPU ${i} worker crashed: ${ev.message}`,
            hint: null,
          };
          if (this.#onMessage === null) reject(new Error(failure.message));
          this.#onMessage?.(i, { type: "error", failure });
        };
        w.postMessage(init(i));
      });
    });
  }

  run(r: DriverRun): Promise<void> {
    const { vm, ctl } = this.#a!;
    const n = this.#workers.length;
    const ended: boolean[] = new Array(n).fill(false);
    let left = n;
    return new Promise<void>((resolve) => {
      const cleanups: (() => void)[] = [];
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        this.#endRun = null;
        this.#onMessage = null;
        for (const c of cleanups) c();
        resolve();
      };
      const end = (i: number, report: () => void) => {
        if (ended[i]) return;
        ended[i] = true;
        report();
        if (--left === 0) finish();
      };
      this.#onMessage = (i, m) => {
        if (m.type === "done") end(i, () => r.onEnd(i, { kind: "ended", ...m.end }));
        else if (m.type === "error") {
          const failure: HostFailure = m.failure;
          end(i, () => r.onEnd(i, { kind: "failed", failure }));
        }
      };
      this.#endRun = finish;
      // The deadline moves while the machine is paused: the timer looks again when it
      // fires early, and every resume (requestChanged) arms it again.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        clearTimeout(timer);
        const d = r.deadline();
        if (d === Infinity) return;
        timer = setTimeout(() => {
          if (performance.now() >= r.deadline()) r.onDeadline();
          else arm();
        }, Math.max(0, d - performance.now()));
      };
      arm();
      this.#armDeadline = arm;
      cleanups.push(() => {
        clearTimeout(timer);
        this.#armDeadline = null;
      });
      const kickBsp = () => kickVcpu(ctl, 0, vm.vcpus[0].runBytes);
      if (r.stdin) {
        cleanups.push(r.stdin.subscribe((bytes) => {
          let off = 0;
          while (off < bytes.length) {
            const pushed = ringPush(ctl, bytes.subarray(off));
            if (pushed === 0) break; // ring full: the guest is not reading; drop the rest
            off += pushed;
          }
          kickBsp();
        }));
      }
      const tick = setInterval(kickBsp, OUTPUT_TICK_MS);
      cleanups.push(() => clearInterval(tick));
    });
  }

  call(call: VcpuCall, timeoutMs: number): Promise<CallAnswer> {
    const next = this.#calling.then(() => this.#callNow(call, timeoutMs));
    this.#calling = next.catch(() => {});
    return next;
  }

  /** Posts `call` to vCPU 0 (kicked out of KVM_RUN, or woken) and waits for the answer. */
  #callNow(call: VcpuCall, timeoutMs: number): Promise<CallAnswer> {
    const a = this.#a;
    if (!a || this.#closed || vcpuState(a.ctl, 0) === VcpuState.exited) {
      return Promise.resolve({ ok: false, error: "vCPU 0's thread has ended" });
    }
    return new Promise<CallAnswer>((resolve) => {
      const seq = postCall(a.ctl, call);
      const timer = setTimeout(
        () => done({ ok: false, error: "vCPU 0 did not answer", timedOut: true }),
        timeoutMs,
      );
      const done = (answer: CallAnswer) => {
        clearTimeout(timer);
        this.#answer = null;
        resolve(answer);
      };
      this.#answer = (s, answer) => (s === seq || s === null) && done(answer);
      kickVcpu(a.ctl, 0, a.vm.vcpus[0].runBytes);
    });
  }

  requestChanged(): void {
    const a = this.#a;
    if (!a) return;
    for (const v of a.vm.vcpus) kickVcpu(a.ctl, v.index, v.runBytes);
    this.#armDeadline?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const a = this.#a;
    if (a) {
      // Every worker that was handed the VM must be out of KVM_RUN and done with guest
      // memory and its models (state `exited`) before the machine releases them; keep
      // kicking in case one was about to enter KVM_RUN. A worker that crashed never gets
      // there: after CLOSE_WAIT_MS it is ended regardless.
      const n = this.#workers.length;
      const exited = [VcpuState.exited] as const;
      waitForVcpus(a.ctl, () => {
        if (allVcpusIn(a.ctl, n, exited)) return true;
        this.requestChanged();
        return false;
      }, CLOSE_WAIT_MS);
    }
    for (const w of this.#workers) w.terminate();
    if (a) joinThreads(a.ctl.kernelTids.slice(0, this.#workers.length));
    this.#endRun?.();
  }
}

/**
 * Waits (up to CLOSE_WAIT_MS) until the threads with these kernel ids have ended. A
 * terminated Worker's thread ends after terminate() returns, and only then closes what its
 * runtime holds (two epolls, an eventfd, copies of stdio); on a busy host that can take a
 * while. Joining them here means a closed machine has left nothing behind, as a VMM joins
 * its vCPU threads.
 */
function joinThreads(tids: Int32Array): void {
  const alive = (tid: number) => {
    if (tid === 0) return false; // never published: the thread never got its init
    try {
      Deno.statSync(`/proc/self/task/${tid}`);
      return true;
    } catch {
      return false;
    }
  };
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + CLOSE_WAIT_MS;
  while ([...tids].some(alive) && performance.now() < deadline) Atomics.wait(sleeper, 0, 0, 1);
}
