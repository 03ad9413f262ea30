/*
 * The virtio driver of the test guests (see virtio.h). 32-bit, paging off, one CPU, one
 * request in flight: small enough to read in one sitting, strict enough that vmdesc's
 * devices and QEMU's are held to the same driver.
 */
#include "virtio.h"

#define IOAPIC 0xfec00000u
#define VEC_CONFIG 0x30
#define VEC_QUEUE 0x31
#define VEC_LINE 0x32

#define STATUS_ACK 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define F_VERSION_1 (1ull << 32)

/* virtio_pci_common_cfg */
#define C_DFSELECT 0x00
#define C_DF 0x04
#define C_GFSELECT 0x08
#define C_GF 0x0c
#define C_MSIX_CONFIG 0x10
#define C_STATUS 0x14
#define C_Q_SELECT 0x16
#define C_Q_SIZE 0x18
#define C_Q_MSIX 0x1a
#define C_Q_ENABLE 0x1c
#define C_Q_NOFF 0x1e
#define C_Q_DESC 0x20
#define C_Q_DRIVER 0x28
#define C_Q_DEVICE 0x30

/* virtio-mmio */
#define M_MAGIC 0x000
#define M_VERSION 0x004
#define M_DEVICE_ID 0x008
#define M_DF 0x010
#define M_DFSEL 0x014
#define M_GF 0x020
#define M_GFSEL 0x024
#define M_QSEL 0x030
#define M_QNUM_MAX 0x034
#define M_QNUM 0x038
#define M_QREADY 0x044
#define M_QNOTIFY 0x050
#define M_ISTATUS 0x060
#define M_IACK 0x064
#define M_STATUS 0x070
#define M_QDESC 0x080
#define M_QDRIVER 0x090
#define M_QDEVICE 0x0a0
#define M_CONFIG 0x100

static inline void mb(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void mmio_write16(uint32_t a, uint16_t v) { *(volatile uint16_t *)(uintptr_t)a = v; }
static inline void mmio_write8(uint32_t a, uint8_t v) { *(volatile uint8_t *)(uintptr_t)a = v; }

/* ── ACPI: just enough to find tables and scan the DSDT's bytes ───────────────────── */

static int sig_is(uint32_t addr, const char *sig, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (mmio_read8(addr + i) != (uint8_t)sig[i]) return 0;
  return 1;
}

static uint32_t find_rsdp(void) {
  const struct hvm_start_info *si = start_info();
  if (si && si->rsdp_paddr && si->rsdp_paddr < 0x100000000ull &&
      sig_is((uint32_t)si->rsdp_paddr, "RSD PTR ", 8))
    return (uint32_t)si->rsdp_paddr;
  for (uint32_t a = 0xe0000; a < 0x100000; a += 16)
    if (sig_is(a, "RSD PTR ", 8)) return a;
  return 0;
}

static uint32_t find_table(const char *sig) {
  uint32_t rsdp = find_rsdp();
  if (!rsdp) return 0;
  uint32_t xsdt = mmio_read8(rsdp + 15) >= 2 ? mmio_read32(rsdp + 24) : 0;
  uint32_t root = xsdt ? xsdt : mmio_read32(rsdp + 16);
  uint32_t entry = xsdt ? 8 : 4;
  if (!root) return 0;
  uint32_t len = mmio_read32(root + 4);
  for (uint32_t off = 36; off + entry <= len; off += entry) {
    uint32_t t = mmio_read32(root + off);
    if (t && sig_is(t, sig, 4)) return t;
  }
  return 0;
}

/* The DSDT's AML: [*start, *end). */
static int dsdt(uint32_t *start, uint32_t *end) {
  uint32_t fadt = find_table("FACP");
  if (!fadt) return 0;
  uint32_t d = mmio_read32(fadt + 40);
  if (mmio_read32(fadt + 4) >= 148 && mmio_read32(fadt + 140)) d = mmio_read32(fadt + 140);
  if (!d || !sig_is(d, "DSDT", 4)) return 0;
  *start = d + 36;
  *end = d + mmio_read32(d + 4);
  return 1;
}

static uint32_t find_bytes(uint32_t from, uint32_t end, const char *s, uint32_t n) {
  for (uint32_t a = from; a + n <= end; a++)
    if (sig_is(a, s, n)) return a;
  return 0;
}

/* An AML integer constant at `a` (ByteConst, WordConst, DWordConst, QWordConst low half). */
static uint32_t aml_int(uint32_t a) {
  switch (mmio_read8(a)) {
  case 0x00: return 0;
  case 0x01: return 1;
  case 0x0a: return mmio_read8(a + 1);
  case 0x0b: return mmio_read16(a + 1);
  case 0x0c:
  case 0x0e: return mmio_read32(a + 1);
  }
  return 0;
}

/* ── PCI ───────────────────────────────────────────────────────────────────────── */

static uint32_t ecam_base, bus_first, bus_last;
static uint32_t win_next, win_end; /* where unassigned BARs go */

static int find_ecam(void) {
  ecam_base = cmdline_u32("ecam", 0);
  bus_first = 0;
  bus_last = 0;
  if (ecam_base) {
    cmdline_range("buses", &bus_first, &bus_last);
    return 1;
  }
  uint32_t mcfg = find_table("MCFG");
  if (mcfg && mmio_read32(mcfg + 4) >= 60) {
    bus_first = mmio_read8(mcfg + 54);
    bus_last = bus_first; /* the functions these guests look for sit on the first bus */
    ecam_base = mmio_read32(mcfg + 44) + (bus_first << 20);
    return ecam_base != 0;
  }
  /* QEMU microvm has no MCFG: its PCIe root bridge names the window in _CBA, a name
   * (08 "_CBA" value) or a method returning a constant (14 len "_CBA" flags A4 value). */
  uint32_t s, e;
  if (dsdt(&s, &e)) {
    uint32_t a = find_bytes(s, e, "_CBA", 4);
    if (a && mmio_read8(a - 1) == 0x08) ecam_base = aml_int(a + 4);
    else if (a && mmio_read8(a + 5) == 0xa4) ecam_base = aml_int(a + 6);
    return ecam_base != 0;
  }
  return 0;
}

/* The PCI root bridge's 32-bit memory window: the first DWordMemory descriptor of the DSDT. */
static void find_window(void) {
  uint32_t s, e;
  if (win_end || !dsdt(&s, &e)) return;
  for (uint32_t a = s; a + 26 <= e; a++) {
    if (mmio_read8(a) != 0x87 || mmio_read16(a + 1) != 0x17 || mmio_read8(a + 3) != 0) continue;
    uint32_t min = mmio_read32(a + 10), max = mmio_read32(a + 14), len = mmio_read32(a + 22);
    if (max > min && len == max - min + 1 && len >= 0x100000) {
      win_next = min;
      win_end = max + 1;
      return;
    }
  }
}

static uint32_t cfg_addr(uint32_t bus, uint32_t dev, uint32_t fn) {
  return ecam_base + ((bus - bus_first) << 20) + (dev << 15) + (fn << 12);
}

uint32_t vpci_cfg_read32(const struct vdev *d, uint32_t reg) { return mmio_read32(d->cfg + reg); }
void vpci_cfg_write16(const struct vdev *d, uint32_t reg, uint16_t v) { mmio_write16(d->cfg + reg, v); }

/* The address of BAR `bar` (assigning one from the root bridge's window if firmware did not). */
static uint32_t bar_address(struct vdev *d, uint32_t bar) {
  uint32_t reg = 0x10 + 4 * bar;
  uint32_t v = mmio_read32(d->cfg + reg);
  if (v & 1) return 0; /* an I/O BAR: not where virtio structures live */
  int is64 = ((v >> 1) & 3) == 2;
  if (is64 && mmio_read32(d->cfg + reg + 4)) return 0; /* above 4 GiB: out of a 32-bit guest's reach */
  uint32_t addr = v & ~0xfu;
  if (addr) return addr;
  find_window();
  mmio_write32(d->cfg + reg, 0xffffffffu);
  uint32_t size = ~(mmio_read32(d->cfg + reg) & ~0xfu) + 1;
  uint32_t at = (win_next + size - 1) & ~(size - 1);
  if (!size || !win_end || at + size > win_end || at + size < at) {
    mmio_write32(d->cfg + reg, 0);
    return 0;
  }
  mmio_write32(d->cfg + reg, at);
  if (is64) mmio_write32(d->cfg + reg + 4, 0);
  win_next = at + size;
  return at;
}

static int pci_probe(struct vdev *d, uint16_t type) {
  if (!find_ecam()) return 0;
  if (cmdline_is("verbose", "1")) {
    puts("virtio: ecam ");
    put_hex(ecam_base, 8);
    puts(" buses ");
    put_dec(bus_first);
    putc('-');
    put_dec(bus_last);
    putc('\n');
  }
  for (uint32_t bus = bus_first; bus <= bus_last; bus++) {
    for (uint32_t dev = 0; dev < 32; dev++) {
      uint32_t cfg = cfg_addr(bus, dev, 0);
      uint32_t id = mmio_read32(cfg);
      if ((id & 0xffff) != 0x1af4 || (id >> 16) != 0x1040u + type) continue;
      memset(d, 0, sizeof *d);
      d->transport = T_PCI;
      d->type = type;
      d->bdf = (bus << 8) | (dev << 3);
      d->cfg = cfg;
      /* Memory Space and Bus Master on, INTx not disabled. */
      uint32_t bars[6] = {0};
      for (uint32_t at = mmio_read8(cfg + 0x34) & 0xfc; at; at = mmio_read8(cfg + at + 1) & 0xfc) {
        uint8_t cap = mmio_read8(cfg + at);
        if (cap == 0x11) d->msix_cap = at;
        if (cap != 0x09) continue;
        uint8_t cfg_type = mmio_read8(cfg + at + 3), bar = mmio_read8(cfg + at + 4);
        if (bar > 5) continue;
        if (!bars[bar]) bars[bar] = bar_address(d, bar);
        if (!bars[bar]) continue;
        uint32_t where = bars[bar] + mmio_read32(cfg + at + 8);
        if (cfg_type == 1 && !d->common) d->common = where;
        if (cfg_type == 2 && !d->notify) {
          d->notify = where;
          d->notify_mult = mmio_read32(cfg + at + 16);
        }
        if (cfg_type == 3 && !d->isr) d->isr = where;
        if (cfg_type == 4 && !d->devcfg) d->devcfg = where;
      }
      if (d->msix_cap) {
        uint32_t t = mmio_read32(cfg + d->msix_cap + 4);
        uint32_t bar = t & 7;
        if (bar <= 5 && !bars[bar]) bars[bar] = bar_address(d, bar);
        d->msix_table = bar <= 5 && bars[bar] ? bars[bar] + (t & ~7u) : 0;
      }
      mmio_write16(cfg + 4, (uint16_t)((mmio_read16(cfg + 4) | 0x6) & ~0x400));
      uint8_t line = mmio_read8(cfg + 0x3c);
      d->gsi = line && line != 0xff ? line : 0xffffffffu;
      d->level = 1;      /* PCI INTx: level-triggered, */
      d->active_low = 1; /* active low */
      return d->common && d->notify && d->isr;
    }
  }
  return 0;
}

/* ── virtio-mmio ─────────────────────────────────────────────────────────────────── */

static int mmio_try(struct vdev *d, uint16_t type, uint32_t base, uint32_t irq, int level, int low) {
  if (mmio_read32(base + M_MAGIC) != 0x74726976 || mmio_read32(base + M_VERSION) != 2) return 0;
  if (mmio_read32(base + M_DEVICE_ID) != type) return 0;
  memset(d, 0, sizeof *d);
  d->transport = T_MMIO;
  d->type = type;
  d->base = base;
  d->gsi = irq;
  d->level = level;
  d->active_low = low;
  return 1;
}

/* "virtio_mmio.device=4K@0xfeb00000:5" (the size may be plain bytes, or K/M). */
static int mmio_from_cmdline(struct vdev *d, uint16_t type) {
  const char *s = cmdline();
  const char *key = "virtio_mmio.device=";
  uint32_t n = (uint32_t)strlen(key);
  while (*s) {
    while (*s == ' ') s++;
    uint32_t i = 0;
    while (i < n && s[i] == key[i]) i++;
    if (i == n) {
      const char *p = s + n;
      while (*p && *p != '@' && *p != ' ') p++;
      if (*p == '@') {
        uint32_t base = 0, irq = 0;
        p++;
        if (p[0] == '0' && p[1] == 'x') {
          for (p += 2;; p++) {
            char c = *p;
            if (c >= '0' && c <= '9') base = base * 16 + (uint32_t)(c - '0');
            else if (c >= 'a' && c <= 'f') base = base * 16 + (uint32_t)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') base = base * 16 + (uint32_t)(c - 'A' + 10);
            else break;
          }
        }
        if (*p == ':')
          for (p++; *p >= '0' && *p <= '9'; p++) irq = irq * 10 + (uint32_t)(*p - '0');
        if (base && mmio_try(d, type, base, irq, 0, 0)) return 1;
      }
    }
    while (*s && *s != ' ') s++;
  }
  return 0;
}

/* LNRO0005 devices of the DSDT: the Memory32Fixed and the interrupt of their _CRS. */
static int mmio_from_acpi(struct vdev *d, uint16_t type) {
  uint32_t s, e;
  if (!dsdt(&s, &e)) return 0;
  for (uint32_t a = s; (a = find_bytes(a, e, "LNRO0005", 8)) != 0; a += 8) {
    uint32_t base = 0, irq = 0xffffffffu;
    int level = 0, low = 0;
    for (uint32_t p = a + 8; p + 9 <= e && p < a + 160; p++) {
      if (!base && mmio_read8(p) == 0x86 && mmio_read16(p + 1) == 9) base = mmio_read32(p + 4);
      if (irq == 0xffffffffu && mmio_read8(p) == 0x89 && mmio_read16(p + 1) >= 6) {
        uint8_t flags = mmio_read8(p + 3);
        level = !(flags & 2);
        low = (flags & 4) != 0;
        irq = mmio_read32(p + 5);
      }
      if (base && irq != 0xffffffffu) break;
    }
    if (base && irq != 0xffffffffu && mmio_try(d, type, base, irq, level, low)) return 1;
  }
  return 0;
}

int virtio_find(struct vdev *d, uint16_t type, int transport) {
  if ((transport == -1 || transport == T_PCI) && pci_probe(d, type)) return 0;
  if (transport == -1 || transport == T_MMIO) {
    if (mmio_from_cmdline(d, type)) return 0;
    if (mmio_from_acpi(d, type)) return 0;
  }
  return -1;
}

/* ── registers ───────────────────────────────────────────────────────────────────── */

uint32_t vcommon_read(struct vdev *d, uint32_t off, int size) {
  uint32_t a = d->common + off;
  return size == 1 ? mmio_read8(a) : size == 2 ? mmio_read16(a) : mmio_read32(a);
}

void vcommon_write(struct vdev *d, uint32_t off, int size, uint32_t v) {
  uint32_t a = d->common + off;
  if (size == 1) mmio_write8(a, (uint8_t)v);
  else if (size == 2) mmio_write16(a, (uint16_t)v);
  else mmio_write32(a, v);
}

uint8_t virtio_status(struct vdev *d) {
  return d->transport == T_PCI ? (uint8_t)vcommon_read(d, C_STATUS, 1)
                               : (uint8_t)mmio_read32(d->base + M_STATUS);
}

void virtio_set_status(struct vdev *d, uint8_t s) {
  if (d->transport == T_PCI) vcommon_write(d, C_STATUS, 1, s);
  else mmio_write32(d->base + M_STATUS, s);
}

uint32_t virtio_config(struct vdev *d, uint32_t off, int size) {
  uint32_t a = (d->transport == T_PCI ? d->devcfg : d->base + M_CONFIG) + off;
  return size == 1 ? mmio_read8(a) : size == 2 ? mmio_read16(a) : mmio_read32(a);
}

uint32_t virtio_config_generation(struct vdev *d) {
  return d->transport == T_PCI ? vcommon_read(d, 0x15, 1) : mmio_read32(d->base + 0x0fc);
}

uint32_t virtio_take_isr(struct vdev *d) {
  if (d->transport == T_PCI) return mmio_read8(d->isr); /* reading clears it */
  uint32_t s = mmio_read32(d->base + M_ISTATUS);
  if (s) mmio_write32(d->base + M_IACK, s);
  return s;
}

static uint64_t device_features(struct vdev *d) {
  uint32_t lo, hi;
  if (d->transport == T_PCI) {
    vcommon_write(d, C_DFSELECT, 4, 0);
    lo = vcommon_read(d, C_DF, 4);
    vcommon_write(d, C_DFSELECT, 4, 1);
    hi = vcommon_read(d, C_DF, 4);
  } else {
    mmio_write32(d->base + M_DFSEL, 0);
    lo = mmio_read32(d->base + M_DF);
    mmio_write32(d->base + M_DFSEL, 1);
    hi = mmio_read32(d->base + M_DF);
  }
  return ((uint64_t)hi << 32) | lo;
}

static void driver_features(struct vdev *d, uint64_t f) {
  if (d->transport == T_PCI) {
    vcommon_write(d, C_GFSELECT, 4, 0);
    vcommon_write(d, C_GF, 4, (uint32_t)f);
    vcommon_write(d, C_GFSELECT, 4, 1);
    vcommon_write(d, C_GF, 4, (uint32_t)(f >> 32));
  } else {
    mmio_write32(d->base + M_GFSEL, 0);
    mmio_write32(d->base + M_GF, (uint32_t)f);
    mmio_write32(d->base + M_GFSEL, 1);
    mmio_write32(d->base + M_GF, (uint32_t)(f >> 32));
  }
}

/* ── interrupts ──────────────────────────────────────────────────────────────────── */

static struct vdev *irq_dev;
volatile uint32_t virtio_irqs;

extern void virtio_irq_stub(void);

/* Called from virtio_irq.S: acknowledge the device's line (INTx: read the ISR byte;
 * virtio-mmio: InterruptStatus → InterruptACK), then the local APIC. */
void virtio_irq(void) {
  virtio_irqs++;
  struct vdev *d = irq_dev;
  if (d && d->wait == WAIT_INTX) {
    if (d->transport == T_PCI) (void)mmio_read8(d->isr);
    else mmio_write32(d->base + M_IACK, mmio_read32(d->base + M_ISTATUS));
  }
  mmio_write32(LAPIC + 0xb0, 0);
}

static void set_gate(int vec, void (*fn)(void)) { idt_set(vec, (uint32_t)(uintptr_t)fn); }

static void ioapic_write(uint32_t reg, uint32_t v) {
  mmio_write32(IOAPIC, reg);
  mmio_write32(IOAPIC + 0x10, v);
}

static void interrupts_on(struct vdev *d) {
  irq_dev = d;
  for (int v = 0; v < 256; v++) set_gate(v, irq_spurious_stub);
  set_gate(VEC_CONFIG, virtio_irq_stub);
  set_gate(VEC_QUEUE, virtio_irq_stub);
  set_gate(VEC_LINE, virtio_irq_stub);
  idt_load(); /* the legacy PICs stay masked: the IOAPIC and MSIs deliver */
  if (d->wait == WAIT_INTX && d->gsi < 24) {
    ioapic_write(0x10 + 2 * d->gsi + 1, 0); /* to APIC 0 */
    ioapic_write(0x10 + 2 * d->gsi,
                 VEC_LINE | (d->level ? 1u << 15 : 0) | (d->active_low ? 1u << 13 : 0));
  }
}

/* MSI-X: entry 0 for configuration changes, 1 for queue 0, both to APIC 0. */
static int msix_on(struct vdev *d) {
  if (!d->msix_cap || !d->msix_table) return -1;
  for (int i = 0; i < 2; i++) {
    uint32_t e = d->msix_table + 16 * (uint32_t)i;
    mmio_write32(e, 0xfee00000u);
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, (uint32_t)(i == 0 ? VEC_CONFIG : VEC_QUEUE));
    mmio_write32(e + 12, 0); /* unmasked */
  }
  uint16_t ctl = mmio_read16(d->cfg + d->msix_cap + 2);
  mmio_write16(d->cfg + d->msix_cap + 2, (uint16_t)((ctl | 0x8000) & ~0x4000));
  vcommon_write(d, C_MSIX_CONFIG, 2, 0);
  return vcommon_read(d, C_MSIX_CONFIG, 2) == 0 ? 0 : -1;
}

/* ── queues ──────────────────────────────────────────────────────────────────────── */

static struct {
  struct virtq_desc desc[VQ_MAX] __attribute__((aligned(4096)));
  uint16_t avail[3 + VQ_MAX] __attribute__((aligned(64)));
  uint8_t used[6 + 8 * VQ_MAX] __attribute__((aligned(64)));
} ring;

int virtio_queue_setup_at(struct vdev *d, uint16_t index, struct vq *q, uint16_t size, uint32_t desc,
                          uint32_t avail, uint32_t used, uint16_t vector) {
  uint32_t max;
  if (d->transport == T_PCI) {
    vcommon_write(d, C_Q_SELECT, 2, index);
    max = vcommon_read(d, C_Q_SIZE, 2);
  } else {
    mmio_write32(d->base + M_QSEL, index);
    max = mmio_read32(d->base + M_QNUM_MAX);
  }
  if (!max) return -1;
  q->index = index;
  q->size = size < max ? size : (uint16_t)max; /* at most the device's maximum */
  q->desc = (struct virtq_desc *)(uintptr_t)desc;
  q->avail = (volatile uint16_t *)(uintptr_t)avail;
  q->used = (volatile uint8_t *)(uintptr_t)used;
  q->avail_idx = q->last_used = 0;
  if (d->transport == T_PCI) {
    vcommon_write(d, C_Q_SIZE, 2, q->size);
    vcommon_write(d, C_Q_DESC, 4, desc);
    vcommon_write(d, C_Q_DESC + 4, 4, 0);
    vcommon_write(d, C_Q_DRIVER, 4, avail);
    vcommon_write(d, C_Q_DRIVER + 4, 4, 0);
    vcommon_write(d, C_Q_DEVICE, 4, used);
    vcommon_write(d, C_Q_DEVICE + 4, 4, 0);
    if (vector != 0xffff) {
      vcommon_write(d, C_Q_MSIX, 2, vector);
      if (vcommon_read(d, C_Q_MSIX, 2) != vector) return -2;
    }
    q->notify_addr = d->notify + vcommon_read(d, C_Q_NOFF, 2) * d->notify_mult;
    vcommon_write(d, C_Q_ENABLE, 2, 1);
  } else {
    mmio_write32(d->base + M_QNUM, q->size);
    mmio_write32(d->base + M_QDESC, desc);
    mmio_write32(d->base + M_QDESC + 4, 0);
    mmio_write32(d->base + M_QDRIVER, avail);
    mmio_write32(d->base + M_QDRIVER + 4, 0);
    mmio_write32(d->base + M_QDEVICE, used);
    mmio_write32(d->base + M_QDEVICE + 4, 0);
    mmio_write32(d->base + M_QREADY, 1);
    q->notify_addr = d->base + M_QNOTIFY;
  }
  return 0;
}

int virtio_queue_setup(struct vdev *d, uint16_t size, uint32_t desc, uint32_t avail, uint32_t used) {
  uint32_t max;
  if (d->transport == T_PCI) {
    vcommon_write(d, C_Q_SELECT, 2, 0);
    max = vcommon_read(d, C_Q_SIZE, 2);
  } else {
    mmio_write32(d->base + M_QSEL, 0);
    max = mmio_read32(d->base + M_QNUM_MAX);
  }
  if (!max) return -1;
  if (!size) size = max < VQ_MAX ? (uint16_t)max : VQ_MAX;
  memset(&ring, 0, sizeof ring);
  uint32_t own_avail = (uint32_t)(uintptr_t)ring.avail;
  desc = desc ? desc : (uint32_t)(uintptr_t)ring.desc;
  avail = avail ? avail : own_avail;
  used = used ? used : (uint32_t)(uintptr_t)ring.used;
  /* Polling: ask the device not to interrupt at all (in RAM only: a hostile ring may not be). */
  if (avail == own_avail) ring.avail[0] = d->wait == WAIT_POLL ? 1 : 0;
  /* The hostile guest's sizes go through as given (the device must refuse bad ones). */
  struct vq *q = &d->q;
  return virtio_queue_setup_at(d, 0, q, size, desc, avail, used, d->wait == WAIT_MSIX ? 1 : 0xffff);
}

void virtio_notify_queue(struct vdev *d, struct vq *q) {
  mb();
  if (d->transport == T_PCI) mmio_write16(q->notify_addr, q->index);
  else mmio_write32(q->notify_addr, q->index);
}

int virtio_negotiate(struct vdev *d, uint64_t want) {
  virtio_set_status(d, 0);
  if (virtio_status(d) != 0) return -1;
  virtio_set_status(d, STATUS_ACK);
  virtio_set_status(d, STATUS_ACK | STATUS_DRIVER);
  uint64_t offered = device_features(d);
  if (!(offered & F_VERSION_1)) return -2;
  d->features = F_VERSION_1 | (offered & want);
  driver_features(d, d->features);
  virtio_set_status(d, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
  if (!(virtio_status(d) & STATUS_FEATURES_OK)) return -3;
  return 0;
}

int virtio_init(struct vdev *d, uint64_t want, enum vwait wait) {
  d->wait = wait;
  int r = virtio_negotiate(d, want);
  if (r != 0) return r;
  if (wait != WAIT_POLL) interrupts_on(d);
  if (wait == WAIT_MSIX && (d->transport != T_PCI || msix_on(d) != 0)) return -4;
  if (wait == WAIT_INTX && d->gsi >= 24) return -5;
  if (virtio_queue_setup(d, 0, 0, 0, 0) != 0) return -6;
  virtio_set_status(d, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  return 0;
}

void virtio_notify(struct vdev *d) {
  mb();
  if (d->transport == T_PCI) mmio_write16(d->q.notify_addr, 0);
  else mmio_write32(d->q.notify_addr, 0);
}

void virtio_offer(struct vdev *d, uint16_t head) {
  struct vq *q = &d->q;
  q->avail[2 + (q->avail_idx % q->size)] = head;
  mb();
  q->avail[1] = ++q->avail_idx;
}

uint16_t virtio_used_idx(struct vdev *d) { return *(volatile uint16_t *)(d->q.used + 2); }

uint16_t virtio_submit(struct vdev *d, const struct vbuf *bufs, int n) {
  struct vq *q = &d->q;
  for (int i = 0; i < n; i++) {
    q->desc[i].addr = (uint32_t)(uintptr_t)bufs[i].addr;
    q->desc[i].len = bufs[i].len;
    q->desc[i].flags = (uint16_t)((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
    q->desc[i].next = (uint16_t)(i + 1);
  }
  virtio_offer(d, 0);
  virtio_notify(d);
  return 0;
}

static uint16_t used_idx(struct vq *q) { return *(volatile uint16_t *)(q->used + 2); }

int virtio_wait(struct vdev *d, uint32_t *len) {
  struct vq *q = &d->q;
  if (d->wait == WAIT_POLL) {
    for (uint32_t spin = 0; used_idx(q) == q->last_used; spin++) {
      if (spin > 400000000u) return -1;
      cpu_relax();
    }
  } else {
    /* Sleep until an interrupt says so: `sti; hlt` wakes for one taken after the sti. */
    uint32_t seen = virtio_irqs;
    for (;;) {
      __asm__ volatile("cli");
      if (virtio_irqs != seen && used_idx(q) != q->last_used) break;
      __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
  }
  uint32_t slot = q->last_used % q->size;
  if (len) *len = *(volatile uint32_t *)(q->used + 8 + 8 * slot);
  q->last_used++;
  return 0;
}

int32_t virtio_request(struct vdev *d, const struct vbuf *bufs, int n) {
  uint32_t len = 0;
  virtio_submit(d, bufs, n);
  if (virtio_wait(d, &len) != 0) return -1;
  return (int32_t)len;
}

/* ── more than one queue (added for virtio-console) ─────────────────────────────────── */

static int queue_setup_index(struct vdev *d, uint16_t index, struct vq *q, struct vq_mem *mem) {
  memset(mem, 0, sizeof *mem);
  mem->avail[0] = d->wait == WAIT_POLL ? 1 : 0; /* VIRTQ_AVAIL_F_NO_INTERRUPT when polling */
  return virtio_queue_setup_at(d, index, q, VQ_MAX, (uint32_t)(uintptr_t)mem->desc,
                               (uint32_t)(uintptr_t)mem->avail, (uint32_t)(uintptr_t)mem->used,
                               d->wait == WAIT_MSIX ? 1 : 0xffff);
}

int virtio_init_queues(struct vdev *d, uint64_t want, enum vwait wait, int n, struct vq *qs,
                       struct vq_mem *mem) {
  d->wait = wait;
  int r = virtio_negotiate(d, want);
  if (r != 0) return r;
  if (wait != WAIT_POLL) interrupts_on(d);
  if (wait == WAIT_MSIX && (d->transport != T_PCI || msix_on(d) != 0)) return -4;
  if (wait == WAIT_INTX && d->gsi >= 24) return -5;
  for (int i = 0; i < n; i++)
    if (queue_setup_index(d, (uint16_t)i, &qs[i], &mem[i]) != 0) return -6 - i;
  virtio_set_status(d, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  return 0;
}

void virtio_submit_queue(struct vdev *d, struct vq *q, uint16_t index, const struct vbuf *bufs, int n) {
  for (int i = 0; i < n; i++) {
    q->desc[i].addr = (uint32_t)(uintptr_t)bufs[i].addr;
    q->desc[i].len = bufs[i].len;
    q->desc[i].flags = (uint16_t)((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
    q->desc[i].next = (uint16_t)(i + 1);
  }
  q->avail[2 + (q->avail_idx % q->size)] = 0;
  mb();
  q->avail[1] = ++q->avail_idx;
  mb();
  /* The notify names the queue (virtio 1.x without NOTIFICATION_DATA). */
  if (d->transport == T_PCI) mmio_write16(q->notify_addr, index);
  else mmio_write32(q->notify_addr, index);
}

int virtio_wait_queue(struct vdev *d, struct vq *q, uint32_t *len) {
  if (d->wait == WAIT_POLL) {
    for (uint32_t spin = 0; used_idx(q) == q->last_used; spin++) {
      if (spin > 400000000u) return -1;
      cpu_relax();
    }
  } else {
    /* Any interrupt may be another queue's: look at this queue's used index each time. */
    for (;;) {
      __asm__ volatile("cli");
      if (used_idx(q) != q->last_used) break;
      __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
  }
  uint32_t slot = q->last_used % q->size;
  if (len) *len = *(volatile uint32_t *)(q->used + 8 + 8 * slot);
  q->last_used++;
  return 0;
}

const char *virtio_transport_name(const struct vdev *d) {
  return d->transport == T_PCI ? "pci" : "mmio";
}

const char *virtio_wait_name(enum vwait w) {
  return w == WAIT_POLL ? "poll" : w == WAIT_MSIX ? "msix" : "intx";
}

enum vwait virtio_wait_from_cmdline(enum vtransport t) {
  if (cmdline_is("irq", "poll")) return WAIT_POLL;
  if (cmdline_is("irq", "msix")) return WAIT_MSIX;
  if (cmdline_is("irq", "intx")) return WAIT_INTX;
  return t == T_PCI ? WAIT_MSIX : WAIT_INTX;
}
