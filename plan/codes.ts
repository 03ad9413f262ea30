/**
 * Every diagnostic code vmdesc can report, in one table (TypeScript-style). It lives in
 * `plan/` because both sides of the seam raise codes from it: `lang/` its diagnostics,
 * `runtime/` its RuntimeErrors, `cli/` its usage errors.
 *
 * Codes are stable: never reuse or renumber one. E = error, W = warning.
 * E00xx syntax and literals, E01xx names/imports/machines, E02xx layout,
 * E03xx devices and properties, E04xx machine-level requirements, E05xx boot payload,
 * E1xxx runtime (host, KVM, payload loading) — those are raised by `runtime/` — and
 * E2xxx command line (usage, files the CLI reads or writes) — raised by `cli/`; both are
 * listed here so `vmdesc explain` and docs/diagnostics.md cover every code in one place.
 * W0xxx warnings for legal but suspicious setups.
 *
 * The long explanation of each code (meaning, example, fix) lives in docs/diagnostics.md
 * under a heading `## CODE: title`; `vmdesc explain CODE` prints that section.
 */
/** How bad a diagnostic is. */
export type Severity = "error" | "warning" | "info";

export interface CodeInfo {
  severity: Severity;
  title: string;
}

export const CODES = {
  // ── syntax and literals ──────────────────────────────────────────────
  E0001: { severity: "error", title: "syntax error" },
  E0002: { severity: "error", title: "invalid literal" },
  E0003: { severity: "error", title: "integer overflow" },
  E0004: { severity: "error", title: "division by zero" },
  E0005: { severity: "error", title: "type mismatch" },
  // ── names, imports, machines ─────────────────────────────────────────
  E0101: { severity: "error", title: "undefined name" },
  E0102: { severity: "error", title: "duplicate definition" },
  E0103: { severity: "error", title: "import cycle" },
  E0104: { severity: "error", title: "import not found" },
  E0105: { severity: "error", title: "unknown machine" },
  E0106: { severity: "error", title: "extends cycle" },
  // ── layout ───────────────────────────────────────────────────────────
  E0201: { severity: "error", title: "overlapping regions" },
  E0202: { severity: "error", title: "overlapping I/O ports" },
  E0203: { severity: "error", title: "IRQ conflict" },
  E0204: { severity: "error", title: "duplicate PCI address" },
  E0205: { severity: "error", title: "ECAM window misaligned" },
  E0206: { severity: "error", title: "ECAM window outside the PCI hole" },
  E0207: { severity: "error", title: "range not page aligned" },
  E0208: { severity: "error", title: "RAM does not fit" },
  E0209: { severity: "error", title: "too many memslots" },
  E0210: { severity: "error", title: "invalid bus range" },
  E0211: { severity: "error", title: "empty or inverted range" },
  E0212: { severity: "error", title: "address beyond the physical address space" },
  E0213: { severity: "error", title: "invalid PCI address" },
  E0214: { severity: "error", title: "invalid BAR" },
  E0215: { severity: "error", title: "PCI function outside the ECAM bus range" },
  E0216: { severity: "error", title: "PCI function without a PCI hole" },
  E0220: { severity: "error", title: "invalid TAP device name" },
  E0221: { severity: "error", title: "invalid MAC address" },
  E0222: { severity: "error", title: "MAC address not unicast" },
  E0223: { severity: "error", title: "TAP device used twice" },
  E0230: { severity: "error", title: "stdin taken by two devices" },
  // ── devices and properties ───────────────────────────────────────────
  E0301: { severity: "error", title: "unknown device kind" },
  E0302: { severity: "error", title: "unknown property" },
  E0303: { severity: "error", title: "missing required property" },
  E0304: { severity: "error", title: "invalid property value" },
  E0305: { severity: "error", title: "duplicate setting" },
  E0306: { severity: "error", title: "duplicate device name" },
  // ── machine-level requirements ───────────────────────────────────────
  E0401: { severity: "error", title: "no memory" },
  E0402: { severity: "error", title: "no boot payload" },
  E0403: { severity: "error", title: "vCPU count out of range" },
  E0404: { severity: "error", title: "no machine" },
  // ── boot payload ─────────────────────────────────────────────────────
  E0501: { severity: "error", title: "boot payload not readable" },
  E0502: { severity: "error", title: "invalid boot option" },
  // ── runtime (raised by runtime/) ─────────────────────────────────────
  E1001: { severity: "error", title: "/dev/kvm not found" },
  E1002: { severity: "error", title: "permission denied on /dev/kvm" },
  E1003: { severity: "error", title: "KVM API version mismatch" },
  E1004: { severity: "error", title: "missing KVM capability" },
  E1005: { severity: "error", title: "KVM call failed" },
  E1006: { severity: "error", title: "invalid Plan" },
  E1010: { severity: "error", title: "boot payload missing" },
  E1011: { severity: "error", title: "boot payload truncated" },
  E1012: { severity: "error", title: "not a PVH ELF" },
  E1013: { severity: "error", title: "not a bzImage" },
  E1014: { severity: "error", title: "boot protocol too old" },
  E1015: { severity: "error", title: "initrd does not fit" },
  E1016: { severity: "error", title: "payload does not fit in guest RAM" },
  E1017: { severity: "error", title: "serial output file cannot be opened" },
  E1018: { severity: "error", title: "disk image cannot be opened" },
  E1040: { severity: "error", title: "no TUN/TAP support" },
  E1041: { severity: "error", title: "TAP device refused" },
  E1042: { severity: "error", title: "name taken by a non-TAP interface" },
  E1050: { severity: "error", title: "stdin given to two devices in the Plan" },
  E1030: { severity: "error", title: "control socket in use" },
  E1031: { severity: "error", title: "control socket cannot be created" },
  E1070: { severity: "error", title: "no such disk" },
  E1071: { severity: "error", title: "disk swap needs a paused machine" },
  E1072: { severity: "error", title: "read-only disk cannot take a writable image" },
  E1073: { severity: "error", title: "disk swap not taken by the device" },
  // ── command line (raised by cli/) ────────────────────────────────────
  E2001: { severity: "error", title: "usage error" },
  E2002: { severity: "error", title: "cannot read an input file" },
  E2003: { severity: "error", title: "cannot write an output file" },
  E2004: { severity: "error", title: "cannot reach a machine's control socket" },
  // ── warnings ─────────────────────────────────────────────────────────
  W0001: { severity: "warning", title: "trap strategy with a large ECAM window" },
  W0002: { severity: "warning", title: "no serial device" },
  W0003: { severity: "warning", title: "RAM not a multiple of 2 MiB" },
  W0004: { severity: "warning", title: "ECAM bus range much larger than used" },
  W0005: { severity: "warning", title: "unused constant" },
  W0006: { severity: "warning", title: "boot payload not found" },
  W0007: { severity: "warning", title: "setting overridden in the same block" },
  W0008: { severity: "warning", title: "disk image not found" },
  W0010: { severity: "warning", title: "MAC address used twice" },
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;

/** The codes `runtime/` raises (E1xxx). */
export type RuntimeCode = Extract<Code, `E1${string}`>;

export function isKnownCode(code: string): code is Code {
  return Object.hasOwn(CODES, code);
}
