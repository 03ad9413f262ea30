/**
 * Run inside a test's network namespace by net_test.ts (`deno run -A resources_probe.ts
 * PLAN.json ROUNDS`): boots the network guest through the library ROUNDS times (mode=tx, on
 * the caller's thread and on vCPU workers in turn), closing each machine, and prints one JSON
 * line: the open fds, the threads, and whether the TAP device is still there, before and
 * after. A network device's TAP descriptor, its waiter Worker and eventfd must all be gone
 * once a machine is closed.
 */
import { createMachine } from "../../runtime/mod.ts";
import type { Plan } from "../../plan/types.ts";
import { workersGone } from "../util/workers.ts";

const [planPath, roundsArg] = Deno.args;
const plan = JSON.parse(await Deno.readTextFile(planPath)) as Plan;
const rounds = Number(roundsArg ?? 4);

const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
const threads = () => [...Deno.readDirSync("/proc/self/task")].length;
const tapThere = (name: string) => {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
};

const tap = plan.pci.find((f) => f.virtio?.backing.kind === "tap")?.virtio?.backing;
const tapName = tap?.kind === "tap" ? tap.tap : "";
const runs: string[] = [];

async function boot(vcpuThread: "caller" | "worker") {
  const m = await createMachine(plan, { serial: () => {}, vcpuThread, warn: () => {} });
  try {
    const r = await m.run({ timeout: 60_000 });
    runs.push(`${vcpuThread}:${r.reason}`);
  } finally {
    await m.close();
  }
}

// One round first: libraries opened and pools started stay for the life of the process.
await boot("caller");
await boot("worker");
await workersGone();
const before = { fds: fds(), threads: threads() };
for (let i = 0; i < rounds; i++) await boot(i % 2 === 0 ? "caller" : "worker");
await workersGone();
const after = { fds: fds(), threads: threads() };
console.log(JSON.stringify({ before, after, tapAfter: tapThere(tapName), runs }));
