/**
 * What `vmdesc doctor` looks at: whether `vmdesc boot` can work on this host, as a list of
 * checks, each with a status and, where something is wrong, a hint.
 *
 * The KVM capabilities and limits come from the runtime's own list
 * (`kvmRequirements` in runtime/kvm/vm.ts, the one `Vm.create` enforces), the mappings a
 * memslot takes from `mappingsFor` (runtime/memory/mod.ts), and the errors and hints for
 * opening /dev/kvm from `openKvm`: one source of truth for the runtime and the doctor.
 */
import type { Plan } from "../plan/types.ts";
import { KVM_API_VERSION } from "../runtime/kvm/abi.ts";
import { KVM_DEVICE, kvmApiVersion, kvmRequirements, openKvm } from "../runtime/kvm/vm.ts";
import { mappingsFor } from "../runtime/memory/mod.ts";
import { RuntimeError } from "../runtime/errors.ts";
import * as host from "../runtime/host/libc.ts";

/** ok ✓ and fail ✗ decide the verdict; warn (!) limits some machines; info (·) only tells. */
export type Status = "ok" | "fail" | "warn" | "info";

export interface Check {
  /** Stable id for tools: "kvm.device", "kvm.cap.USER_MEMORY", "tool.gcc", ... */
  id: string;
  status: Status;
  /** One line: what was checked and what was found. */
  title: string;
  /** What to do about it (present when the status is not ok). */
  hint?: string;
}

export interface Report {
  /** Version of this JSON shape. */
  version: 1;
  /** True when `vmdesc boot` can work (no check failed). */
  ok: boolean;
  /** The machines checked against (from FILE), or [] for the host alone. */
  machines: string[];
  checks: Check[];
}

/** What the host shows about virtualization. */
export interface VirtFacts {
  /** CPU flags from /proc/cpuinfo: vmx (Intel VT-x), svm (AMD-V), hypervisor (a guest). */
  vmx: boolean;
  svm: boolean;
  hypervisor: boolean;
  /** "KVM", "Microsoft Hyper-V", ... from the kernel log, when it is readable. */
  hypervisorName: string | null;
  /** The loaded KVM backend: kvm_intel, kvm_amd, kvm_pvm (a software KVM), or null. */
  kvmModule: string | null;
  /** The kernel log says this host is itself a kvm-pvm guest, so kvm-pvm did not bind. */
  pvmGuest: boolean;
}

/** /proc and /sys through libc (Deno's own API needs --allow-all for them). */
const readText = (path: string): string | null => host.readKernelFile(path);

/** The kernel log (`dmesg`), or "" when it cannot be read (not root, no util-linux). */
function kernelLog(): string {
  try {
    const o = new Deno.Command("dmesg", { stdout: "piped", stderr: "null" }).outputSync();
    return o.success ? new TextDecoder().decode(o.stdout) : "";
  } catch {
    return "";
  }
}

export function virtFacts(): VirtFacts {
  const flags = new Set(
    (/^flags\s*:(.*)$/m.exec(readText("/proc/cpuinfo") ?? "")?.[1] ?? "").trim().split(/\s+/),
  );
  const log = kernelLog();
  const module =
    ["kvm_intel", "kvm_amd", "kvm_pvm"].find((m) => host.kernelPathExists(`/sys/module/${m}`)) ??
      null;
  return {
    vmx: flags.has("vmx"),
    svm: flags.has("svm"),
    hypervisor: flags.has("hypervisor"),
    hypervisorName: /Hypervisor detected: (.+)$/m.exec(log)?.[1].trim() ?? null,
    kvmModule: module,
    pvmGuest: /kvm-pvm: .*itself a kvm-pvm guest/.test(log),
  };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) return host.kernelPathExists(path);
    return false;
  }
}

/** One line about the host's virtualization, for the report. */
export function describeVirt(v: VirtFacts): string {
  const parts: string[] = [];
  if (v.hypervisor) {
    parts.push(`a virtual machine${v.hypervisorName ? ` (${v.hypervisorName})` : ""}`);
  } else parts.push("not a virtual machine (no hypervisor flag)");
  parts.push(
    v.vmx
      ? "the CPU offers vmx (VT-x)"
      : v.svm
      ? "the CPU offers svm (AMD-V)"
      : "no vmx/svm visible",
  );
  if (v.kvmModule === "kvm_pvm") parts.push("KVM is kvm_pvm, a software KVM (slow)");
  else if (v.kvmModule) parts.push(`KVM is ${v.kvmModule}`);
  if (v.pvmGuest) parts.push("kvm-pvm did not bind: this host is itself a kvm-pvm guest");
  return `host: ${parts.join("; ")}`;
}

/** Why there is no /dev/kvm, as a hint from what the host shows. */
export function noKvmHint(v: VirtFacts): string {
  if (v.pvmGuest) {
    return "this host is itself a kvm-pvm guest, so its KVM does not bind (see dmesg): boot on " +
      "a host with KVM; to test vmdesc here, use the nested test bed (deno task nested)";
  }
  if (v.kvmModule) {
    return `KVM (${v.kvmModule}) is loaded but this environment has no /dev/kvm (a container?): ` +
      "pass the device in (docker run --device /dev/kvm), or create it (mknod /dev/kvm c 10 232)";
  }
  if (v.vmx || v.svm) {
    return `the CPU offers ${v.vmx ? "vmx" : "svm"}: load KVM (sudo modprobe ${
      v.vmx ? "kvm_intel" : "kvm_amd"
    })`;
  }
  if (v.hypervisor) {
    return "this host is a virtual machine without nested virtualization: enable it in its " +
      "hypervisor, or use a host with KVM";
  }
  return "the CPU offers no virtualization (vmx/svm): enable VT-x or AMD-V in the firmware";
}

/**
 * Mode and group of /dev/kvm and whether the caller is in that group, for the permission
 * hint. Through stat(1): Deno lets only --allow-all programs stat device nodes.
 */
function permissionFacts(path: string): string {
  try {
    const o = new Deno.Command("stat", { args: ["-L", "-c", "%a %g %G", path], stdout: "piped" })
      .outputSync();
    const [mode, gid, group] = new TextDecoder().decode(o.stdout).trim().split(" ");
    if (!o.success || !group) return "";
    const groups = (/^Groups:\s*(.*)$/m.exec(readText("/proc/self/status") ?? "")?.[1] ?? "")
      .trim().split(/\s+/).filter(Boolean);
    const member = groups.includes(gid) || String(Deno.gid()) === gid;
    return `${path} is mode ${mode.padStart(3, "0")}, group ${group}; you are uid ${Deno.uid()}, ${
      member ? "in" : "not in"
    } group ${group}`;
  } catch {
    return "";
  }
}

function mib(bytes: number): string {
  return bytes >= 2 ** 20
    ? `${(bytes / 2 ** 20).toFixed(bytes % 2 ** 20 ? 1 : 0)} MiB`
    : `${bytes} bytes`;
}

/** The limit on locked memory (/proc/self/limits), in bytes, or null for unlimited. */
function memlockLimit(): number | null | undefined {
  const line = /^Max locked memory\s+(\S+)/m.exec(readText("/proc/self/limits") ?? "");
  if (!line) return undefined;
  return line[1] === "unlimited" ? null : Number(line[1]);
}

/** Mappings the machine adds to a running vmdesc: its memslots, and per vCPU a kvm_run page and a worker stack (with guard). */
function machineMappings(plan: Plan): number {
  let n = 0;
  for (const slot of plan.memslots) n += mappingsFor(slot);
  return n + plan.cpus.count * 3;
}

/** The programs the tests use, with what for (informational). */
const TOOLS: [string, string, string][] = [
  ["gcc", "builds the test guests", "gcc"],
  ["iasl", "disassembles the ACPI tables in the tests", "acpica-tools"],
  ["nvim", "the editor in the LSP test", "neovim"],
  ["lz4", "the lz4 round-trip test; packs the nested test bed", "lz4"],
  ["qemu-system-x86_64", "benchmarks against QEMU; runs the nested test bed", "qemu-system-x86"],
];

function which(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && exists(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return null;
}

/** Checks this host for the given machines (none: for vmdesc in general). */
export function diagnose(plans: Plan[], device = KVM_DEVICE): Report {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const virt = virtFacts();

  // /dev/kvm: there, opens read-write, speaks the stable API, has what the runtime uses.
  // Opened the way the runtime opens it (openKvm), so the errors are the ones boot gives.
  let fd = -1;
  try {
    fd = openKvm(device);
    add({ id: "kvm.device", status: "ok", title: `${device} is present` });
    add({ id: "kvm.open", status: "ok", title: `${device} opens read-write` });
  } catch (e) {
    if (!(e instanceof RuntimeError)) throw e;
    if (e.code === "E1002") {
      const facts = permissionFacts(device);
      add({ id: "kvm.device", status: "ok", title: `${device} is present` });
      add({
        id: "kvm.open",
        status: "fail",
        title: `${device} does not open read-write: ${e.message}${facts ? ` (${facts})` : ""}`,
        hint: e.hint ?? undefined,
      });
    } else {
      // E1001: no such node (ENOENT), or a node with no KVM behind it (ENODEV, ENXIO).
      add({ id: "kvm.device", status: "fail", title: e.message, hint: noKvmHint(virt) });
    }
  }
  if (fd >= 0) {
    try {
      kvmChecks(fd, plans, add);
    } finally {
      host.close(fd);
    }
  }
  add({ id: "host.virtualization", status: "info", title: describeVirt(virt) });

  // Host limits against what the machines need.
  const limit = Number((readText("/proc/sys/vm/max_map_count") ?? "65530").trim());
  // What a running vmdesc already uses: this process is one (Deno, the runtime loaded).
  const own = (readText("/proc/self/maps") ?? "").split("\n").filter(Boolean).length;
  let machine = 0;
  let machineWhat = "a machine with a 256-bus `shadow` ECAM window needs ~260";
  let mapError: string | null = null;
  if (plans.length === 0) machine = 257 + 3;
  for (const plan of plans) {
    try {
      const n = machineMappings(plan);
      if (n >= machine) {
        machine = n;
        machineWhat = `machine ${plan.machine} needs ${n}`;
      }
    } catch (e) {
      if (!(e instanceof RuntimeError)) throw e;
      mapError = `machine ${plan.machine}: ${e.message}`;
    }
  }
  const need = own + machine;
  add(
    mapError
      ? {
        id: "host.max_map_count",
        status: "fail",
        title: `vm.max_map_count ${limit}: ${mapError}`,
        hint: "raise it (sysctl -w vm.max_map_count=262144), or use the `trap` hole strategy",
      }
      : need <= limit
      ? {
        id: "host.max_map_count",
        status: "ok",
        title: `vm.max_map_count ${limit}: enough for ~${need} mappings (${machineWhat}; ` +
          `a running vmdesc ~${own})`,
      }
      : {
        id: "host.max_map_count",
        status: "fail",
        title: `vm.max_map_count ${limit} is below the ~${need} mappings needed (${machineWhat})`,
        hint: `raise it: sudo sysctl -w vm.max_map_count=${Math.max(65530, need * 2)}`,
      },
  );
  const memlock = memlockLimit();
  add({
    id: "host.memlock",
    status: "ok",
    title: `RLIMIT_MEMLOCK ${
      memlock === undefined ? "unknown" : memlock === null ? "unlimited" : mib(memlock)
    }: vmdesc locks no guest memory, so any limit will do`,
  });

  add(tunCheck(plans));

  for (const [name, what, pkg] of TOOLS) {
    const path = which(name);
    add(
      path ? { id: `tool.${name}`, status: "info", title: `${name}: ${path} (${what})` } : {
        id: `tool.${name}`,
        status: "info",
        title: `${name}: not installed (${what}; optional)`,
        hint: `apt-get install ${pkg}`,
      },
    );
  }
  return {
    version: 1,
    ok: !checks.some((c) => c.status === "fail"),
    machines: plans.map((p) => p.machine),
    checks,
  };
}

/**
 * /dev/net/tun, which only virtio_net's TAP devices open: present ✓; absent, a warning for
 * machines that have such a device (they would stop with E1040), else a note. Never a
 * failure: vmdesc boots everything else without it.
 */
function tunCheck(plans: Plan[]): Check {
  const id = "host.tun";
  const device = "/dev/net/tun";
  if (exists(device)) {
    return { id, status: "ok", title: `${device} is present (virtio_net's TAP devices)` };
  }
  const hint = "load the tun module (sudo modprobe tun); in a container, pass the device in " +
    "(--device /dev/net/tun)";
  const needing = plans.filter((p) =>
    [...p.devices, ...p.pci].some((d) => d.virtio?.backing.kind === "tap")
  ).map((p) => p.machine);
  return needing.length > 0
    ? {
      id,
      status: "warn",
      title: `${device} is absent: needed for the virtio_net TAP device of machine ${
        needing.join(", ")
      }`,
      hint,
    }
    : {
      id,
      status: "info",
      title: `${device} is absent (only virtio_net's TAP devices need it; optional)`,
      hint,
    };
}

/** API version, then every capability and limit, for each machine (or for any machine). */
function kvmChecks(fd: number, plans: Plan[], add: (c: Check) => void): void {
  let version: number;
  try {
    version = kvmApiVersion(fd);
  } catch (e) {
    if (!(e instanceof RuntimeError)) throw e;
    add({
      id: "kvm.api",
      status: "fail",
      title: `KVM_GET_API_VERSION: ${e.message}`,
      hint: "this is not a KVM device",
    });
    return;
  }
  if (version !== KVM_API_VERSION) {
    add({
      id: "kvm.api",
      status: "fail",
      title: `KVM API version ${version}, vmdesc needs ${KVM_API_VERSION}`,
      hint: "this kernel's KVM is incompatible; use a Linux kernel with the stable KVM API",
    });
    return;
  }
  add({ id: "kvm.api", status: "ok", title: `KVM API version ${version}` });
  // One line per requirement: failed if any machine's need is unmet.
  const lines = new Map<string, Check>();
  for (const plan of plans.length ? plans : [null]) {
    for (const r of kvmRequirements(fd, plan)) {
      const id = `kvm.${r.name.replace(/^KVM_CAP_/, "cap.")}`;
      const what = plan && plans.length > 1 ? ` (machine ${plan.machine})` : "";
      const check: Check = r.ok
        ? {
          id,
          status: "ok",
          title: `${r.name}${r.kind === "limit" ? ` ${r.have}` : ""}: ${r.why}`,
        }
        : {
          id,
          status: r.always ? "fail" : "warn",
          title: r.always ? `${r.message}${what}` : `${r.message}: needed for ${r.why}`,
          hint: r.hint,
        };
      const prev = lines.get(id);
      if (!prev || (prev.status === "ok" && check.status !== "ok")) lines.set(id, check);
    }
  }
  for (const c of lines.values()) add(c);
}
