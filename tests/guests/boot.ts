/**
 * Shared helpers for the guest tests: build the guests, compile a `.vmdesc` from
 * examples/guests/ to a Plan, boot it on the real /dev/kvm, and collect serial output.
 */
import { compile, type Plan } from "../../lang/mod.ts";
import type { HoleStrategy } from "../../plan/types.ts";
import { DenoHost } from "../../host/disk_host.ts";
import { createMachine, type RunResult } from "../../runtime/mod.ts";
import type { InputSource } from "../../runtime/devices/device.ts";
import { buildGuests } from "../../examples/guests/build.ts";
import { kvmMissing as kvmMissingReason } from "../kvm.ts";

const GUESTS_DIR = decodeURIComponent(new URL("../../examples/guests/", import.meta.url).pathname);

/** Why KVM tests cannot run here, or null when /dev/kvm is usable. */
export const kvmMissing: string | null = kvmMissingReason();

/** Registers a KVM test, or a skipped one that says why. */
export function kvmTest(name: string, fn: () => Promise<void>): void {
  if (kvmMissing) {
    Deno.test({ name, ignore: true, fn });
    console.log(`skipping "${name}": ${kvmMissing}`);
    return;
  }
  Deno.test({ name, fn });
}

export interface CompileGuestOptions {
  machine?: string;
  holeStrategy?: HoleStrategy;
  cmdline?: string;
}

/** Compiles examples/guests/<file> and returns the (single) Plan it lowers to. */
export function guestPlan(file: string, opts: CompileGuestOptions = {}): Plan {
  const path = GUESTS_DIR + file;
  const host = new DenoHost();
  const text = host.readFile(path);
  if (text === undefined) throw new Error(`cannot read ${path}`);
  const r = compile(text, { file: path, host, ...opts });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0) {
    throw new Error(`${file}: ${errors.map((d) => `${d.code} ${d.message}`).join("; ")}`);
  }
  const plans = [...r.plans.values()];
  if (plans.length !== 1) throw new Error(`${file}: expected one Plan, got ${plans.length}`);
  return plans[0];
}

export interface GuestRun {
  plan: Plan;
  result: RunResult;
  /** Serial output of every device, in order of arrival. */
  output: string;
}

/** Builds the payload if stale, boots the Plan, returns the result and the serial text. */
export async function runGuest(
  guest: string,
  file: string,
  opts: CompileGuestOptions & {
    timeout?: number;
    stdin?: string | InputSource;
    vcpuThread?: "worker" | "caller";
  } = {},
): Promise<GuestRun> {
  await buildGuests([guest]);
  const { timeout, stdin: _stdin, vcpuThread, ...compileOpts } = opts;
  const plan = guestPlan(file, compileOpts);
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const machine = await createMachine(plan, {
    serial: (bytes) => chunks.push(decoder.decode(bytes, { stream: true })),
    stdin: opts.stdin,
    warn: () => {},
    vcpuThread,
  });
  try {
    const result = await machine.run({ timeout: timeout ?? 30 });
    return { plan, result, output: chunks.join("") };
  } finally {
    machine.close();
  }
}
