import assert from "node:assert/strict";
import { createSerial } from "./mod.ts";
import { devicePlan, minimalPlan, recordingContext } from "../testing.ts";
import type { InputSource } from "../device.ts";

const BASE = 0x3f8;
function setup(irq: number | null = 4, input?: InputSource) {
  const ctx = recordingContext();
  const dev = createSerial(
    devicePlan({ id: "com1", kind: "serial", ports: [{ base: BASE, size: 8 }], irq }),
    ctx,
    minimalPlan(),
    { input },
  );
  const rd = (reg: number) => dev.read("pio", BASE + reg, 1);
  const wr = (reg: number, v: number) => dev.write("pio", BASE + reg, 1, v);
  return { ctx, dev, rd, wr };
}

Deno.test("serial: TX goes to the output, flushed at newline and at close", () => {
  const { ctx, dev, wr, rd } = setup();
  for (const c of "hi") wr(0, c.charCodeAt(0));
  assert.equal(ctx.text("com1"), "", "buffered until newline");
  wr(0, 0x0a);
  assert.equal(ctx.text("com1"), "hi\n");
  wr(0, 0x41);
  dev.close!();
  assert.equal(ctx.text("com1"), "hi\nA");
  assert.equal(rd(5) & 0x60, 0x60, "THRE and TEMT always set");
  assert.equal(dev.stats().tx_bytes, 4);
});

Deno.test("serial: LCR.DLAB switches offsets 0/1 to the divisor latch", () => {
  const { ctx, rd, wr } = setup();
  wr(1, 0x05); // IER
  wr(3, 0x83); // DLAB + 8N1
  wr(0, 0x01);
  wr(1, 0x00); // 115200
  assert.equal(rd(0), 0x01);
  assert.equal(rd(1), 0x00);
  wr(3, 0x03);
  assert.equal(rd(1), 0x05, "IER unchanged by the divisor write");
  assert.equal(rd(3), 0x03);
  assert.equal(ctx.text("com1"), "", "a DLL write is not a TX byte");
});

Deno.test("serial: scratch register and FIFO detection in IIR", () => {
  const { rd, wr } = setup();
  wr(7, 0xa5);
  assert.equal(rd(7), 0xa5);
  wr(7, 0x5a);
  assert.equal(rd(7), 0x5a);
  assert.equal(rd(2), 0x01, "no FIFO, no interrupt");
  wr(2, 0x07); // enable + clear both
  assert.equal(rd(2) & 0xc0, 0xc0, "16550A: both FIFO bits");
  wr(2, 0x00);
  assert.equal(rd(2) & 0xc0, 0x00);
});

Deno.test("serial: MCR loopback echoes TX into RX and mirrors modem lines (8250 probe)", () => {
  const { ctx, rd, wr } = setup();
  wr(4, 0x10 | 0x0a); // LOOP | RTS | OUT2
  assert.equal(rd(6) & 0xf0, 0x90, "CTS (from RTS) and DCD (from OUT2)");
  wr(0, 0x55);
  assert.equal(rd(5) & 0x01, 1, "data ready");
  assert.equal(rd(0), 0x55);
  assert.equal(rd(5) & 0x01, 0);
  wr(4, 0x00);
  assert.equal(rd(6) & 0xb0, 0xb0, "out of loopback: DCD DSR CTS");
  assert.equal(ctx.text("com1"), "", "loopback bytes are not output");
});

Deno.test("serial: THRE interrupt follows IER and IIR reads; line raised and lowered", () => {
  const { ctx, rd, wr } = setup(4);
  wr(1, 0x02); // enable THRI with THR empty: pending at once
  assert.deepEqual(ctx.irqs, [[4, true]]);
  assert.equal(rd(2) & 0x0f, 0x02);
  assert.equal(rd(2) & 0x0f, 0x01, "IIR read acknowledged it");
  assert.deepEqual(ctx.irqs.at(-1), [4, false]);
  wr(0, 0x41); // THR write: empty again, pending again
  assert.deepEqual(ctx.irqs.at(-1), [4, true]);
  wr(1, 0x00);
  assert.deepEqual(ctx.irqs.at(-1), [4, false]);
});

Deno.test("serial: RX injection sets DR and raises RDI with priority over THRI", () => {
  const { ctx, dev, rd, wr } = setup(4);
  wr(2, 0x01);
  wr(1, 0x03); // RDI + THRI
  rd(2); // ack THRI
  dev.inject("ok");
  assert.equal(rd(5) & 0x01, 1);
  assert.equal(rd(2) & 0x0f, 0x04);
  assert.equal(rd(0), 0x6f);
  assert.equal(rd(0), 0x6b);
  assert.equal(rd(5) & 0x01, 0);
  assert.equal(rd(2) & 0x0f, 0x01);
  assert.deepEqual(ctx.irqs.at(-1), [4, false]);
});

Deno.test("serial: more input than the FIFO holds is kept and delivered in order", () => {
  const { dev, rd, wr } = setup(null);
  wr(2, 0x01);
  const text = "abcdefghijklmnopqrstuvwxyz0123456789";
  dev.inject(text);
  let got = "";
  while (rd(5) & 1) got += String.fromCharCode(rd(0));
  assert.equal(got, text);
  assert.equal(dev.stats().rx_bytes, text.length);
});

Deno.test("serial: an InputSource feeds RX and is released on close", () => {
  let push: ((b: Uint8Array) => void) | null = null;
  let released = 0;
  const source: InputSource = {
    subscribe(onData) {
      push = onData;
      return () => released++;
    },
  };
  const { dev, rd } = setup(null, source);
  push!(new Uint8Array([0x78]));
  assert.equal(rd(0), 0x78);
  dev.close!();
  dev.close!();
  assert.equal(released, 1);
});

Deno.test("serial: reset returns to power-on state", () => {
  const { dev, rd, wr } = setup(null);
  wr(3, 0x83);
  wr(7, 0x11);
  wr(4, 0x1f);
  dev.reset();
  assert.equal(rd(3), 0);
  assert.equal(rd(4), 0);
  assert.equal(rd(7), 0);
  assert.equal(rd(5), 0x60);
});

Deno.test("serial: a FIFO reset drops loopback bytes but keeps host input", () => {
  const { dev, rd, wr } = setup(null);
  dev.inject("hi"); // before the guest enabled the FIFO: one byte sits in the receiver
  assert.equal(rd(5) & 1, 1);
  wr(2, 0x07); // enable + clear, as a driver's init does
  let got = "";
  while (rd(5) & 1) got += String.fromCharCode(rd(0));
  assert.equal(got, "hi");
  wr(4, 0x10);
  wr(0, 0x41); // loopback byte
  wr(2, 0x03);
  assert.equal(rd(5) & 1, 0, "loopback byte cleared");
});

Deno.test("serial: Linux 8250 autoconfig sequence finds a 16550A with a working THRE interrupt", () => {
  const { rd, wr } = setup(4);
  // IER probe: writable low nibble.
  const savedIer = rd(1);
  wr(1, 0x00);
  const scratch2 = rd(1) & 0x0f;
  wr(1, 0x0f);
  const scratch3 = rd(1) & 0x0f;
  wr(1, savedIer);
  assert.deepEqual([scratch2, scratch3], [0x00, 0x0f], "a UART is there");
  // Loopback check.
  wr(4, 0x10 | 0x0a);
  assert.equal(rd(6) & 0xf0, 0x90);
  wr(4, 0x00);
  // FIFO type: EFR probe (LCR 0xBF), then IIR bits 7:6 with the FIFO enabled.
  wr(3, 0xbf);
  wr(2, 0x00); // EFR write on a 650; FCR here
  wr(3, 0x00);
  wr(2, 0x01);
  assert.equal(rd(2) >> 6, 3, "16550A class FIFO");
  wr(3, 0xbf);
  assert.notEqual(rd(2), 0, "no EFR: not a 16C650");
  wr(3, 0x80);
  assert.notEqual(rd(2), 0, "not a 16850");
  // 16750 check: the 64-byte FIFO bit must not stick.
  wr(3, 0x00);
  wr(2, 0x01 | 0x20);
  const status1 = rd(2) >> 5;
  wr(2, 0x01);
  wr(3, 0x80);
  wr(2, 0x01 | 0x20);
  const status2 = rd(2) >> 5;
  wr(2, 0x01);
  wr(3, 0x00);
  assert.ok(!(status1 === 6 && status2 === 7), "not a 16750");
  // serial8250_do_startup's UART_BUG_THRE test: THRI re-enabled must re-raise.
  wr(1, 0x02);
  const iir1 = rd(2);
  wr(1, 0x00);
  wr(1, 0x02);
  const iir = rd(2);
  wr(1, 0x00);
  assert.equal(iir1 & 0x01, 0);
  assert.equal(iir & 0x01, 0, "no UART_BUG_THRE");
});
