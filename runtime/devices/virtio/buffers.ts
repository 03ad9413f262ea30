/**
 * A chain's buffers taken as one byte stream (virtio 1.x leaves the framing to the driver:
 * a block request's header may share a buffer with its data, or be split over two). The
 * views are guest RAM, already checked by the queue (queue.ts).
 */

/** The pieces of bytes [from, from + len) of `views` read end to end. */
export function sliceStream(views: readonly Uint8Array[], from: number, len: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = from;
  let left = len;
  for (const v of views) {
    if (left === 0) break;
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    const n = Math.min(v.length - skip, left);
    out.push(v.subarray(skip, skip + n));
    left -= n;
    skip = 0;
  }
  return out;
}

/** A copy of bytes [from, from + len) of the stream (shorter if the stream is). */
export function readStream(views: readonly Uint8Array[], from: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let at = 0;
  for (const piece of sliceStream(views, from, len)) {
    out.set(piece, at);
    at += piece.length;
  }
  return out.subarray(0, at);
}

/** Writes `bytes` into the stream at `from` (as far as the stream reaches). */
export function writeStream(views: readonly Uint8Array[], from: number, bytes: Uint8Array): void {
  let at = 0;
  for (const piece of sliceStream(views, from, bytes.length)) {
    piece.set(bytes.subarray(at, at + piece.length));
    at += piece.length;
  }
}
