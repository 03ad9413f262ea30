/**
 * Where vCPU workers come from. `new Worker` blocks the calling thread while Deno builds
 * the worker's isolate (~15-20 ms here); the worker then loads its modules while this
 * thread builds the VM. A 1-vCPU machine can skip all of it (`vcpuThread: "caller"`).
 */
export function spawnVcpuWorker(): Worker {
  return new Worker(new URL("./vcpu_worker.ts", import.meta.url), { type: "module" });
}
