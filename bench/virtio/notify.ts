/**
 * Where should a virtio queue notification be served? Measured here, before the device
 * was written (ARCHITECTURE.md, "Virtio notifications"):
 *
 *   exit             the guest's notify write exits to the VMM; the vCPU's own thread
 *                    answers and re-enters the guest (vmdesc's way)
 *   ioeventfd+thread KVM_IOEVENTFD turns the write into an eventfd signal inside the
 *                    kernel (no exit to the VMM); an I/O thread blocked in read(2) wakes
 *                    and answers (Firecracker's and QEMU's way)
 *   ioeventfd+pool   the same eventfd read by a `nonblocking` FFI call on Deno's thread
 *                    pool, answered on the machine's event loop
 *
 * A flat guest notifies N times and spins on a flag in its RAM after each; the answer sets
 * the flag, so each round trip is the notification path alone, nothing of a device. Modes
 * are interleaved; the result is µs per round trip (best and median) and exits per round trip.
 *
 *   deno run -A bench/virtio/notify.ts [--n 20000] [--runs 5]
 */
import { Vm } from "../../runtime/kvm/vm.ts";
import { boot } from "../../runtime/boot/mod.ts";
import * as host from "../../runtime/host/libc.ts";
import { flatPlan, writeTemp } from "../../tests/runtime/plans.ts";
import type { NotifyWorkerInit } from "./notify_worker.ts";

export const NOTIFY = 0xd000_0000;
const FLAG = 0x30_0000;

/** 32-bit code: N times { flag = 0; *NOTIFY = 1; spin until flag }; then debug exit. */
export function notifyGuest(n: number): Uint8Array {
  const le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  return new Uint8Array([
    0xb9,
    ...le(n), // mov ecx, n
    0xbf,
    ...le(FLAG), // mov edi, FLAG
    0xc7,
    0x07,
    0,
    0,
    0,
    0, // loop: mov dword [edi], 0
    0xc7,
    0x05,
    ...le(NOTIFY),
    1,
    0,
    0,
    0, // mov dword [NOTIFY], 1
    0xf3,
    0x90, // wait: pause
    0x83,
    0x3f,
    0x00, // cmp dword [edi], 0
    0x74,
    0xf9, // je wait
    0xe2,
    0xe7, // loop loop
    0xb0,
    0x00,
    0xe6,
    0xf4, // mov al, 0; out 0xf4, al
    0xfa,
    0xf4,
    0xeb,
    0xfd, // cli; hlt; jmp $-1
  ]);
}

const KVM_IOEVENTFD = 0x4040ae79;
const EFD_CLOEXEC = 0o2000000;

type Mode = "exit" | "ioeventfd+thread" | "ioeventfd+pool";

function spawn(init: NotifyWorkerInit): Promise<{ ms: number; exits: number }> {
  const w = new Worker(new URL("./notify_worker.ts", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => {
      w.terminate();
      resolve(e.data);
    };
    w.onerror = (e) => {
      w.terminate();
      reject(e);
    };
    w.postMessage(init);
  });
}

const extra = Deno.dlopen("libc.so.6", {
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  read_nb: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
});

/** One run: µs per round trip and exits per round trip. */
export async function runMode(mode: Mode, path: string, n: number) {
  const plan = flatPlan({ path, ramSize: 16 * 2 ** 20 });
  const vm = await Vm.create(plan);
  let efd = -1;
  try {
    await boot(plan, vm.memory, vm.vcpus[0], "/");
    const ram = vm.regions.find((r) => r.ram)!;
    const flagAddr = (BigInt(ram.hostAddr) + BigInt(FLAG - ram.guestPhys)).toString();
    const v = vm.vcpus[0];
    const base: NotifyWorkerInit = {
      role: "vcpu",
      fd: v.fd,
      runAddr: v.runAddr.toString(),
      runSize: v.runSize,
      flagAddr,
      answerExits: mode === "exit",
      eventfd: -1,
      count: n,
    };
    if (mode !== "exit") {
      efd = extra.symbols.eventfd(0, EFD_CLOEXEC);
      if (efd < 0) throw new Error("eventfd failed");
      const req = new Uint8Array(64);
      const dv = new DataView(req.buffer);
      dv.setBigUint64(8, BigInt(NOTIFY), true);
      dv.setUint32(16, 4, true);
      dv.setInt32(20, efd, true);
      host.ioctlBuf(vm.vmFd, KVM_IOEVENTFD, req, "KVM_IOEVENTFD");
    }
    const t0 = performance.now();
    const cpu0 = cpuMs();
    const vcpu = spawn(base);
    if (mode === "ioeventfd+thread") {
      await Promise.all([vcpu, spawn({ ...base, role: "io", eventfd: efd })]);
    } else if (mode === "ioeventfd+pool") {
      const flag = host.hostBytes(BigInt(flagAddr), 4);
      const buf = new Uint8Array(8);
      for (let i = 0; i < n; i++) {
        if (await extra.symbols.read_nb(efd, buf, 8n) !== 8n) break;
        flag[0] = 1;
      }
    }
    const r = await vcpu;
    const ms = performance.now() - t0;
    return { us: (ms * 1000) / n, exits: r.exits / n, cpuUs: ((cpuMs() - cpu0) * 1000) / n };
  } finally {
    vm.close();
    if (efd >= 0) host.close(efd);
  }
}

/**
 * This process's CPU time (user + system), in ms (from /proc: 10 ms ticks; through cat(1),
 * since Deno wants --allow-all for /proc and the bench task does not give it).
 */
export function cpuMs(): number {
  const r = new Deno.Command("cat", { args: [`/proc/${Deno.pid}/stat`], stdout: "piped" })
    .outputSync();
  const f = new TextDecoder().decode(r.stdout).split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (import.meta.main) {
  const arg = (k: string, d: number) => {
    const i = Deno.args.indexOf(`--${k}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : d;
  };
  const n = arg("n", 20000);
  const runs = arg("runs", 5);
  const path = await writeTemp(notifyGuest(n));
  const warm = await writeTemp(notifyGuest(1000));
  const modes: Mode[] = ["exit", "ioeventfd+thread", "ioeventfd+pool"];
  const res = new Map<Mode, { us: number[]; exits: number; cpu: number[] }>();
  try {
    for (const m of modes) await runMode(m, warm, 1000); // warm up (JIT, page faults)
    for (let r = 0; r < runs; r++) {
      for (const m of modes) {
        const x = await runMode(m, path, n);
        const e = res.get(m) ?? { us: [], exits: 0, cpu: [] };
        e.us.push(x.us);
        e.cpu.push(x.cpuUs);
        e.exits = x.exits;
        res.set(m, e);
      }
    }
  } finally {
    await Deno.remove(path);
    await Deno.remove(warm);
  }
  console.log(`notify round trip, ${n} per run, ${runs} runs interleaved`);
  const out: Record<string, unknown> = {};
  for (const [m, e] of res) {
    const row = {
      us_best: Math.min(...e.us),
      us_median: median(e.us),
      cpu_us_median: median(e.cpu),
      exits_to_vmm_per_notify: e.exits,
    };
    out[m] = row;
    console.log(
      `  ${m.padEnd(18)} best ${row.us_best.toFixed(2)} µs  median ${
        row.us_median.toFixed(2)
      } µs  cpu ${row.cpu_us_median.toFixed(2)} µs  exits/notify ${
        row.exits_to_vmm_per_notify.toFixed(3)
      }`,
    );
  }
  console.log(JSON.stringify(out));
}
