/*
 * unassigned-mmio: read a 32-bit value from a guest-physical address that has neither
 * RAM nor a device ("addr=" on the command line, default 0xd0000000: inside the PCI
 * hole, outside ECAM and every BAR). The VMM answers an unclaimed MMIO read with
 * all-ones, as a PC bus does. Prints
 *   unassigned-mmio: read d0000000 = ffffffff
 * and exits with value 0 (status 1).
 */
#include "lib.h"

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  uint32_t addr = cmdline_u32("addr", 0xd0000000u);
  uint32_t v = mmio_read32(addr);
  puts("unassigned-mmio: read ");
  put_hex(addr, 8);
  puts(" = ");
  put_hex(v, 8);
  putc('\n');
  return 0;
}
