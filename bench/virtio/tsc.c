/* The TSC's rate in kHz: rdtsc against CLOCK_MONOTONIC over 200 ms (a guest's TSC runs at
 * the host's rate unless the VMM scales it, which neither vmdesc nor QEMU does here). */
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include <x86intrin.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  double t0 = now();
  uint64_t c0 = __rdtsc();
  while (now() - t0 < 0.2) {
  }
  double t1 = now();
  uint64_t c1 = __rdtsc();
  printf("%.0f\n", (double)(c1 - c0) / (t1 - t0) / 1000.0);
  return 0;
}
