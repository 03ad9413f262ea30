/*
 * reset: the reset paths a PC OS uses. Runs the i8042 controller self-test (0xAA → 0x55,
 * as Linux's probe does), then asks for a reset: "via=i8042" (default) writes 0xFE to
 * port 0x64 (pulse the CPU reset line: Linux's reboot=k); "via=cf9" writes 0x06 to the
 * PCI reset control register 0xCF9 (reboot=p). vmdesc ends the machine with reason
 * "reset", status 0. If nothing resets it, the guest halts with interrupts off.
 * Prints:
 *   reset: i8042 self-test 55
 *   reset: via i8042
 */
#include "lib.h"

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  outb(0x64, 0xaa);
  uint32_t spins = 0;
  while (!(inb(0x64) & 0x01) && ++spins < 1000) cpu_relax();
  puts("reset: i8042 self-test ");
  put_hex(inb(0x60), 2);
  putc('\n');
  if (cmdline_is("via", "cf9")) {
    puts("reset: via cf9\n");
    outb(0xcf9, 0x06);
  } else {
    puts("reset: via i8042\n");
    while (inb(0x64) & 0x02) cpu_relax(); /* input buffer empty, as kb_wait() */
    outb(0x64, 0xfe);
  }
  for (;;) __asm__ volatile("cli; hlt");
}
