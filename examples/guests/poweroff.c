/*
 * poweroff: turns the machine off the way an ACPI OS does on hardware-reduced ACPI. It
 * finds the FADT's SLEEP_CONTROL_REG and SLEEP_STATUS_REG (system I/O, 8 bits) and the
 * DSDT's \_S5 sleep type, prints them, clears WAK_STS, writes SLP_TYP, then SLP_TYP |
 * SLP_EN. The VMM should end the machine with "powered off" (status 0); if it does not,
 * the guest says so and exits through debug-exit with value 1 (status 3).
 *
 *   poweroff: sleep control 0600, status 0601, S5 type 5
 *
 * Command line: "try=s3" first asks for S3, which the machine does not offer: it must
 * wake at once (WAK_STS set), printing "poweroff: S3 woke at once", before the S5 write.
 * Value 2 (status 5): no FADT, no sleep registers or no \_S5.
 */
#include "lib.h"

#define SLP_EN 0x20
#define WAK_STS 0x80

/* A Generic Address Structure in system I/O space, 8 bits wide: its port, else 0. */
static uint16_t io_register8(uint32_t gas) {
  if (mmio_read8(gas) != 1 || mmio_read8(gas + 1) != 8) return 0;
  return (uint16_t)mmio_read32(gas + 4);
}

/* The first element of the DSDT's \_S5 package (NameOp '\_S5_' PackageOp PkgLength
 * NumElements, then a ByteConst, Zero or One); -1 when not found. */
static int s5_type(uint32_t dsdt) {
  uint32_t len = mmio_read32(dsdt + 4);
  for (uint32_t a = dsdt + 36; a + 10 < dsdt + len; a++) {
    if (mmio_read8(a) != 0x08) continue;
    uint32_t n = a + 1;
    if (mmio_read8(n) == '\\') n++;
    if (!acpi_sig_is(n, "_S5_", 4) || mmio_read8(n + 4) != 0x12) continue;
    uint32_t p = n + 5;
    p += 1 + (mmio_read8(p) >> 6); /* PkgLength: lead byte plus 0-3 more */
    p += 1;                        /* NumElements */
    uint8_t op = mmio_read8(p);
    if (op == 0x0a) return mmio_read8(p + 1);
    if (op == 0x00 || op == 0x01) return op;
    return -1;
  }
  return -1;
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  uint32_t fadt = acpi_table("FACP");
  if (!fadt || mmio_read32(fadt + 4) < 268) {
    puts("poweroff: no FADT with sleep registers\n");
    return 2;
  }
  uint16_t control = io_register8(fadt + 244);
  uint16_t status = io_register8(fadt + 256);
  uint32_t dsdt = mmio_read32(fadt + 40);
  int typ = dsdt ? s5_type(dsdt) : -1;
  puts("poweroff: sleep control ");
  put_hex(control, 4);
  puts(", status ");
  put_hex(status, 4);
  puts(", S5 type ");
  if (typ < 0) putc('-');
  else put_dec((uint32_t)typ);
  putc('\n');
  if (!control || !status || typ < 0) return 2;

  if (cmdline_is("try", "s3")) {
    outb(status, WAK_STS);
    outb(control, (uint8_t)((3 << 2) | SLP_EN));
    for (int i = 0; i < 1000 && !(inb(status) & WAK_STS); i++) cpu_relax();
    puts(inb(status) & WAK_STS ? "poweroff: S3 woke at once\n" : "poweroff: S3 never woke\n");
  }

  outb(status, WAK_STS);
  outb(control, (uint8_t)(typ << 2));
  outb(control, (uint8_t)((typ << 2) | SLP_EN));
  puts("poweroff: still running after the S5 write\n");
  return 1;
}
