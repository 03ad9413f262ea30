/*
 * pci-scan: enumerate PCI functions twice, by ECAM (MMIO) and by CF8/CFC (port I/O),
 * the way an OS probes: function 0 of every device of every bus, functions 1..7 only
 * when function 0 says multi-function (header type bit 7).
 *
 * Where ECAM is: "ecam=<base> buses=<first>-<last>" on the command line (base is the
 * address of bus <first>), else the first allocation of the ACPI MCFG table (RSDP from
 * hvm_start_info.rsdp_paddr or the BIOS-area search, then the XSDT or RSDT). With neither,
 * only the CF8 scan runs. CF8 always walks buses 0..255.
 *
 * Output: where ECAM came from, one line per function found, then a count per method:
 *   pci-scan: ecam e0000000 buses 00-ff (acpi mcfg)
 *   ecam 00:02.0 1af4:1005 class 00ff00
 *   ecam: 2 functions
 *   cf8 00:02.0 1af4:1005 class 00ff00
 *   cf8: 2 functions
 *   pci-scan: ecam and cf8 agree
 * Exit value 0 when both lists are identical, 1 when they differ, 2 when nothing was found
 * at all (so status 1 = success, 3 = mismatch, 5 = empty).
 */
#include "lib.h"

#define MAX_FOUND 256

struct found {
  uint32_t bdf; /* bus << 8 | dev << 3 | fn */
  uint32_t id;  /* device << 16 | vendor */
  uint32_t class_rev;
};

static struct found by_ecam[MAX_FOUND], by_cf8[MAX_FOUND];
static uint32_t ecam_base, bus_first, bus_last;

typedef uint32_t (*reader)(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg);

static uint32_t read_ecam(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
  return ecam_read32(ecam_base, bus_first, bus, dev, fn, reg);
}

static void print_fn(const char *method, const struct found *f) {
  puts(method);
  putc(' ');
  put_hex(f->bdf >> 8, 2);
  putc(':');
  put_hex((f->bdf >> 3) & 0x1f, 2);
  putc('.');
  put_hex(f->bdf & 7, 1);
  putc(' ');
  put_hex(f->id & 0xffff, 4);
  putc(':');
  put_hex(f->id >> 16, 4);
  puts(" class ");
  put_hex(f->class_rev >> 8, 6);
  putc('\n');
}

static uint32_t scan(const char *method, reader rd, uint32_t first, uint32_t last, struct found *out) {
  uint32_t n = 0;
  for (uint32_t bus = first; bus <= last; bus++) {
    for (uint32_t dev = 0; dev < 32; dev++) {
      for (uint32_t fn = 0; fn < 8; fn++) {
        uint32_t id = rd(bus, dev, fn, 0);
        if ((id & 0xffff) == 0xffff) {
          if (fn == 0) break;
          continue;
        }
        if (n < MAX_FOUND) {
          out[n].bdf = (bus << 8) | (dev << 3) | fn;
          out[n].id = id;
          out[n].class_rev = rd(bus, dev, fn, 8);
          print_fn(method, &out[n]);
          n++;
        }
        if (fn == 0 && !((rd(bus, dev, 0, 0xc) >> 16) & 0x80)) break; /* single function */
      }
    }
  }
  puts(method);
  puts(": ");
  put_dec(n);
  puts(" functions\n");
  return n;
}

/* ECAM window from the ACPI MCFG table; 0 when there is none. */
static int ecam_from_mcfg(void) {
  uint32_t table = acpi_table("MCFG");
  if (!table || mmio_read32(table + 4) < 44 + 16) return 0;
  ecam_base = mmio_read32(table + 44); /* first allocation: base (u64), segment, buses */
  bus_first = mmio_read8(table + 54);
  bus_last = mmio_read8(table + 55);
  return ecam_base != 0;
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  uint32_t n_ecam = 0;
  int have_ecam = 0;
  const char *source = "cmdline";
  ecam_base = cmdline_u32("ecam", 0);
  if (ecam_base) {
    have_ecam = 1;
    bus_first = 0;
    bus_last = 255;
    cmdline_range("buses", &bus_first, &bus_last);
    if (bus_last > 255 || bus_last < bus_first) bus_last = 255;
  } else if (ecam_from_mcfg()) {
    have_ecam = 1;
    source = "acpi mcfg";
  }
  if (have_ecam) {
    puts("pci-scan: ecam ");
    put_hex(ecam_base, 8);
    puts(" buses ");
    put_hex(bus_first, 2);
    putc('-');
    put_hex(bus_last, 2);
    puts(" (");
    puts(source);
    puts(")\n");
    n_ecam = scan("ecam", read_ecam, bus_first, bus_last, by_ecam);
  } else {
    puts("pci-scan: no ecam= on the command line and no ACPI MCFG: CF8 only\n");
  }
  uint32_t n_cf8 = scan("cf8", cf8_read32, 0, 255, by_cf8);

  if (n_cf8 == 0 && n_ecam == 0) {
    puts("pci-scan: no functions\n");
    return 2;
  }
  if (have_ecam) {
    int same = n_ecam == n_cf8;
    for (uint32_t i = 0; same && i < n_ecam; i++) {
      same = by_ecam[i].bdf == by_cf8[i].bdf && by_ecam[i].id == by_cf8[i].id &&
             by_ecam[i].class_rev == by_cf8[i].class_rev;
    }
    if (!same) {
      puts("pci-scan: ecam and cf8 differ\n");
      return 1;
    }
    puts("pci-scan: ecam and cf8 agree\n");
  }
  return 0;
}
