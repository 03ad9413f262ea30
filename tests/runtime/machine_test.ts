/**
 * The machine on the real /dev/kvm with hand-written Plans and hand-assembled flat guests:
 * exit statuses, stopping a guest that never exits, faults, unclaimed accesses, errors.
 */
import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
import { Machine } from "../../runtime/machine.ts";
import { createMachine } from "../../runtime/mod.ts";
import { RuntimeError } from "../../runtime/errors.ts";
import {
  exitGuest,
  flatPlan,
  haltGuest,
  inLoopGuest,
  MiB,
  serialDevice,
  spinGuest,
  withGuest,
} from "./plans.ts";
import { skipReason } from "../skip.ts";
import { checkTripleFaultDump } from "../kvm.ts";

const kvm = skipReason("runtime machine tests", { kvm: true }) === null;
const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !kvm, fn });

test("flat guest: debug_exit value v ends the run with status (v << 1) | 1", async () => {
  await withGuest(exitGuest(7), async (path) => {
    using m = await Machine.create(flatPlan({ path }));
    const r = await m.run({ timeout: 10 });
    equal(r.reason, "debug_exit");
    equal(r.debugValue, 7);
    equal(r.exitStatus, 15);
    equal(r.stats.exits.io, 1);
    equal(r.stats.devices.find((d) => d.id === "debug_exit")?.pio_exits, 1);
  });
});

test("real-mode flat guest runs at its entry", async () => {
  await withGuest(exitGuest(3).subarray(0, 4), async (path) => {
    // b0 03 e6 f4 = mov al,3; out 0xf4,al — the same bytes in 16-bit code.
    using m = await Machine.create(flatPlan({ path, load: 0x7c00, mode: "real" }));
    const r = await m.run({ timeout: 10 });
    equal(r.exitStatus, 7);
  });
});

test("unclaimed port reads return all-ones and are counted", async () => {
  // in al, 0x80 five times, then: cmp al, 0xff; jne fail; out 0xf4 <- 0 (status 1), fail: out 0xf4 <- 1.
  const code = new Uint8Array([
    0xb9,
    5,
    0,
    0,
    0, // mov ecx, 5
    0xe4,
    0x80, // in al, 0x80
    0xe2,
    0xfc, // loop
    0x3c,
    0xff, // cmp al, 0xff
    0x75,
    0x04, // jne +4
    0xb0,
    0x00,
    0xe6,
    0xf4, // ok: exit 0
    0xb0,
    0x01,
    0xe6,
    0xf4, // fail: exit 1
  ]);
  await withGuest(code, async (path) => {
    using m = await Machine.create(flatPlan({ path }));
    const r = await m.run({ timeout: 10 });
    equal(r.exitStatus, 1, "the guest saw all-ones");
    equal(r.stats.unclaimed.pio_read, 5);
    equal(r.stats.exits.io, 6);
  });
});

test("a guest spinning without exits is stopped by the timeout (status 6)", async () => {
  await withGuest(spinGuest(), async (path) => {
    using m = await Machine.create(flatPlan({ path }));
    const t0 = performance.now();
    const r = await m.run({ timeout: 0.3 });
    equal(r.reason, "timeout");
    equal(r.exitStatus, 6);
    ok(performance.now() - t0 < 5000, "stopped promptly");
    match(r.message, /timeout/);
  });
});

test("an AbortSignal stops a spinning guest (status 8), also with several vCPUs", async () => {
  await withGuest(spinGuest(), async (path) => {
    using m = await Machine.create(flatPlan({ path, cpus: 2 }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const r = await m.run({ signal: ac.signal });
    equal(r.reason, "aborted");
    equal(r.exitStatus, 8);
    equal(r.stats.vcpus.length, 2);
  });
});

test("close() while running stops the vCPUs and releases the VM", async () => {
  await withGuest(spinGuest(), async (path) => {
    const m = await Machine.create(flatPlan({ path }));
    const running = m.run();
    await new Promise((r) => setTimeout(r, 100));
    m.close();
    m.close(); // idempotent
    const r = await running;
    equal(r.reason, "aborted");
  });
});

test("triple fault: 'guest triple fault', a register dump, status 4", async () => {
  // lidt [limit 0]; ud2 → #UD cannot be delivered → #DF → shutdown.
  const code = new Uint8Array(32);
  code.set([0x0f, 0x01, 0x1d, 0x10, 0x00, 0x10, 0x00, 0x0f, 0x0b]);
  await withGuest(code, async (path) => {
    using m = await Machine.create(flatPlan({ path }));
    const r = await m.run({ timeout: 10 });
    equal(r.reason, "triple_fault");
    equal(r.exitStatus, 4);
    match(r.message, /guest triple fault/);
    ok(r.dump);
    // At the ud2 (0x100007) where KVM keeps the state; a note where it reset the vCPU.
    checkTripleFaultDump(r.dump, { rip: 0x10_0007 });
  });
});

test("cli; hlt with the in-kernel irqchip blocks in KVM and is still stoppable", async () => {
  await withGuest(haltGuest(), async (path) => {
    using m = await Machine.create(flatPlan({ path }));
    const r = await m.run({ timeout: 0.3 });
    // With an in-kernel LAPIC, HLT never exits to userspace; a HLT exit (other KVMs) ends
    // the run as "halted". Either way the run ends.
    ok(r.reason === "timeout" || r.reason === "halted", r.reason);
  });
});

test("SMP: every vCPU gets its own worker, and APs wait for SIPI", async () => {
  await withGuest(exitGuest(9), async (path) => {
    using m = await Machine.create(flatPlan({ path, cpus: 3 }));
    const r = await m.run({ timeout: 10 });
    equal(r.exitStatus, 19);
    equal(r.stats.vcpus.length, 3);
  });
});

test("library API: createMachine streams serial output and reports the outcome", async () => {
  // Print "hi\n" on COM1 (out 0x3f8), then exit 0.
  const code = new Uint8Array([
    0x66,
    0xba,
    0xf8,
    0x03, // mov dx, 0x3f8
    0xb0,
    0x68,
    0xee, // mov al,'h'; out dx,al
    0xb0,
    0x69,
    0xee,
    0xb0,
    0x0a,
    0xee,
    0xb0,
    0x00,
    0xe6,
    0xf4,
  ]);
  await withGuest(code, async (path) => {
    const plan = flatPlan({ path });
    plan.devices.unshift(serialDevice());
    using m = await createMachine(plan);
    const text = new Response(m.serial).text();
    const r = await m.run({ timeout: 10 });
    equal(r.exitStatus, 1);
    equal(await text, "hi\n");
  });
});

test("E1010: a missing payload; E1016: a payload outside RAM", async () => {
  await rejects(Machine.create(flatPlan({ path: "/nonexistent/guest.bin" })), (e: unknown) => {
    ok(e instanceof RuntimeError);
    equal(e.code, "E1010");
    match(e.message, /not found/);
    return true;
  });
  await withGuest(exitGuest(0), async (path) => {
    await rejects(
      Machine.create(flatPlan({ path, ramSize: 4 * MiB, load: 8 * MiB })),
      (e: unknown) => {
        ok(e instanceof RuntimeError);
        equal(e.code, "E1016");
        return true;
      },
    );
  });
});

test("E1001: no KVM device, with the hint", async () => {
  await withGuest(exitGuest(0), async (path) => {
    await rejects(
      Machine.create(flatPlan({ path }), { device: "/nonexistent/kvm" }),
      (e: unknown) => {
        ok(e instanceof RuntimeError);
        equal(e.code, "E1001");
        match(e.hint ?? "", /kvm module loaded/);
        return true;
      },
    );
  });
});

test("E1006: an unknown device kind and a ones_alias slot are refused cleanly", async () => {
  await withGuest(exitGuest(0), async (path) => {
    const plan = flatPlan({ path });
    plan.devices.push({
      id: "x",
      kind: "warp_drive",
      ports: [{ base: 0x500, size: 1 }],
      mmio: [],
      irq: null,
      props: {},
    });
    await rejects(Machine.create(plan), (e: unknown) => {
      ok(e instanceof RuntimeError);
      equal(e.code, "E1006");
      match(e.message, /warp_drive/);
      return true;
    });
  });
});

test("the stats count every exit once", async () => {
  await withGuest(inLoopGuest(50), async (path) => {
    using m = await Machine.create(flatPlan({ path }));
    const r = await m.run({ timeout: 10 });
    equal(r.exitStatus, 1);
    equal(r.stats.exits.io, 51);
    // Besides the guest's own exits there can only be kicks (the periodic output flush).
    deepStrictEqual(Object.keys(r.stats.exits).filter((k) => k !== "io" && k !== "intr"), []);
    equal(r.stats.exits_total, 51 + (r.stats.exits.intr ?? 0));
    equal(r.stats.unclaimed.pio_read, 50);
    ok(r.stats.guest_ms > 0 && r.stats.vmm_ms >= 0);
  });
});

test("PVH: an ELF64 image (like vmlinux) boots; hvm_start_info carries magic, cmdline and the e820 map", async () => {
  const { buildGuests } = await import("../../examples/guests/build.ts");
  const { pvhPlan } = await import("./plans.ts");
  const built = await buildGuests(["hello"]);
  const elf64 = await Deno.makeTempFile({ suffix: ".elf" });
  try {
    const o = await new Deno.Command("objcopy", {
      args: ["-O", "elf64-x86-64", built.get("hello")!, elf64],
    }).output();
    equal(o.code, 0);
    const plan = pvhPlan({ path: elf64, cmdline: "console=ttyS0 quiet" });
    let out = "";
    using m = await Machine.create(plan, {
      output: (_id, b) => out += new TextDecoder().decode(b),
    });
    const L = plan.boot.layout;
    const info = new DataView(m.memory.read(L.info_addr, 56).buffer);
    equal(info.getUint32(0, true), 0x336ec578);
    equal(info.getUint32(4, true), 1);
    equal(Number(info.getBigUint64(24, true)), L.cmdline_addr);
    equal(Number(info.getBigUint64(40, true)), L.memmap_addr);
    equal(info.getUint32(48, true), plan.e820.length);
    equal(new TextDecoder().decode(m.memory.read(L.cmdline_addr, 20)), "console=ttyS0 quiet\0");
    const mm = new DataView(m.memory.read(L.memmap_addr, 24 * plan.e820.length).buffer);
    plan.e820.forEach((e, i) => {
      equal(Number(mm.getBigUint64(i * 24, true)), e.addr);
      equal(Number(mm.getBigUint64(i * 24 + 8, true)), e.size);
      equal(mm.getUint32(i * 24 + 16, true), 1);
    });
    const r = await m.run({ timeout: 20 });
    equal(r.exitStatus, 85);
    equal(out, "Hello from vmdesc guest\n");
  } finally {
    await Deno.remove(elf64);
  }
});

test("output without a newline reaches the sink while the guest keeps running", async () => {
  // "ok>" on COM1 (no newline), then spin without exits: only the periodic flush can show it.
  const code = new Uint8Array([
    0x66,
    0xba,
    0xf8,
    0x03, // mov dx, 0x3f8
    0xb0,
    0x6f,
    0xee, // 'o'
    0xb0,
    0x6b,
    0xee, // 'k'
    0xb0,
    0x3e,
    0xee, // '>'
    0xeb,
    0xfe, // jmp $
  ]);
  await withGuest(code, async (path) => {
    const plan = flatPlan({ path });
    plan.devices.unshift(serialDevice());
    let out = "";
    let seenWhileRunning = "";
    using m = await Machine.create(plan, {
      output: (_id, b) => out += new TextDecoder().decode(b),
    });
    const ac = new AbortController();
    const poll = setInterval(() => {
      if (out.length > 0 && !ac.signal.aborted) {
        seenWhileRunning = out;
        ac.abort();
      }
    }, 20);
    const t = setTimeout(() => ac.abort(), 5000);
    const r = await m.run({ signal: ac.signal });
    clearInterval(poll);
    clearTimeout(t);
    equal(r.reason, "aborted");
    equal(seenWhileRunning, "ok>");
  });
});
