/*
 * endless-loop: prints one line, then spins forever without a single exit (no I/O, no
 * HLT, interrupts off). Only the VMM can end it: `vmdesc boot --timeout` (or Ctrl-C)
 * must kick the vCPU out of KVM_RUN.
 */
#include "lib.h"

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  puts("endless-loop: spinning\n");
  for (;;) __asm__ volatile("" ::: "memory");
}
