/**
 * The clock a fuzz case is timed with: the CPU time of the calling thread
 * (clock_gettime(CLOCK_THREAD_CPUTIME_ID) through FFI), so a case's time is what vmdesc
 * spent on it, not how busy the other processes of a shared host kept the CPU; the
 * wall clock when FFI is not allowed.
 */
const CLOCK_THREAD_CPUTIME_ID = 3;

export interface CaseClock {
  /** Milliseconds on this clock. */
  now(): number;
  kind: "thread CPU time" | "wall clock";
}

export function caseClock(): CaseClock {
  try {
    const lib = Deno.dlopen(
      "libc.so.6",
      {
        clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
      } as const,
    );
    const ts = new BigInt64Array(2);
    const buf = new Uint8Array(ts.buffer);
    const now = () => {
      lib.symbols.clock_gettime(CLOCK_THREAD_CPUTIME_ID, buf);
      return Number(ts[0]) * 1000 + Number(ts[1]) / 1e6;
    };
    if (lib.symbols.clock_gettime(CLOCK_THREAD_CPUTIME_ID, buf) === 0) {
      return { now, kind: "thread CPU time" };
    }
    lib.close();
  } catch {
    // No --allow-ffi (or no glibc): the wall clock.
  }
  return { now: () => performance.now(), kind: "wall clock" };
}
