/**
 * The virtio-mmio transport, version 2 (virtio 1.2, 4.2.2; the legacy version 1 is not
 * offered): a page of 32-bit registers, the device configuration from 0x100, and one
 * IOAPIC line. For machines without PCI, as Firecracker and QEMU microvm give them.
 *
 * The interrupt line is asserted while InterruptStatus is non-zero, and a driver's
 * InterruptACK that leaves bits set lowers and raises it again, so the line works whether
 * the guest programmed its IOAPIC pin edge-triggered (the ISA lines Linux learns of from
 * the command line) or level-triggered: every new cause the driver has not acknowledged
 * yet makes an edge.
 *
 * Registers other than the configuration are 32 bits wide and aligned; another access is
 * ignored (a read returns 0) and counted.
 */
import type { AccessSize, Device, DeviceContext, DeviceFactory } from "../device.ts";
import type { DevicePlan, Plan } from "../../../plan/types.ts";
import { invalidPlan } from "../errors.ts";
import { backendHooks, type VirtioBackend, VirtioCore, type VirtioInterrupts } from "./core.ts";
import { INT_CONFIG_CHANGE, INT_USED_BUFFER, MMIO, MMIO_MAGIC, MMIO_VENDOR_ID } from "./spec.ts";
import { type BackendFactory, checkQueueSizes } from "./backend.ts";

export function virtioMmio(makeBackend: BackendFactory): DeviceFactory {
  return (entry, ctx, plan) => createVirtioMmio(entry, ctx, plan, makeBackend);
}

function createVirtioMmio(
  entry: DevicePlan,
  ctx: DeviceContext,
  _plan: Plan,
  makeBackend: BackendFactory,
): Device {
  const v = entry.virtio;
  if (!v || v.transport.kind !== "mmio") {
    throw invalidPlan(
      `device ${entry.id} (${entry.kind}): no virtio-mmio transport in its Plan entry`,
      'lower the machine again: virtio-mmio devices carry `virtio.transport.kind` "mmio"',
    );
  }
  const page = entry.mmio[0];
  if (!page || entry.mmio.length !== 1 || page.size < MMIO.CONFIG + 0x100) {
    throw invalidPlan(
      `device ${entry.id}: a virtio-mmio device needs one MMIO range of at least 512 bytes`,
      "give it `mmio: [{ base, size: 4096 }]` as vmdesc lowers it",
    );
  }
  if (entry.irq === null) {
    throw invalidPlan(`device ${entry.id}: a virtio-mmio device needs an irq`, "give it a GSI");
  }
  checkQueueSizes(`device ${entry.id}`, v);
  const gsi = entry.irq;
  const label = `${entry.kind} ${entry.id}`;
  const backend: VirtioBackend = makeBackend({ id: entry.id, label, plan: v, ctx });
  const core = new VirtioCore(label, v, backend, ctx.memory, ctx);

  let intStatus = 0;
  let line = false;
  let counters = { irq_raises: 0 };
  const setLine = (level: boolean) => {
    if (level === line) return;
    line = level;
    if (level) counters.irq_raises++;
    ctx.setIrq(gsi, level);
  };
  const interrupts: VirtioInterrupts = {
    queue() {
      intStatus |= INT_USED_BUFFER;
      setLine(true);
    },
    config() {
      intStatus |= INT_CONFIG_CHANGE;
      setLine(true);
    },
    reset() {
      intStatus = 0;
      setLine(false);
    },
  };
  core.setInterrupts(interrupts);

  const base = page.base;
  const cfgEnd = MMIO.CONFIG + backend.configSize;

  function regRead(o: number): number {
    const q = core.selected;
    switch (o) {
      case MMIO.MAGIC:
        return MMIO_MAGIC;
      case MMIO.VERSION:
        return 2;
      case MMIO.DEVICE_ID:
        return v!.device_type;
      case MMIO.VENDOR_ID:
        return MMIO_VENDOR_ID;
      case MMIO.DEVICE_FEATURES:
        return core.deviceFeatureWindow();
      case MMIO.QUEUE_NUM_MAX:
        return q ? q.maxSize : 0;
      case MMIO.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case MMIO.INTERRUPT_STATUS:
        return intStatus;
      case MMIO.STATUS:
        return core.status;
      case MMIO.CONFIG_GENERATION:
        return core.configGeneration;
      // No shared memory regions: a length of -1 says so (both halves).
      case MMIO.SHM_LEN_LOW:
      case MMIO.SHM_LEN_HIGH:
      case MMIO.SHM_BASE_LOW:
      case MMIO.SHM_BASE_HIGH:
        return 0xffff_ffff;
      default:
        return 0;
    }
  }

  function regWrite(o: number, value: number): void {
    const q = core.selected;
    const queueOpen = q !== null && !q.ready;
    const lo = (cur: number) => Math.floor(cur / 2 ** 32) * 2 ** 32 + (value >>> 0);
    const hi = (cur: number) => (value >>> 0) * 2 ** 32 + (cur % 2 ** 32);
    switch (o) {
      case MMIO.DEVICE_FEATURES_SEL:
        core.deviceFeatureSelect = value >>> 0;
        return;
      case MMIO.DRIVER_FEATURES:
        core.writeDriverFeatures(value);
        return;
      case MMIO.DRIVER_FEATURES_SEL:
        core.driverFeatureSelect = value >>> 0;
        return;
      case MMIO.QUEUE_SEL:
        core.queueSelect = value >>> 0;
        return;
      case MMIO.QUEUE_NUM:
        if (queueOpen) q.size = value >>> 0;
        return;
      case MMIO.QUEUE_READY:
        if (!q) return;
        if (value === 1) core.enableQueue(q);
        else if (value === 0) q.reset(); // the driver stops using it (Linux's del_vq)
        return;
      case MMIO.QUEUE_NOTIFY:
        // Version 2 without VIRTIO_F_NOTIFICATION_DATA: the value is the queue index.
        core.notify(value >>> 0);
        return;
      case MMIO.INTERRUPT_ACK:
        intStatus &= ~value;
        if (intStatus === 0) setLine(false);
        else {
          // Causes left unacknowledged: a fresh edge, so an edge-triggered pin hears them.
          setLine(false);
          setLine(true);
        }
        return;
      case MMIO.STATUS:
        core.writeStatus(value);
        return;
      case MMIO.QUEUE_DESC_LOW:
        if (queueOpen) q.descAddr = lo(q.descAddr);
        return;
      case MMIO.QUEUE_DESC_HIGH:
        if (queueOpen) q.descAddr = hi(q.descAddr);
        return;
      case MMIO.QUEUE_DRIVER_LOW:
        if (queueOpen) q.availAddr = lo(q.availAddr);
        return;
      case MMIO.QUEUE_DRIVER_HIGH:
        if (queueOpen) q.availAddr = hi(q.availAddr);
        return;
      case MMIO.QUEUE_DEVICE_LOW:
        if (queueOpen) q.usedAddr = lo(q.usedAddr);
        return;
      case MMIO.QUEUE_DEVICE_HIGH:
        if (queueOpen) q.usedAddr = hi(q.usedAddr);
        return;
    }
  }

  const badAccess = (o: number, size: number, write: boolean) =>
    core.fault(
      "register_access",
      `a ${size}-byte ${write ? "write" : "read"} of register 0x${o.toString(16)}`,
      "ignored",
    );

  return {
    id: entry.id,
    kind: entry.kind,
    ports: [],
    mmio: [{ base, size: page.size }],
    read(_space, addr, size: AccessSize) {
      const o = addr - base;
      if (o >= MMIO.CONFIG) {
        const c = o - MMIO.CONFIG;
        return o + size <= cfgEnd ? backend.readConfig(c, size) : 0;
      }
      if (size !== 4 || o % 4 !== 0) {
        badAccess(o, size, false);
        return 0;
      }
      return regRead(o) >>> 0;
    },
    write(_space, addr, size: AccessSize, value) {
      const o = addr - base;
      if (o >= MMIO.CONFIG) {
        if (o + size <= cfgEnd) backend.writeConfig(o - MMIO.CONFIG, size, value);
        return;
      }
      if (size !== 4 || o % 4 !== 0) {
        badAccess(o, size, true);
        return;
      }
      regWrite(o, value);
    },
    reset() {
      core.reset();
      counters = { irq_raises: 0 };
    },
    stats() {
      return { ...core.stats(), ...counters };
    },
    ...backendHooks(core),
  };
}
