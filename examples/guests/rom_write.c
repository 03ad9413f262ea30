/*
 * rom-write: write into a read-only region and check that the write did not land.
 *
 * The region is the ECAM window under the `shadow` hole strategy: a KVM_MEM_READONLY
 * memslot. The write goes to an absent function's config space (bus 0, device 31,
 * function 7 unless "dev=" says otherwise): KVM turns it into an MMIO exit, the host
 * bridge drops it, and the page keeps reading all-ones. A write to a present function's
 * read-only register (its vendor ID at 00:00.0) must not change it either.
 *
 * Command line: "ecam=<base>" (required). Prints
 *   rom-write: wrote 12345678 to e00ff000, read back ffffffff
 *   rom-write: vendor id write ignored
 * and exits with value 0 when both writes were ignored, 1 otherwise, 2 without ecam=.
 */
#include "lib.h"

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  uint32_t ecam = cmdline_u32("ecam", 0);
  if (!ecam) {
    puts("rom-write: no ecam= on the command line\n");
    return 2;
  }
  uint32_t dev = cmdline_u32("dev", 31);
  uint32_t addr = ecam + (dev << 15) + (7u << 12);
  uint32_t before = mmio_read32(addr);
  mmio_write32(addr, 0x12345678);
  uint32_t after = mmio_read32(addr);
  puts("rom-write: wrote 12345678 to ");
  put_hex(addr, 8);
  puts(", read back ");
  put_hex(after, 8);
  putc('\n');

  uint32_t vendor = mmio_read32(ecam) & 0xffff;
  mmio_write32(ecam, 0xffff0000u | (vendor ^ 0xffff));
  uint32_t vendor_after = mmio_read32(ecam) & 0xffff;
  if (vendor_after == vendor) puts("rom-write: vendor id write ignored\n");
  else puts("rom-write: vendor id changed (unexpected)\n");

  return (after == before && vendor_after == vendor) ? 0 : 1;
}
