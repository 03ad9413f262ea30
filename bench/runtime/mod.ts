/**
 * Runtime benchmark: what vmdesc's run loop costs per exit compared with the barest FFI
 * KVM_RUN loop, how long a VM takes to create and destroy, and how long `hello` takes to
 * boot. Both loops run the same flat guest (`in al, 0x80` N times) in a worker thread,
 * alternated, and the report is the ratio of medians. Writes bench/results/runtime.json
 * and bench/results/runtime.svg.
 *
 *   deno task bench runtime [-- --exits N --runs R]
 */
import { Machine } from "../../runtime/machine.ts";
import { Vm } from "../../runtime/kvm/vm.ts";
import { boot } from "../../runtime/boot/mod.ts";
import { flatPlan, inLoopGuest, writeTemp } from "../../tests/runtime/plans.ts";
import { buildGuests } from "../../examples/guests/build.ts";
import { vmdescArgv } from "../vmdesc_command.ts";

const args = Deno.args;
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const EXITS = opt("exits", 20000);
const RUNS = opt("runs", 5);
const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** vmdesc's own time between KVM_RUN calls per exit (dispatch + stats), from its stats. */
const vmmShare: number[] = [];

async function vmdescLoop(path: string): Promise<number> {
  using m = await Machine.create(flatPlan({ path }));
  const r = await m.run({ timeout: 120 });
  if (r.exitStatus !== 1) throw new Error(`guest ended with ${r.reason}`);
  vmmShare.push((r.stats.vmm_ms * 1000) / r.stats.exits_total);
  // Time inside the loop only (guest + VMM), per exit, like the bare loop measures.
  return ((r.stats.guest_ms + r.stats.vmm_ms) * 1000) / r.stats.exits_total;
}

async function bareLoop(path: string): Promise<number> {
  const plan = flatPlan({ path });
  const vm = await Vm.create(plan);
  try {
    await boot(plan, vm.memory, vm.vcpus[0], "/");
    const w = new Worker(new URL("./bare_worker.ts", import.meta.url), { type: "module" });
    try {
      const v = vm.vcpus[0];
      const res = await new Promise<{ exits: number; ms: number }>((resolve) => {
        w.onmessage = (e) => resolve(e.data);
        w.postMessage({ fd: v.fd, runAddr: v.runAddr.toString(), runSize: v.runSize });
      });
      return (res.ms * 1000) / res.exits;
    } finally {
      w.terminate();
    }
  } finally {
    vm.close();
  }
}

const path = await writeTemp(inLoopGuest(EXITS));
const vmdesc: number[] = [];
const bare: number[] = [];
try {
  await bareLoop(path); // warm up both (JIT, page faults)
  await vmdescLoop(path);
  for (let i = 0; i < RUNS; i++) {
    bare.push(await bareLoop(path));
    vmdesc.push(await vmdescLoop(path));
  }
} finally {
  await Deno.remove(path);
}

// VM create + destroy (KVM VM, 16 MiB RAM slot, 1 vCPU with CPUID and kvm_run).
const createPlan = flatPlan({ path: "/dev/null" });
const vmTimes: number[] = [];
for (let i = 0; i < 30; i++) {
  const t0 = performance.now();
  (await Vm.create(createPlan)).close();
  vmTimes.push(performance.now() - t0);
}

// A whole machine (VM + payload + one vCPU worker with its devices) created and closed.
const machinePlan = flatPlan({ path: ROOT + "examples/guests/build/hello.elf" });
machinePlan.boot = {
  ...machinePlan.boot,
  protocol: "pvh",
  load_address: null,
  entry: null,
  cpu_mode: null,
};
await buildGuests(["hello"]);
const machineTimes: number[] = [];
for (let i = 0; i < 10; i++) {
  const t0 = performance.now();
  (await Machine.create(machinePlan)).close();
  machineTimes.push(performance.now() - t0);
}

// Boot time of hello: the whole `vmdesc boot examples/hello.vmdesc` process, and in-process.
await buildGuests(["hello"]);
const cliTimes: number[] = [];
const [deno, ...bootArgs] = vmdescArgv(Deno.execPath(), ["boot", ROOT + "examples/hello.vmdesc"]);
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const o = await new Deno.Command(deno, {
    args: bootArgs,
    stdout: "null",
    stderr: "null",
  }).output();
  if (o.code !== 0) throw new Error(`hello ended with status ${o.code}`); // `success 42`
  cliTimes.push(performance.now() - t0);
}
const { compile } = await import("../../lang/mod.ts");
const { DenoHost } = await import("../../host/disk_host.ts");
const inProc: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const host = new DenoHost();
  const file = ROOT + "examples/hello.vmdesc";
  const plan = [...compile(host.readFile(file)!, { file, host }).plans.values()][0];
  using m = await Machine.create(plan);
  const r = await m.run({ timeout: 30 });
  if (r.exitStatus !== 0) throw new Error("hello failed"); // hello.vmdesc declares `success 42`
  inProc.push(performance.now() - t0);
}

const result = {
  version: 1,
  host: { kvm: "kvm_pvm (software)", cpus: navigator.hardwareConcurrency },
  exits_per_run: EXITS,
  runs: RUNS,
  pio_exit_us: {
    vmdesc: median(vmdesc),
    bare_ffi: median(bare),
    samples: { vmdesc, bare_ffi: bare },
  },
  ratio_vmdesc_over_bare: median(vmdesc) / median(bare),
  /** Measured inside vmdesc's loop: the host-side cost per exit, immune to guest-speed noise. */
  vmdesc_vmm_us_per_exit: median(vmmShare),
  /** Minimums: the least-disturbed run of each, the better estimate on a busy host. */
  ratio_min_vmdesc_over_bare: Math.min(...vmdesc) / Math.min(...bare),
  vm_create_destroy_ms: median(vmTimes),
  machine_create_close_ms: median(machineTimes),
  hello_boot_ms: { cli_process: median(cliTimes), in_process: median(inProc) },
};

console.log(`PIO exit (in al,0x80 x ${EXITS}), median of ${RUNS}:`);
console.log(
  `  bare FFI loop   ${result.pio_exit_us.bare_ffi.toFixed(2)} us/exit  (${
    (1e6 / result.pio_exit_us.bare_ffi).toFixed(0)
  } exits/s)`,
);
console.log(
  `  vmdesc loop     ${result.pio_exit_us.vmdesc.toFixed(2)} us/exit  (${
    (1e6 / result.pio_exit_us.vmdesc).toFixed(0)
  } exits/s)`,
);
console.log(
  `  vmdesc's own time per exit between KVM_RUN calls: ${
    result.vmdesc_vmm_us_per_exit.toFixed(2)
  } us`,
);
console.log(
  `  ratio vmdesc / bare = ${result.ratio_vmdesc_over_bare.toFixed(3)} (medians), ${
    result.ratio_min_vmdesc_over_bare.toFixed(3)
  } (minimums)`,
);
console.log(`VM create + destroy: ${result.vm_create_destroy_ms.toFixed(1)} ms (median of 30)`);
console.log(
  `machine (VM + payload + vCPU worker) create + close: ${
    result.machine_create_close_ms.toFixed(1)
  } ms (median of 10)`,
);
console.log(
  `hello boot: ${result.hello_boot_ms.cli_process.toFixed(0)} ms whole CLI process, ${
    result.hello_boot_ms.in_process.toFixed(0)
  } ms in process (compile + create + run)`,
);

const out = new URL("../results/", import.meta.url);
await Deno.mkdir(out, { recursive: true });
await Deno.writeTextFile(new URL("runtime.json", out), JSON.stringify(result, null, 2) + "\n");
const bars = [
  ["bare FFI loop", result.pio_exit_us.bare_ffi],
  ["vmdesc run loop", result.pio_exit_us.vmdesc],
] as const;
const max = Math.max(...bars.map((b) => b[1]));
const svg =
  `<svg xmlns="http://www.w3.org/2000/svg" width="520" height="130" font-family="sans-serif" font-size="13">
<text x="10" y="20">µs per trapped PIO read (lower is better), ratio ${
    result.ratio_vmdesc_over_bare.toFixed(3)
  }</text>
${
    bars.map(([name, v], i) =>
      `<text x="10" y="${55 + i * 35}">${name}</text><rect x="140" y="${40 + i * 35}" width="${
        (v / max) * 300
      }" height="22" fill="${i ? "#3b7dd8" : "#999"}"/><text x="${150 + (v / max) * 300}" y="${
        55 + i * 35
      }">${v.toFixed(2)}</text>`
    ).join("\n")
  }
</svg>
`;
await Deno.writeTextFile(new URL("runtime.svg", out), svg);
