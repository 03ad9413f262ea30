/*
 * hello: the smallest guest. Prints one line and exits through isa-debug-exit with
 * value 42, so `vmdesc boot` ends with status (42 << 1) | 1 = 85.
 */
#include "lib.h"

#define HELLO_EXIT_VALUE 42

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  puts("Hello from vmdesc guest\n");
  return HELLO_EXIT_VALUE;
}
