/**
 * Virtio devices, on either transport: the settings both share (a disk's `file`, `readonly`
 * and `serial`), and the Plan entry each becomes (`VirtioPlan`: device type, queue sizes,
 * transport layout, backing). The PCI resolver (pci.ts) and the device resolver
 * (devices.ts) call in here; where virtio-mmio devices go is lang/placement.ts's
 * business, checked by checkVirtioMmio below.
 *
 * A disk image that is not there is W0008 (checking a machine needs no disk; booting it
 * does, and then it is E1018); a serial longer than GET_ID can answer is E0304.
 */
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error, warning } from "../diagnostics/make.ts";
import type { LangHost } from "../program.ts";
import { BOOT_LAYOUT, VIRTIO_BLK_ID_BYTES, VIRTIO_KINDS, VIRTIO_PCI_BAR } from "../specs.ts";
import type { VirtioBacking, VirtioPlan, VirtioTransportPlan } from "../../plan/types.ts";
import type { ResolvedBar, ResolvedBoot, ResolvedDevice } from "./model.ts";
import { finalCmdline } from "../placement.ts";
import { rebaseOnMain } from "./paths.ts";
import type { PropValues } from "./values.ts";

export function isVirtioKind(kind: string): boolean {
  return Object.hasOwn(VIRTIO_KINDS, kind);
}

/**
 * The backing of a virtio device from its evaluated settings, or null when a setting it
 * needs is missing or wrong (already reported by evalProps, or reported here).
 */
export function resolveBacking(
  kind: string,
  v: PropValues,
  host: LangHost,
  mainFile: string,
  diags: Diags,
): VirtioBacking | null {
  if (kind === "virtio_rng") return { kind: "getrandom" };
  // Its output and input are console settings (lang/check/console.ts), in `props`.
  if (kind === "virtio_console") return { kind: "console" };
  const file = v.get("file");
  if (!file) return null; // E0303 from evalProps
  const path = file.value as string;
  if (path === "" || path.endsWith("/")) {
    diags.push(
      error(
        "E0304",
        path === ""
          ? "the disk image path is empty"
          : `the disk image \`${path}\` names a directory`,
        file.span,
        'name the raw image file, e.g. `file "disk.img"` (create one with `truncate -s 64M disk.img`)',
      ),
    );
    return null;
  }
  // Relative to the file that wrote it (a string constant's own file, if it came from one).
  const origin = file.origin ?? file.span.file;
  const resolved = path.startsWith("/") ? path : host.resolve(origin, path);
  if (!host.fileExists(resolved)) {
    diags.push(
      warning(
        "W0008",
        `the disk image \`${path}\` was not found`,
        file.span,
        `looked for ${resolved}; paths are relative to this file. Create it before booting (e.g. \`truncate -s 64M ${path}\`)`,
      ),
    );
  }
  const serialV = v.get("serial");
  const serial = (serialV?.value as string | undefined) ?? "";
  const bytes = new TextEncoder().encode(serial).length;
  if (serialV && bytes > VIRTIO_BLK_ID_BYTES) {
    diags.push(
      error(
        "E0304",
        `the serial is ${bytes} bytes; a virtio disk's ID holds at most ${VIRTIO_BLK_ID_BYTES}`,
        serialV.span,
        `shorten it to ${VIRTIO_BLK_ID_BYTES} bytes (GET_ID answers ${VIRTIO_BLK_ID_BYTES} bytes, NUL-padded)`,
      ),
    );
    return null;
  }
  return {
    kind: "file",
    path: rebaseOnMain(host, mainFile, origin, path),
    readonly: (v.get("readonly")?.value as boolean | undefined) ?? false,
    serial,
  };
}

/** The modern PCI transport: everything in the function's one BAR (specs VIRTIO_PCI_BAR). */
export function pciTransport(kind: string): VirtioTransportPlan {
  const b = VIRTIO_PCI_BAR;
  const queues = VIRTIO_KINDS[kind].queueSizes.length;
  return {
    kind: "pci",
    bar: b.index,
    common_cfg: { ...b.common_cfg },
    isr_cfg: { ...b.isr_cfg },
    device_cfg: { ...b.device_cfg },
    notify_cfg: { ...b.notify_cfg },
    notify_off_multiplier: b.notify_off_multiplier,
    // One vector for configuration changes, one per queue (what Linux asks for first).
    msix: { vectors: queues + 1, table: { ...b.msix_table }, pba: { ...b.msix_pba } },
  };
}

/** The BAR a virtio PCI function brings: 32-bit by default, 64-bit with `mmio64 on`. */
export function virtioBar(mmio64: boolean, span: Span): ResolvedBar {
  return {
    index: VIRTIO_PCI_BAR.index,
    kind: mmio64 ? "mem64" : "mem32",
    size: VIRTIO_PCI_BAR.size,
    // The registers have read side effects (the ISR byte clears when read).
    prefetchable: false,
    span,
  };
}

export function virtioPlan(
  kind: string,
  transport: VirtioTransportPlan,
  backing: VirtioBacking,
): VirtioPlan {
  const spec = VIRTIO_KINDS[kind];
  return {
    device_type: spec.deviceType,
    queue_sizes: [...spec.queueSizes],
    transport,
    backing,
  };
}

/**
 * What the appended `virtio_mmio.device=` words do to the command line: it must still fit
 * (E0502, at the boot line).
 */
export function checkVirtioCmdline(
  boot: ResolvedBoot,
  devices: readonly ResolvedDevice[],
  acpi: boolean,
  diags: Diags,
) {
  const full = finalCmdline(boot, devices, acpi);
  if (full === boot.cmdline) return;
  if (full.length + 1 > BOOT_LAYOUT.cmdline_max) {
    diags.push(
      error(
        "E0502",
        `with the virtio-mmio devices appended, the command line is ${full.length} bytes; at most ${
          BOOT_LAYOUT.cmdline_max - 1
        } fit`,
        boot.span,
        "without ACPI the guest learns each virtio-mmio device from a `virtio_mmio.device=` word on the command line: shorten the command line, or turn ACPI on",
      ),
    );
  }
}
