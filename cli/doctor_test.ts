/**
 * `vmdesc doctor` where `vmdesc boot` cannot work, for real: in a mount namespace whose /dev
 * has no kvm node, and with a /dev/kvm the process may not open. (Its verdict where KVM
 * works is tests/runtime/doctor_cli_test.ts, which needs /dev/kvm; inside the nested test
 * bed, tests/nested/bed_test.ts runs it before and after the kvm modules are loaded.)
 */
import { deepEqual, doesNotMatch, equal, match, ok } from "node:assert/strict";
import { doctor, doctorWithoutKvm, ROOT, vmdescArgs } from "../tests/doctor.ts";
import { skipReason } from "../tests/skip.ts";
import type { Report } from "./doctor_checks.ts";

const skip = skipReason("doctor without /dev/kvm", { tools: ["unshare", "setpriv"] });

Deno.test({
  name: "doctor: no /dev/kvm is ✗ with a hint from what the host shows, exit 1",
  ignore: skip !== null,
  async fn() {
    const r = await doctorWithoutKvm();
    equal(r.code, 1, r.stderr);
    match(r.stdout, /^✗ \/dev\/kvm not found \(ENOENT\)$/m);
    match(r.stdout, /^ {2}= help: .+/m, "a hint under the ✗ line");
    match(r.stdout, /^· host: /m);
    match(r.stdout, /^✗ vmdesc boot cannot work on this host/m);
    // Nothing that needs an open /dev/kvm is claimed.
    doesNotMatch(r.stdout, /KVM API version|KVM_CAP_/);
  },
});

Deno.test({
  name: "doctor --format json without /dev/kvm: ok false, the failing check and its hint",
  ignore: skip !== null,
  async fn() {
    const r = await doctorWithoutKvm(["--format", "json"]);
    equal(r.code, 1, r.stderr);
    const report: Report = JSON.parse(r.stdout);
    equal(report.version, 1);
    equal(report.ok, false);
    deepEqual(report.machines, []);
    const device = report.checks.find((c) => c.id === "kvm.device")!;
    equal(device.status, "fail");
    ok(device.hint && device.hint.length > 10, "a hint");
    for (const c of report.checks) ok(["ok", "fail", "warn", "info"].includes(c.status), c.id);
    ok(report.checks.some((c) => c.id === "host.max_map_count"));
    ok(report.checks.some((c) => c.id === "tool.qemu-system-x86_64"));
    // This /dev has no net/tun either: a note, never a failure, with the module to load.
    const tun = report.checks.find((c) => c.id === "host.tun")!;
    equal(tun.status, "info", JSON.stringify(tun));
    match(tun.title, /^\/dev\/net\/tun is absent \(only virtio_net's TAP devices need it/);
    match(tun.hint ?? "", /modprobe tun/);
  },
});

Deno.test({
  name: "doctor FILE without /dev/net/tun: a warning for a machine with a TAP device, not ✗",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-doctor-" });
    try {
      await Deno.writeTextFile(`${dir}/k.elf`, "not looked at");
      await Deno.writeTextFile(
        `${dir}/net.vmdesc`,
        `machine net {
  memory 64 MiB
  device virtio_net eth0 { tap "vmdesc0" }
  boot pvh "k.elf"
}
`,
      );
      const r = await doctorWithoutKvm([`${dir}/net.vmdesc`]);
      match(
        r.stdout,
        /^! \/dev\/net\/tun is absent: needed for the virtio_net TAP device of machine net$/m,
      );
      match(r.stdout, /^ {2}= help: load the tun module \(sudo modprobe tun\)/m);
      doesNotMatch(r.stdout, /^✗ \/dev\/net\/tun/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "doctor: a /dev/kvm that does not open read-write is ✗ with the kvm-group hint",
  ignore: skip !== null,
  async fn() {
    const r = await doctorWithoutKvm([], { kvmNode: "unreadable" });
    equal(r.code, 1, r.stderr);
    match(r.stdout, /^✓ \/dev\/kvm is present$/m);
    match(r.stdout, /^✗ \/dev\/kvm does not open read-write: permission denied/m);
    match(r.stdout, /= help: add yourself to the kvm group/);
  },
});

Deno.test("doctor: usage errors exit 2; a FILE with errors exits 1 with its diagnostics", async () => {
  const twoFiles = await doctor(["a.vmdesc", "b.vmdesc"]);
  equal(twoFiles.code, 2);
  match(twoFiles.stderr, /error\[E2001\]: doctor takes at most one file/);
  const machineAlone = await doctor(["--machine", "m"]);
  equal(machineAlone.code, 2);
  match(machineAlone.stderr, /--machine needs a FILE/);
  const format = await doctor(["--format", "xml"]);
  equal(format.code, 2);
  const missing = await doctor(["no/such/file.vmdesc"]);
  equal(missing.code, 2);
  match(missing.stderr, /error\[E2002\]/);
  const dir = await Deno.makeTempDir({ prefix: "vmdesc-doctor-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.vmdesc`, "machine m { memory 1 parsec }\n");
    const bad = await doctor([`${dir}/bad.vmdesc`]);
    equal(bad.code, 1);
    match(bad.stderr, /error\[E\d{4}\]/);
    equal(bad.stdout, "", "no verdict for a machine that does not compile");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor --help names every check; vmdesc --help lists doctor", async () => {
  const r = await doctor(["--help"]);
  equal(r.code, 0);
  for (
    const word of [
      "/dev/kvm",
      "vm.max_map_count",
      "RLIMIT_MEMLOCK",
      "/dev/net/tun",
      "kvm-pvm",
      "--format",
    ]
  ) {
    ok(r.stdout.includes(word), word);
  }
  const main = await new Deno.Command(Deno.execPath(), {
    args: [...vmdescArgs(), "--help"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  match(new TextDecoder().decode(main.stdout), /^ {2}doctor +check that this host can boot/m);
});
