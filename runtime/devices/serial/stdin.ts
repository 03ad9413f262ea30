/**
 * The process's stdin as a serial RX source.
 *
 * A terminal is put in raw mode (cbreak: keys go to the guest one by one, unechoed, but
 * Ctrl-C still raises SIGINT so the VMM can stop the guest) and restored when the
 * subscription ends, and on `unload` (Deno.exit) as a last resort. A pipe is just read.
 *
 * Reading is asynchronous on the owning thread's event loop, so it never blocks a vCPU:
 * bytes reach the device whenever that loop turns. Stdin can be consumed once per process;
 * after unsubscribe it is closed.
 */
import type { InputSource } from "../device.ts";

export function stdinInput(): InputSource {
  return {
    subscribe(onData: (bytes: Uint8Array) => void): () => void {
      let raw = false;
      const restore = () => {
        if (!raw) return;
        raw = false;
        try {
          Deno.stdin.setRaw(false);
        } catch {
          // stdin already closed: nothing to restore
        }
      };
      if (Deno.stdin.isTerminal()) {
        Deno.stdin.setRaw(true, { cbreak: true });
        raw = true;
        globalThis.addEventListener("unload", restore);
      }
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
        globalThis.removeEventListener("unload", restore);
        reader.cancel().catch(() => {});
        void pump;
      };
    },
  };
}
