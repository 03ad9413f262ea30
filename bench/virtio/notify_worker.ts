/**
 * The threads of bench/virtio/notify.ts: a vCPU loop (KVM_RUN until the guest's debug
 * exit, answering the notify write itself in "exit" mode) or an I/O thread (blocked in
 * read(2) on the notify's eventfd, answering there). Both answer by setting the guest's
 * flag in guest RAM, which is all a device's completion needs to be seen by a polling guest.
 */
/// <reference lib="deno.worker" />
import { hostBytes, libc } from "../../runtime/host/libc.ts";
import { KVM_EXIT, KVM_RUN, KVM_RUN_STRUCT } from "../../runtime/kvm/abi.ts";

const F = KVM_RUN_STRUCT.f;

export interface NotifyWorkerInit {
  role: "vcpu" | "io";
  /** vcpu: the vCPU fd and its kvm_run page. */
  fd: number;
  runAddr: string;
  runSize: number;
  /** Where the guest's flag is in host memory. */
  flagAddr: string;
  /** vcpu: answer the notify MMIO exit here (mode "exit"). */
  answerExits: boolean;
  /** io: the eventfd and how many notifies to answer. */
  eventfd: number;
  count: number;
}

self.onmessage = (ev: MessageEvent<NotifyWorkerInit>) => {
  const w = ev.data;
  const flag = hostBytes(BigInt(w.flagAddr), 4);
  const sym = libc();
  const t0 = performance.now();
  if (w.role === "io") {
    const buf = new Uint8Array(8);
    for (let i = 0; i < w.count; i++) {
      if (sym.read(w.eventfd, buf, 8n) !== 8n) break;
      flag[0] = 1;
    }
    self.postMessage({ ms: performance.now() - t0, exits: 0 });
    return;
  }
  const rb = hostBytes(BigInt(w.runAddr), w.runSize);
  const run = new DataView(rb.buffer);
  let exits = 0;
  for (;;) {
    if (sym.ioctl_run(w.fd, KVM_RUN, 0) < 0) continue; // EINTR
    exits++;
    const reason = run.getUint32(F.exit_reason.off, true);
    if (reason === KVM_EXIT.MMIO && w.answerExits) {
      flag[0] = 1;
      continue;
    }
    if (reason === KVM_EXIT.IO) break; // the debug exit
    if (reason !== KVM_EXIT.MMIO) break;
  }
  self.postMessage({ ms: performance.now() - t0, exits });
};
