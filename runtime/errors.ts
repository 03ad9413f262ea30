/**
 * Runtime errors and the process exit statuses of `vmdesc boot`.
 *
 * Every user-facing failure in `runtime/` is a `RuntimeError` with a stable code from the
 * table in `plan/codes.ts` (E1xxx), a message and a hint. Anything else that escapes is a
 * bug in vmdesc (the CLI prints it with a stack).
 *
 * Exit statuses. The guest's own isa-debug-exit codes are odd ((v << 1) | 1, as QEMU), so
 * every status vmdesc chooses itself is even, and never collides with a guest's:
 *
 * | status | meaning                                                                    |
 * | ------ | -------------------------------------------------------------------------- |
 * | 0      | clean end: guest requested reset (i8042 0xFE, KVM system event reset) or    |
 * |        | powered off (ACPI S5 through the sleep registers, KVM system event shutdown);|
 * |        | stopped or reset on request (the control API, `Machine.stop()`/`reset()`)   |
 * | odd    | guest wrote v to debug_exit: (v << 1) | 1                                  |
 * | 1      | (also) `vmdesc boot` did not start: the .vmdesc has errors                   |
 * | 2      | usage error (bad command-line arguments), unreadable input file (E2002)     |
 * | 4      | guest fault: triple fault, KVM internal error, failed VM entry, crash event  |
 * | 6      | timeout (`--timeout` / `run({timeout})`) elapsed                            |
 * | 8      | stopped by the caller (AbortSignal in the library API)                       |
 * | 10     | host error: E1xxx (no /dev/kvm, permission, capability, payload, ...)       |
 * | 12     | guest halted for good (HLT exit with interrupts disabled)                   |
 * | 130    | interrupted by Ctrl-C (SIGINT), as shells report it                         |
 * | 143    | terminated by SIGTERM (kill, timeout(1)), as shells report it               |
 */

import type { RuntimeCode } from "../plan/codes.ts";

export type { RuntimeCode };

export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeCode,
    message: string,
    readonly hint: string | null = null,
  ) {
    super(message);
    this.name = "RuntimeError";
  }
}

export const EXIT_STATUS = {
  ok: 0,
  compileError: 1,
  usage: 2,
  guestFault: 4,
  timeout: 6,
  aborted: 8,
  hostError: 10,
  halted: 12,
  interrupted: 130,
  terminated: 143,
} as const;

/** The isa-debug-exit convention: guest value v → process status (v << 1) | 1 (8 bits). */
export function debugExitStatus(value: number): number {
  return ((value << 1) | 1) & 0xff;
}

/** Why a run ended (`RunResult.reason`). */
export type ExitReason =
  | "debug_exit"
  | "reset"
  | "poweroff"
  | "triple_fault"
  | "internal_error"
  | "fail_entry"
  | "crash"
  | "halted"
  | "timeout"
  | "interrupted"
  | "terminated"
  | "aborted"
  | "stopped"
  | "host_error";

/** Status for each reason (debug_exit's depends on the value). */
export function statusFor(reason: ExitReason, debugValue = 0): number {
  switch (reason) {
    case "debug_exit":
      return debugExitStatus(debugValue);
    case "reset":
    case "poweroff":
    case "stopped":
      return EXIT_STATUS.ok;
    case "triple_fault":
    case "internal_error":
    case "fail_entry":
    case "crash":
      return EXIT_STATUS.guestFault;
    case "halted":
      return EXIT_STATUS.halted;
    case "timeout":
      return EXIT_STATUS.timeout;
    case "interrupted":
      return EXIT_STATUS.interrupted;
    case "terminated":
      return EXIT_STATUS.terminated;
    case "aborted":
      return EXIT_STATUS.aborted;
    case "host_error":
      return EXIT_STATUS.hostError;
  }
}

/** The text for `vmdesc boot --help`. */
export const EXIT_STATUS_HELP = `Exit status:
  0      guest requested reset (i8042 0xFE) or powered off, or wrote the debug_exit
         device's \`success\` value; or stopped or reset through the control API
  odd    the guest wrote v to debug_exit: (v << 1) | 1, as QEMU's isa-debug-exit
  1      the .vmdesc file has errors (nothing was booted)
  2      usage error, or an input file (FILE, --plan) cannot be read (E2002)
  4      guest fault: triple fault, KVM internal error, failed VM entry
  6      --timeout elapsed
  10     host error (E1xxx: /dev/kvm, permissions, capabilities, boot payload)
  12     guest halted with interrupts disabled
  130    interrupted (Ctrl-C)
  143    terminated (SIGTERM)`;

/** What a failed run reports: a runtime code when there is one, the message, a hint. */
export interface HostFailure {
  code: string | null;
  message: string;
  hint: string | null;
}

/** A thrown error as a host failure (RuntimeError and HostError keep their code and hint). */
export function failureOf(e: unknown): HostFailure {
  const re = e instanceof RuntimeError ? e : null;
  return {
    code: re?.code ?? (e as { code?: string })?.code ?? null,
    message: re ? re.message : (e as Error)?.stack ?? String(e),
    hint: re?.hint ?? (e as { hint?: string })?.hint ?? null,
  };
}
