/**
 * The virtio PCI transport, modern only (virtio 1.2, 4.1): device ID 0x1040 + type,
 * revision 1, no legacy I/O BAR. The Plan places one memory BAR and says where in it each
 * structure lives (`VirtioPciTransport`); the function's config space (built by the PCI host
 * bridge, runtime/devices/pci_host/) carries the capabilities that point there:
 *
 *   vendor caps (0x09): COMMON_CFG, NOTIFY_CFG (+ notify_off_multiplier), ISR_CFG,
 *                       DEVICE_CFG (only when the device has a configuration), PCI_CFG
 *                       (the config-space window onto the BAR)
 *   MSI-X (0x11):       table and pending bits in the same BAR
 *
 * Interrupts: MSI-X through `ctx.signalMsi` (KVM_SIGNAL_MSI) when the driver enabled it,
 * with per-vector masking and pending bits; otherwise INTx: the ISR byte, the config
 * space's Interrupt Status bit and the IOAPIC line of the function's pin (level, until the
 * driver reads the ISR byte), unless the driver set Interrupt Disable.
 *
 * The BAR is decoded only while the command register's Memory Space bit is on (reads then
 * return all-ones, writes are dropped), and the device touches guest memory only while Bus
 * Master is on (a notify without it is ignored and counted), as a PCI device must. The
 * BAR stays at the Plan's address (the host bridge refuses to move it).
 *
 * PCI_CFG reads: the host bridge serves config reads from its bytes, without an exit under
 * the `shadow` strategy, so the window's data field is filled when the driver writes the
 * window's bar/offset/length (a read with side effects, the ISR byte, happens then).
 */
import type {
  AccessSize,
  DeviceContext,
  PciCapability,
  PciConfigAccess,
  PciFunctionDevice,
  PciFunctionFactory,
} from "../device.ts";
import type { PciFunctionPlan, Plan, VirtioPciTransport } from "../../../plan/types.ts";
import { invalidPlan } from "../errors.ts";
import { backendHooks, type VirtioBackend, VirtioCore, type VirtioInterrupts } from "./core.ts";
import type { SplitQueue } from "./queue.ts";
import { COMMON, INT_CONFIG_CHANGE, INT_USED_BUFFER, NO_VECTOR, PCI_CAP } from "./spec.ts";
import { type BackendFactory, checkQueueSizes } from "./backend.ts";
import { MsixTable } from "./msix.ts";

const CAP_VENDOR = 0x09;
const CAP_MSIX = 0x11;
const COMMAND_MEMORY = 0x2;
const COMMAND_MASTER = 0x4;
const COMMAND_INTX_DISABLE = 0x400;
const STATUS_INTERRUPT = 0x08;
const MSIX_ENABLE = 0x8000;
const MSIX_MASK_ALL = 0x4000;

/** The fields of struct virtio_pci_common_cfg: [offset, size]. */
const COMMON_FIELDS: [number, number][] = [
  [COMMON.DEVICE_FEATURE_SELECT, 4],
  [COMMON.DEVICE_FEATURE, 4],
  [COMMON.DRIVER_FEATURE_SELECT, 4],
  [COMMON.DRIVER_FEATURE, 4],
  [COMMON.CONFIG_MSIX_VECTOR, 2],
  [COMMON.NUM_QUEUES, 2],
  [COMMON.DEVICE_STATUS, 1],
  [COMMON.CONFIG_GENERATION, 1],
  [COMMON.QUEUE_SELECT, 2],
  [COMMON.QUEUE_SIZE, 2],
  [COMMON.QUEUE_MSIX_VECTOR, 2],
  [COMMON.QUEUE_ENABLE, 2],
  [COMMON.QUEUE_NOTIFY_OFF, 2],
  [COMMON.QUEUE_DESC, 4],
  [COMMON.QUEUE_DESC + 4, 4],
  [COMMON.QUEUE_DRIVER, 4],
  [COMMON.QUEUE_DRIVER + 4, 4],
  [COMMON.QUEUE_DEVICE, 4],
  [COMMON.QUEUE_DEVICE + 4, 4],
  [COMMON.QUEUE_NOTIFY_DATA, 2],
  [COMMON.QUEUE_RESET, 2],
];
/** Field start by byte offset (for reads of any width). */
const FIELD_AT = new Int16Array(COMMON.SIZE).fill(-1);
for (const [o, n] of COMMON_FIELDS) for (let i = 0; i < n; i++) FIELD_AT[o + i] = o;

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** struct virtio_pci_cap after (id, next); `extra` follows it (notify multiplier, data). */
function vendorCap(
  type: number,
  bar: number,
  offset: number,
  length: number,
  extra: number[] = [],
): number[] {
  return [16 + extra.length, type, bar, 0, 0, 0, ...le32(offset), ...le32(length), ...extra];
}

/** A region of the BAR, checked against the BAR's size (E1006 otherwise). */
function region(
  fn: PciFunctionPlan,
  what: string,
  r: { offset: number; size: number },
  barSize: number,
) {
  if (r.offset + r.size > barSize) {
    throw invalidPlan(
      `pci ${fn.bdf}: the virtio ${what} (0x${
        r.offset.toString(16)
      } + ${r.size}) passes the end of its ${barSize}-byte BAR`,
      "lower the machine again, or fix virtio.transport in the Plan",
    );
  }
  return { start: r.offset, end: r.offset + r.size };
}

export function virtioPci(makeBackend: BackendFactory): PciFunctionFactory {
  return (fn, ctx, plan) => createVirtioPci(fn, ctx, plan, makeBackend);
}

function createVirtioPci(
  fn: PciFunctionPlan,
  ctx: DeviceContext,
  _plan: Plan,
  makeBackend: BackendFactory,
): PciFunctionDevice {
  const v = fn.virtio;
  if (!v || v.transport.kind !== "pci") {
    throw invalidPlan(
      `pci ${fn.bdf} (${fn.kind}): no virtio PCI transport in its Plan entry`,
      'lower the machine again: virtio functions carry `virtio.transport.kind` "pci"',
    );
  }
  const t: VirtioPciTransport = v.transport;
  const bar = fn.bars.find((b) => b.index === t.bar);
  if (!bar || bar.kind === "io") {
    throw invalidPlan(
      `pci ${fn.bdf}: virtio.transport.bar ${t.bar} is not a memory BAR of the function`,
      "list that BAR (mem32 or mem64) in the function's `bars`",
    );
  }
  checkQueueSizes(`pci ${fn.bdf}`, v);
  const queues = v.queue_sizes.length;
  const common = region(fn, "common configuration", t.common_cfg, bar.size);
  const isr = region(fn, "ISR status", t.isr_cfg, bar.size);
  const device = region(fn, "device configuration", t.device_cfg, bar.size);
  const notify = region(fn, "notify area", t.notify_cfg, bar.size);
  const table = region(fn, "MSI-X table", t.msix.table, bar.size);
  const pba = region(fn, "MSI-X pending bits", t.msix.pba, bar.size);
  const vectors = t.msix.vectors;
  const mult = t.notify_off_multiplier;
  if (
    common.end - common.start < COMMON.SIZE || table.end - table.start < 16 * vectors ||
    pba.end - pba.start < 8 * Math.ceil(vectors / 64) || notify.end - notify.start < mult * queues
  ) {
    throw invalidPlan(
      `pci ${fn.bdf}: a virtio region is too small for ${queues} queue(s) and ${vectors} MSI-X vectors`,
      "lower the machine again, or fix virtio.transport in the Plan",
    );
  }

  const id = fn.bdf;
  const label = `${fn.kind} ${fn.bdf}`;
  const backend: VirtioBackend = makeBackend({ id, label, plan: v, ctx });
  const core = new VirtioCore(label, v, backend, ctx.memory, ctx);

  // ── config space (attached by the host bridge) ──
  let cfg: PciConfigAccess | null = null;
  let pciCfgAt = -1;
  let msixAt = -1;
  const command = () => cfg?.read(0x04, 2) ?? 0;

  // ── MSI-X: the table and pending bits in the BAR (msix.ts) ──
  const msix = new MsixTable(vectors, (address, data) => ctx.signalMsi(address, data));
  let configVector = NO_VECTOR;

  // ── INTx ──
  let isrBits = 0;
  let intxLevel = false;
  const gsi = fn.interrupt_pin > 0 ? fn.irq : null;
  const counters = { intx_asserts: 0, dma_blocked: 0 };

  function updateIntx(): void {
    const requesting = !msix.enabled && isrBits !== 0;
    if (cfg) {
      const st = cfg.read(0x06, 1);
      cfg.set(0x06, 1, requesting ? st | STATUS_INTERRUPT : st & ~STATUS_INTERRUPT);
    }
    const level = requesting && (command() & COMMAND_INTX_DISABLE) === 0 && gsi !== null;
    if (level === intxLevel) return;
    intxLevel = level;
    if (level) counters.intx_asserts++;
    ctx.setIrq(gsi!, level);
  }

  const interrupts: VirtioInterrupts = {
    queue(q: SplitQueue) {
      if (msix.enabled) msix.signal(q.msixVector);
      else {
        isrBits |= INT_USED_BUFFER;
        updateIntx();
      }
    },
    config() {
      if (msix.enabled) msix.signal(configVector);
      else {
        isrBits |= INT_CONFIG_CHANGE;
        updateIntx();
      }
    },
    reset() {
      isrBits = 0;
      configVector = NO_VECTOR;
      updateIntx();
    },
  };
  core.setInterrupts(interrupts);

  // ── the capabilities ──
  const vendor = (body: number[]): PciCapability => ({
    id: CAP_VENDOR,
    body: Uint8Array.from(body),
  });
  const pciCfgCap: PciCapability = (() => {
    // bar, offset, length and the data window are the driver's to write.
    const body = Uint8Array.from(vendorCap(PCI_CAP.PCI_CFG, 0, 0, 0, [0, 0, 0, 0]));
    const wmask = new Uint8Array(body.length);
    wmask[2] = 0xff;
    wmask.fill(0xff, 6, 18);
    return { id: CAP_VENDOR, body, wmask };
  })();
  const msixCap: PciCapability = (() => {
    const body = Uint8Array.from([
      (vectors - 1) & 0xff,
      ((vectors - 1) >> 8) & 0x07,
      ...le32(table.start | t.bar),
      ...le32(pba.start | t.bar),
    ]);
    const wmask = new Uint8Array(body.length);
    wmask[1] = 0xc0; // enable, function mask
    return { id: CAP_MSIX, body, wmask };
  })();
  const deviceCfgLength = Math.min(device.end - device.start, backend.configSize);
  const capabilities: PciCapability[] = [
    vendor(vendorCap(PCI_CAP.COMMON_CFG, t.bar, common.start, common.end - common.start)),
    vendor(
      vendorCap(PCI_CAP.NOTIFY_CFG, t.bar, notify.start, notify.end - notify.start, le32(mult)),
    ),
    vendor(vendorCap(PCI_CAP.ISR_CFG, t.bar, isr.start, isr.end - isr.start)),
    // DEVICE_CFG is required only of a device with a configuration (virtio 1.2, 4.1.4.6),
    // and Linux's virtio_pci refuses a function whose DEVICE_CFG capability has length 0
    // ("bad capability len 0", probe -EINVAL): an entropy device shows none. (QEMU instead
    // gives every device a 4 KiB region that reads as zeros past its configuration.)
    ...(deviceCfgLength > 0
      ? [vendor(vendorCap(PCI_CAP.DEVICE_CFG, t.bar, device.start, deviceCfgLength))]
      : []),
    pciCfgCap,
    msixCap,
  ];

  // ── the BAR ──
  function commonField(o: number): number {
    const q = core.selected;
    switch (o) {
      case COMMON.DEVICE_FEATURE_SELECT:
        return core.deviceFeatureSelect;
      case COMMON.DEVICE_FEATURE:
        return core.deviceFeatureWindow();
      case COMMON.DRIVER_FEATURE_SELECT:
        return core.driverFeatureSelect;
      case COMMON.DRIVER_FEATURE: {
        const s = core.driverFeatureSelect;
        return s > 1 ? 0 : Number((core.driverFeatures >> BigInt(32 * s)) & 0xffff_ffffn);
      }
      case COMMON.CONFIG_MSIX_VECTOR:
        return configVector;
      case COMMON.NUM_QUEUES:
        return queues;
      case COMMON.DEVICE_STATUS:
        return core.status;
      case COMMON.CONFIG_GENERATION:
        return core.configGeneration;
      case COMMON.QUEUE_SELECT:
        return core.queueSelect;
      case COMMON.QUEUE_SIZE:
        return q ? q.size : 0;
      case COMMON.QUEUE_MSIX_VECTOR:
        return q ? q.msixVector : NO_VECTOR;
      case COMMON.QUEUE_ENABLE:
        return q?.ready ? 1 : 0;
      case COMMON.QUEUE_NOTIFY_OFF:
        return q ? q.index : 0;
      case COMMON.QUEUE_DESC:
        return q ? q.descAddr % 2 ** 32 : 0;
      case COMMON.QUEUE_DESC + 4:
        return q ? Math.floor(q.descAddr / 2 ** 32) : 0;
      case COMMON.QUEUE_DRIVER:
        return q ? q.availAddr % 2 ** 32 : 0;
      case COMMON.QUEUE_DRIVER + 4:
        return q ? Math.floor(q.availAddr / 2 ** 32) : 0;
      case COMMON.QUEUE_DEVICE:
        return q ? q.usedAddr % 2 ** 32 : 0;
      case COMMON.QUEUE_DEVICE + 4:
        return q ? Math.floor(q.usedAddr / 2 ** 32) : 0;
      default:
        return 0; // queue_notify_data, queue_reset: features not offered
    }
  }

  function commonRead(o: number, size: AccessSize): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = o + i;
      const start = at < COMMON.SIZE ? FIELD_AT[at] : -1;
      const byte = start < 0 ? 0 : (commonField(start) >>> (8 * (at - start))) & 0xff;
      value = value * 256 + byte;
    }
    return value >>> 0;
  }

  const setAddr = (
    q: SplitQueue,
    which: "descAddr" | "availAddr" | "usedAddr",
    hi: boolean,
    v: number,
  ) => {
    const cur = q[which];
    q[which] = hi
      ? (v >>> 0) * 2 ** 32 + (cur % 2 ** 32)
      : Math.floor(cur / 2 ** 32) * 2 ** 32 + (v >>> 0);
  };

  function commonWrite(o: number, size: AccessSize, value: number): void {
    const start = o < COMMON.SIZE ? FIELD_AT[o] : -1;
    const width = start < 0 ? 0 : COMMON_FIELDS.find(([f]) => f === start)![1];
    if (start !== o || width !== size) {
      core.fault(
        "register_access",
        `a ${size}-byte write at common configuration offset 0x${o.toString(16)}`,
        "ignored",
      );
      return;
    }
    const q = core.selected;
    // Queue settings are the driver's only while the queue is off.
    const queueOpen = q !== null && !q.ready;
    switch (o) {
      case COMMON.DEVICE_FEATURE_SELECT:
        core.deviceFeatureSelect = value >>> 0;
        return;
      case COMMON.DRIVER_FEATURE_SELECT:
        core.driverFeatureSelect = value >>> 0;
        return;
      case COMMON.DRIVER_FEATURE:
        core.writeDriverFeatures(value);
        return;
      case COMMON.CONFIG_MSIX_VECTOR:
        configVector = value < vectors ? value : NO_VECTOR;
        return;
      case COMMON.DEVICE_STATUS:
        core.writeStatus(value);
        return;
      case COMMON.QUEUE_SELECT:
        core.queueSelect = value;
        return;
      case COMMON.QUEUE_SIZE:
        if (queueOpen) q.size = value;
        return;
      case COMMON.QUEUE_MSIX_VECTOR:
        if (q) q.msixVector = value < vectors ? value : NO_VECTOR;
        return;
      case COMMON.QUEUE_ENABLE:
        if (q && value === 1) core.enableQueue(q);
        return;
      case COMMON.QUEUE_DESC:
      case COMMON.QUEUE_DESC + 4:
        if (queueOpen) setAddr(q, "descAddr", o !== COMMON.QUEUE_DESC, value);
        return;
      case COMMON.QUEUE_DRIVER:
      case COMMON.QUEUE_DRIVER + 4:
        if (queueOpen) setAddr(q, "availAddr", o !== COMMON.QUEUE_DRIVER, value);
        return;
      case COMMON.QUEUE_DEVICE:
      case COMMON.QUEUE_DEVICE + 4:
        if (queueOpen) setAddr(q, "usedAddr", o !== COMMON.QUEUE_DEVICE, value);
        return;
    }
  }

  function barRead(off: number, size: AccessSize): number {
    if (off >= common.start && off < common.end) return commonRead(off - common.start, size);
    if (off >= isr.start && off < isr.end) {
      if (off !== isr.start) return 0;
      const v = isrBits;
      isrBits = 0;
      updateIntx();
      return v;
    }
    if (off >= device.start && off < device.end) {
      const o = off - device.start;
      return o + size <= backend.configSize ? backend.readConfig(o, size) : 0;
    }
    if (off >= table.start && off < table.end) return msix.readTable(off - table.start, size);
    if (off >= pba.start && off < pba.end) return msix.readPending(off - pba.start, size);
    return 0;
  }

  function barWrite(off: number, size: AccessSize, value: number): void {
    if (off >= notify.start && off < notify.end) {
      const o = off - notify.start;
      if (o % mult !== 0) return;
      if (!(command() & COMMAND_MASTER)) {
        // A device may not reach memory without Bus Master: nothing is served.
        counters.dma_blocked++;
        core.fault("register_access", "a notify while Bus Master is off", "ignored");
        return;
      }
      core.notify(o / mult);
      return;
    }
    if (off >= common.start && off < common.end) {
      return commonWrite(off - common.start, size, value);
    }
    if (off >= device.start && off < device.end) {
      const o = off - device.start;
      if (o + size <= backend.configSize) backend.writeConfig(o, size, value);
      return;
    }
    if (off >= table.start && off < table.end) {
      return msix.writeTable(off - table.start, size, value);
    }
  }

  const base = bar.address;
  const end = bar.address + bar.size;
  const endpoint = {
    capabilities,
    attach(access: PciConfigAccess) {
      cfg = access;
      pciCfgAt = access.capabilityOffsets[capabilities.indexOf(pciCfgCap)];
      msixAt = access.capabilityOffsets[capabilities.indexOf(msixCap)];
    },
    configWritten(offset: number, size: AccessSize) {
      if (!cfg) return;
      const touches = (at: number, n: number) => offset < at + n && at < offset + size;
      if (touches(msixAt + 2, 2)) {
        const ctl = cfg.read(msixAt + 2, 2);
        const was = msix.enabled;
        msix.enabled = (ctl & MSIX_ENABLE) !== 0;
        msix.masked = (ctl & MSIX_MASK_ALL) !== 0;
        if (was !== msix.enabled) updateIntx();
        msix.flush();
      }
      if (touches(0x04, 2)) updateIntx();
      if (touches(pciCfgAt + 4, 16)) pciCfgAccess(touches(pciCfgAt + 16, 4));
    },
  };

  /** The PCI_CFG window: a write of its data field writes the BAR; else refresh the data. */
  function pciCfgAccess(dataWritten: boolean): void {
    const c = cfg!;
    const barIndex = c.read(pciCfgAt + 4, 1);
    const off = c.read(pciCfgAt + 8, 4);
    const len = c.read(pciCfgAt + 12, 4);
    if (barIndex !== t.bar || (len !== 1 && len !== 2 && len !== 4) || off + len > bar!.size) {
      return;
    }
    if (dataWritten) barWrite(off, len, c.read(pciCfgAt + 16, len));
    else c.set(pciCfgAt + 16, 4, barRead(off, len));
  }

  const dev: PciFunctionDevice = {
    id,
    kind: fn.kind,
    ports: [],
    mmio: [{ base, size: bar.size }],
    endpoint,
    read(_space, addr, size) {
      if (!(command() & COMMAND_MEMORY) || addr < base || addr + size > end) {
        return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
      }
      return barRead(addr - base, size);
    },
    write(_space, addr, size, value) {
      if (!(command() & COMMAND_MEMORY) || addr < base || addr + size > end) return;
      barWrite(addr - base, size, value);
    },
    reset() {
      core.reset();
      msix.reset();
      isrBits = 0;
      updateIntx();
    },
    stats() {
      return { ...core.stats(), ...counters, msi: msix.sent, msi_deferred: msix.deferred };
    },
    ...backendHooks(core),
  };
  return dev;
}
