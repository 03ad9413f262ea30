/**
 * `vmdesc doctor` where /dev/kvm works: every check passes and the verdict is exit 0; with a
 * FILE, the capabilities and mappings are those its machine needs. (The verdicts where it
 * does not work: cli/doctor_test.ts.)
 */
import { equal, match, ok } from "node:assert/strict";
import { doctor } from "../doctor.ts";
import { skipReason } from "../skip.ts";
import type { Report } from "../../cli/doctor_checks.ts";

const skip = skipReason("doctor with /dev/kvm", { kvm: true });

Deno.test({
  name: "doctor: with a working /dev/kvm every check passes, exit 0",
  ignore: skip !== null,
  async fn() {
    const r = await doctor();
    equal(r.code, 0, r.stdout + r.stderr);
    match(r.stdout, /^✓ \/dev\/kvm is present$/m);
    match(r.stdout, /^✓ \/dev\/kvm opens read-write$/m);
    match(r.stdout, /^✓ KVM API version 12$/m);
    for (const cap of ["USER_MEMORY", "IRQCHIP", "IMMEDIATE_EXIT", "READONLY_MEM", "PIT2"]) {
      match(r.stdout, new RegExp(`^✓ KVM_CAP_${cap}: `, "m"));
    }
    match(r.stdout, /^✓ KVM_CAP_NR_MEMSLOTS \d+: /m);
    match(r.stdout, /^· host: /m);
    // Read from /proc under the task's own permissions (not --allow-all): real numbers.
    match(r.stdout, /^✓ vm.max_map_count \d+: enough .*a running vmdesc ~[1-9]\d+\)$/m);
    match(r.stdout, /^✓ RLIMIT_MEMLOCK (\d+(\.\d)? MiB|\d+ bytes|unlimited): /m);
    match(r.stdout, /^✓ vmdesc boot can work on this host$/m);
  },
});

Deno.test({
  name: "doctor FILE --format json: checked against the machine's needs (the shadow window)",
  ignore: skip !== null,
  async fn() {
    const r = await doctor(["--format", "json", "examples/scan.vmdesc"]);
    equal(r.code, 0, r.stderr);
    const report: Report = JSON.parse(r.stdout);
    equal(report.ok, true);
    equal(report.machines.join(), "scan");
    const title = (id: string) => report.checks.find((c) => c.id === id)?.title ?? "";
    // scan's 256-bus ECAM window under `shadow`: 256 chunk aliases plus the present pages.
    const need = Number(/machine scan needs (\d+)/.exec(title("host.max_map_count"))?.[1]);
    ok(need >= 257 && need < 300, title("host.max_map_count"));
    match(title("kvm.cap.READONLY_MEM"), /read-only memslots/);
    match(title("kvm.cap.NR_MEMSLOTS"), /the machine uses \d+/);
    // A machine without a PCI hole has no read-only memslot: the capability is not listed.
    const plain = await doctor(["--format", "json", "examples/hello.vmdesc"]);
    const hello: Report = JSON.parse(plain.stdout);
    equal(hello.ok, true);
    ok(!hello.checks.some((c) => c.id === "kvm.cap.READONLY_MEM"));
    ok(hello.checks.some((c) => c.id === "kvm.cap.USER_MEMORY"));
  },
});
