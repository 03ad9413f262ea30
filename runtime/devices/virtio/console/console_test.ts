/**
 * The virtio console driven from TypeScript over virtio-mmio: output routed by the device's
 * id, input held until the driver gives receive buffers (and bounded), the size from the
 * terminal and its changes, EMERG_WRITE, and receive chains that are not what they should be.
 */
import assert from "node:assert/strict";
import type { InputSource } from "../../device.ts";
import type { DevicePlan } from "../../../../plan/types.ts";
import { devicePlan, minimalPlan, type RecordingContext, recordingContext } from "../../testing.ts";
import { DEVICE_MODELS } from "../../registry.ts";
import { MMIO } from "../spec.ts";
import { MmioDriver, TestQueue } from "../testing.ts";
import { INPUT_HOLD } from "./mod.ts";

const MMIO_BASE = 0xfeb0_0000;
const RXQ = 0x10000;
const TXQ = 0x11000;
const RXBUF = 0x20000;
const TXBUF = 0x30000;
const VERSION_1 = 1n << 32n;
const F_SIZE = 1n;
const F_EMERG_WRITE = 4n;

function consoleEntry(): DevicePlan {
  return devicePlan({
    id: "hvc0",
    kind: "virtio_console",
    mmio: [{ base: MMIO_BASE, size: 4096 }],
    irq: 5,
    props: { output: "stdout", input: "stdin" },
    virtio: {
      device_type: 3,
      queue_sizes: [8, 8],
      transport: { kind: "mmio", version: 2 },
      backing: { kind: "console" },
    },
  });
}

/** A console with an input source the test pushes into, up to DRIVER_OK with both queues. */
function setup(
  opts: { size?: () => { cols: number; rows: number } | null; features?: bigint } = {},
) {
  const ctx: RecordingContext = recordingContext();
  let push: ((b: Uint8Array) => void) | null = null;
  let unsubscribed = false;
  const source: InputSource = {
    subscribe(onData) {
      push = onData;
      return () => unsubscribed = true;
    },
  };
  ctx.input = (id) => (id === "hvc0" ? source : null);
  if (opts.size) ctx.terminalSize = (id) => (id === "hvc0" ? opts.size!() : null);
  const dev = DEVICE_MODELS.get("virtio_console")!(consoleEntry(), ctx, minimalPlan());
  const drv = new MmioDriver(dev, MMIO_BASE);
  const rx = new TestQueue(ctx.memory, RXQ, 8);
  const tx = new TestQueue(ctx.memory, TXQ, 8);
  const offered = drv.features();
  assert.ok(drv.negotiate(VERSION_1 | (opts.features ?? 0n)));
  drv.setupQueue(0, rx);
  drv.setupQueue(1, tx);
  drv.driverOk();
  const type = (s: string) => push!(new TextEncoder().encode(s));
  return { ctx, dev, drv, rx, tx, offered, type, unsubscribed: () => unsubscribed };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("virtio-console: transmit chains go to the output under the device's id", () => {
  const { ctx, drv, tx, dev } = setup();
  ctx.memory.write(TXBUF, new TextEncoder().encode("hello, "));
  ctx.memory.write(TXBUF + 100, new TextEncoder().encode("console\n"));
  tx.add([{ addr: TXBUF, len: 7 }, { addr: TXBUF + 100, len: 8 }]);
  drv.notify(1);
  assert.equal(ctx.text("hvc0"), "hello, console\n");
  assert.deepEqual(tx.takeUsed(), [[0, 0]]); // nothing written back
  assert.equal(dev.stats().tx_bytes, 15);
});

Deno.test("virtio-console: input is held until the driver gives receive buffers, in order", () => {
  const { ctx, drv, rx, type, dev } = setup();
  type("abc");
  type("defghij"); // nothing to put it in yet: held
  assert.equal(dev.stats().rx_held, 10);
  drv.notify(0); // a notify with no buffers takes nothing
  rx.add([{ addr: RXBUF, len: 4, write: true }]);
  drv.notify(0);
  assert.deepEqual(rx.takeUsed(), [[0, 4]]);
  assert.equal(text(ctx.memory.read(RXBUF, 4)), "abcd");
  // Two buffers in one chain, then more input while a buffer waits: delivered at once.
  rx.add([{ addr: RXBUF, len: 2, write: true }, { addr: RXBUF + 64, len: 10, write: true }]);
  drv.notify(0);
  const [[, len]] = rx.takeUsed();
  assert.equal(len, 6);
  assert.equal(text(ctx.memory.read(RXBUF, 2)) + text(ctx.memory.read(RXBUF + 64, 4)), "efghij");
  rx.add([{ addr: RXBUF, len: 16, write: true }]);
  drv.notify(0);
  assert.deepEqual(rx.takeUsed(), []); // waits for input
  type("k");
  assert.equal(rx.takeUsed()[0][1], 1);
  assert.equal(text(ctx.memory.read(RXBUF, 1)), "k");
  assert.ok(ctx.irqs.some(([gsi, up]) => gsi === 5 && up), "the driver is interrupted");
  assert.equal(dev.stats().rx_bytes, 11);
  assert.equal(dev.stats().rx_held, 0);
});

Deno.test("virtio-console: a receive chain's readable buffers are never written", () => {
  const { ctx, drv, rx, type } = setup();
  ctx.memory.write(RXBUF, new TextEncoder().encode("keep"));
  rx.add([{ addr: RXBUF, len: 4 }, { addr: RXBUF + 64, len: 4, write: true }]);
  type("xyz!");
  drv.notify(0);
  assert.deepEqual(rx.takeUsed(), [[0, 4]]);
  assert.equal(text(ctx.memory.read(RXBUF, 4)), "keep");
  assert.equal(text(ctx.memory.read(RXBUF + 64, 4)), "xyz!");
});

Deno.test("virtio-console: input held across a driver reset; the hold is bounded", () => {
  const { ctx, drv, type, dev } = setup();
  type("before reset");
  drv.w(MMIO.STATUS, 0);
  assert.equal(drv.status, 0);
  assert.ok(drv.negotiate(VERSION_1));
  const rx2 = new TestQueue(ctx.memory, RXQ + 0x4000, 8);
  drv.setupQueue(0, rx2);
  drv.setupQueue(1, new TestQueue(ctx.memory, TXQ + 0x4000, 8));
  drv.driverOk();
  rx2.add([{ addr: RXBUF, len: 64, write: true }]);
  drv.notify(0);
  assert.equal(text(ctx.memory.read(RXBUF, 12)), "before reset");
  // Nobody reads: INPUT_HOLD bytes are kept, the rest dropped, counted, warned about once.
  type("x".repeat(INPUT_HOLD - 10));
  type("0123456789abcdef");
  type("more");
  assert.equal(dev.stats().rx_held, INPUT_HOLD);
  assert.equal(dev.stats().rx_dropped, 6 + 4);
  assert.equal(ctx.warnings.filter((w) => w.includes("more input is dropped")).length, 1);
});

Deno.test("virtio-console: F_SIZE only with a terminal; a resize is a configuration change", () => {
  const plain = setup();
  assert.equal(plain.offered & F_SIZE, 0n, "no terminal: no size offered");
  assert.equal(plain.offered & F_EMERG_WRITE, F_EMERG_WRITE);
  let size = { cols: 120, rows: 40 };
  const t = setup({ size: () => size, features: F_SIZE });
  assert.equal(t.offered & F_SIZE, F_SIZE);
  assert.equal(t.drv.config(0, 2), 120);
  assert.equal(t.drv.config(2, 2), 40);
  assert.equal(t.drv.config(0, 4), 40 * 65536 + 120);
  const gen = t.drv.r(MMIO.CONFIG_GENERATION);
  t.dev.flush!(); // the periodic kick: same size, nothing happens
  assert.equal(t.drv.r(MMIO.CONFIG_GENERATION), gen);
  size = { cols: 80, rows: 24 };
  t.dev.flush!();
  assert.equal(t.drv.config(0, 2), 80);
  assert.equal(t.drv.config(2, 2), 24);
  assert.notEqual(t.drv.r(MMIO.CONFIG_GENERATION), gen);
  assert.equal(t.drv.r(MMIO.INTERRUPT_STATUS) & 2, 2, "configuration-change interrupt");
  assert.equal(t.dev.stats().resizes, 1);
});

Deno.test("virtio-console: emerg_wr writes one character; close ends the input", () => {
  const { ctx, dev, unsubscribed } = setup({ features: F_EMERG_WRITE });
  for (const c of "SOS\n") dev.write("mmio", MMIO_BASE + MMIO.CONFIG + 8, 4, c.charCodeAt(0));
  assert.equal(ctx.text("hvc0"), "SOS\n");
  assert.equal(dev.stats().emerg_bytes, 4);
  dev.close!();
  assert.ok(unsubscribed());
});

Deno.test("virtio-console: a bad receive chain fails alone and the input waits for the next", () => {
  const { ctx, drv, rx, tx, type, dev } = setup();
  type("kept");
  // A buffer outside guest RAM (the recording context has 1 MiB): returned, nothing written.
  rx.add([{ addr: 0x4000_0000, len: 16, write: true }]);
  drv.notify(0);
  assert.deepEqual(rx.takeUsed(), [[0, 0]]);
  assert.equal(dev.stats().rx_held, 4);
  assert.equal(dev.stats().fault_descriptor_outside_ram, 1);
  rx.add([{ addr: RXBUF, len: 16, write: true }]);
  drv.notify(0);
  assert.deepEqual(rx.takeUsed(), [[1, 4]]);
  assert.equal(text(ctx.memory.read(RXBUF, 4)), "kept");
  // A transmit chain of device-writable buffers only: nothing to send, nothing written.
  ctx.memory.write(TXBUF, new TextEncoder().encode("untouched"));
  tx.add([{ addr: TXBUF, len: 9, write: true }]);
  drv.notify(1);
  assert.deepEqual(tx.takeUsed(), [[0, 0]]);
  assert.equal(ctx.text("hvc0"), "");
  assert.equal(text(ctx.memory.read(TXBUF, 9)), "untouched");
  assert.equal(drv.status & 0x40, 0, "no NEEDS_RESET");
});

Deno.test("virtio-console: held input reaches buffers given without a notify at the next tick", () => {
  const { ctx, dev, rx, type } = setup();
  type("late");
  rx.add([{ addr: RXBUF, len: 8, write: true }]); // no notify
  assert.deepEqual(rx.takeUsed(), []);
  dev.flush!();
  assert.deepEqual(rx.takeUsed(), [[0, 4]]);
  assert.equal(text(ctx.memory.read(RXBUF, 4)), "late");
});
