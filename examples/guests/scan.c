/*
 * scan: the PCI-hole benchmark's guest. It reads the vendor/device dword of function 0 of
 * every device on 256 buses (8192 reads, 32 KiB apart: (bus << 20) | (dev << 15)) from the
 * ECAM window, PASSES times, and counts the reads that are not all-ones.
 *
 * The RAM control (-DRAM_CONTROL) runs the very same loop over ordinary guest RAM
 * (8192 reads, 4 KiB apart from 32 MiB): a read that never leaves the guest, the floor.
 * Base and stride come from volatile variables, so both builds execute identical
 * instructions per read (6, branch-free: the count uses cmp + adc).
 *
 * Command line: "ecam=<base>" (default 0xe0000000, QEMU microvm's with pcie=on); "hold=1"
 * makes the guest spin after printing instead of exiting, so a benchmark can read the
 * VMM's memory use (/proc/PID/smaps_rollup) with the window touched.
 * Output: "scan ecam: 8192 reads x N passes, M not all-ones" ("scan ram: ..." for the
 * control) and exit value 0 (status 1).
 */
#include "lib.h"

#ifndef PASSES
#define PASSES 1
#endif

#define READS 8192u

#ifdef RAM_CONTROL
static volatile uint32_t scan_base = 32u << 20;
static volatile uint32_t scan_stride = 4096;
#define WHAT "ram"
#else
static volatile uint32_t scan_base = 0xe0000000u;
static volatile uint32_t scan_stride = 1u << 15;
#define WHAT "ecam"
#endif

/* One pass: `READS` 32-bit loads at base, base + stride, ...; returns how many were not
 * 0xffffffff. In asm so the per-read instruction sequence is fixed whatever gcc does. */
static uint32_t pass(uint32_t base, uint32_t stride) {
  uint32_t hits = 0, n = READS;
  __asm__ volatile(
      "1:\n\t"
      "movl (%[a]), %%eax\n\t"
      "cmpl $-1, %%eax\n\t" /* CF = (eax < 0xffffffff) */
      "adcl $0, %[h]\n\t"
      "addl %[s], %[a]\n\t"
      "decl %[n]\n\t"
      "jnz 1b\n\t"
      : [h] "+r"(hits), [a] "+r"(base), [n] "+r"(n)
      : [s] "r"(stride)
      : "eax", "memory", "cc");
  return hits;
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
#ifndef RAM_CONTROL
  scan_base = cmdline_u32("ecam", scan_base);
#endif
  uint32_t base = scan_base, stride = scan_stride, hits = 0;
  for (int p = 0; p < PASSES; p++) hits = pass(base, stride);
  puts("scan " WHAT ": ");
  put_dec(READS);
  puts(" reads x ");
  put_dec(PASSES);
  puts(" passes, ");
  put_dec(hits);
  puts(" not all-ones\n");
  if (cmdline_u32("hold", 0)) {
    puts("scan: holding\n");
    for (;;) cpu_relax();
  }
  return 0;
}
