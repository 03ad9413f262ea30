/**
 * virtio-console (virtio 1.2, 5.3) with one port: receiveq0 (queue 0, host → guest) and
 * transmitq0 (queue 1, guest → host). No MULTIPORT, so no control queues.
 *
 * - Output: every device-readable byte of a transmit chain goes to `ctx.output` under the
 *   device's id, so the runtime routes it as it routes a serial port's (stdout, stderr,
 *   null or a file: the entry's `props.output`). Device-writable buffers in a transmit
 *   chain are left alone (used length 0).
 * - Input: bytes from `ctx.input` (the machine's stdin, when the Plan gives it to this
 *   console) are held on the host side until the guest has receive buffers for them, like
 *   a UART's FIFO that never overruns: nothing is lost while the driver is not up yet, is
 *   being reset, or is slow to give buffers. The hold is bounded (INPUT_HOLD, 1 MiB); what
 *   arrives beyond it is dropped, counted (`rx_dropped`) and warned about once. Only the
 *   device-writable buffers of a receive chain are written.
 * - Size (VIRTIO_CONSOLE_F_SIZE): offered only when the console's output is shown on a
 *   terminal (`ctx.terminalSize` answers), with its columns and rows, looked at again at
 *   every periodic kick; a change raises a configuration-change interrupt, so the guest's
 *   console follows a resized window. Otherwise the feature is not offered: a file or a
 *   pipe has no size, and a guest told 0×0 may believe it.
 * - VIRTIO_CONSOLE_F_EMERG_WRITE: a write to `emerg_wr` outputs its low byte, also before
 *   the driver is set up (what the spec allows it for: early or last-gasp messages).
 */
import type { BackendArgs } from "../backend.ts";
import type { VirtioBackend } from "../core.ts";
import type { Chain } from "../queue.ts";
import { sliceStream } from "../buffers.ts";
import { invalidPlan } from "../../errors.ts";
import type { AccessSize } from "../../device.ts";

/** Queue indexes of port 0 (virtio 1.2, 5.3.2). */
export const RECEIVEQ = 0;
export const TRANSMITQ = 1;

/** Feature bits (5.3.3). */
export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;

/** struct virtio_console_config: cols u16, rows u16, max_nr_ports u32, emerg_wr u32. */
export const CONSOLE_CONFIG_SIZE = 12;
const CFG_EMERG_WR = 8;

/** Input held for the guest at most, in bytes (more is dropped and counted). */
export const INPUT_HOLD = 1024 * 1024;

/** Output handed over in pieces of at most this much (one chain may be large). */
const OUTPUT_PIECE = 64 * 1024;

/** The console's own methods, beside the backend (tests feed input through `inject`). */
export interface ConsoleBackend extends VirtioBackend {
  /** Bytes for the guest, as if they came from the console's input. */
  inject(bytes: Uint8Array | string): void;
}

export function createConsole({ id, label, plan, ctx }: BackendArgs): ConsoleBackend {
  if (plan.backing.kind !== "console") {
    throw invalidPlan(
      `${label}: a virtio_console device has a console backing`,
      'set backing.kind "console"',
    );
  }
  if (plan.queue_sizes.length !== 2) {
    throw invalidPlan(
      `${label}: a one-port virtio console has 2 queues (receiveq0, transmitq0), not ${plan.queue_sizes.length}`,
      "list two queue_sizes, as vmdesc lowers it",
    );
  }
  const counters = {
    tx_bytes: 0,
    rx_bytes: 0,
    rx_dropped: 0,
    emerg_bytes: 0,
    resizes: 0,
  };
  let size = ctx.terminalSize?.(id) ?? null;
  const offersSize = size !== null;
  let device: { receive(queue: number): void; configChanged(): void } | null = null;

  // ── input held for the guest: chunks in arrival order, the first partly taken ──
  const held: Uint8Array[] = [];
  let heldOffset = 0;
  let heldBytes = 0;
  let dropWarned = false;

  function inject(input: Uint8Array | string): void {
    let bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    const room = INPUT_HOLD - heldBytes;
    if (bytes.length > room) {
      counters.rx_dropped += bytes.length - room;
      if (!dropWarned) {
        dropWarned = true;
        ctx.warn(
          `${label}: the guest takes no input and ${INPUT_HOLD} bytes are held for it; more input is dropped (reported once; \`--stats\` counts every byte dropped)`,
        );
      }
      bytes = bytes.subarray(0, room);
    }
    if (bytes.length === 0) return;
    held.push(bytes.slice()); // the source may reuse its buffer
    heldBytes += bytes.length;
    device?.receive(RECEIVEQ);
  }

  /** Moves held input into a receive chain's writable buffers; returns the bytes written. */
  function fill(chain: Chain): number {
    let written = 0;
    for (const piece of sliceStream(chain.writable, 0, Math.min(chain.writeLen, heldBytes))) {
      let at = 0;
      while (at < piece.length) {
        const chunk = held[0];
        const n = Math.min(piece.length - at, chunk.length - heldOffset);
        piece.set(chunk.subarray(heldOffset, heldOffset + n), at);
        at += n;
        heldOffset += n;
        if (heldOffset === chunk.length) {
          held.shift();
          heldOffset = 0;
        }
      }
      written += piece.length;
    }
    heldBytes -= written;
    counters.rx_bytes += written;
    return written;
  }

  function transmit(chain: Chain): number {
    for (const view of chain.readable) {
      for (let at = 0; at < view.length; at += OUTPUT_PIECE) {
        ctx.output(id, view.subarray(at, Math.min(view.length, at + OUTPUT_PIECE)));
      }
    }
    counters.tx_bytes += chain.readLen;
    return 0;
  }

  function config(): Uint8Array {
    const b = new Uint8Array(CONSOLE_CONFIG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint16(0, size?.cols ?? 0, true);
    v.setUint16(2, size?.rows ?? 0, true);
    v.setUint32(4, 1, true); // max_nr_ports: valid with MULTIPORT only, which is not offered
    return b;
  }

  const unsubscribe = ctx.input?.(id)?.subscribe(inject) ?? null;
  let closed = false;

  return {
    features: (offersSize ? 1n << BigInt(VIRTIO_CONSOLE_F_SIZE) : 0n) |
      (1n << BigInt(VIRTIO_CONSOLE_F_EMERG_WRITE)),
    configSize: CONSOLE_CONFIG_SIZE,
    readConfig(offset: number, width: AccessSize): number {
      const b = config();
      let value = 0;
      for (let i = width - 1; i >= 0; i--) value = value * 256 + b[offset + i];
      return value;
    },
    writeConfig(offset: number, width: AccessSize, value: number): void {
      // emerg_wr: one character in the low byte of the (32-bit) field. Other fields are
      // read-only; a write to them is ignored.
      if (offset !== CFG_EMERG_WR) return;
      counters.emerg_bytes++;
      ctx.output(id, new Uint8Array([value & 0xff]));
      void width;
    },
    receiveQueues: [RECEIVEQ],
    pending: (queue) => queue === RECEIVEQ && heldBytes > 0,
    attach(d) {
      device = d;
    },
    handle(queue: number, chain: Chain): number {
      return queue === RECEIVEQ ? fill(chain) : queue === TRANSMITQ ? transmit(chain) : 0;
    },
    tick(): void {
      // Held input: look at the receive ring again (one load of its index when it has no
      // new buffers), in case a driver gave buffers without the notify asked for.
      if (heldBytes > 0) device?.receive(RECEIVEQ);
      if (!offersSize) return;
      const now = ctx.terminalSize?.(id) ?? null;
      if (!now || (now.cols === size?.cols && now.rows === size?.rows)) return;
      size = now;
      counters.resizes++;
      device?.configChanged();
    },
    reset() {
      // Held input is the host's, not the driver's: it waits for the next driver.
    },
    stats: () => ({ ...counters, rx_held: heldBytes }),
    close() {
      if (closed) return;
      closed = true;
      unsubscribe?.();
      held.length = 0;
      heldBytes = 0;
    },
    inject,
  };
}
