/*
 * smp: the BSP starts the application processors through its local APIC (INIT, then
 * SIPI twice, to all-excluding-self) with a real-mode trampoline copied below 1 MiB;
 * each AP switches to protected mode and counts itself with `lock xadd`. The BSP waits
 * (bounded by the TSC), prints the APIC IDs and "cpus: N", and exits with value N
 * (status (N << 1) | 1).
 *
 * Command line: "cpus=N" (optional) lets the BSP stop waiting as soon as N CPUs are up;
 * without it, it waits the whole bound. The count printed is always what really ran.
 */
#include "lib.h"

#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_ASSERT (1u << 14)
#define ICR_PENDING (1u << 12)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)

/* Wait bound in TSC cycles (a few seconds at typical rates, emulated or not). */
#define WAIT_CYCLES 6000000000ull

extern const uint8_t ap_tramp_start[], ap_tramp_end[];
volatile uint32_t ap_slot;
volatile uint32_t ap_done;
volatile uint32_t ap_ids[64];

static int overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen) {
  return a < b + blen && b < a + alen;
}

/* A free page below 1 MiB: not the start info, the command line or the memory map. */
static uint32_t trampoline_page(void) {
  const struct hvm_start_info *si = start_info();
  for (uint32_t page = 0x1000; page < 0x9f000; page += 0x1000) {
    if (si) {
      if (overlaps(page, 0x1000, (uint32_t)(uintptr_t)si, sizeof *si)) continue;
      const char *cl = cmdline();
      if (overlaps(page, 0x1000, (uint32_t)(uintptr_t)cl, strlen(cl) + 1)) continue;
      if (si->memmap_paddr &&
          overlaps(page, 0x1000, (uint32_t)si->memmap_paddr,
                   si->memmap_entries * sizeof(struct hvm_memmap_table_entry)))
        continue;
    }
    return page;
  }
  return 0;
}

static void icr_send(uint32_t low) {
  mmio_write32(LAPIC + LAPIC_ICR_HI, 0);
  mmio_write32(LAPIC + LAPIC_ICR_LO, low);
  for (int i = 0; i < 100000 && (mmio_read32(LAPIC + LAPIC_ICR_LO) & ICR_PENDING); i++) cpu_relax();
}

static void short_delay(void) {
  uint64_t t0 = rdtsc();
  while (rdtsc() - t0 < 200000) cpu_relax();
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  uint32_t want = cmdline_u32("cpus", 0);
  uint32_t page = trampoline_page();
  memcpy((void *)(uintptr_t)page, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));

  uint32_t bsp = mmio_read32(LAPIC + LAPIC_ID) >> 24;
  mmio_write32(LAPIC + LAPIC_SVR, mmio_read32(LAPIC + LAPIC_SVR) | 0x1ff); /* enable, vector 0xff */

  puts("smp: BSP apic id ");
  put_dec(bsp);
  puts(", trampoline at ");
  put_hex(page, 5);
  putc('\n');

  icr_send(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
  short_delay();
  icr_send(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (page >> 12));
  short_delay();
  icr_send(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (page >> 12));

  uint64_t t0 = rdtsc();
  while ((want == 0 || ap_done + 1 < want) && rdtsc() - t0 < WAIT_CYCLES) cpu_relax();

  uint32_t n = ap_done;
  puts("smp: AP apic ids:");
  for (uint32_t i = 0; i < n && i < 64; i++) {
    putc(' ');
    put_dec(ap_ids[i]);
  }
  putc('\n');
  puts("cpus: ");
  put_dec(n + 1);
  putc('\n');
  return n + 1;
}
