/**
 * Host errors a user meets, each with its code and hint: no permission on /dev/kvm (E1002),
 * a Plan beyond this KVM's limits (E1004), guest memory accessed out of bounds.
 */
import { equal, match, ok, throws } from "node:assert/strict";
import { RuntimeError } from "../../runtime/errors.ts";
import { Vm } from "../../runtime/kvm/vm.ts";
import { exitGuest, flatPlan, MiB, writeTemp } from "./plans.ts";
import { skipReason } from "../skip.ts";
import * as host from "../../runtime/host/libc.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** E1002 needs a process that really lacks permission: as root, a mode-000 device node
 * opened with every capability dropped (setpriv), so root's DAC override does not apply;
 * not root, the mode-000 node denies us directly. */
const why = skipReason("E1002 test", {
  kvm: true,
  tools: Deno.uid() === 0 ? ["mknod", "setpriv"] : ["mknod"],
});
const skip = skipReason("KVM limit and guest memory tests", { kvm: true });

Deno.test({
  name: "E1002: permission denied on the KVM device, with the kvm-group hint",
  ignore: why !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-kvmperm-" });
    try {
      const node = `${dir}/kvm`;
      const mk = await new Deno.Command("mknod", { args: [node, "c", "10", "232"] }).output();
      equal(mk.code, 0, "mknod");
      await Deno.chmod(node, 0o000);
      const script = `${dir}/open.ts`;
      await Deno.writeTextFile(
        script,
        `import { openKvm } from "${ROOT}runtime/kvm/vm.ts";
try { openKvm("${node}"); console.log("opened"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }`,
      );
      const cmd = Deno.uid() === 0
        ? new Deno.Command("setpriv", {
          args: ["--inh-caps=-all", "--bounding-set=-all", Deno.execPath(), "run", "-A", script],
          stdout: "piped",
        })
        : new Deno.Command(Deno.execPath(), { args: ["run", "-A", script], stdout: "piped" });
      // Seen once in a full CI run (not reproducible alone): the capability-less open
      // reported E1001 (ENOENT/ENODEV/ENXIO) right after other tests had torn VMs down.
      // The message names the errno; one retry tells a transient host answer from a
      // wrong mapping, which fails both times.
      let r = JSON.parse(new TextDecoder().decode((await cmd.output()).stdout));
      if (r.code === "E1001") {
        console.log(`first open of the mode-000 node gave ${r.message}; retrying once`);
        await new Promise((done) => setTimeout(done, 250));
        r = JSON.parse(new TextDecoder().decode((await cmd.output()).stdout));
      }
      equal(r.code, "E1002", r.message);
      match(r.message, /permission denied/);
      match(r.hint, /kvm group/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "E1004: a memslot id beyond KVM_CAP_NR_MEMSLOTS is refused before anything is built",
  ignore: skip !== null,
  async fn() {
    const path = await writeTemp(exitGuest(0));
    try {
      const plan = flatPlan({ path, ramSize: 4 * MiB });
      plan.memslots[0] = { ...plan.memslots[0], slot: 1_000_000 };
      try {
        await Vm.create(plan);
        ok(false, "expected E1004");
      } catch (e) {
        ok(e instanceof RuntimeError);
        equal(e.code, "E1004");
        match(e.message, /NR_MEMSLOTS/);
      }
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "guest memory: writes are bounds-checked and may cross adjacent memslots",
  ignore: skip !== null,
  async fn() {
    const path = await writeTemp(exitGuest(0));
    try {
      const plan = flatPlan({ path, ramSize: 2 * MiB });
      plan.memslots.push({
        slot: 1,
        name: "next",
        guest_phys: 2 * MiB,
        size: 1 * MiB,
        flags: [],
        backing: { kind: "anonymous" },
      });
      plan.memslots.push({
        slot: 2,
        name: "rom",
        guest_phys: 8 * MiB,
        size: 4096,
        flags: ["readonly"],
        backing: { kind: "anonymous" },
      });
      const vm = await Vm.create(plan);
      try {
        const m = vm.memory;
        m.write(2 * MiB - 2, new Uint8Array([1, 2, 3, 4]));
        equal([...m.read(2 * MiB - 2, 4)].join(), "1,2,3,4");
        equal(m.isRam(0, 3 * MiB), true);
        equal(m.isRam(0, 3 * MiB + 1), false);
        equal(m.isRam(8 * MiB, 16), false, "a read-only slot is not RAM");
        throws(() => m.write(3 * MiB - 1, new Uint8Array(2)), RangeError);
        throws(() => m.read(5 * MiB, 1), RangeError);
        equal(m.view(2 * MiB - 2, 4), null, "a view never spans two mappings");
        equal(m.view(16, 4)?.length, 4);
      } finally {
        vm.close();
      }
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "E1006: guest memory the host cannot map (no room; a directory as backing), nothing left",
  ignore: skip !== null,
  async fn() {
    const path = await writeTemp(exitGuest(0));
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-backing-" });
    try {
      const before = host.liveMappings().length;
      // 2^47 bytes of RAM: more address space than a process has; mmap fails with ENOMEM.
      const huge = flatPlan({ path, ramSize: 4 * MiB });
      huge.memslots.push({
        slot: 1,
        name: "too-big",
        guest_phys: 2 ** 40,
        size: 2 ** 47,
        flags: [],
        backing: { kind: "anonymous" },
      });
      const e1 = await Vm.create(huge).then(() => null, (e) => e);
      ok(e1 instanceof RuntimeError, String(e1));
      equal(e1.code, "E1006");
      match(e1.message, /memslot "too-big".*ENOMEM/);
      match(e1.hint ?? "", /lower `memory`/);

      const dirBacked = flatPlan({ path, ramSize: 4 * MiB });
      dirBacked.memslots.push({
        slot: 1,
        name: "rom",
        guest_phys: 0xfff0_0000,
        size: MiB,
        flags: ["readonly"],
        backing: { kind: "file", path: dir, offset: 0 },
      });
      const e2 = await Vm.create(dirBacked).then(() => null, (e) => e);
      ok(e2 instanceof RuntimeError, String(e2));
      equal(e2.code, "E1006");
      match(e2.message, /not a readable regular file/);
      ok(e2.hint);
      equal(host.liveMappings().length, before, "nothing left mapped");
    } finally {
      await Deno.remove(path);
      await Deno.remove(dir);
    }
  },
});
