/**
 * The lifecycle of a machine and of its vCPU threads: named states and the transitions
 * between them, written down once (Firecracker's `vstate/vcpu.rs` does the same).
 *
 * A machine (runtime/machine.ts; only the thread that created it changes its state):
 *
 * ```
 *              run()                  pause(): every vCPU parked
 *   created ──────────► running ─────────────────────────────► paused
 *      │                   │    ◄─────────────────────────────   │
 *      │ close()           │             resume()                │
 *      │                   │ stop                           stop │
 *      │                   ▼                                     │
 *      │               stopping ◄────────────────────────────────┘
 *      │                   │ every vCPU thread exited
 *      ▼                   ▼
 *    exited ◄──────────────┘
 * ```
 *
 * "stop" is any of: the guest ended (debug exit, fault, reset, power-off, halt), a vCPU
 * thread failed, the timeout, the caller's AbortSignal, Ctrl-C/SIGTERM, close(). A
 * machine in `exited` has its result; close() then releases the VM (idempotent).
 *
 * A vCPU thread (runtime/threads/vcpu_thread.ts; one word per vCPU in the control block,
 * written only by that vCPU's thread, read by everyone):
 *
 * ```
 *   starting ──state built, thread id published──► ready ──REQUEST run──► running
 *      │                                             │                    │  ▲
 *      │ building failed                 REQUEST stop│   kicked, REQUEST  │  │ REQUEST run
 *      │                                             │   pause            ▼  │
 *      │                                             │                   paused
 *      ▼                                             ▼                    │
 *    exited ◄────────────────────────────────────────┴── loop ended, or ──┘
 *                                                        REQUEST stop
 * ```
 *
 * `exited` means the thread touches no kvm_run page, guest memory or device model any
 * more: the VM may be released once every vCPU that was handed one is there.
 * What the machine asks of its vCPU threads is one word, REQUEST (`VcpuRequest`): `hold`
 * (wait at the start gate), `run`, `pause`, `stop`. The machine writes it, then kicks
 * every vCPU out of KVM_RUN (threads/control.ts); each thread answers by moving to the
 * state the request names. Pausing is therefore: REQUEST pause, kick, wait until every
 * vCPU is `paused` (or `exited`); resuming: REQUEST run.
 */

/** Where a machine is in its life (see the diagram above). */
export type MachineState = "created" | "running" | "paused" | "stopping" | "exited";

const MACHINE_NEXT: Readonly<Record<MachineState, readonly MachineState[]>> = {
  created: ["running", "exited"],
  running: ["paused", "stopping"],
  paused: ["running", "stopping"],
  stopping: ["exited"],
  exited: [],
};

/** True when the diagram has an arrow from `from` to `to`. */
export function machineCanMove(from: MachineState, to: MachineState): boolean {
  return MACHINE_NEXT[from].includes(to);
}

/** Where one vCPU thread is (the values are what its control-block word holds). */
export const VcpuState = {
  starting: 0,
  ready: 1,
  running: 2,
  paused: 3,
  exited: 4,
} as const;
export type VcpuState = typeof VcpuState[keyof typeof VcpuState];

export const VCPU_STATE_NAMES: readonly string[] = [
  "starting",
  "ready",
  "running",
  "paused",
  "exited",
];

const VCPU_NEXT: Readonly<Record<VcpuState, readonly VcpuState[]>> = {
  [VcpuState.starting]: [VcpuState.ready, VcpuState.exited],
  [VcpuState.ready]: [VcpuState.running, VcpuState.exited],
  [VcpuState.running]: [VcpuState.paused, VcpuState.exited],
  [VcpuState.paused]: [VcpuState.running, VcpuState.exited],
  [VcpuState.exited]: [],
};

/** True when a vCPU thread may move from `from` to `to`. */
export function vcpuCanMove(from: VcpuState, to: VcpuState): boolean {
  return VCPU_NEXT[from].includes(to);
}

/** What the machine asks of every vCPU thread (the control block's REQUEST word). */
export const VcpuRequest = {
  /** Stay parked at the start gate (the machine is `created`). */
  hold: 0,
  run: 1,
  /** Leave KVM_RUN and park until the request changes. */
  pause: 2,
  /** Leave the loop for good. Final: nothing changes REQUEST after it. */
  stop: 3,
} as const;
export type VcpuRequest = typeof VcpuRequest[keyof typeof VcpuRequest];

/**
 * An action the machine's current state does not allow (pause a machine that is not
 * running, run one twice, ...). A control API answers it with 409 Conflict.
 */
export class StateError extends Error {
  constructor(readonly action: string, readonly state: MachineState, detail?: string) {
    super(detail ?? `cannot ${action} a machine that is ${state}`);
    this.name = "StateError";
  }
}
