/**
 * Virtio devices, on either transport: the settings both share (a disk's `file`, `readonly`
 * and `serial`), and the Plan entry each becomes (`VirtioPlan`: device type, queue sizes,
 * transport layout, backing). The PCI resolver (pci.ts) and the device resolver
 * (devices.ts) call in here; where virtio-mmio devices go is lang/placement.ts's
 * business, checked by checkVirtioMmio below.
 *
 * A disk image that is not there is W0008 (checking a machine needs no disk; booting it
 * does, and then it is E1018); a serial longer than GET_ID can answer is E0304.
 *
 * A network device: a TAP name Linux would refuse is E0220, a MAC that is not six hex
 * pairs E0221, a multicast or all-zero one E0222; two network devices on one TAP is E0223
 * (the second open would fail at boot), two with one MAC W0010. Without `mac`, the
 * address is derived from the machine's and the device's names (`generatedMac`), so it is
 * the same on every boot and differs between the devices of a machine.
 */
import type { Span } from "../diagnostics/types.ts";
import { type Diags, error, warning } from "../diagnostics/make.ts";
import type { LangHost } from "../program.ts";
import {
  BOOT_LAYOUT,
  TAP_NAME_MAX,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_KINDS,
  VIRTIO_PCI_BAR,
} from "../specs.ts";
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
  /** "machine/device": what a generated MAC is derived from (network devices). */
  identity = "",
): VirtioBacking | null {
  if (kind === "virtio_rng") return { kind: "getrandom" };
  // Its output and input are console settings (lang/check/console.ts), in `props`.
  if (kind === "virtio_console") return { kind: "console" };
  if (kind === "virtio_net") return resolveTap(v, identity, diags);
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

// ── network devices ──────────────────────────────────────────────────────

/** Where a network device's settings were written, for the checks across devices. */
const NET_SPANS = new WeakMap<VirtioBacking, { tap: Span; mac: Span | null }>();

/** Why Linux would refuse `name` as an interface name (dev_valid_name), or null. */
function tapNameProblem(name: string): string | null {
  if (name === "") return "the TAP device name is empty";
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > TAP_NAME_MAX) {
    return `the TAP device name \`${name}\` is ${bytes} bytes; Linux allows at most ${TAP_NAME_MAX}`;
  }
  if (name === "." || name === "..") return `\`${name}\` is not a valid interface name`;
  if (/[/:\s]/.test(name)) {
    return `the TAP device name \`${name}\` has a \`/\`, \`:\` or white space, which Linux refuses`;
  }
  return null;
}

/** "52:54:00:12:34:56" (either case) as six bytes, or null. */
export function parseMac(text: string): number[] | null {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) return null;
  return text.split(":").map((h) => parseInt(h, 16));
}

export function formatMac(bytes: readonly number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * The MAC a network device gets without `mac`: QEMU's 52:54:00 prefix (locally
 * administered, unicast) and three bytes of the FNV-1a hash of "machine/device", so the
 * guest sees the same address on every boot (DHCP leases and neighbour tables stay valid)
 * and two devices of a machine differ.
 */
export function generatedMac(identity: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(identity)) {
    h = Math.imul(h ^ b, 0x01000193) >>> 0;
  }
  return formatMac([0x52, 0x54, 0x00, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff]);
}

function resolveTap(v: PropValues, identity: string, diags: Diags): VirtioBacking | null {
  const tapV = v.get("tap");
  if (!tapV) return null; // E0303 from evalProps
  const tap = tapV.value as string;
  const problem = tapNameProblem(tap);
  if (problem) {
    diags.push(
      error(
        "E0220",
        problem,
        tapV.span,
        `name the host TAP device with 1 to ${TAP_NAME_MAX} bytes and no \`/\`, \`:\` or spaces, e.g. \`tap "vm0"\``,
      ),
    );
    return null;
  }
  const macV = v.get("mac");
  let mac = generatedMac(identity);
  if (macV) {
    const text = macV.value as string;
    const bytes = parseMac(text);
    if (!bytes) {
      diags.push(
        error(
          "E0221",
          `\`${text}\` is not a MAC address`,
          macV.span,
          'write six hex byte pairs joined by colons, e.g. `mac "52:54:00:12:34:56"` (or leave `mac` out for one derived from the names)',
        ),
      );
      return null;
    }
    if ((bytes[0] & 1) !== 0 || bytes.every((b) => b === 0)) {
      const fixed = formatMac([(bytes[0] & 0xfe) | 2, ...bytes.slice(1)]);
      diags.push(
        error(
          "E0222",
          (bytes[0] & 1) !== 0
            ? `\`${text}\` is a multicast address (the low bit of its first byte is set); a network card's own address is unicast`
            : "the all-zero MAC address is not a valid station address",
          macV.span,
          bytes.every((b) => b === 0)
            ? 'use a locally administered unicast address such as `mac "52:54:00:12:34:56"`'
            : `clear the low bit of the first byte: \`mac "${fixed}"\` is locally administered and unicast`,
          [],
          bytes.every((b) => b === 0)
            ? undefined
            : [{ title: `change to "${fixed}"`, span: macV.span, replacement: `"${fixed}"` }],
        ),
      );
      return null;
    }
    mac = formatMac(bytes);
  }
  const backing: VirtioBacking = { kind: "tap", tap, mac };
  NET_SPANS.set(backing, { tap: tapV.span, mac: macV?.span ?? null });
  return backing;
}

/**
 * The network devices of one machine against each other: one TAP each (E0223: a TAP
 * without multiqueue takes one open, so the second device could not attach), one MAC each
 * (W0010: frames for the one address would reach only one of them).
 */
export function checkNetworks(backings: readonly (VirtioBacking | undefined)[], diags: Diags) {
  const taps = new Map<string, Span>();
  const macs = new Map<string, Span>();
  for (const b of backings) {
    if (b?.kind !== "tap") continue;
    const spans = NET_SPANS.get(b);
    if (!spans) continue;
    const tapFirst = taps.get(b.tap);
    if (tapFirst) {
      diags.push(
        error(
          "E0223",
          `two network devices on the TAP device \`${b.tap}\``,
          spans.tap,
          "a TAP device takes one network device: give this one a TAP of its own",
          [{ span: tapFirst, message: "the first device on it" }],
        ),
      );
    } else taps.set(b.tap, spans.tap);
    const macFirst = macs.get(b.mac);
    if (macFirst) {
      diags.push(
        warning(
          "W0010",
          `two network devices with the MAC address ${b.mac}`,
          spans.mac ?? spans.tap,
          "frames for one address reach only one device: give each its own `mac`",
          [{ span: macFirst, message: "the first device with it" }],
        ),
      );
    } else macs.set(b.mac, spans.mac ?? spans.tap);
  }
}
