/**
 * What the Plan must fit, checked with the very placement lowering uses (lang/placement.ts):
 * KVM's number of memslots (E0209) and the BAR windows (E0214). It runs last, on a machine
 * that is otherwise free of errors, because both need its final RAM, hole and ECAM window;
 * afterwards lowering only places and cannot fail.
 */
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error } from "../diagnostics/make.ts";
import { hex, humanSize } from "../program.ts";
import { KVM_USER_MEM_SLOTS } from "../specs.ts";
import { barWindows, memslotCount, placeBars } from "../placement.ts";
import type { RamRange, ResolvedDevice, ResolvedHole, ResolvedPci } from "./model.ts";

export function checkFit(
  ram: RamRange[],
  hole: ResolvedHole | null,
  pci: ResolvedPci[],
  devices: ResolvedDevice[],
  machineSpan: Span,
  diags: Diags,
) {
  const memslots = memslotCount(ram, hole);
  if (memslots > KVM_USER_MEM_SLOTS) {
    diags.push(
      error(
        "E0209",
        `this machine needs ${memslots} memslots; KVM allows ${KVM_USER_MEM_SLOTS}`,
        machineSpan,
        "merge adjacent `ram` ranges (each range is one memslot)",
      ),
    );
  }
  if (!hole) return; // functions without a hole are E0216 already
  for (const { f, b, window: w } of placeBars(pci, barWindows(ram, hole, devices)).misfits) {
    diags.push(
      error(
        "E0214",
        `BAR ${b.index} of ${f.bdf} (${humanSize(b.size)}) does not fit in the ${b.kind} window${
          w ? ` ${hex(w.base)} .. ${hex(w.base + w.size)}` : ""
        }`,
        b.span,
        "make the BARs smaller or the PCI hole larger",
      ),
    );
  }
}
