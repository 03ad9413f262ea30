/**
 * A 16550A UART, good enough for Linux's 8250 driver and for polling guests.
 *
 * Register file (offset from the base port), as on the real part:
 *   0  RBR (read) / THR (write); DLL when LCR.DLAB = 1
 *   1  IER;                      DLM when LCR.DLAB = 1
 *   2  IIR (read) / FCR (write)
 *   3  LCR   4 MCR   5 LSR   6 MSR   7 SCR
 *
 * TX is never slow: a byte written to THR is handed to the output at once, so LSR
 * always shows THRE|TEMT and a THR-empty interrupt becomes pending right away (what
 * QEMU does too). RX bytes arrive through `inject()` (tests) or an `InputSource` (the
 * runtime's stdin); they wait in a host-side queue and move into the guest-visible
 * 16-byte FIFO as it drains, so nothing the user typed is lost to FIFO overruns.
 *
 * The interrupt line follows IIR: raised while an enabled condition is pending, lowered
 * when none is. With the in-kernel IOAPIC/PIC (edge-triggered ISA lines) that gives the
 * rising edge Linux's 8250 driver waits for; it then loops on IIR until "no interrupt".
 */
import type { Device, DeviceContext, InputSource } from "../device.ts";
import type { DevicePlan, Plan, Range } from "../../../plan/types.ts";
import { invalidPlan } from "../errors.ts";
import { byteRegisters } from "../byte_registers.ts";

// IER bits
const IER_RDI = 0x01; // received data available
const IER_THRI = 0x02; // THR empty
const IER_RLSI = 0x04; // receiver line status
const IER_MSI = 0x08; // modem status

// IIR values
const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_FIFO_ENABLED = 0xc0;

// FCR bits
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;

// LCR / MCR bits
const LCR_DLAB = 0x80;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

// LSR bits
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_BI_ERRORS = 0x1e; // OE | PE | FE | BI
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

// MSR bits
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const MSR_DELTAS = 0x0f;

const FIFO_DEPTH = 16;
/** Marks an RX FIFO entry that came from the host (not from loopback). */
const FROM_HOST = 0x100;
/** Flush buffered TX at this many bytes even without a newline. */
const TX_FLUSH_BYTES = 1024;

export interface SerialOptions {
  /** Where RX bytes come from (the runtime passes stdin); none by default. */
  input?: InputSource | null;
}

export interface SerialDevice extends Device {
  /** Queue bytes for the guest to receive (tests, or any host-side feeder). */
  inject(bytes: Uint8Array | string): void;
  /** Hand buffered TX bytes to the output now. */
  flush(): void;
}

export function createSerial(
  entry: DevicePlan,
  ctx: DeviceContext,
  _plan: Plan,
  options: SerialOptions = {},
): SerialDevice {
  const base = entry.ports[0]?.base;
  if (base === undefined) {
    throw invalidPlan(`serial ${entry.id}: no port range in the Plan`, "give it `port`");
  }
  const gsi = entry.irq;
  const ports: Range[] = [{ base, size: 8 }];

  // Register state (reset() sets the power-on values).
  let ier = 0, lcr = 0, mcr = 0, lsr = 0, msr = 0, scr = 0, fcr = 0;
  let dll = 0x0c, dlm = 0; // 9600 baud, what a PC BIOS leaves
  let thrPending = false; // THR-empty interrupt pending (cleared by IIR read or THR write)
  let iir = IIR_NO_INT;
  let irqLevel = false;
  const rxFifo: number[] = [];
  const pending: number[] = []; // host-side queue, unbounded, feeds rxFifo
  let pendingHead = 0;
  let tx = new Uint8Array(256);
  let txLen = 0;
  let closed = false;

  const counters = {
    reads: 0,
    writes: 0,
    tx_bytes: 0,
    rx_bytes: 0,
    rx_overruns: 0,
    irq_raises: 0,
  };

  function rxCapacity(): number {
    return fcr & FCR_ENABLE ? FIFO_DEPTH : 1;
  }

  /** Move host-queued bytes into the guest-visible FIFO while it has room. */
  function refill(): void {
    const cap = rxCapacity();
    while (rxFifo.length < cap && pendingHead < pending.length) {
      rxFifo.push(pending[pendingHead++] | FROM_HOST);
    }
    if (pendingHead > 4096 && pendingHead * 2 > pending.length) {
      pending.splice(0, pendingHead);
      pendingHead = 0;
    }
    if (rxFifo.length > 0) lsr |= LSR_DR;
    else lsr &= ~LSR_DR;
  }

  /** FIFO reset: loopback bytes go, host bytes return to the front of the queue. */
  function clearRx(): void {
    const host = rxFifo.filter((b) => b & FROM_HOST).map((b) => b & 0xff);
    rxFifo.length = 0;
    if (host.length === 0) return;
    pending.splice(0, pendingHead, ...host);
    pendingHead = 0;
  }

  function updateIrq(): void {
    let id = IIR_NO_INT;
    if ((ier & IER_RLSI) && (lsr & LSR_BI_ERRORS)) id = IIR_RLSI;
    else if ((ier & IER_RDI) && (lsr & LSR_DR)) id = IIR_RDI;
    else if ((ier & IER_THRI) && thrPending) id = IIR_THRI;
    else if ((ier & IER_MSI) && (msr & MSR_DELTAS)) id = IIR_MSI;
    iir = id | (fcr & FCR_ENABLE ? IIR_FIFO_ENABLED : 0);
    const level = id !== IIR_NO_INT;
    if (gsi !== null && level !== irqLevel) {
      irqLevel = level;
      if (level) counters.irq_raises++;
      ctx.setIrq(gsi, level);
    }
  }

  function flush(): void {
    if (txLen === 0) return;
    const out = tx.slice(0, txLen);
    txLen = 0;
    ctx.output(entry.id, out);
  }

  function transmit(byte: number): void {
    counters.tx_bytes++;
    if (mcr & MCR_LOOP) {
      // Loopback: the byte comes straight back into the receiver (the 8250 probe checks this).
      if (rxFifo.length < rxCapacity()) rxFifo.push(byte);
      else {
        lsr |= LSR_OE;
        counters.rx_overruns++;
      }
      lsr |= LSR_DR;
    } else {
      if (txLen === tx.length) {
        const bigger = new Uint8Array(tx.length * 2);
        bigger.set(tx);
        tx = bigger;
      }
      tx[txLen++] = byte;
      if (byte === 0x0a || txLen >= TX_FLUSH_BYTES) flush();
    }
    thrPending = true;
    lsr |= LSR_THRE | LSR_TEMT;
  }

  /** MSR inputs: in loopback they mirror MCR outputs, else a modem that is always ready. */
  function modemInputs(): number {
    if (mcr & MCR_LOOP) {
      return (mcr & MCR_RTS ? MSR_CTS : 0) | (mcr & MCR_DTR ? MSR_DSR : 0) |
        (mcr & MCR_OUT1 ? MSR_RI : 0) | (mcr & MCR_OUT2 ? MSR_DCD : 0);
    }
    return MSR_DCD | MSR_DSR | MSR_CTS;
  }

  function setModemInputs(): void {
    const now = modemInputs();
    const old = msr & 0xf0;
    let deltas = msr & MSR_DELTAS;
    if ((now ^ old) & MSR_CTS) deltas |= 0x01;
    if ((now ^ old) & MSR_DSR) deltas |= 0x02;
    if ((old & MSR_RI) && !(now & MSR_RI)) deltas |= 0x04; // trailing edge of RI
    if ((now ^ old) & MSR_DCD) deltas |= 0x08;
    msr = now | deltas;
  }

  function readReg(reg: number): number {
    switch (reg) {
      case 0: {
        if (lcr & LCR_DLAB) return dll;
        const byte = rxFifo.length > 0 ? rxFifo.shift()! & 0xff : 0;
        refill();
        // A guest waiting for input should see what it printed before.
        flush();
        updateIrq();
        return byte;
      }
      case 1:
        return lcr & LCR_DLAB ? dlm : ier;
      case 2: {
        const value = iir;
        // Reading IIR acknowledges a THR-empty interrupt.
        if ((value & 0x0f) === IIR_THRI) {
          thrPending = false;
          updateIrq();
        }
        return value;
      }
      case 3:
        return lcr;
      case 4:
        return mcr;
      case 5: {
        refill();
        const value = lsr;
        lsr &= ~LSR_BI_ERRORS; // error bits clear on read
        updateIrq();
        return value;
      }
      case 6: {
        const value = msr;
        msr &= ~MSR_DELTAS;
        updateIrq();
        return value;
      }
      default:
        return scr;
    }
  }

  function writeReg(reg: number, v: number): void {
    switch (reg) {
      case 0:
        if (lcr & LCR_DLAB) {
          dll = v;
          return;
        }
        thrPending = false;
        transmit(v);
        break;
      case 1:
        if (lcr & LCR_DLAB) {
          dlm = v;
          return;
        }
        {
          const enabledThri = !(ier & IER_THRI) && (v & IER_THRI);
          ier = v & 0x0f;
          // Enabling THRI while THR is empty makes the interrupt pending at once (16550
          // behaviour the 8250 driver's THRE test relies on).
          if (enabledThri && (lsr & LSR_THRE)) thrPending = true;
          if (!(ier & IER_THRI)) thrPending = false;
        }
        break;
      case 2: {
        const wasEnabled = fcr & FCR_ENABLE;
        fcr = v & 0xc9; // enable, DMA mode, trigger level; clear bits self-clear
        if ((v & FCR_CLEAR_RX) || wasEnabled !== (fcr & FCR_ENABLE)) clearRx();
        refill();
        break;
      }
      case 3:
        lcr = v;
        return;
      case 4:
        mcr = v & 0x1f;
        setModemInputs();
        break;
      case 5:
        return; // LSR is read-only (factory test mode not modelled)
      case 6:
        return; // MSR is read-only
      default:
        scr = v;
        return;
    }
    updateIrq();
  }

  function reset(): void {
    flush();
    ier = 0;
    lcr = 0;
    mcr = 0;
    fcr = 0;
    scr = 0;
    dll = 0x0c;
    dlm = 0;
    lsr = LSR_THRE | LSR_TEMT;
    msr = modemInputs();
    thrPending = false;
    rxFifo.length = 0;
    refill();
    updateIrq();
  }

  function inject(bytes: Uint8Array | string): void {
    if (closed) return;
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    for (const b of data) pending.push(b);
    counters.rx_bytes += data.length;
    refill();
    updateIrq();
  }

  lsr = LSR_THRE | LSR_TEMT;
  msr = modemInputs();
  const unsubscribe = options.input ? options.input.subscribe(inject) : null;

  return {
    id: entry.id,
    kind: entry.kind,
    ports,
    mmio: [],
    // Wider accesses reach consecutive registers, as the ISA bus splits them.
    ...byteRegisters(
      counters,
      (port) => readReg((port - base) & 7),
      (port, byte) => writeReg((port - base) & 7, byte),
    ),
    reset,
    stats(): Record<string, number> {
      return { ...counters, rx_queued: pending.length - pendingHead + rxFifo.length };
    },
    close(): void {
      if (closed) return;
      flush();
      closed = true;
      unsubscribe?.();
    },
    inject,
    flush,
  };
}
