/**
 * virtio-rng (virtio 1.2, 5.4): one queue; each chain's device-writable buffers are filled
 * from the host's getrandom(2) and returned. A chain is filled up to 64 KiB (QEMU and
 * Linux ask for far less: hw_random reads 32-byte to a page at a time), so one request
 * cannot keep the device busy for long; the used length says how much was filled.
 */
import type { BackendArgs } from "../backend.ts";
import type { VirtioBackend } from "../core.ts";
import type { Chain } from "../queue.ts";
import { sliceStream } from "../buffers.ts";
import { invalidPlan } from "../../errors.ts";
import { getrandomFull } from "../../../host/file_io.ts";

/** Bytes filled per request at most. */
export const RNG_MAX_REQUEST = 64 * 1024;

export function createRng({ label, plan }: BackendArgs): VirtioBackend {
  if (plan.backing.kind !== "getrandom") {
    throw invalidPlan(
      `${label}: a virtio_rng device takes its bytes from getrandom`,
      'set backing.kind "getrandom"',
    );
  }
  const counters = { requests: 0, bytes: 0, getrandom_errors: 0 };
  return {
    features: 0n,
    configSize: 0,
    readConfig: () => 0,
    writeConfig() {},
    handle(_queue: number, chain: Chain): number {
      counters.requests++;
      let filled = 0;
      for (
        const piece of sliceStream(chain.writable, 0, Math.min(chain.writeLen, RNG_MAX_REQUEST))
      ) {
        const r = getrandomFull(piece);
        if (r !== piece.length) {
          counters.getrandom_errors++;
          break;
        }
        filled += r;
      }
      counters.bytes += filled;
      return filled;
    },
    reset() {},
    stats: () => ({ ...counters }),
    close() {},
  };
}
