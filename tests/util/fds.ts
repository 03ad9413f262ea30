/**
 * The open fds of this process by what they point at, for tests that check a machine
 * closes what it opened. `deno test` runs every file in one process, and what earlier
 * tests started (child processes' pipes, closed machines' workers) may still be closing
 * while a test runs: a count can fall under its baseline as well as rise. Comparing what is
 * open, fd by fd, sees only what the test itself left behind.
 */

/** fd number → its target (`/proc/self/fd/N`'s link), without the listing's own fd. */
export function openFds(): Map<string, string> {
  const fds = new Map<string, string>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      fds.set(e.name, Deno.readLinkSync(`/proc/self/fd/${e.name}`));
    } catch {
      // closed while listing (the listing's own directory fd among them)
    }
  }
  return fds;
}

/** The fds open now that were not open (to the same target) in `before`, as "N → target". */
export function fdsOpenedSince(before: Map<string, string>): string[] {
  const opened: string[] = [];
  for (const [fd, target] of openFds()) {
    if (before.get(fd) !== target && !target.endsWith("/fd")) opened.push(`${fd} → ${target}`);
  }
  return opened;
}
