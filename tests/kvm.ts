/**
 * The one answer to "can KVM tests run here?" for every test file.
 *
 * Only a missing /dev/kvm skips KVM tests (with the reason printed by the caller). Any
 * other failure to look at it — most often a test runner started without --allow-all,
 * which Deno needs for /dev — is an error, so a misconfigured run can never pass by
 * silently skipping every test that boots a guest.
 */
export function kvmMissing(): string | null {
  try {
    Deno.statSync("/dev/kvm");
    return null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "/dev/kvm is absent on this host";
    throw e;
  }
}

/**
 * Can this host's KVM run Linux as far as userspace? Null when it can, else why not (for
 * the caller to print). No /dev/kvm is one reason; the other is the software KVM some of
 * this project's hosts have (`kvm_pvm`), which emulates guest instructions and stops Linux
 * at `lock cmpxchg16b` during early boot. There the Linux-to-userspace tests run inside the
 * nested test bed, which has a real KVM on an emulated CPU.
 */
export function kvmRunsLinux(): string | null {
  const missing = kvmMissing();
  if (missing) return missing;
  try {
    Deno.statSync("/sys/module/kvm_pvm");
    return "this host's /dev/kvm is kvm_pvm, a software KVM that stops Linux in early boot; " +
      "run these tests in the nested test bed";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
