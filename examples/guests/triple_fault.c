/*
 * triple-fault: load an empty IDT (limit 0) and raise int3. The breakpoint cannot be
 * delivered (#GP), nor can the #GP (#DF), nor the #DF: the CPU shuts down, which KVM
 * reports as KVM_EXIT_SHUTDOWN and vmdesc as "guest triple fault".
 */
#include "lib.h"

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  puts("triple-fault: loading an empty IDT and raising int3\n");
  static const struct __attribute__((packed)) {
    uint16_t limit;
    uint32_t base;
  } empty_idt = {0, 0};
  __asm__ volatile("lidt %0; int3" ::"m"(empty_idt));
  puts("triple-fault: still running (unexpected)\n");
  return 1;
}
