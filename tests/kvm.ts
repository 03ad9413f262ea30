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
