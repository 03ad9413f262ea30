/**
 * The baseline: the barest synchronous FFI KVM_RUN loop that can run the `in` loop guest
 * (answer every port read with 0xff, stop at the debug-exit port). No address map, no
 * stats, no devices. Runs in a worker, as vmdesc's vCPU loop does.
 */
/// <reference lib="deno.worker" />
import { libc } from "../../runtime/host/libc.ts";
import { KVM_EXIT, KVM_RUN, KVM_RUN_STRUCT } from "../../runtime/kvm/abi.ts";
import { hostBytes } from "../../runtime/host/libc.ts";

const F = KVM_RUN_STRUCT.f;
self.onmessage = (ev: MessageEvent<{ fd: number; runAddr: string; runSize: number }>) => {
  const { fd, runAddr, runSize } = ev.data;
  const rb = hostBytes(BigInt(runAddr), runSize);
  const run = new DataView(rb.buffer);
  const ioctl = libc().ioctl_run;
  let exits = 0;
  const t0 = performance.now();
  for (;;) {
    if (ioctl(fd, KVM_RUN, 0) < 0) break;
    if (run.getUint32(F.exit_reason.off, true) !== KVM_EXIT.IO) break;
    exits++;
    if (run.getUint16(F["io.port"].off, true) === 0xf4) break;
    rb[run.getUint32(F["io.data_offset"].off, true)] = 0xff;
  }
  self.postMessage({ exits, ms: performance.now() - t0 });
};
