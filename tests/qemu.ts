/**
 * QEMU for the tests that hold vmdesc's guests (and devices) to a reference: where the
 * binary is, and whether it can use KVM here (else it runs the guest with TCG, QEMU's own
 * emulator, which is slower but the same machine to the guest).
 *
 * Whether such tests may skip is decided by ./skip.ts: only a missing qemu-system-x86_64
 * skips them (`.ci/run` installs it).
 */
import { kvmAbsent, skipReason, which } from "./skip.ts";

/** The QEMU binary, or null. */
export const QEMU: string | null = which("qemu-system-x86_64");

/** KVM with the host's CPU (less the MSR this host's KVM does not offer). */
export const QEMU_KVM_HOST: readonly string[] = [
  "-enable-kvm",
  "-cpu",
  "host,arch-capabilities=off",
];

/**
 * Nothing but what the other arguments ask for: no default devices, no user configuration,
 * no display; the guest's COM1 on QEMU's stdout.
 */
export const QEMU_BARE: readonly string[] = [
  "-nodefaults",
  "-no-user-config",
  "-display",
  "none",
  "-serial",
  "stdio",
];

/** How QEMU accelerates guests here: KVM where /dev/kvm is usable, else TCG. */
export function qemuAccel(): string[] {
  return kvmAbsent() === null ? [...QEMU_KVM_HOST] : ["-accel", "tcg", "-cpu", "max"];
}

/** A test that needs QEMU, or a skipped one that says why. */
export function qemuTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: skipReason(name, { tools: ["qemu-system-x86_64"] }) !== null, fn });
}

export interface QemuRun {
  /** QEMU's exit status: isa-debug-exit makes it (value << 1) | 1, as vmdesc does. */
  status: number;
  /** The guest's serial output. */
  output: string;
  stderr: string;
}

/** Runs QEMU with `args` (after the accelerator) until it exits or `timeout` seconds pass. */
export async function runQemu(args: string[], timeout = 60): Promise<QemuRun> {
  const child = new Deno.Command(QEMU!, {
    args: [...qemuAccel(), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeout * 1000);
  try {
    const r = await child.output();
    const dec = new TextDecoder();
    return { status: r.code, output: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * QEMU microvm as the virtio tests use it: a COM1 on stdout, isa-debug-exit at 0xf4, no
 * option ROMs, modern virtio-mmio (QEMU defaults to the legacy version 1), and one IOAPIC
 * (with the second, QEMU puts virtio-mmio lines at GSI 24+, which the guests do not route).
 */
export function microvm(opts: { pcie: boolean; acpi?: boolean; memory?: number }): string[] {
  const m = [
    "microvm",
    `pcie=${opts.pcie ? "on" : "off"}`,
    "rtc=off",
    "isa-serial=on",
    "ioapic2=off",
    `acpi=${opts.acpi === false ? "off" : "on"}`,
  ].join(",");
  return [
    "-M",
    m,
    "-m",
    String(opts.memory ?? 128),
    ...QEMU_BARE,
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=1",
    "-global",
    "virtio-mmio.force-legacy=false",
  ];
}
