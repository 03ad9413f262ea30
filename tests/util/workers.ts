/** The Worker threads of this process, for the tests that check a machine leaves none. */

/** Worker threads of this process (Deno names their threads worker-N). */
export function workerThreads(): number {
  return [...Deno.readDirSync("/proc/self/task")].filter((t) => {
    try {
      return Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).startsWith("worker-");
    } catch {
      return false; // ended while listing
    }
  }).length;
}

/**
 * Waits (up to 10 s) until no worker thread is left. A terminated Worker's thread ends
 * after terminate() returns, and only then closes the fds its runtime holds (two epolls, an
 * eventfd, copies of stdio: ~6 each). `deno test` runs every test file in one process, so
 * the vCPU workers of the machines an earlier file (or test) closed may still be ending:
 * counting fds before they are gone made "open fds" fail now and then in full runs. A
 * leaked worker never ends, and then the counts differ.
 */
export async function workersGone(): Promise<void> {
  for (let i = 0; i < 1000 && workerThreads() > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
}
