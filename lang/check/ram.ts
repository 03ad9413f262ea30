/**
 * The machine's RAM: explicit `ram` ranges (page aligned, named ram-0.. in address order)
 * and `memory` (split around the hole like QEMU q35 and Firecracker, or filled into the
 * explicit ranges in order), with E0401 (none), E0208 (does not fit) and W0003 (not a
 * multiple of 2 MiB).
 */
import type * as A from "../ast.ts";
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error, warning } from "../diagnostics/make.ts";
import { type EvalContext, hex, humanSize } from "../program.ts";
import {
  DEFAULT_LOW_RAM_LIMIT,
  FOUR_GIB,
  MACHINE_PROPS,
  MiB,
  PAGE,
  STRUCTURED_SETTINGS,
} from "../specs.ts";
import { suggest } from "../suggest.ts";
import { MAX_GUEST_PHYS } from "../../plan/types.ts";
import type { RamRange, ResolvedHole } from "./model.ts";
import type { Merged } from "./merge.ts";
import { checkPage, evalRange, type TypedValue } from "./values.ts";

const MAX_PHYS = BigInt(MAX_GUEST_PHYS);
/** The names a machine-level setting can have, for "did you mean". */
const MACHINE_SETTING_NAMES = [...Object.keys(MACHINE_PROPS), ...STRUCTURED_SETTINGS];

export function resolveRam(
  m: Merged,
  memory: TypedValue | undefined,
  hole: ResolvedHole | null,
  ctx: EvalContext,
  nameSpan: Span,
  where: string,
  diags: Diags,
): RamRange[] {
  const explicit: RamRange[] = [];
  for (const p of m.ram) {
    const r = evalRange(p.value, ctx, "`ram`");
    if (!r) continue;
    const v = p.value as A.RangeExpr;
    checkPage(r.base, v.left.span, "the RAM start", diags, v.left);
    if (v.form === "to") checkPage(r.base + r.size, v.right.span, "the RAM end", diags, v.right);
    else checkPage(r.size, v.right.span, "the RAM size", diags, v.right);
    explicit.push({ name: "", base: r.base, size: r.size, span: p.value.span });
  }
  explicit.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  explicit.forEach((r, i) => (r.name = `ram-${i}`));
  const total = memory ? (memory.value as bigint) : null;
  if (total === null && explicit.length === 0) {
    // `memroy 128 MiB` is reported as the misspelling (E0302), not again as no memory.
    const meant = [...m.props.keys()].some((k) =>
      !(k in MACHINE_PROPS) && ["memory", "ram"].includes(suggest(k, MACHINE_SETTING_NAMES) ?? "")
    );
    if (m.ram.length === 0 && !m.props.has("memory") && !meant) {
      diags.push(
        error(
          "E0401",
          `${where} has no memory`,
          nameSpan,
          "add `memory 128 MiB` (or explicit `ram` ranges)",
        ),
      );
    }
    return [];
  }
  if (total !== null) {
    if (total === 0n) {
      diags.push(
        error(
          "E0401",
          `${where} has 0 bytes of memory`,
          memory!.span,
          "give it some RAM, e.g. `memory 128 MiB`",
        ),
      );
      return [];
    }
    checkPage(total, memory!.span, "the memory size", diags);
    if (total % (2n * MiB) !== 0n && total % PAGE === 0n) {
      diags.push(
        warning(
          "W0003",
          `memory ${humanSize(total)} is not a multiple of 2 MiB`,
          memory!.span,
          "guests map RAM with 2 MiB pages; round to a multiple of 2 MiB",
        ),
      );
    }
  }
  for (const r of explicit) {
    if (r.size % (2n * MiB) !== 0n && r.size % PAGE === 0n) {
      diags.push(
        warning(
          "W0003",
          `the RAM range of ${humanSize(r.size)} is not a multiple of 2 MiB`,
          r.span,
          "guests map RAM with 2 MiB pages",
        ),
      );
    }
  }
  if (explicit.length === 0) {
    // Split around the hole like QEMU q35 and Firecracker: below it, then from 4 GiB.
    const limit = hole ? hole.base : DEFAULT_LOW_RAM_LIMIT;
    const low = total! < limit ? total! : limit;
    const out: RamRange[] = [];
    if (low > 0n) out.push({ name: "ram-low", base: 0n, size: low, span: memory!.span });
    const high = total! - low;
    if (high > 0n) {
      if (FOUR_GIB + high > MAX_PHYS) {
        diags.push(
          error(
            "E0208",
            `memory ${humanSize(total!)} does not fit: RAM above 4 GiB would end at ${
              hex(FOUR_GIB + high)
            }`,
            memory!.span,
            "the guest-physical address space ends at 4 PiB (52 bits)",
          ),
        );
        return out;
      }
      out.push({ name: "ram-high", base: FOUR_GIB, size: high, span: memory!.span });
    }
    return out;
  }
  if (total === null) return explicit;
  // `memory` with explicit ranges: fill the ranges in address order.
  const capacity = explicit.reduce((s, r) => s + r.size, 0n);
  if (total > capacity) {
    diags.push(
      error(
        "E0208",
        `memory ${humanSize(total)} does not fit in the ${explicit.length} RAM range(s) given (${
          humanSize(capacity)
        })`,
        memory!.span,
        "make the `ram` ranges larger or the memory smaller",
        explicit.map((r) => ({ span: r.span, message: `${humanSize(r.size)} here` })),
      ),
    );
    return explicit;
  }
  let left = total;
  const out: RamRange[] = [];
  for (const r of explicit) {
    if (left === 0n) break;
    const size = r.size < left ? r.size : left;
    out.push({ ...r, size });
    left -= size;
  }
  return out;
}
