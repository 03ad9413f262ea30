/*
 * fuzz: a seeded guest that attacks the VMM. From `seed=N ops=M` on its command line it
 * performs M random operations drawn from one PRNG (xoshiro128**, seeded by splitmix32),
 * so a seed replays exactly:
 *
 *   port     reads and writes of width 1/2/4 anywhere in the 64K port space, and more often
 *            at the ports vmdesc's own models claim (COM1, i8042, CF8/CFC, ACPI sleep)
 *   mmio     reads and writes of width 1/2/4, aligned or not (a page-crossing access
 *            reaches the VMM as two pieces, one of 1 or 3 bytes), across the PCI hole,
 *            every BAR, the virtio-mmio pages and everything above RAM
 *   config   config-space writes by ECAM and by CF8/CFC: COMMAND flips, BAR sizing at odd
 *            moments, capability pointers, MSI-X control, random registers
 *   virtio   random register writes on a virtio transport, a sane initialisation to
 *            DRIVER_OK, queue setups with garbage sizes and ring addresses, available
 *            entries with random heads and random descriptors, notifies in every state,
 *            MSI-X table entries and vectors, the ISR, the device configuration
 *   irq      an interrupt window in which pending MSIs arrive (`sti; hlt` when the LAPIC
 *            has one requested, else `sti; nop; nop`)
 *
 * What it never does, so that a run ends only by its own choice (see tests/fuzz_guest/):
 * no write to debug_exit (0xf4), no i8042 reset pulse (0xFE-style commands to 0x64, an
 * output port with bit 0 clear to 0x60), no reset through 0xCF9 (bit 2), no SLP_EN to the
 * ACPI sleep control register (0x600); no write to the in-kernel PIC, PIT, ELCR, LAPIC or
 * IOAPIC (KVM's, not vmdesc's: an interrupt storm or a self-INIT would only stop the
 * guest), and no MSI with a vector below 0x20 or a delivery mode other than fixed/lowest.
 *
 * Guest RAM the devices may touch is split so the fuzzer cannot be corrupted by what it
 * asks for, and so every write that reaches a disk is one the host can bound:
 *   RINGS  16 MiB   one 16 KiB slot per (device, queue): descriptor table, available ring,
 *                   used ring (the device writes only the used ring)
 *   SRC    17 MiB   32 KiB of 16-byte records: every device-readable buffer starts on one
 *                   and has a length of whole records, so a request header (or a DISCARD
 *                   segment) is always a record; OUT headers name sectors in [1024, 2048)
 *                   or past the end, so a disk changes only in its upper half
 *   TABLES 18 MiB   indirect descriptor tables, written by the fuzzer with the same rules
 *   DATA   64 MiB.. the end of RAM: every device-writable buffer (reads, GET_ID, entropy,
 *                   status bytes); never read back by a device
 * Descriptors point there or at "garbage": the hole, past the end of RAM, above 4 GiB.
 *
 * At the end it restores COM1 and prints `fuzz: done seed=N ops=M ...` with its counts,
 * then debug-exit FUZZ_DONE (0x46, status 141).
 */
#include "lib.h"

#define FUZZ_DONE 0x46
#define FUZZ_EXCEPTION 0x45

#define RINGS 0x01000000u
#define SLOT_SIZE 0x4000u
#define NSLOTS 32
#define SRC 0x01100000u
#define SRC_SIZE 0x8000u
#define TABLES 0x01200000u
#define TABLES_SIZE 0x4000u
#define DATA 0x04000000u
#define QMAX 256 /* the largest queue the slots hold */

#define IOAPIC 0xfec00000u

/* ── PRNG ───────────────────────────────────────────────────────────────────────────── */

static uint32_t s0, s1, s2, s3;

static uint32_t splitmix32(uint32_t *x) {
  uint32_t z = (*x += 0x9e3779b9u);
  z = (z ^ (z >> 16)) * 0x85ebca6bu;
  z = (z ^ (z >> 13)) * 0xc2b2ae35u;
  return z ^ (z >> 16);
}

static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static uint32_t rnd(void) {
  uint32_t r = rotl(s1 * 5, 7) * 9, t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl(s3, 11);
  return r;
}

/* Uniform in [0, n) (n > 0). */
static uint32_t below(uint32_t n) { return (uint32_t)(((uint64_t)rnd() * n) >> 32); }
static int chance(uint32_t one_in) { return below(one_in) == 0; }

/* ── port and MMIO access of any width ──────────────────────────────────────────────── */

static inline void mmio_write8(uint32_t a, uint8_t v) { *(volatile uint8_t *)(uintptr_t)a = v; }
static inline void mmio_write16(uint32_t a, uint16_t v) { *(volatile uint16_t *)(uintptr_t)a = v; }

static int width(void) { return 1 << below(3); }

static uint32_t mmio_rd(uint32_t a, int w) {
  return w == 1 ? mmio_read8(a) : w == 2 ? mmio_read16(a) : mmio_read32(a);
}

static void mmio_wr(uint32_t a, int w, uint32_t v) {
  if (w == 1) mmio_write8(a, (uint8_t)v);
  else if (w == 2) mmio_write16(a, (uint16_t)v);
  else mmio_write32(a, v);
}

static uint32_t port_rd(uint16_t p, int w) { return w == 1 ? inb(p) : w == 2 ? inw(p) : inl(p); }

static void port_wr(uint16_t p, int w, uint32_t v) {
  if (w == 1) outb(p, (uint8_t)v);
  else if (w == 2) outw(p, (uint16_t)v);
  else outl(p, v);
}

/* A value worth writing: all-ones, zero, a small number, one bit, or random. */
static uint32_t value(void) {
  switch (below(6)) {
  case 0: return 0xffffffffu;
  case 1: return 0;
  case 2: return below(16);
  case 3: return 1u << below(32);
  default: return rnd();
  }
}

/* ── counts (printed at the end) ────────────────────────────────────────────────────── */

static struct {
  uint32_t port_r, port_w, mmio_r, mmio_w, cfg_w, cf8, vreg, vinit, vqueue, vring, notify,
      msix, irq_windows, irqs, sizing;
} n;

/* ── what the machine has: RAM, PCI functions, virtio devices ───────────────────────── */

static uint32_t ram_end;           /* end of RAM below 4 GiB */
static uint32_t ecam, bus_lo, bus_hi, hole_lo;

#define MAX_FN 16
struct fn {
  uint32_t cfg;                    /* ECAM address */
  uint32_t bdf;
  uint32_t bar[6], bar_size[6];    /* as firmware left them (memory BARs only) */
  uint16_t command;
  uint32_t msix_cap;
  uint32_t msix_bar, msix_off, msix_n;
  uint32_t cap_list[16];
  uint32_t ncaps;
};
static struct fn fns[MAX_FN];
static uint32_t nfns;

enum { T_PCI, T_MMIO };
#define MAX_DEV 8
struct vdev {
  int transport;
  struct fn *f;                    /* PCI */
  uint32_t common, notify, notify_mult, isr, devcfg; /* PCI: offsets into BARs (bar<<28|off) */
  uint32_t base, size;             /* MMIO */
  uint16_t qmax[4];                /* largest size of queues 0-3 (0: no such queue) */
  /* What the fuzzer last set up on each queue: size and slot. */
  uint16_t qsize[4];
  uint8_t qslot[4];
  uint16_t avail_idx[4];
};
static struct vdev devs[MAX_DEV];
static uint32_t ndevs;

static uint32_t ram_top(void) {
  const struct hvm_start_info *si = start_info();
  uint32_t top = 0;
  if (si && si->memmap_paddr && si->memmap_paddr < 0x100000000ull) {
    const struct hvm_memmap_table_entry *e =
        (const struct hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
    for (uint32_t i = 0; i < si->memmap_entries; i++) {
      if (e[i].type != 1 || e[i].addr >= 0x100000000ull) continue;
      uint64_t end = e[i].addr + e[i].size;
      if (end > 0x100000000ull) end = 0x100000000ull;
      if ((uint32_t)end > top) top = (uint32_t)end;
    }
  }
  return top;
}

/* ── PCI ────────────────────────────────────────────────────────────────────────────── */

static uint32_t cfg_of(uint32_t bus, uint32_t dev, uint32_t fn) {
  return ecam + ((bus - bus_lo) << 20) + (dev << 15) + (fn << 12);
}

/* The current address of memory BAR `i` of `f` (0 when unassigned or not memory). */
static uint32_t bar_now(const struct fn *f, uint32_t i) {
  if (i > 5) return 0;
  uint32_t v = mmio_read32(f->cfg + 0x10 + 4 * i);
  if (v & 1) return 0;
  if (((v >> 1) & 3) == 2 && i < 5 && mmio_read32(f->cfg + 0x14 + 4 * i)) return 0;
  return v & ~0xfu;
}

/* The MSI-X table where it is now, [*lo, *hi): random writes never land there. */
static void msix_table_now(const struct fn *f, uint32_t *lo, uint32_t *hi) {
  *lo = *hi = 0;
  if (!f->msix_cap) return;
  uint32_t b = bar_now(f, f->msix_bar);
  if (!b) return;
  *lo = b + f->msix_off;
  *hi = *lo + 16 * f->msix_n;
}

static void pci_discover(void) {
  ecam = cmdline_u32("ecam", 0);
  if (!ecam) return;
  cmdline_range("buses", &bus_lo, &bus_hi);
  for (uint32_t bus = bus_lo; bus <= bus_hi; bus++) {
    for (uint32_t dev = 0; dev < 32; dev++) {
      for (uint32_t fnum = 0; fnum < 8 && nfns < MAX_FN; fnum++) {
        uint32_t cfg = cfg_of(bus, dev, fnum);
        uint32_t id = mmio_read32(cfg);
        if ((id & 0xffff) == 0xffff) {
          if (fnum == 0) break;
          continue;
        }
        struct fn *f = &fns[nfns++];
        f->cfg = cfg;
        f->bdf = (bus << 8) | (dev << 3) | fnum;
        f->command = mmio_read16(cfg + 4);
        for (uint32_t i = 0; i < 6; i++) {
          uint32_t reg = cfg + 0x10 + 4 * i;
          uint32_t v = mmio_read32(reg);
          if (v & 1) continue;
          /* Size it (the first sizing of many: the fuzzer does it again at odd moments). */
          mmio_write32(reg, 0xffffffffu);
          uint32_t sz = ~(mmio_read32(reg) & ~0xfu) + 1;
          mmio_write32(reg, v);
          f->bar[i] = v & ~0xfu;
          f->bar_size[i] = sz;
          if (((v >> 1) & 3) == 2) i++;
        }
        for (uint32_t at = mmio_read8(cfg + 0x34) & 0xfc, k = 0; at && k < 16;
             at = mmio_read8(cfg + at + 1) & 0xfc, k++) {
          f->cap_list[f->ncaps++] = at;
          if (mmio_read8(cfg + at) == 0x11) {
            uint32_t t = mmio_read32(cfg + at + 4);
            f->msix_cap = at;
            f->msix_bar = t & 7;
            f->msix_off = t & ~7u;
            f->msix_n = (mmio_read16(cfg + at + 2) & 0x7ff) + 1;
          }
        }
        /* A virtio function: its structures from the vendor capabilities. */
        if ((id & 0xffff) == 0x1af4 && (id >> 16) >= 0x1040 && ndevs < MAX_DEV) {
          struct vdev *d = &devs[ndevs];
          memset(d, 0, sizeof *d);
          d->transport = T_PCI;
          d->f = f;
          for (uint32_t k = 0; k < f->ncaps; k++) {
            uint32_t at = f->cap_list[k];
            if (mmio_read8(cfg + at) != 0x09) continue;
            uint32_t type = mmio_read8(cfg + at + 3), bar = mmio_read8(cfg + at + 4);
            uint32_t where = (bar << 28) | mmio_read32(cfg + at + 8);
            if (type == 1 && !d->common) d->common = where | 0x80000000u;
            if (type == 2 && !d->notify) {
              d->notify = where | 0x80000000u;
              d->notify_mult = mmio_read32(cfg + at + 16);
            }
            if (type == 3 && !d->isr) d->isr = where | 0x80000000u;
            if (type == 4 && !d->devcfg) d->devcfg = where | 0x80000000u;
          }
          if (d->common && d->notify) ndevs++;
        }
      }
    }
  }
}

/* Where a (BAR, offset) structure of a virtio function is now; 0 when unreachable. */
static uint32_t pci_at(const struct vdev *d, uint32_t where) {
  if (!where) return 0;
  uint32_t b = bar_now(d->f, (where >> 28) & 7);
  return b ? b + (where & 0x0fffffffu) : 0;
}

/* Back to what firmware left: BARs, COMMAND with memory and bus master on. */
static void pci_restore(struct fn *f) {
  for (uint32_t i = 0; i < 6; i++)
    if (f->bar_size[i]) mmio_write32(f->cfg + 0x10 + 4 * i, f->bar[i]);
  mmio_write16(f->cfg + 4, (uint16_t)(f->command | 0x6));
}

/* ── virtio-mmio devices from the command line ──────────────────────────────────────── */

static void mmio_discover(void) {
  const char *s = cmdline();
  const char *key = "virtio_mmio.device=";
  uint32_t klen = (uint32_t)strlen(key);
  while (*s && ndevs < MAX_DEV) {
    while (*s == ' ') s++;
    uint32_t i = 0;
    while (i < klen && s[i] == key[i]) i++;
    if (i == klen) {
      const char *p = s + klen;
      uint32_t size = 0, base = 0;
      while (*p >= '0' && *p <= '9') size = size * 10 + (uint32_t)(*p++ - '0');
      if (*p == 'K') size <<= 10, p++;
      if (*p == '@' && p[1] == '0' && p[2] == 'x') {
        for (p += 3;; p++) {
          char c = *p;
          if (c >= '0' && c <= '9') base = base * 16 + (uint32_t)(c - '0');
          else if (c >= 'a' && c <= 'f') base = base * 16 + (uint32_t)(c - 'a' + 10);
          else break;
        }
        if (base && mmio_read32(base) == 0x74726976) {
          struct vdev *d = &devs[ndevs++];
          memset(d, 0, sizeof *d);
          d->transport = T_MMIO;
          d->base = base;
          d->size = size ? size : 0x1000;
        }
      }
    }
    while (*s && *s != ' ') s++;
  }
}

/* ── virtio registers through either transport ──────────────────────────────────────── */

enum reg {
  R_DFSEL, R_DF, R_GFSEL, R_GF, R_MSIX_CONFIG, R_STATUS, R_QSEL, R_QSIZE, R_QMSIX, R_QENABLE,
  R_QDESC, R_QDESC_HI, R_QDRIVER, R_QDRIVER_HI, R_QDEVICE, R_QDEVICE_HI, R_COUNT
};
/* PCI common configuration offset and width; virtio-mmio offset (always 4 bytes wide). */
static const uint8_t pci_off[R_COUNT] = {0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x16, 0x18,
                                         0x1a, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x30, 0x34};
static const uint8_t pci_w[R_COUNT] = {4, 4, 4, 4, 2, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4};
static const uint16_t mmio_off[R_COUNT] = {0x14, 0x10, 0x24, 0x20, 0xfff, 0x70, 0x30, 0x38,
                                           0xfff, 0x44, 0x80, 0x84, 0x90, 0x94, 0xa0, 0xa4};

static void vw(struct vdev *d, enum reg r, uint32_t v) {
  if (d->transport == T_PCI) {
    uint32_t c = pci_at(d, d->common);
    if (c) mmio_wr(c + pci_off[r], pci_w[r], v);
  } else if (mmio_off[r] != 0xfff) {
    mmio_write32(d->base + mmio_off[r], v);
  }
}

static uint32_t vr(struct vdev *d, enum reg r) {
  if (d->transport == T_PCI) {
    uint32_t c = pci_at(d, d->common);
    return c ? mmio_rd(c + pci_off[r], pci_w[r]) : 0;
  }
  if (r == R_QSIZE) return mmio_read32(d->base + 0x34); /* QueueNumMax */
  return mmio_off[r] == 0xfff ? 0 : mmio_read32(d->base + mmio_off[r]);
}

static void vnotify(struct vdev *d, uint32_t q) {
  n.notify++;
  if (d->transport == T_MMIO) {
    mmio_write32(d->base + 0x50, q);
    return;
  }
  uint32_t nb = pci_at(d, d->notify);
  if (!nb) return;
  vw(d, R_QSEL, q);
  uint32_t off = vr(d, R_QSIZE) ? mmio_read16(pci_at(d, d->common) + 0x1e) : below(4);
  mmio_write16(nb + off * d->notify_mult, (uint16_t)q);
}

/* ── descriptors by the rules (see the top of the file) ─────────────────────────────── */

struct desc {
  uint32_t addr_lo, addr_hi, len;
  uint16_t flags, next;
};
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

/* An address no device may use: outside RAM, or a buffer that runs past its end. */
static void garbage(uint32_t *lo, uint32_t *hi, uint32_t *len) {
  *hi = 0;
  switch (below(7)) {
  case 0: *lo = hole_lo + below(0u - hole_lo); break;               /* the hole */
  case 1: *lo = ram_end + below(0x1000); break;                     /* just past RAM */
  case 2: /* across the end of RAM */
    *len = 0x10000 + below(0x10000);
    *lo = ram_end - below(0x8000) - 1;
    return;
  case 3: *lo = rnd(); *hi = 1 + below(0xfffff); break;             /* above 4 GiB */
  case 4: *lo = rnd(); *hi = rnd() | 0x00100000u; break;            /* above 2^52 */
  case 5: *lo = 0xfffff000u + below(0x1000); *len = 0x2000 + rnd() % 0x10000; return;
  default: *lo = 0x100000u + below(0x1000); *len = 0xfffff000u + below(0x1000); return;
  }
  *len = chance(4) ? rnd() : below(0x2000);
}

static void make_desc(struct desc *e, uint32_t qsize, int in_table) {
  uint32_t k = below(16);
  uint32_t lo = 0, hi = 0, len = 0;
  uint16_t flags = 0;
  if (k < 7) { /* device-readable: whole records of SRC */
    uint32_t rec = below(SRC_SIZE / 16);
    lo = SRC + 16 * rec;
    uint32_t room = SRC_SIZE / 16 - rec;
    uint32_t recs = chance(2) ? 1 : chance(2) ? 32 : 1 + below(room);
    len = 16 * (recs < room ? recs : room);
    if (chance(16)) len = 0;
  } else if (k < 12) { /* device-writable: DATA */
    lo = DATA + below(ram_end - DATA);
    switch (below(5)) {
    case 0: len = 1; break;
    case 1: len = 512; break;
    case 2: len = 512 * (1 + below(16)) + (chance(4) ? 1 : 0); break;
    case 3: len = below(0x10000); break;
    default: len = below(ram_end - lo) + 1;
    }
    flags = F_WRITE;
  } else if (k < 13) { /* an indirect table in TABLES */
    uint32_t ent = below(TABLES_SIZE / 16);
    lo = TABLES + 16 * ent;
    uint32_t room = TABLES_SIZE / 16 - ent;
    len = 16 * (1 + below(room < 8 ? room : 8));
    if (chance(8)) len += 1 + below(15); /* not a whole number of descriptors */
    flags = F_INDIRECT;
    if (in_table && chance(2)) flags |= F_WRITE;
  } else {
    garbage(&lo, &hi, &len);
    flags = (uint16_t)below(8);
  }
  if (chance(2)) flags |= F_NEXT;
  if (chance(64)) flags |= (uint16_t)(rnd() & 0xfff8);
  e->addr_lo = lo;
  e->addr_hi = hi;
  e->len = len;
  e->flags = flags;
  e->next = (uint16_t)(chance(16) ? rnd() : below(qsize ? qsize : 1));
}

/* Records of SRC that good_chain picks on purpose for a DISCARD / WRITE_ZEROES: headers of
 * those types, and segments that fit the disk (found by fill_regions). By chance alone
 * the pair came up about once in 5,000 chains. */
#define PICKS 128
static uint16_t zero_heads[PICKS], fit_segments[PICKS];
static uint32_t n_zero_heads, n_fit_segments;

/* Records of SRC: a request header wherever a readable buffer starts. */
static void make_record(uint32_t *r) {
  static const uint32_t types[] = {0, 1, 1, 4, 8, 11, 13, 0x7fffffff};
  uint32_t t = below(10);
  if (t < 8) {
    r[0] = types[t];
    r[1] = 1; /* read as a DISCARD segment: sector 2^32 + type, past the end */
  } else {
    r[0] = 1024 + below(1024); /* an unknown type; as a segment: a sector of the upper half */
    r[1] = 0;
    if (!chance(8)) {
      /* As a segment, mostly one that fits: a DISCARD or WRITE_ZEROES the device carries out (zeros
       * in the upper half), with WRITE_ZEROES' unmap flag now and then (which a DISCARD
       * must refuse). As a header, the unknown type is refused whatever its sector. */
      r[2] = 1 + below(2048 - r[0]);
      r[3] = chance(4) ? 1 : 0;
      return;
    }
  }
  if (chance(8)) {
    r[2] = rnd() | 0x800; /* past the end (2048 sectors) */
    r[3] = chance(2) ? rnd() : 0;
  } else {
    r[2] = 1024 + below(1024);
    r[3] = 0;
  }
}

static uint32_t slot_desc(uint32_t s) { return RINGS + s * SLOT_SIZE; }
static uint32_t slot_avail(uint32_t s) { return RINGS + s * SLOT_SIZE + 0x1000; }
static uint32_t slot_used(uint32_t s) { return RINGS + s * SLOT_SIZE + 0x2000; }

static void fill_slot(uint32_t s) {
  struct desc *t = (struct desc *)(uintptr_t)slot_desc(s);
  for (uint32_t i = 0; i < QMAX; i++) make_desc(&t[i], QMAX, 0);
}

/* A ring address for queue setup: a slot's, misaligned, or garbage. */
static uint32_t ring_addr(uint32_t (*slot)(uint32_t), uint32_t own, uint32_t *hi) {
  *hi = 0;
  uint32_t k = below(16);
  if (k < 11) return slot(own);
  if (k < 13) return slot(below(NSLOTS));
  if (k < 14) return slot(own) + 1 + below(15);
  /* Outside RAM, or so close to its end that no ring fits (not garbage(): its addresses
   * are garbage only together with their lengths, and a ring's length is implied). */
  switch (below(4)) {
  case 0: return hole_lo + (below(0u - hole_lo) & ~15u);
  case 1: return ram_end - 4;
  case 2: *hi = 1 + below(0xfffff); return rnd() & ~15u;
  default: return ram_end + 16 * below(0x100);
  }
}

/* A queue size: mostly a valid power of two, sometimes anything. */
static uint16_t queue_size(uint16_t max) {
  uint32_t m = max < QMAX ? max : QMAX;
  if (!m) m = 1;
  if (chance(6)) {
    switch (below(4)) {
    case 0: return 0;
    case 1: return (uint16_t)(m + 1 + below(7));
    case 2: return (uint16_t)(3 + 2 * below(50)); /* odd, not a power of two */
    default: { uint16_t v = (uint16_t)rnd(); return v > m ? v : (uint16_t)(m + 1); }
    }
  }
  uint32_t s = 1;
  for (uint32_t b = below(9); b && s * 2 <= m; b--) s *= 2;
  return (uint16_t)s;
}

static uint32_t slots_filled;

static uint32_t dev_slot(struct vdev *d, uint32_t q) {
  uint32_t s = ((uint32_t)(d - devs) * 4 + q) % NSLOTS;
  if (!(slots_filled & (1u << s))) {
    fill_slot(s);
    slots_filled |= 1u << s;
  }
  return s;
}

/* Queue `q` of `d` set up (sizes, rings, vector, enable) mostly as a driver would. */
static void setup_queue(struct vdev *d, uint32_t q) {
  n.vqueue++;
  vw(d, R_QSEL, q);
  uint16_t max = (uint16_t)vr(d, R_QSIZE);
  if (q < 4 && max) d->qmax[q] = max;
  uint16_t size = queue_size(max);
  uint32_t own = dev_slot(d, q), hi;
  vw(d, R_QSIZE, size);
  vw(d, R_QDESC, ring_addr(slot_desc, own, &hi));
  vw(d, R_QDESC_HI, hi);
  uint32_t av = ring_addr(slot_avail, own, &hi);
  vw(d, R_QDRIVER, av);
  vw(d, R_QDRIVER_HI, hi);
  vw(d, R_QDEVICE, ring_addr(slot_used, own, &hi));
  vw(d, R_QDEVICE_HI, hi);
  if (av == slot_avail(own)) {
    volatile uint16_t *a = (volatile uint16_t *)(uintptr_t)av;
    a[0] = (uint16_t)(chance(2) ? 1 : 0); /* NO_INTERRUPT, sometimes */
    a[1] = 0;
  }
  if (d->transport == T_PCI) vw(d, R_QMSIX, chance(4) ? rnd() : below(3));
  if (q < 4) {
    d->qsize[q] = size;
    d->qslot[q] = (uint8_t)own;
    d->avail_idx[q] = 0;
  }
  if (!chance(8)) vw(d, R_QENABLE, 1);
}

/* A driver's initialisation, with a wrong step now and then; ends at DRIVER_OK mostly. */
static void sane_init(struct vdev *d) {
  n.vinit++;
  if (d->transport == T_PCI) pci_restore(d->f);
  vw(d, R_STATUS, 0);
  vw(d, R_STATUS, 1);
  vw(d, R_STATUS, 3);
  vw(d, R_DFSEL, 0);
  uint32_t lo = vr(d, R_DF);
  vw(d, R_DFSEL, 1);
  uint32_t hi = vr(d, R_DF);
  vw(d, R_GFSEL, 0);
  vw(d, R_GF, chance(8) ? rnd() : lo & rnd());
  vw(d, R_GFSEL, 1);
  vw(d, R_GF, chance(8) ? rnd() : (hi & rnd()) | (chance(16) ? 0 : 1)); /* VERSION_1, mostly */
  vw(d, R_STATUS, 11);
  uint32_t queues = 1 + below(2);
  for (uint32_t q = 0; q < queues; q++) setup_queue(d, q);
  if (d->transport == T_PCI) vw(d, R_MSIX_CONFIG, chance(4) ? rnd() : below(2));
  if (!chance(8)) vw(d, R_STATUS, chance(16) ? 4 | 1 : 15);
}

/* A well-formed request at `h` of table `t` (size `size`): for a block device a header
 * record, data (read into DATA or written from SRC) and a status byte; for others one
 * writable buffer. Returns the head. */
static uint16_t good_chain(struct desc *t, uint32_t size) {
  uint16_t h = (uint16_t)below(size), i1 = (uint16_t)below(size), i2 = (uint16_t)below(size);
  uint32_t sectors = 1 + below(8);
  if (chance(4)) { /* one writable buffer (an entropy request) */
    t[h].addr_lo = DATA + below(ram_end - DATA - 0x10000);
    t[h].addr_hi = 0;
    t[h].len = 1 + below(0x2000);
    t[h].flags = F_WRITE;
    return h;
  }
  t[h].addr_lo = SRC + 16 * below(SRC_SIZE / 16);
  t[h].addr_hi = 0;
  t[h].len = 16;
  t[h].flags = F_NEXT;
  t[h].next = i1;
  if (chance(2)) { /* data the device writes: IN, GET_ID */
    t[i1].addr_lo = DATA + below(ram_end - DATA - 0x10000);
    t[i1].flags = F_WRITE | F_NEXT;
  } else { /* data the device reads: OUT, DISCARD, WRITE_ZEROES */
    uint32_t rec = below(SRC_SIZE / 16 - 32 * 8);
    t[i1].addr_lo = SRC + 16 * rec;
    t[i1].flags = F_NEXT;
    if (chance(2)) { /* one DISCARD / WRITE_ZEROES segment */
      sectors = 0, t[i1].len = 16;
      if (chance(2) && n_zero_heads && n_fit_segments) { /* of the right type, and fitting */
        t[h].addr_lo = SRC + 16 * zero_heads[below(n_zero_heads)];
        t[i1].addr_lo = SRC + 16 * fit_segments[below(n_fit_segments)];
      }
    }
  }
  t[i1].addr_hi = 0;
  if (sectors) t[i1].len = 512 * sectors;
  t[i1].next = i2;
  t[i2].addr_lo = DATA + below(ram_end - DATA - 0x10000);
  t[i2].addr_hi = 0;
  t[i2].len = 1;
  t[i2].flags = F_WRITE;
  return h;
}

/* Offers random heads on queue `q` as last set up, then (mostly) notifies. */
static void ring_op(struct vdev *d) {
  n.vring++;
  uint32_t q = chance(8) ? 1 : 0;
  uint32_t size = d->qsize[q] ? d->qsize[q] : 1;
  if (size > QMAX) size = QMAX;
  uint32_t s = d->qslot[q];
  struct desc *t = (struct desc *)(uintptr_t)slot_desc(s);
  for (uint32_t i = below(8); i; i--) make_desc(&t[below(QMAX)], size, 0);
  volatile uint16_t *a = (volatile uint16_t *)(uintptr_t)slot_avail(s);
  uint32_t k = 1 + below(chance(8) ? size : 4);
  for (uint32_t i = 0; i < k; i++) {
    uint16_t head = chance(2) ? good_chain(t, size) : (uint16_t)(chance(32) ? rnd() : below(size));
    a[2 + (d->avail_idx[q] % size)] = head;
    d->avail_idx[q]++;
  }
  if (chance(32)) d->avail_idx[q] = (uint16_t)(d->avail_idx[q] + below(0x10000)); /* a jump */
  __asm__ volatile("mfence" ::: "memory");
  a[1] = d->avail_idx[q];
  if (chance(4)) a[2 + size] = (uint16_t)rnd(); /* used_event */
  if (!chance(8)) vnotify(d, chance(16) ? below(8) : q);
}

/* A random register of the transport, any width, any value. */
static void reg_op(struct vdev *d) {
  n.vreg++;
  if (d->transport == T_MMIO) {
    uint32_t off = chance(4) ? below(d->size) : 4 * below(0x80);
    int w = chance(4) ? width() : 4;
    if (chance(3)) (void)mmio_rd(d->base + off, w);
    else mmio_wr(d->base + off, w, value());
    return;
  }
  uint32_t where;
  uint32_t span;
  switch (below(5)) {
  case 0: where = d->notify; span = 0x1000; break;
  case 1: where = d->isr; span = 4; break;
  case 2: where = d->devcfg; span = 0x80; break;
  default: where = d->common; span = 0x40; break;
  }
  uint32_t at = pci_at(d, where);
  if (!at) return;
  at += below(span);
  int w = width();
  if (chance(3)) (void)mmio_rd(at, w);
  else mmio_wr(at, w, value());
}

/* An MSI-X table entry, sanely or not, and the function's MSI-X control. */
static void msix_op(struct vdev *d) {
  if (d->transport != T_PCI || !d->f->msix_cap) return;
  n.msix++;
  struct fn *f = d->f;
  uint32_t lo, hi;
  msix_table_now(f, &lo, &hi);
  if (lo) {
    uint32_t e = lo + 16 * below(f->msix_n);
    uint32_t vec = 0x20 + below(0xe0);
    int good = chance(2);
    mmio_write32(e, good || chance(2) ? 0xfee00000u : rnd() & ~3u);
    mmio_write32(e + 4, good || !chance(8) ? 0 : rnd());
    /* Fixed or lowest-priority delivery, edge or level, vector >= 0x20: never INIT,
     * SMI, NMI or ExtINT, which would stop the guest rather than the VMM. */
    mmio_write32(e + 8, good ? vec : vec | (below(2) << 8) | (rnd() & 0xffff0000u) | (below(4) << 14));
    mmio_write32(e + 12, good ? 0 : below(2));
    if (chance(4)) (void)mmio_read32(e + 4 * below(4));
  }
  uint16_t ctl = mmio_read16(f->cfg + f->msix_cap + 2);
  ctl = (uint16_t)((ctl & ~0xc000u) | (chance(2) ? 0x8000u : below(4) << 14));
  mmio_write16(f->cfg + f->msix_cap + 2, ctl);
}

/* ── config space ───────────────────────────────────────────────────────────────────── */

static uint32_t cfg_reg(const struct fn *f) {
  switch (below(8)) {
  case 0: return 0x04;
  case 1: return 0x10 + 4 * below(6);
  case 2: return 0x30;
  case 3: return 0x34;
  case 4: return 0x3c;
  case 5:
    if (f->ncaps) return f->cap_list[below(f->ncaps)] + below(20);
    return below(0x100);
  case 6: return f->msix_cap ? f->msix_cap + below(12) : 0x06;
  default: return below(0x1000);
  }
}

static void config_op(void) {
  n.cfg_w++;
  if (!nfns) return;
  struct fn *f = &fns[below(nfns)];
  uint32_t reg = cfg_reg(f);
  int w = width();
  if (chance(2)) reg &= ~(uint32_t)(w - 1);
  uint32_t v = value();
  if (chance(6)) {
    /* COMMAND flipped: memory, I/O, bus master, INTx disable */
    mmio_write16(f->cfg + 4, (uint16_t)(mmio_read16(f->cfg + 4) ^ (1u << below(11))));
    return;
  }
  if (chance(4)) (void)mmio_rd(f->cfg + reg, w);
  else mmio_wr(f->cfg + reg, w, v);
  if (chance(2)) pci_restore(f);
}

/* BAR sizing at an odd moment: all-ones, read, and back (mostly). */
static void sizing_op(void) {
  n.sizing++;
  if (!nfns) return;
  struct fn *f = &fns[below(nfns)];
  uint32_t i = below(6);
  uint32_t reg = f->cfg + 0x10 + 4 * i;
  uint32_t old = mmio_read32(reg);
  mmio_write32(reg, 0xffffffffu);
  (void)mmio_read32(reg);
  if (chance(4) && ndevs) {
    /* Meanwhile, a virtio access through whatever that BAR decodes now. */
    struct vdev *d = &devs[below(ndevs)];
    if (chance(2)) reg_op(d);
    else ring_op(d);
  }
  if (!chance(8)) mmio_write32(reg, old);
}

/* CF8/CFC: an address (enabled or not, any function) and a data access. */
static void cf8_op(void) {
  n.cf8++;
  uint32_t addr;
  if (nfns && chance(2)) {
    const struct fn *f = &fns[below(nfns)];
    addr = 0x80000000u | (f->bdf << 8) | (cfg_reg(f) & 0xfc);
  } else {
    addr = rnd();
  }
  outl(0xcf8, addr);
  uint16_t p = (uint16_t)(0xcfc + below(4));
  int w = width();
  if (chance(3)) (void)port_rd(p, w);
  else port_wr(p, w, value());
  outl(0xcf8, 0);
  for (uint32_t i = 0; i < nfns; i++)
    if ((addr >> 8 & 0xffff) == fns[i].bdf && chance(2)) pci_restore(&fns[i]);
}

/* ── ports ──────────────────────────────────────────────────────────────────────────── */

/* The models vmdesc itself answers on (beside the fuzzer's own COM1 and debug exit). */
static const uint16_t known_ports[] = {0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff,
                                       0x60, 0x64, 0xcf8, 0xcf9, 0xcfa, 0xcfb, 0xcfc, 0xcfd,
                                       0xcfe, 0xcff, 0x600, 0x601, 0x602, 0x603};

/* Whether a write may go to `p` (KVM's own chips and the ports that end the run). */
static int port_writable(uint16_t p) {
  if (p == 0xf4) return 0;                             /* debug exit */
  if (p >= 0x20 && p <= 0x21) return 0;                /* PIC */
  if (p >= 0xa0 && p <= 0xa1) return 0;
  if (p >= 0x40 && p <= 0x43) return 0;                /* PIT */
  if (p == 0x61 || p == 0x4d0 || p == 0x4d1) return 0; /* speaker gate, ELCR */
  return 1;
}

/* A value that does not end the run at `p` (see the top of the file). */
static uint32_t port_value(uint16_t p, uint32_t v) {
  if (p == 0x64 && (v & 0xf0) == 0xf0) v |= 1;   /* no reset pulse */
  if (p == 0x60) v |= 1;                         /* output port: reset line high */
  if (p == 0xcf9) v &= ~4u;                      /* no reset */
  if (p == 0x600) v &= ~0x20u;                   /* no SLP_EN */
  return v;
}

static void port_op(void) {
  uint16_t p = chance(3) ? known_ports[below(sizeof known_ports / sizeof known_ports[0])]
                         : (uint16_t)rnd();
  int w = width();
  if (chance(2) || !port_writable(p)) {
    n.port_r++;
    (void)port_rd(p, w);
  } else {
    n.port_w++;
    port_wr(p, w, port_value(p, value()));
  }
}

/* ── MMIO ───────────────────────────────────────────────────────────────────────────── */

/* Whether a random write may land at [a, a + 4): not RAM, not KVM's LAPIC/IOAPIC, not a
 * present function's config space or MSI-X table (the fuzzer writes those by rule). */
static int mmio_writable(uint32_t a) {
  if (a < ram_end || a + 4 < a) return 0;
  if (a >= 0xfee00000u - 4 && a < 0xfef00000u) return 0;
  if (a >= IOAPIC - 4 && a < IOAPIC + 0x1000) return 0;
  for (uint32_t i = 0; i < nfns; i++) {
    if (a + 4 > fns[i].cfg && a < fns[i].cfg + 0x1000) return 0;
    uint32_t lo, hi;
    msix_table_now(&fns[i], &lo, &hi);
    if (lo && a + 4 > lo && a < hi) return 0;
  }
  return 1;
}

static uint32_t mmio_target(void) {
  uint32_t k = below(8);
  if (k < 3 && nfns) { /* inside a BAR */
    const struct fn *f = &fns[below(nfns)];
    uint32_t i = below(6);
    uint32_t b = bar_now(f, i);
    if (b) return b + below(f->bar_size[i] ? f->bar_size[i] : 0x1000);
  }
  if (k < 5 && ndevs) { /* a virtio-mmio page, or a PCI transport's common config */
    struct vdev *d = &devs[below(ndevs)];
    if (d->transport == T_MMIO) return d->base + below(d->size);
    uint32_t c = pci_at(d, d->common);
    if (c) return c + below(0x40);
  }
  if (k < 6 && ecam) return ecam + below((bus_hi - bus_lo + 1) << 20); /* ECAM, any function */
  if (k < 7 && hole_lo) return hole_lo + below(0u - hole_lo);
  if (chance(2)) return (uint32_t)(((below(2) ? 0xfeb00000u : 0xc0000000u) + below(0x100000)));
  return ram_end + below(0u - ram_end);                             /* anywhere above RAM */
}

static void mmio_op(void) {
  uint32_t a = mmio_target();
  int w = width();
  if (chance(4)) a = (a & ~0xfffu) + 0x1000 - below(4); /* crossing into the next page */
  if (a < ram_end) return;
  if (chance(2) || !mmio_writable(a)) {
    n.mmio_r++;
    (void)mmio_rd(a, w);
  } else {
    n.mmio_w++;
    mmio_wr(a, w, value());
  }
}

/* ── interrupts ─────────────────────────────────────────────────────────────────────── */

extern const uint32_t fuzz_exc_stubs[32];
extern void fuzz_irq_stub(void);

void fuzz_irq(void) {
  n.irqs++;
  mmio_write32(LAPIC + 0xb0, 0); /* EOI */
}

void fuzz_exception(uint32_t vector, uint32_t eip) {
  serial_init();
  outb(COM1 + 4, 0x03);
  puts("\nfuzz: EXCEPTION vector ");
  put_dec(vector);
  puts(" at ");
  put_hex(eip, 8);
  putc('\n');
  debug_exit(FUZZ_EXCEPTION);
}

static void interrupts_init(void) {
  for (int v = 0; v < 32; v++) idt_set(v, fuzz_exc_stubs[v]);
  for (int v = 32; v < 256; v++) idt_set(v, (uint32_t)(uintptr_t)fuzz_irq_stub);
  idt_load(); /* both PICs masked: MSIs only */
}

/* Whether the LAPIC holds a requested interrupt (IRR, vectors 0x20-0xff; read only). */
static int irq_pending(void) {
  for (uint32_t r = 1; r < 8; r++)
    if (mmio_read32(LAPIC + 0x200 + 0x10 * r)) return 1;
  return 0;
}

/* Interrupts on for a moment. With one pending, `sti; hlt` (it wakes at once: this host's
 * KVM delivers an interrupt on the way into HLT, not in a two-instruction window);
 * otherwise `sti; nop; nop` (a HLT would sleep for ever). */
static void irq_window(void) {
  n.irq_windows++;
  if (irq_pending()) __asm__ volatile("sti; hlt; cli" ::: "memory");
  else __asm__ volatile("sti; nop; nop; cli" ::: "memory");
}

/* ── main ───────────────────────────────────────────────────────────────────────────── */

static void fill_regions(void) {
  uint32_t *r = (uint32_t *)(uintptr_t)SRC;
  for (uint32_t i = 0; i < SRC_SIZE / 16; i++) {
    uint32_t *rec = &r[4 * i];
    make_record(rec);
    if (rec[1] == 1 && (rec[0] == 11 || rec[0] == 13) && n_zero_heads < PICKS)
      zero_heads[n_zero_heads++] = (uint16_t)i;
    if (rec[1] == 0 && rec[2] >= 1 && rec[0] + rec[2] <= 2048 && n_fit_segments < PICKS)
      fit_segments[n_fit_segments++] = (uint16_t)i;
  }
  struct desc *t = (struct desc *)(uintptr_t)TABLES;
  for (uint32_t i = 0; i < TABLES_SIZE / 16; i++) make_desc(&t[i], 8, 1);
  /* The slots' descriptor tables are filled as queues are first set up in them: until
   * then they hold zeros (RAM starts zeroed), empty buffers at address 0 that no device
   * reads or writes a byte of. */
}

static void op(void) {
  uint32_t k = below(100);
  struct vdev *d = ndevs ? &devs[below(ndevs)] : 0;
  if (k < 14) port_op();
  else if (k < 30) mmio_op();
  else if (k < 38) config_op();
  else if (k < 41) cf8_op();
  else if (k < 43) sizing_op();
  else if (!d) mmio_op();
  else if (k < 55) reg_op(d);
  else if (k < 62) sane_init(d);
  else if (k < 67) setup_queue(d, below(chance(8) ? 8 : 2));
  else if (k < 88) ring_op(d);
  else if (k < 91) vnotify(d, below(chance(8) ? 0x10000 : 2));
  else if (k < 95) msix_op(d);
  else irq_window();
}

static void print_count(const char *name, uint32_t v) {
  putc(' ');
  puts(name);
  putc('=');
  put_dec(v);
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  serial_init();
  uint32_t seed = cmdline_u32("seed", 1), ops = cmdline_u32("ops", 2000);
  uint32_t x = seed;
  s0 = splitmix32(&x);
  s1 = splitmix32(&x);
  s2 = splitmix32(&x);
  s3 = splitmix32(&x);
  ram_end = ram_top();
  hole_lo = cmdline_u32("hole", 0xc0000000u);
  if (ram_end < DATA + 0x100000) {
    puts("fuzz: needs RAM up to 65 MiB at least\n");
    return 2;
  }
  pci_discover();
  mmio_discover();
  puts("fuzz: seed ");
  put_dec(seed);
  puts(" ops ");
  put_dec(ops);
  puts(" functions ");
  put_dec(nfns);
  puts(" virtio ");
  put_dec(ndevs);
  puts(" ram ");
  put_hex(ram_end, 8);
  putc('\n');
  interrupts_init();
  fill_regions();
  for (uint32_t i = 0; i < ndevs; i++) sane_init(&devs[i]);
  /* trace=K: from operation K on, each operation's number before it runs (to find the
   * one that breaks a seed: the runner's `--trace K`). */
  uint32_t trace = cmdline_u32("trace", 0xffffffffu);
  for (uint32_t i = 0; i < ops; i++) {
    if (i >= trace) {
      serial_init();
      outb(COM1 + 4, 0x03);
      puts("op ");
      put_dec(i);
      putc('\n');
    }
    op();
  }
  /* Put COM1 back (the fuzzer wrote its registers), then the summary and the marker. */
  serial_init();
  outb(COM1 + 4, 0x03);
  puts("\nfuzz: done seed=");
  put_dec(seed);
  print_count("ops", ops);
  print_count("port_r", n.port_r);
  print_count("port_w", n.port_w);
  print_count("mmio_r", n.mmio_r);
  print_count("mmio_w", n.mmio_w);
  print_count("cfg", n.cfg_w);
  print_count("cf8", n.cf8);
  print_count("sizing", n.sizing);
  print_count("vreg", n.vreg);
  print_count("vinit", n.vinit);
  print_count("vqueue", n.vqueue);
  print_count("vring", n.vring);
  print_count("notify", n.notify);
  print_count("msix", n.msix);
  print_count("irq_windows", n.irq_windows);
  print_count("irqs", n.irqs);
  putc('\n');
  debug_exit(FUZZ_DONE);
}
