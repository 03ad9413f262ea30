/**
 * What a machine can leave behind in this process, counted: open fds, vmdesc's own
 * mappings (kvm_run pages, memfd chunks, every range the runtime mapped), worker threads,
 * and, for the record only, the total lines of /proc/self/maps, all threads and RSS (the JS
 * engine and Deno's thread pool move those by themselves, so they are reported, not held
 * to exact equality). Shared by the guest fuzzer and the soak.
 */
import * as libc from "../../runtime/host/libc.ts";

export interface Resources {
  fds: number;
  /** Mappings backed by a vCPU's kvm_run page. */
  vcpuMaps: number;
  /** Mappings of a memfd (the shadow hole's all-ones chunk). */
  memfdMaps: number;
  /** Ranges vmdesc mapped and has not unmapped (runtime/host/libc.ts keeps the list). */
  liveMaps: number;
  /** Threads named worker-N (vCPU workers). */
  workers: number;
  /** For the record: every line of /proc/self/maps, every thread, RSS in KiB. */
  mapsTotal: number;
  threads: number;
  rssKiB: number;
}

function threadNames(): string[] {
  const names: string[] = [];
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      names.push(Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim());
    } catch {
      // ended while listing
    }
  }
  return names;
}

export function resources(): Resources {
  const maps = Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => l);
  const status = Deno.readTextFileSync("/proc/self/status");
  const names = threadNames();
  return {
    fds: [...Deno.readDirSync("/proc/self/fd")].length,
    vcpuMaps: maps.filter((l) => l.includes("anon_inode:kvm-vcpu")).length,
    memfdMaps: maps.filter((l) => l.includes("/memfd:")).length,
    liveMaps: libc.liveMappings().length,
    workers: names.filter((n) => n.startsWith("worker-")).length,
    mapsTotal: maps.length,
    threads: names.length,
    rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
  };
}

/** The counts that must come back exactly to their baseline after a machine is closed. */
export const EXACT = ["fds", "vcpuMaps", "memfdMaps", "liveMaps", "workers"] as const;

/** What differs from `base` among the exact counts, as "fds 41 → 43" lines. */
export function leaks(base: Resources, now: Resources): string[] {
  return EXACT.filter((k) => now[k] !== base[k]).map((k) => `${k} ${base[k]} → ${now[k]}`);
}

/**
 * Waits (up to 10 s) until no vCPU worker thread of an earlier machine is left: a test
 * file run after others in one `deno test` process may start while theirs are ending.
 */
export async function workersGone(): Promise<void> {
  for (let i = 0; i < 1000 && resources().workers > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
}
