/**
 * Swapping a disk's image while the machine is paused (PUT /v1/disks/{id}, `vmdesc ctl
 * SOCK disk ID --file PATH`, `machine.swapDisk`), with the virtio-blk guest in its `swap`
 * mode: it reads sector 0, waits for the configuration generation to move, then reads the
 * capacity and sector 0 again and writes its test sector. The guest must see the new
 * image's size and bytes and a configuration-change interrupt; its write must land in the
 * new image, never the old. Every refusal (running, no such disk, an image that cannot be
 * used, a writable image for a disk built read-only, a bad body) has its code and leaves
 * the disk as it was; the vmdesc process ends with the fds it had, and the old image's
 * lock is released once it is swapped out.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { buildGuests, diskImageBytes, guestPath } from "../../examples/guests/build.ts";
import { vmdescArgv } from "../../bench/vmdesc_command.ts";
import { compileFile } from "../../mod.ts";
import { createMachine, type Plan } from "../../runtime/mod.ts";
import { close, O_RDONLY, O_RDWR, open } from "../../runtime/host/libc.ts";
import { flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from "../../runtime/host/file_io.ts";
import { skipReason } from "../skip.ts";
import {
  bootWithApi,
  curl,
  followEvents,
  Lines,
  processResources,
  ROOT,
  settledFds,
  until,
} from "./helpers.ts";
import { fdsOpenedSince, openFds } from "../util/fds.ts";

const kvm = skipReason("disk swap tests", { kvm: true }) === null;
if (!kvm) console.log("skip disk swap tests: /dev/kvm is absent");
const test = (name: string, fn: (dir: string) => Promise<void>) =>
  Deno.test({
    name,
    ignore: !kvm,
    async fn() {
      await buildGuests(["virtio-blk"]);
      const dir = await Deno.makeTempDir({ prefix: "vmdesc-disk-" });
      try {
        await fn(dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The machines: one disk on PCI (00:03.0) or virtio-mmio (disk0), backed by old.img. */
const MACHINES = `
machine swap_pci {
  memory 128 MiB
  pci_hole 0xC000_0000 .. 4 GiB {
    ecam 0xE000_0000 buses auto
  }
  device serial com1 { port 0x3f8 irq 4 }
  device debug_exit { port 0xf4 }
  pci 00:03.0 virtio_blk { file "old.img" serial "swap" }
  boot pvh "guest.elf"
}

machine swap_mmio {
  memory 128 MiB
  device serial com1 { port 0x3f8 irq 4 }
  device debug_exit { port 0xf4 }
  device virtio_blk disk0 { file "old.img" serial "swap" }
  boot pvh "guest.elf"
}
`;

/** The new image: 2 MiB (4096 sectors), sector 0 starting with "NEW-IMAGE-SWAPPED". */
function newImageBytes(): Uint8Array {
  const b = new Uint8Array(2 << 20);
  for (let n = 0; n * 512 < b.length; n++) b.fill((0x80 + n) & 0xff, n * 512, (n + 1) * 512);
  b.set(encoder.encode("NEW-IMAGE-SWAPPED"));
  return b;
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/** The test sector as the guest writes it. */
function marked(): Uint8Array {
  const s = new Uint8Array(512);
  for (let i = 0; i < 512; i++) s[i] = (0xa5 ^ i) & 0xff;
  s.set(encoder.encode("vmdesc virtio-blk was here"));
  return s;
}

/** Writes the machines, the old and new images; returns their paths. */
function setUp(dir: string) {
  Deno.writeTextFileSync(`${dir}/swap.vmdesc`, MACHINES);
  Deno.copyFileSync(guestPath("virtio-blk"), `${dir}/guest.elf`);
  const oldBytes = diskImageBytes();
  Deno.writeFileSync(`${dir}/old.img`, oldBytes);
  const newBytes = newImageBytes();
  Deno.writeFileSync(`${dir}/new.img`, newBytes);
  return {
    file: `${dir}/swap.vmdesc`,
    old: `${dir}/old.img`,
    new: `${dir}/new.img`,
    oldBytes,
    newBytes,
  };
}

/**
 * Whether another process could take `path`'s lock now (an exclusive lock for a writer,
 * shared for a reader): false while a machine holds it against that.
 */
function lockable(path: string, exclusive: boolean): boolean {
  const fd = open(path, exclusive ? O_RDWR : O_RDONLY);
  try {
    const r = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    if (r === 0) flock(fd, LOCK_UN);
    return r === 0;
  } finally {
    close(fd);
  }
}

/** `vmdesc ARGS` run to its end (as the task runs it). */
async function vmdesc(args: string[], cwd = ROOT) {
  const [cmd, ...rest] = vmdescArgv(Deno.execPath(), args);
  const o = await new Deno.Command(cmd, {
    args: rest,
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", VMDESC_INIT_CWD: cwd },
  }).output();
  return { code: o.code, stdout: decoder.decode(o.stdout), stderr: decoder.decode(o.stderr) };
}

interface ApiError {
  error: { code: string; message: string; diagnostic?: string; hint?: string; field?: string };
}

test("disk swap over the API (PCI): refusals with their codes, then the guest reads the new image", async (dir) => {
  const f = setUp(dir);
  const sock = `${dir}/m.sock`;
  const m = await bootWithApi([
    f.file,
    "--machine",
    "swap_pci",
    "--cmdline",
    "mode=swap irq=poll sector=7",
    "--timeout",
    "60",
  ], sock);
  const pid = m.child.pid;
  try {
    await until(() => m.stdout.text.includes("swap: before"), 30_000, "the guest's first read");
    const stream = followEvents(sock);
    // `vmdesc ctl events` follows them too, as text, until the machine ends.
    const [ctlCmd, ...ctlArgs] = vmdescArgv(Deno.execPath(), ["ctl", sock, "events"]);
    const ctl = new Deno.Command(ctlCmd, {
      args: ctlArgs,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const ctlOut = new Lines(ctl.stdout);
    await until(() => stream.soFar().length > 0, 5000, "the event stream opens");
    await until(() => /running/.test(ctlOut.text), 60_000, "vmdesc ctl events opens");
    match(
      m.stdout.text,
      /swap: before capacity 2048 sector 0 starts 564d444553432d544553542d4449534b/,
    );
    const disks = (await curl(sock, "GET", "/v1/disks")).json as { disks: unknown[] };
    deepEqual(disks.disks, [{
      id: "00:03.0",
      kind: "virtio_blk",
      path: f.old,
      readonly: false,
      size_bytes: 1 << 20,
      built_readonly: false,
    }]);
    const put = (id: string, body: unknown) =>
      curl(sock, "PUT", `/v1/disks/${encodeURIComponent(id)}`, { body: JSON.stringify(body) });

    // Running: refused, and nothing is opened.
    let r = await put("00:03.0", { path: f.new });
    equal(r.status, 409, r.text);
    const running = (r.json as ApiError).error;
    equal(running.code, "state_conflict");
    equal(running.diagnostic, "E1071");
    match(running.hint!, /pause it first/);
    ok(lockable(f.new, true), "the new image was not opened while running");

    equal((await curl(sock, "POST", "/v1/actions", { body: '{"action":"pause"}' })).status, 200);
    const before = processResources(pid);
    // The pause's own connection may not be closed yet: count without it.
    before.fds = await settledFds(pid, before.fds - 1, 500);

    // Each refusal: its status, code and diagnostic; the old image stays the disk's.
    const missing = `${dir}/no-such.img`;
    const small = `${dir}/small.img`;
    Deno.writeFileSync(small, new Uint8Array(100));
    const locked = `${dir}/locked.img`;
    Deno.writeFileSync(locked, newImageBytes());
    const holder = open(locked, O_RDWR);
    equal(flock(holder, LOCK_EX | LOCK_NB), 0);
    try {
      const cases: [
        id: string,
        body: unknown,
        status: number,
        code: string,
        diag: string | null,
        msg: RegExp,
      ][] = [
        ["nope", { path: f.new }, 404, "not_found", "E1070", /no disk 'nope'/],
        ["00:03.0", { path: missing }, 400, "bad_image", "E1018", /no such file/],
        [
          "00:03.0",
          { path: small },
          400,
          "bad_image",
          "E1018",
          /100 bytes, less than one 512-byte sector/,
        ],
        ["00:03.0", { path: dir }, 400, "bad_image", "E1018", /directory|not a regular file/],
        ["00:03.0", { path: "new.img" }, 400, "bad_image", "E1018", /relative/],
        ["00:03.0", { path: locked }, 400, "bad_image", "E1018", /another machine has it open/],
        ["00:03.0", { path: f.new, size: 1 }, 400, "unknown_field", null, /unknown field 'size'/],
        ["00:03.0", { readonly: true }, 400, "missing_field", null, /missing field 'path'/],
        ["00:03.0", { path: f.new, readonly: "yes" }, 400, "invalid_value", null, /'readonly'/],
        ["00:03.0", { path: 7 }, 400, "invalid_value", null, /'path'/],
      ];
      for (const [id, body, status, code, diag, msg] of cases) {
        r = await put(id, body);
        const what = `${id} ${JSON.stringify(body)}`;
        equal(r.status, status, `${what}: ${r.text}`);
        const e = (r.json as ApiError).error;
        equal(e.code, code, what);
        equal(e.diagnostic, diag ?? undefined, what);
        match(e.message, msg, what);
        if (diag) ok(e.hint, `${what}: a hint`);
        if (diag === "E1070") match(e.hint!, /its disks: 00:03\.0/);
      }
    } finally {
      close(holder);
    }
    // `vmdesc ctl` prints a refusal as vmdesc prints its own errors.
    let c = await vmdesc(["ctl", sock, "disk", "00:03.0", "--file", missing]);
    equal(c.code, 1, c.stderr);
    match(c.stderr, /error\[E1018\]: virtio_blk 00:03\.0: cannot open its image .*no such file/);
    match(c.stderr, /= help: create it/);
    ok(await settledFds(pid, before.fds) <= before.fds, "no refusal left an fd open");
    ok(!lockable(f.old, true), "the old image is still the machine's");

    // The swap: `vmdesc ctl` with a path relative to where it runs.
    c = await vmdesc(["ctl", sock, "disk", "00:03.0", "--file", "new.img"], dir);
    equal(c.code, 0, c.stderr);
    equal(c.stdout, `00:03.0  virtio_blk  ${f.new}  2 MiB\n`);
    ok(await settledFds(pid, before.fds) <= before.fds, "the old image's fd was closed");
    ok(lockable(f.old, true), "the old image is released");
    ok(!lockable(f.new, false), "the new image is held (exclusively)");
    const now = (await curl(sock, "GET", "/v1/disks/00%3A03.0")).json as Record<string, unknown>;
    equal(now.path, f.new);
    equal(now.size_bytes, 2 << 20);
    c = await vmdesc(["ctl", sock, "disks", "--format", "json"]);
    equal(JSON.parse(c.stdout).disks[0].path, f.new);

    equal((await curl(sock, "POST", "/v1/actions", { body: '{"action":"resume"}' })).status, 200);
    const status = await m.status;
    const out = m.stdout.text;
    equal(status, 1, `the guest returned 0 (status 1)\n${out}\n${m.stderr.text}`);
    match(out, /swap: configuration changed, generation 0 -> 1, with an interrupt/);
    match(
      out,
      new RegExp(`swap: after capacity 4096 sector 0 starts ${hex(f.newBytes.subarray(0, 16))}`),
    );
    match(out, /swap: wrote sector 7\nvirtio-blk: swap ok/);
    // The write went to the new image, and the old one is as it was.
    const want = f.newBytes.slice();
    want.set(marked(), 7 * 512);
    deepEqual(Deno.readFileSync(f.new), want);
    deepEqual(Deno.readFileSync(f.old), f.oldBytes);
    // The swap was an event, between the pause and the resume, on the documented schema.
    const { events } = await stream.ended;
    const kinds = events.map((e) => e.type === "state" ? `${e.from}→${e.to}` : e.type);
    deepEqual(
      kinds.filter((k) => k !== "warning").slice(0, 4),
      ["open", "running→paused", "disk", "paused→running"],
    );
    deepEqual(events.find((e) => e.type === "disk")!.disk, now);
    equal((await ctl.status).code, 0);
    await ctlOut.done;
    match(ctlOut.text, new RegExp(`^\\S+ disk 00:03\\.0 now ${f.new}$`, "m"));
  } finally {
    try {
      m.child.kill("SIGKILL");
    } catch {
      // ended
    }
    await m.status;
  }
});

/** Compiles `machine` of the test file, its disk built read-only when asked. */
async function planOf(file: string, machine: string, edit: (p: Plan) => void): Promise<Plan> {
  const r = await compileFile(file, {
    machine,
    cmdline: "mode=swap irq=poll sector=3",
  });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => d.message).join("; "));
  const plan = r.plans.get(machine)!;
  edit(plan);
  return plan;
}

test("disk swap in the library (virtio-mmio, caller's thread): a read-only disk takes read-only images only", async (dir) => {
  const f = setUp(dir);
  const plan = await planOf(f.file, "swap_mmio", (p) => {
    const backing = p.devices.find((d) => d.id === "disk0")!.virtio!.backing;
    if (backing.kind === "file") backing.readonly = true;
  });
  const fdsAtStart = openFds();
  const chunks: string[] = [];
  const m = await createMachine(plan, {
    serial: (b) => chunks.push(decoder.decode(b, { stream: true })),
    vcpuThread: "caller",
    warn: () => {},
  });
  const events = m.events();
  try {
    const run = m.run({ timeout: 60 });
    await until(() => chunks.join("").includes("swap: before"), 30_000, "the guest's first read");
    await rejects(m.swapDisk("disk0", { path: f.new }), { code: "E1071" });
    await m.pause();
    await rejects(m.swapDisk("disk0", { path: f.new, readonly: false }), { code: "E1072" });
    await rejects(m.swapDisk("disk1", { path: f.new }), { code: "E1070" });
    equal(m.disks[0].path, f.old);
    // Read-only by default (the disk's mode): shared locks, so another reader is welcome.
    const info = await m.swapDisk("disk0", { path: f.new });
    deepEqual(info, {
      id: "disk0",
      kind: "virtio_blk",
      path: f.new,
      readonly: true,
      size_bytes: 2 << 20,
      built_readonly: true,
    });
    ok(lockable(f.new, false), "a read-only image is shared");
    ok(!lockable(f.new, true), "but not to a writer");
    ok(lockable(f.old, true), "the old image is released");
    await m.resume();
    const result = await run;
    const out = chunks.join("");
    equal(result.exitStatus, 1, `${result.message}\n${out}`);
    match(out, /capacity 2048 sectors read-only/);
    match(out, /swap: configuration changed, generation 0 -> 1, with an interrupt/);
    match(
      out,
      new RegExp(`swap: after capacity 4096 sector 0 starts ${hex(f.newBytes.subarray(0, 16))}`),
    );
    match(out, /swap: write refused, sector 3/);
    const dev = result.stats.devices.find((d) => d.id === "disk0")!;
    equal(dev.model.swaps, 1);
    equal(dev.model.capacity_sectors, 4096);
    equal(dev.model.config_interrupts, 1);
    // One disk event, for the swap that was taken (none for the refusals).
    const seen = [];
    for await (const e of events) seen.push(e);
    const disks = seen.filter((e) => e.type === "disk");
    equal(disks.length, 1);
    deepEqual(disks[0].type === "disk" && disks[0].disk, info);
  } finally {
    m.close();
  }
  deepEqual(Deno.readFileSync(f.new), f.newBytes, "nothing written to a read-only image");
  deepEqual(fdsOpenedSince(fdsAtStart), [], "every fd the machine opened is closed");
  ok(lockable(f.new, true), "the machine let go of the new image");
});

test("disk swap: the same file again re-reads its size (grown in place)", async (dir) => {
  const f = setUp(dir);
  const plan = await planOf(f.file, "swap_pci", () => {});
  const chunks: string[] = [];
  const m = await createMachine(plan, {
    serial: (b) => chunks.push(decoder.decode(b, { stream: true })),
    warn: () => {},
  });
  try {
    const run = m.run({ timeout: 60 });
    await until(() => chunks.join("").includes("swap: before"), 30_000, "the guest's first read");
    await m.pause();
    Deno.truncateSync(f.old, 3 << 20);
    const info = await m.swapDisk("00:03.0", { path: f.old });
    equal(info.size_bytes, 3 << 20);
    ok(!lockable(f.old, false), "still held exclusively");
    await m.resume();
    const result = await run;
    const out = chunks.join("");
    equal(result.exitStatus, 1, `${result.message}\n${out}`);
    match(out, /swap: after capacity 6144 sector 0 starts 564d444553432d544553542d4449534b/);
    match(out, /swap: wrote sector 3/);
  } finally {
    m.close();
  }
  ok(lockable(f.old, true), "released at the end");
});
