/**
 * Where vCPU workers come from. `new Worker` blocks the calling thread while Deno builds
 * the worker's isolate (~20 ms here), and the worker then needs tens of milliseconds more
 * to load its modules before it can take its init message. A caller that knows a machine
 * is coming (`vmdesc boot`, before it compiles the file) calls prestartVcpuWorker() so
 * both happen while it compiles and builds the VM; Machine.create takes that worker first.
 * The caller must call discardPrestartedWorkers() when it is done (a prestarted worker
 * nobody took would keep the process alive).
 */
const spare: Worker[] = [];

function spawn(): Worker {
  return new Worker(new URL("./vcpu_worker.ts", import.meta.url), { type: "module" });
}

/** Starts one vCPU worker now, for the next Machine.create in this process. */
export function prestartVcpuWorker(): void {
  spare.push(spawn());
}

/** A prestarted worker if there is one, else a new one. */
export function takeVcpuWorker(): Worker {
  return spare.shift() ?? spawn();
}

/** Terminates prestarted workers that no machine took. */
export function discardPrestartedWorkers(): void {
  for (const w of spare.splice(0)) w.terminate();
}
