/*
 * cpuid: prints the CPUID leaves a VMM shapes, one line each, for the test to check:
 *   cpuid LLLLLLLL.S eax=........ ebx=........ ecx=........ edx=........
 * leaves 0, 1, 0xB subleaves 0-2 (when the basic range reaches it), KVM's leaves
 * 0x4000_0000 up to the highest it announces (at most 0x4000_0010), and 0x8000_0000,
 * 0x8000_0007, 0x8000_0008 and 0x8000_001E (when the extended range reaches them). Then "cpuid: done"
 * and debug-exit value 0 (status 1).
 */
#include "lib.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static uint32_t show(uint32_t leaf, uint32_t sub) {
  static const char *const names[4] = {" eax=", " ebx=", " ecx=", " edx="};
  uint32_t r[4];
  cpuid(leaf, sub, r);
  puts("cpuid ");
  put_hex(leaf, 8);
  putc('.');
  put_dec(sub);
  for (int i = 0; i < 4; i++) {
    puts(names[i]);
    put_hex(r[i], 8);
  }
  putc('\n');
  return r[0];
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  uint32_t basic = show(0, 0);
  show(1, 0);
  if (basic >= 0xb)
    for (uint32_t s = 0; s < 3; s++) show(0xb, s);
  uint32_t hv = show(0x40000000, 0);
  if (hv >= 0x40000001 && hv <= 0x400000ff)
    for (uint32_t l = 0x40000001; l <= hv && l <= 0x40000010; l++) show(l, 0);
  uint32_t ext = show(0x80000000, 0);
  if (ext >= 0x80000007) show(0x80000007, 0);
  if (ext >= 0x80000008) show(0x80000008, 0);
  if (ext >= 0x8000001e) show(0x8000001e, 0);
  puts("cpuid: done\n");
  return 0;
}
