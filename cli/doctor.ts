/**
 * `vmdesc doctor [FILE] [--machine M] [--format human|json]`: can `vmdesc boot` work on
 * this host? One line per check (./doctor_checks.ts) with ✓/✗ and a hint; with FILE, the
 * host is checked against what its machines need. Exit 0 when boot can work, 1 when not.
 */
import { DenoHost } from "./host.ts";
import { out, printDiagnostics, startCommand, usageError, useColor } from "./output.ts";
import { readInput, reportUnreadable } from "./input.ts";
import type { Check, Report, Status } from "./doctor_checks.ts";

export const HELP = `Check whether 'vmdesc boot' can work on this host, and say why not.

Usage: vmdesc doctor [options] [FILE]

  FILE                 a .vmdesc file: check the host against what its machines
                       need (capabilities, memslots, vCPUs, memory mappings)

Checks: /dev/kvm (present, opens read-write), the KVM API version, each KVM
capability and limit the runtime uses, whether this host is itself a virtual
machine and what virtualization it shows (vmx/svm, hypervisor, kvm-pvm),
vm.max_map_count and RLIMIT_MEMLOCK, /dev/net/tun (only virtio_net's TAP
devices need it: never ✗), and (for information) the tools the tests use: gcc,
iasl, nvim, lz4, qemu-system-x86_64.

Options:
  --machine NAME       check only this machine of FILE
  --format human|json  output style (default human); json: {"version": 1,
                       "ok", "machines", "checks": [{"id", "status", "title",
                       "hint"?}]}, status one of ok, fail, warn, info
  -h, --help           show this help

Marks: ✓ fine, ✗ stops 'vmdesc boot', ! stops some machines, · for information.
Exit status: 0 'vmdesc boot' can work here, 1 it cannot (or FILE has errors),
2 usage error or an unreadable FILE.
`;

const MARK: Record<Status, string> = { ok: "✓", fail: "✗", warn: "!", info: "·" };
const COLOR: Record<Status, string> = { ok: "32", fail: "1;31", warn: "33", info: "2" };

export function renderHuman(report: Report, color: boolean): string {
  const paint = (s: Status, text: string) => color ? `\x1b[${COLOR[s]}m${text}\x1b[0m` : text;
  const line = (c: Check) =>
    `${paint(c.status, MARK[c.status])} ${c.title}\n${c.hint ? `  = help: ${c.hint}\n` : ""}`;
  const verdict = report.ok
    ? paint("ok", "✓ vmdesc boot can work on this host")
    : paint("fail", "✗ vmdesc boot cannot work on this host (see ✗ above)");
  const against = report.machines.length ? ` (for ${report.machines.join(", ")})` : "";
  return `vmdesc doctor${against}\n${report.checks.map(line).join("")}${verdict}\n`;
}

export async function run(args: string[]): Promise<number> {
  const parsed = startCommand(
    "doctor",
    args,
    { format: { type: "string" }, machine: { type: "string" } },
    HELP,
  );
  if (typeof parsed === "number") return parsed;
  const format = (parsed.flags.format as string | undefined) ?? "human";
  if (format !== "human" && format !== "json") {
    return usageError(
      { message: `unknown format '${format}'`, hint: "use --format human or --format json" },
      "doctor",
    );
  }
  if (parsed.positionals.length > 1) {
    return usageError(
      { message: "doctor takes at most one file", hint: "vmdesc doctor [FILE]" },
      "doctor",
    );
  }
  const machine = parsed.flags.machine as string | undefined;
  if (machine !== undefined && parsed.positionals.length === 0) {
    return usageError(
      { message: "--machine needs a FILE", hint: "vmdesc doctor FILE --machine NAME" },
      "doctor",
    );
  }
  // The compiler is loaded only for FILE: the host checks alone stay quick.
  const plans = [];
  if (parsed.positionals.length === 1) {
    const file = parsed.positionals[0];
    const host = new DenoHost();
    const input = await readInput(file, host);
    if ("error" in input) {
      reportUnreadable(file, input.error);
      return 2;
    }
    const { compile } = await import("../lang/compile.ts");
    const { withOhmOnDemand } = await import("../lang/ohm_on_demand.ts");
    const result = await withOhmOnDemand(() =>
      compile(input.text, { file: input.name, host, machine })
    );
    if (result.diagnostics.some((d) => d.severity === "error")) {
      await printDiagnostics(result.diagnostics, host.source);
      return 1;
    }
    plans.push(...[...result.plans.values()].filter((p) => !machine || p.machine === machine));
  }
  const { diagnose } = await import("./doctor_checks.ts");
  const report = diagnose(plans);
  out(
    format === "json"
      ? JSON.stringify(report, null, 2) + "\n"
      : renderHuman(report, useColor(Deno.stdout)),
  );
  return report.ok ? 0 : 1;
}
