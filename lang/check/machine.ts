/**
 * Machine-wide settings: the vCPU count (1 to MAX_CPUS, E0403), ACPI on or off, and the
 * CPU features `cpuid { hide ... }` names (Linux /proc/cpuinfo names from plan/cpuid.ts,
 * E0304 with a suggestion for an unknown one).
 */
import type * as A from "../ast.ts";
import { type Diags, error } from "../diagnostics/make.ts";
import { CPUID_FEATURES, MAX_CPUS } from "../specs.ts";
import { suggest } from "../suggest.ts";
import type { TypedValue } from "./values.ts";

/** The vCPU count (1 when not given or out of range, which is reported). */
export function resolveCpus(cpus: TypedValue | undefined, diags: Diags): number {
  if (!cpus) return 1;
  const n = cpus.value as bigint;
  if (n < 1n || n > BigInt(MAX_CPUS)) {
    diags.push(
      error(
        "E0403",
        `${n} vCPUs is out of range`,
        cpus.span,
        `a machine has 1 to ${MAX_CPUS} vCPUs`,
      ),
    );
    return 1;
  }
  return Number(n);
}

/** Whether the machine wants ACPI tables (`acpi off` says no; the boot protocol decides too). */
export function acpiWanted(acpi: TypedValue | undefined): boolean {
  return acpi ? acpi.value !== false : true;
}

/** The features to hide, each once, in the order first named. */
export function resolveCpuid(features: A.Ident[], diags: Diags): string[] {
  const hide: string[] = [];
  for (const f of features) {
    if (!CPUID_FEATURES.includes(f.name)) {
      const s = suggest(f.name, CPUID_FEATURES);
      diags.push(
        error(
          "E0304",
          `\`${f.name}\` is not a CPU feature vmdesc knows`,
          f.span,
          s
            ? `did you mean \`${s}\`? (Linux /proc/cpuinfo names)`
            : "use a Linux /proc/cpuinfo flag name such as cx16 or x2apic",
          [],
          s ? [{ title: `change to \`${s}\``, span: f.span, replacement: s }] : undefined,
        ),
      );
    } else if (!hide.includes(f.name)) hide.push(f.name);
  }
  return hide;
}
