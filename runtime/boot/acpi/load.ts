/**
 * Writes the Plan's ACPI tables into guest memory, for every loader that hands the guest
 * an RSDP (PVH's start info, Linux's zero page). A Plan the builder refuses is E1006.
 */
import { RuntimeError } from "../../errors.ts";
import { type BootContext, requireRam } from "../mod.ts";
import { AcpiPlanError, buildAcpi } from "./mod.ts";

/** The RSDP's guest address, or 0 when the Plan has no ACPI. */
export function loadAcpi(ctx: BootContext): number {
  const { plan, memory } = ctx;
  if (plan.acpi === null) return 0;
  try {
    const acpi = buildAcpi(plan);
    for (const blob of acpi.blobs) {
      requireRam(memory, blob.addr, blob.bytes.length, "ACPI table");
      memory.write(blob.addr, blob.bytes);
    }
    return acpi.rsdpAddr;
  } catch (e) {
    if (e instanceof AcpiPlanError) throw new RuntimeError("E1006", e.message, e.hint);
    throw e;
  }
}
