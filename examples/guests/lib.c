#include "lib.h"

static const struct hvm_start_info *g_info;

void serial_init(void) {
  outb(COM1 + 1, 0x00); /* no interrupts: we poll */
  outb(COM1 + 3, 0x80); /* DLAB */
  outb(COM1 + 0, 0x01); /* 115200 */
  outb(COM1 + 1, 0x00);
  outb(COM1 + 3, 0x03); /* 8N1 */
  outb(COM1 + 2, 0x07); /* FIFO on, cleared */
}

void putc(char c) {
  while (!(inb(COM1 + 5) & 0x20)) cpu_relax();
  outb(COM1, (uint8_t)c);
}

void puts(const char *s) {
  while (*s) putc(*s++);
}

void put_hex(uint32_t v, int digits) {
  static const char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; i--) putc(hex[(v >> (4 * i)) & 0xf]);
}

void put_dec(uint32_t v) {
  char buf[11];
  int n = 0;
  do {
    buf[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) putc(buf[--n]);
}

void debug_exit(uint32_t code) {
  outb(DEBUG_EXIT_PORT, (uint8_t)code);
  /* A VMM without the device: stop here rather than run off. */
  for (;;) __asm__ volatile("cli; hlt");
}

uint32_t cf8_read32(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
  outl(0xcf8, 0x80000000u | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xfc));
  return inl(0xcfc);
}

uint32_t ecam_read32(uint32_t base, uint32_t bus_start, uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
  return mmio_read32(base + ((bus - bus_start) << 20) + (dev << 15) + (fn << 12) + reg);
}

int acpi_sig_is(uint32_t addr, const char *sig, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (mmio_read8(addr + i) != (uint8_t)sig[i]) return 0;
  return 1;
}

uint32_t acpi_rsdp(void) {
  const struct hvm_start_info *si = start_info();
  if (si && si->rsdp_paddr && si->rsdp_paddr < 0x100000000ull &&
      acpi_sig_is((uint32_t)si->rsdp_paddr, "RSD PTR ", 8))
    return (uint32_t)si->rsdp_paddr;
  for (uint32_t a = 0xe0000; a < 0x100000; a += 16)
    if (acpi_sig_is(a, "RSD PTR ", 8)) return a;
  return 0;
}

uint32_t acpi_table(const char *sig) {
  uint32_t rsdp = acpi_rsdp();
  if (!rsdp) return 0;
  uint32_t xsdt = mmio_read8(rsdp + 15) >= 2 ? mmio_read32(rsdp + 24) : 0; /* low half */
  uint32_t root = xsdt ? xsdt : mmio_read32(rsdp + 16);
  uint32_t entry = xsdt ? 8 : 4;
  if (!root) return 0;
  uint32_t len = mmio_read32(root + 4);
  for (uint32_t off = 36; off + entry <= len; off += entry) {
    uint32_t table = mmio_read32(root + off);
    if (acpi_sig_is(table, sig, 4)) return table;
  }
  return 0;
}

void lib_init(const struct hvm_start_info *info) {
  g_info = (info && info->magic == HVM_START_MAGIC) ? info : 0;
  serial_init();
}

const struct hvm_start_info *start_info(void) { return g_info; }

const char *cmdline(void) {
  if (!g_info || !g_info->cmdline_paddr) return "";
  return (const char *)(uintptr_t)g_info->cmdline_paddr;
}

/* Find "key=" at the start of a word; returns the value's first char or NULL. */
static const char *find_key(const char *key) {
  const char *s = cmdline();
  size_t n = strlen(key);
  while (*s) {
    while (*s == ' ') s++;
    const char *w = s;
    size_t i = 0;
    while (i < n && w[i] == key[i]) i++;
    if (i == n && w[n] == '=') return w + n + 1;
    while (*s && *s != ' ') s++;
  }
  return 0;
}

static const char *parse_u32(const char *p, uint32_t *out) {
  uint32_t v = 0;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    p += 2;
    for (;; p++) {
      char c = *p;
      if (c >= '0' && c <= '9') v = v * 16 + (uint32_t)(c - '0');
      else if (c >= 'a' && c <= 'f') v = v * 16 + (uint32_t)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v = v * 16 + (uint32_t)(c - 'A' + 10);
      else if (c == '_') continue;
      else break;
    }
  } else {
    for (; (*p >= '0' && *p <= '9') || *p == '_'; p++)
      if (*p != '_') v = v * 10 + (uint32_t)(*p - '0');
  }
  *out = v;
  return p;
}

uint32_t cmdline_u32(const char *key, uint32_t fallback) {
  const char *p = find_key(key);
  if (!p) return fallback;
  uint32_t v;
  parse_u32(p, &v);
  return v;
}

int cmdline_is(const char *key, const char *value) {
  const char *p = find_key(key);
  if (!p) return 0;
  size_t n = strlen(value);
  for (size_t i = 0; i < n; i++)
    if (p[i] != value[i]) return 0;
  return p[n] == 0 || p[n] == ' ';
}

int cmdline_range(const char *key, uint32_t *lo, uint32_t *hi) {
  const char *p = find_key(key);
  if (!p) return 0;
  p = parse_u32(p, lo);
  if (*p == '-') parse_u32(p + 1, hi);
  else *hi = *lo;
  return 1;
}

void *memcpy(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  uint8_t *d = dst;
  while (n--) *d++ = (uint8_t)c;
  return dst;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* ── interrupts ──────────────────────────────────────────────────────────────────── */

struct __attribute__((packed)) idt_gate {
  uint16_t off_lo, sel;
  uint8_t zero, type;
  uint16_t off_hi;
};
static struct idt_gate idt[256];

void idt_set(int vector, uint32_t handler) {
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  idt[vector].off_lo = (uint16_t)handler;
  idt[vector].off_hi = (uint16_t)(handler >> 16);
  idt[vector].sel = cs;
  idt[vector].zero = 0;
  idt[vector].type = 0x8e; /* present, ring 0, 32-bit interrupt gate */
}

void idt_load(void) {
  struct __attribute__((packed)) {
    uint16_t limit;
    uint32_t base;
  } idtr = {sizeof idt - 1, (uint32_t)(uintptr_t)idt};
  __asm__ volatile("lidt %0" ::"m"(idtr));
  outb(0x21, 0xff);
  outb(0xa1, 0xff);
  mmio_write32(LAPIC + 0xf0, 0x1ff);
}
