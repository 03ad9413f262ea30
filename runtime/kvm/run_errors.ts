/**
 * What a failed KVM_RUN means, for the message the user sees (code E1005).
 *
 * On x86 (Linux 6.1, arch/x86/kvm/x86.c and mmu/), KVM_RUN fails only with:
 * EINTR/EAGAIN (a signal or a vCPU not started yet: the run loop's kicks, never reported),
 * EFAULT (guest memory whose host mapping cannot be faulted in), ENOMEM (no memory for
 * KVM's page-table caches), EIO (the vCPU used from another process) and EINVAL (a bad
 * kvm_run field). Anything else was never KVM's answer: the errno was read after something
 * else ran on the thread. An `ENOENT` reported from an earlier run loop, which called
 * clock_gettime between the ioctl and reading errno, cannot have come from KVM; the loop now
 * reads errno first, and anything unexpected is said to be so.
 */
export function kvmRunFailure(errnoName: string): string {
  switch (errnoName) {
    case "EFAULT":
      return "the guest touched memory KVM could not map from the host (a memslot's host " +
        "mapping is gone or unreadable)";
    case "ENOMEM":
      return "the host has no memory left for KVM's page tables";
    case "EIO":
      return "the vCPU was run from a process other than the one that created the VM";
    case "EINVAL":
      return "KVM rejected the vCPU's kvm_run state";
    default:
      return "not an error KVM_RUN returns on x86: please report it, with dmesg";
  }
}
