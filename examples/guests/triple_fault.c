/*
 * triple-fault: load an empty IDT (limit 0) and execute ud2. The #UD cannot be
 * delivered (vector beyond the IDT limit → #GP), nor can the #GP (→ #DF), nor the #DF:
 * the CPU shuts down, which KVM reports as KVM_EXIT_SHUTDOWN and vmdesc as
 * "guest triple fault" (status 4). "how=div0" on the command line faults with a divide
 * error instead. (Not int3: this host's software KVM cannot emulate software interrupts
 * and reports an emulation failure instead of the fault.)
 */
#include "lib.h"

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  static const struct __attribute__((packed)) {
    uint16_t limit;
    uint32_t base;
  } empty_idt = {0, 0};
  if (cmdline_is("how", "div0")) {
    puts("triple-fault: empty IDT, then divide by zero\n");
    __asm__ volatile("lidt %0; xor %%ecx, %%ecx; div %%ecx" ::"m"(empty_idt) : "eax", "ecx", "edx");
  } else {
    puts("triple-fault: empty IDT, then ud2\n");
    __asm__ volatile("lidt %0; ud2" ::"m"(empty_idt));
  }
  puts("triple-fault: still running (unexpected)\n");
  return 1;
}
