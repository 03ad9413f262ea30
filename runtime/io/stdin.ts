/**
 * The process's stdin as a serial RX source.
 *
 * A terminal is put in raw mode (cbreak: keys go to the guest one by one, unechoed, but
 * Ctrl-C still raises SIGINT so the VMM can stop the guest) and restored when the
 * subscription ends, and on `unload` (Deno.exit) as a last resort. A pipe is just read.
 *
 * Two ways to read it, one per process (after either ends, stdin is done):
 * - `subscribe`: asynchronous reads on the owning thread's event loop, so they never block
 *   a vCPU; bytes reach the device whenever that loop turns.
 * - `openPolled`: poll(2) + read(2) on fd 0, for a vCPU loop on the caller's thread, which
 *   checks for input at every kick without waiting for its event loop.
 */
import type { InputSource, PolledInput } from "../devices/device.ts";
import { EAGAIN, EINTR, errno, libc, pollReadable } from "../host/libc.ts";

/** Raw (cbreak) mode for a terminal stdin; returns what undoes it (idempotent). */
function enterRawMode(): () => void {
  if (!Deno.stdin.isTerminal()) return () => {};
  Deno.stdin.setRaw(true, { cbreak: true });
  let raw = true;
  const restore = () => {
    if (!raw) return;
    raw = false;
    globalThis.removeEventListener("unload", restore);
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // stdin already closed: nothing to restore
    }
  };
  globalThis.addEventListener("unload", restore);
  return restore;
}

export function stdinInput(): InputSource {
  return {
    subscribe(onData: (bytes: Uint8Array) => void): () => void {
      const restore = enterRawMode();
      const reader = Deno.stdin.readable.getReader();
      let stopped = false;
      const pump = (async () => {
        try {
          while (!stopped) {
            const { value, done } = await reader.read();
            if (done || stopped) break;
            if (value && value.length > 0) onData(value);
          }
        } catch {
          // stdin closed under us: no more input
        }
      })();
      return () => {
        if (stopped) return;
        stopped = true;
        restore();
        reader.cancel().catch(() => {});
        void pump;
      };
    },

    openPolled(): PolledInput {
      const restore = enterRawMode();
      const buf = new Uint8Array(4096);
      let ended = false;
      return {
        read(): Uint8Array | null {
          if (ended || !pollReadable(0)) return null;
          const n = Number(libc().read(0, buf, BigInt(buf.length)));
          if (n > 0) return buf.slice(0, n);
          // End of file, or an error other than "try again" (EIO after a hangup): done.
          const e = n < 0 ? errno() : 0;
          if (n === 0 || (e !== EINTR && e !== EAGAIN)) ended = true;
          return null;
        },
        close(): void {
          ended = true;
          restore();
        },
      };
    },
  };
}
