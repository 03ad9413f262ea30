/*
 * bar-size: what an OS does to each present PCI function through ECAM, printed so two
 * runs can be compared byte for byte (the `trap` and `shadow` hole strategies must agree).
 *
 * For each function found on the buses of the window (function 0 of every device, and
 * functions 1..7 of multi-function devices):
 *   - the command register: set I/O + memory + bus master, read back, restore, read back;
 *   - each BAR by the standard protocol, with decoding off: save, write all-ones, read the
 *     size mask, restore (the upper dword too for 64-bit BARs), read back the restored value;
 *   - a write to a read-only register (the vendor ID) must not stick.
 * Then writes to absent functions (00:1f.7 and the last bus's 1f.0) must read back all-ones.
 *
 * Command line: "ecam=<base> buses=<first>-<last>" (base is the address of bus <first>).
 * Exit value 0 when every check holds, 1 otherwise, 2 without ecam=.
 */
#include "lib.h"

static uint32_t ecam, bus_first, bus_last;
static uint32_t failures;

static uint32_t addr(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
  return ecam + ((bus - bus_first) << 20) + (dev << 15) + (fn << 12) + reg;
}
static uint32_t rd(uint32_t b, uint32_t d, uint32_t f, uint32_t reg) { return mmio_read32(addr(b, d, f, reg)); }
static void wr(uint32_t b, uint32_t d, uint32_t f, uint32_t reg, uint32_t v) { mmio_write32(addr(b, d, f, reg), v); }
static uint16_t rd16(uint32_t b, uint32_t d, uint32_t f, uint32_t reg) { return mmio_read16(addr(b, d, f, reg)); }
static void wr16(uint32_t b, uint32_t d, uint32_t f, uint32_t reg, uint16_t v) {
  *(volatile uint16_t *)(uintptr_t)addr(b, d, f, reg) = v;
}

static void bdf(uint32_t b, uint32_t d, uint32_t f) {
  put_hex(b, 2);
  putc(':');
  put_hex(d, 2);
  putc('.');
  put_hex(f, 1);
}

static void check(int ok, const char *what) {
  if (!ok) {
    failures++;
    puts("  FAIL ");
    puts(what);
    putc('\n');
  }
}

static void probe(uint32_t b, uint32_t d, uint32_t f) {
  uint32_t id = rd(b, d, f, 0);
  bdf(b, d, f);
  putc(' ');
  put_hex(id & 0xffff, 4);
  putc(':');
  put_hex(id >> 16, 4);
  putc('\n');

  uint16_t cmd = rd16(b, d, f, 4);
  wr16(b, d, f, 4, (uint16_t)(cmd | 0x7));
  uint16_t on = rd16(b, d, f, 4);
  wr16(b, d, f, 4, cmd);
  uint16_t back = rd16(b, d, f, 4);
  puts("  command ");
  put_hex(cmd, 4);
  puts(" set 0007 -> ");
  put_hex(on, 4);
  puts(" restored -> ");
  put_hex(back, 4);
  putc('\n');
  check(back == cmd, "command register not restored");

  /* Decoding off while the BARs hold sizing masks, as Linux does. */
  wr16(b, d, f, 4, (uint16_t)(cmd & ~0x3));
  uint32_t header = (rd(b, d, f, 0xc) >> 16) & 0x7f;
  uint32_t nbars = header == 0 ? 6 : header == 1 ? 2 : 0;
  for (uint32_t i = 0; i < nbars; i++) {
    uint32_t reg = 0x10 + 4 * i;
    uint32_t orig = rd(b, d, f, reg);
    wr(b, d, f, reg, 0xffffffffu);
    uint32_t mask = rd(b, d, f, reg);
    wr(b, d, f, reg, orig);
    uint32_t restored = rd(b, d, f, reg);
    if (mask == 0 && orig == 0) continue; /* unimplemented BAR */
    puts("  bar");
    put_dec(i);
    puts(" ");
    put_hex(orig, 8);
    puts(" mask ");
    put_hex(mask, 8);
    int is64 = !(orig & 1) && ((orig >> 1) & 3) == 2;
    uint32_t size;
    if (orig & 1) {
      size = ~(mask & ~3u) + 1;
      puts(" io");
    } else {
      size = ~(mask & ~0xfu) + 1;
      puts(is64 ? " mem64" : " mem32");
      if (orig & 8) puts(" pref");
    }
    if (is64 && i + 1 < nbars) {
      uint32_t hreg = reg + 4;
      uint32_t horig = rd(b, d, f, hreg);
      wr(b, d, f, hreg, 0xffffffffu);
      uint32_t hmask = rd(b, d, f, hreg);
      wr(b, d, f, hreg, horig);
      uint32_t hback = rd(b, d, f, hreg);
      puts(" high ");
      put_hex(horig, 8);
      puts(" mask ");
      put_hex(hmask, 8);
      check(hback == horig, "upper BAR not restored");
      i++;
    }
    puts(" size 0x");
    put_hex(size, 8);
    puts(" restored ");
    put_hex(restored, 8);
    putc('\n');
    check(restored == orig, "BAR not restored");
  }
  wr16(b, d, f, 4, cmd);

  /* The vendor ID is read-only. */
  wr(b, d, f, 0, id ^ 0xffffu);
  check(rd(b, d, f, 0) == id, "vendor id changed");
}

static void absent_write(uint32_t b, uint32_t d, uint32_t f) {
  if (rd(b, d, f, 0) != 0xffffffffu) return; /* present here: not a test of absence */
  wr(b, d, f, 0x04, 0x00000007u);
  wr(b, d, f, 0x10, 0x12345678u);
  uint32_t cmd = rd(b, d, f, 0x04), bar = rd(b, d, f, 0x10);
  puts("absent ");
  bdf(b, d, f);
  puts(" after writes: ");
  put_hex(cmd, 8);
  putc(' ');
  put_hex(bar, 8);
  putc('\n');
  check(cmd == 0xffffffffu && bar == 0xffffffffu, "write to an absent function stuck");
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  ecam = cmdline_u32("ecam", 0);
  if (!ecam) {
    puts("bar-size: no ecam= on the command line\n");
    return 2;
  }
  bus_first = 0;
  bus_last = 255;
  cmdline_range("buses", &bus_first, &bus_last);
  if (bus_last > 255 || bus_last < bus_first) bus_last = bus_first;

  uint32_t found = 0;
  for (uint32_t b = bus_first; b <= bus_last; b++) {
    for (uint32_t d = 0; d < 32; d++) {
      for (uint32_t f = 0; f < 8; f++) {
        uint32_t id = rd(b, d, f, 0);
        if ((id & 0xffff) == 0xffff) {
          if (f == 0) break;
          continue;
        }
        found++;
        probe(b, d, f);
        if (f == 0 && !((rd(b, d, 0, 0xc) >> 16) & 0x80)) break;
      }
    }
  }
  absent_write(bus_first, 0x1f, 7);
  absent_write(bus_last, 0x1f, 0);
  puts("bar-size: ");
  put_dec(found);
  puts(" functions, ");
  put_dec(failures);
  puts(" failures\n");
  return failures ? 1 : 0;
}
