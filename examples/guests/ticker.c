/*
 * ticker: prints one line every `ms=` milliseconds of guest time (default 5):
 *
 *   tick N clock CCCCCCCCCCCCCCCC tsc TTTTTTTTTTTTTTTT spins S
 *
 * N counts from 1; `clock` is the guest's kvmclock in ns and `tsc` its raw time-stamp
 * counter (both hex); `spins` is how many times the wait loop went round since the last
 * line: the guest's own progress, which a busy host (or a VMM that steals its time) makes
 * smaller. With `count=K` it exits through debug_exit after K lines (value 0), else it
 * runs until the VMM stops it. The control API's tests pause it and check that nothing
 * is printed while paused and that neither clock ran ahead across the pause.
 *
 * kvmclock: the guest writes the address of a pvclock_vcpu_time_info to
 * MSR_KVM_SYSTEM_TIME_NEW (bit 0 enables it) and KVM keeps the structure current; time
 * is system_time + ((tsc - tsc_timestamp) scaled by tsc_shift, times tsc_to_system_mul
 * >> 32). A KVM that never fills the structure leaves version 0: the guest says so and
 * exits with value 2.
 */
#include "lib.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u

struct pvclock_vcpu_time_info {
  uint32_t version;
  uint32_t pad0;
  uint64_t tsc_timestamp;
  uint64_t system_time;
  uint32_t tsc_to_system_mul;
  int8_t tsc_shift;
  uint8_t flags;
  uint8_t pad[2];
} __attribute__((packed));

static volatile struct pvclock_vcpu_time_info pvclock __attribute__((aligned(64)));

static void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* kvmclock now (ns); the TSC it was computed from goes to *tsc. */
static uint64_t clock_ns(uint64_t *tsc) {
  uint32_t version, mul;
  uint64_t stamp, system, now;
  int8_t shift;
  do {
    version = pvclock.version;
    __asm__ volatile("" ::: "memory");
    stamp = pvclock.tsc_timestamp;
    system = pvclock.system_time;
    mul = pvclock.tsc_to_system_mul;
    shift = pvclock.tsc_shift;
    now = rdtsc();
    __asm__ volatile("" ::: "memory");
  } while ((version & 1) || version != pvclock.version);
  *tsc = now;
  uint64_t delta = now - stamp;
  if (shift < 0) delta >>= -shift;
  else delta <<= shift;
  /* (delta * mul) >> 32 without a 128-bit product: low and high halves of delta apart. */
  uint64_t low = ((uint64_t)(uint32_t)delta * mul) >> 32;
  uint64_t high = (delta >> 32) * mul;
  return system + low + high;
}

static void put_hex64(uint64_t v) {
  put_hex((uint32_t)(v >> 32), 8);
  put_hex((uint32_t)v, 8);
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  uint64_t period = (uint64_t)cmdline_u32("ms", 5) * 1000000u;
  uint32_t count = cmdline_u32("count", 0);
  wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&pvclock | 1);
  if (pvclock.version == 0) {
    puts("ticker: no kvmclock\n");
    return 2;
  }
  puts("ticker: ready\n");
  uint64_t tsc;
  uint64_t next = clock_ns(&tsc) + period;
  for (uint32_t n = 1; count == 0 || n <= count; n++) {
    uint32_t spins = 0;
    uint64_t now;
    while ((now = clock_ns(&tsc)) < next) spins++;
    next += period;
    /* A tick that came late (the VMM held the vCPU) does not make up for lost ones. */
    if (next < now) next = now + period;
    puts("tick ");
    put_dec(n);
    puts(" clock ");
    put_hex64(now);
    puts(" tsc ");
    put_hex64(tsc);
    puts(" spins ");
    put_dec(spins);
    putc('\n');
  }
  return 0;
}
