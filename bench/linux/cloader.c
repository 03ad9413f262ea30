/*
 * cloader: the smallest honest C loader that boots a Linux bzImage to its init, the floor
 * bench/linux compares vmdesc and QEMU microvm against.
 *
 * One vCPU in one synchronous KVM_RUN loop; KVM's in-kernel PIC, IOAPIC, LAPIC and PIT;
 * the 64-bit boot protocol (the kernel's own decompressor runs) with an initrd; CPUID as
 * KVM supports it plus the hypervisor bit (without it Linux finds no kvmclock and cannot
 * calibrate its TSC here); an e820 map and no ACPI or MP tables (one CPU, the 8259 PIC).
 * Devices: a 16550 at 0x3F8 on IRQ 4, with just what Linux's 8250 driver probes and its
 * transmit interrupt (the tty layer sends init's output by interrupt); the i8042 reset
 * line (0xFE to port 0x64) ends the run. The CMOS RTC's data port reads 0 (a stopped clock
 * rather than an absent chip, which Linux waits on for seconds). Every other port reads
 * all-ones, port 0x64 too, so Linux's i8042 probe sees no controller at once.
 *
 * Usage: cloader [--mem MiB] [--cmdline TEXT] [--initrd FILE] bzImage
 * Exit status: 0 on the i8042 reset; 4 on a triple fault or internal error; 2 on errors.
 * The guest's serial output goes to stdout unbuffered by line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIE(...) do { fprintf(stderr, "cloader: " __VA_ARGS__); fputc('\n', stderr); exit(2); } while (0)
#define CHECK(x, what) do { if ((x) < 0) DIE("%s: %s", what, strerror(errno)); } while (0)

/* Guest-physical layout below 1 MiB (the same pages vmdesc's lowering uses). */
#define GDT_ADDR 0x5000u
#define ZERO_PAGE 0x7000u
#define PML4_ADDR 0x9000u
#define PDPT_ADDR 0xa000u
#define PD_ADDR 0xb000u /* four pages: identity map of the low 4 GiB with 2 MiB pages */
#define CMDLINE_ADDR 0x20000u
#define KERNEL_ADDR 0x100000u
#define EBDA 0x9fc00u

static uint8_t *ram;
static uint64_t ram_size;
static int vm_fd;

static uint8_t *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  CHECK(fd, path);
  struct stat st;
  CHECK(fstat(fd, &st), "fstat");
  uint8_t *buf = malloc((size_t)st.st_size);
  if (!buf) DIE("out of memory");
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    CHECK(n, path);
    if (n == 0) DIE("%s: short read", path);
    got += (size_t)n;
  }
  close(fd);
  *len = got;
  return buf;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static void set_irq(int gsi, int level) {
  struct kvm_irq_level irq = {.irq = (uint32_t)gsi, .level = (uint32_t)level};
  CHECK(ioctl(vm_fd, KVM_IRQ_LINE, &irq), "KVM_IRQ_LINE");
}

/* ── a 16550 with what Linux's 8250 driver looks at ─────────────────────────────────── */
static struct {
  uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
  int thre_pending, line;
  char out[4096];
  size_t n;
} uart;

static void uart_flush(void) {
  if (uart.n) {
    ssize_t w = write(1, uart.out, uart.n);
    (void)w;
    uart.n = 0;
  }
}

static void uart_update_irq(void) {
  int level = (uart.ier & 0x02) && uart.thre_pending;
  if (level != uart.line) {
    uart.line = level;
    set_irq(4, level);
  }
}

static uint8_t uart_read(unsigned off) {
  int dlab = uart.lcr & 0x80;
  switch (off) {
  case 0: return dlab ? uart.dll : 0; /* RBR: no input */
  case 1: return dlab ? uart.dlm : uart.ier;
  case 2: { /* IIR; reading it clears a THRE interrupt */
    uint8_t fifo = (uart.fcr & 1) ? 0xc0 : 0;
    if ((uart.ier & 0x02) && uart.thre_pending) {
      uart.thre_pending = 0;
      uart_update_irq();
      return fifo | 0x02;
    }
    return fifo | 0x01;
  }
  case 3: return uart.lcr;
  case 4: return uart.mcr;
  case 5: return 0x60; /* LSR: THR and transmitter empty */
  case 6: /* MSR; in loopback the modem outputs come back as inputs */
    if (uart.mcr & 0x10) {
      return (uint8_t)(((uart.mcr & 0x01) << 5) | ((uart.mcr & 0x02) << 3) |
                       ((uart.mcr & 0x04) << 4) | ((uart.mcr & 0x08) << 4));
    }
    return 0xb0; /* DCD, DSR, CTS */
  default: return uart.scr;
  }
}

static void uart_write(unsigned off, uint8_t v) {
  int dlab = uart.lcr & 0x80;
  switch (off) {
  case 0:
    if (dlab) { uart.dll = v; return; }
    if (!(uart.mcr & 0x10)) {
      uart.out[uart.n++] = (char)v;
      if (v == '\n' || uart.n == sizeof uart.out) uart_flush();
    }
    uart.thre_pending = 1; /* the byte is gone at once */
    uart_update_irq();
    return;
  case 1:
    if (dlab) { uart.dlm = v; return; }
    /* Enabling the transmit interrupt with the THR empty raises it at once. */
    if ((v & 0x02) && !(uart.ier & 0x02)) uart.thre_pending = 1;
    uart.ier = v & 0x0f;
    uart_update_irq();
    return;
  case 2: uart.fcr = v; return;
  case 3: uart.lcr = v; return;
  case 4: uart.mcr = v & 0x1f; return;
  case 7: uart.scr = v; return;
  default: return;
  }
}

/* ── boot ──────────────────────────────────────────────────────────────────────────── */
static void e820(uint8_t *zp, int i, uint64_t addr, uint64_t size, uint32_t type) {
  uint8_t *e = zp + 0x2d0 + 20 * i;
  wr64(e, addr);
  wr64(e + 8, size);
  wr32(e + 16, type);
}

/* Loads the bzImage and initrd, fills the zero page; returns the 64-bit entry point. */
static uint64_t load_linux(const char *kernel, const char *initrd, const char *cmdline) {
  size_t klen;
  uint8_t *k = read_file(kernel, &klen);
  if (klen < 0x300 || rd16(k + 0x1fe) != 0xaa55 || memcmp(k + 0x202, "HdrS", 4) != 0)
    DIE("%s: not a bzImage", kernel);
  if (rd16(k + 0x206) < 0x20c || !(rd16(k + 0x236) & 1)) DIE("%s: no 64-bit entry", kernel);
  unsigned setup_sects = k[0x1f1] ? k[0x1f1] : 4;
  size_t setup_len = (setup_sects + 1) * 512u;
  size_t pm_len = klen - setup_len;
  if (KERNEL_ADDR + pm_len > ram_size) DIE("kernel does not fit in RAM");
  memcpy(ram + KERNEL_ADDR, k + setup_len, pm_len);

  uint8_t *zp = ram + ZERO_PAGE;
  memset(zp, 0, 4096);
  size_t hdr_end = 0x202 + k[0x201]; /* the setup header's own length byte */
  memcpy(zp + 0x1f1, k + 0x1f1, hdr_end - 0x1f1);
  zp[0x210] = 0xff;                  /* type_of_loader: undefined */
  zp[0x211] |= 0x80 | 0x01;          /* loadflags: CAN_USE_HEAP, LOADED_HIGH */
  wr16(zp + 0x224, 0xfe00);          /* heap_end_ptr */
  size_t cl = strlen(cmdline) + 1;
  if (cl > rd32(k + 0x238) + 1u) DIE("command line too long");
  memcpy(ram + CMDLINE_ADDR, cmdline, cl);
  wr32(zp + 0x228, CMDLINE_ADDR);    /* cmd_line_ptr */

  if (initrd) {
    size_t ilen;
    uint8_t *i = read_file(initrd, &ilen);
    uint64_t max = rd32(k + 0x22c);  /* initrd_addr_max */
    uint64_t top = (ram_size - 1 < max ? ram_size - 1 : max) + 1;
    uint64_t at = (top - ilen) & ~0xfffull;
    if (at < KERNEL_ADDR + rd32(k + 0x260)) DIE("initrd does not fit");
    memcpy(ram + at, i, ilen);
    wr32(zp + 0x218, (uint32_t)at);  /* ramdisk_image */
    wr32(zp + 0x21c, (uint32_t)ilen);
    free(i);
  }
  e820(zp, 0, 0, EBDA, 1);
  e820(zp, 1, EBDA, 0x100000 - EBDA, 2);
  e820(zp, 2, 0x100000, ram_size - 0x100000, 1);
  zp[0x1e8] = 3;                     /* e820_entries */
  free(k);
  return KERNEL_ADDR + 0x200;        /* startup_64 */
}

static void setup_long_mode(int vcpu_fd, uint64_t entry) {
  /* Identity map of 4 GiB with 2 MiB pages; GDT: null, null, code64 (0x10), data (0x18). */
  uint8_t *pml4 = ram + PML4_ADDR, *pdpt = ram + PDPT_ADDR;
  memset(pml4, 0, 4096);
  memset(pdpt, 0, 4096);
  wr64(pml4, PDPT_ADDR | 3);
  for (int g = 0; g < 4; g++) {
    uint8_t *pd = ram + PD_ADDR + 4096 * g;
    wr64(pdpt + 8 * g, (PD_ADDR + 4096u * g) | 3);
    for (int i = 0; i < 512; i++) wr64(pd + 8 * i, (((uint64_t)g << 30) + ((uint64_t)i << 21)) | 0x83);
  }
  uint8_t *gdt = ram + GDT_ADDR;
  memset(gdt, 0, 32);
  wr64(gdt + 16, 0x00af9b000000ffffull);
  wr64(gdt + 24, 0x00cf93000000ffffull);

  struct kvm_sregs s;
  CHECK(ioctl(vcpu_fd, KVM_GET_SREGS, &s), "KVM_GET_SREGS");
  struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
                             .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1};
  struct kvm_segment data = code;
  data.selector = 0x18;
  data.type = 0x3;
  data.l = 0;
  data.db = 1;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.gdt.base = GDT_ADDR;
  s.gdt.limit = 31;
  s.cr3 = PML4_ADDR;
  s.cr4 = 1u << 5;                           /* PAE */
  s.cr0 = 0x80000000u | 0x10u | 0x1u;        /* PG, ET, PE */
  s.efer = (1u << 8) | (1u << 10);           /* LME, LMA */
  CHECK(ioctl(vcpu_fd, KVM_SET_SREGS, &s), "KVM_SET_SREGS");
  struct kvm_regs r;
  memset(&r, 0, sizeof r);
  r.rip = entry;
  r.rsi = ZERO_PAGE;
  r.rflags = 2;
  CHECK(ioctl(vcpu_fd, KVM_SET_REGS, &r), "KVM_SET_REGS");
}

static void setup_cpuid(int kvm_fd, int vcpu_fd) {
  int n = 256;
  struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
  if (!c) DIE("out of memory");
  c->nent = (uint32_t)n;
  CHECK(ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c), "KVM_GET_SUPPORTED_CPUID");
  for (uint32_t i = 0; i < c->nent; i++) {
    if (c->entries[i].function == 1) c->entries[i].ecx |= 1u << 31; /* hypervisor */
  }
  CHECK(ioctl(vcpu_fd, KVM_SET_CPUID2, c), "KVM_SET_CPUID2");
  free(c);
}

int main(int argc, char **argv) {
  uint64_t mem_mib = 512;
  const char *cmdline = "console=ttyS0", *initrd = NULL, *kernel = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--mem") && i + 1 < argc) mem_mib = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--cmdline") && i + 1 < argc) cmdline = argv[++i];
    else if (!strcmp(argv[i], "--initrd") && i + 1 < argc) initrd = argv[++i];
    else if (argv[i][0] != '-' && !kernel) kernel = argv[i];
    else DIE("usage: cloader [--mem MiB] [--cmdline TEXT] [--initrd FILE] bzImage");
  }
  if (!kernel) DIE("usage: cloader [--mem MiB] [--cmdline TEXT] [--initrd FILE] bzImage");
  if (mem_mib < 64 || mem_mib > 3072) DIE("--mem must be 64..3072 MiB (below the 4 GiB hole)");
  ram_size = mem_mib << 20;

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  CHECK(kvm, "/dev/kvm");
  vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
  CHECK(vm_fd, "KVM_CREATE_VM");
  CHECK(ioctl(vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000), "KVM_SET_TSS_ADDR");
  uint64_t idmap = 0xfffbc000;
  CHECK(ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap), "KVM_SET_IDENTITY_MAP_ADDR");
  CHECK(ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP");
  struct kvm_pit_config pit = {0};
  CHECK(ioctl(vm_fd, KVM_CREATE_PIT2, &pit), "KVM_CREATE_PIT2");
  ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
  if (ram == MAP_FAILED) DIE("mmap: %s", strerror(errno));
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = ram_size, .userspace_addr = (uint64_t)ram};
  CHECK(ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region), "KVM_SET_USER_MEMORY_REGION");

  int vcpu = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
  CHECK(vcpu, "KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  CHECK(run_size, "KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) DIE("mmap kvm_run: %s", strerror(errno));
  setup_cpuid(kvm, vcpu);
  setup_long_mode(vcpu, load_linux(kernel, initrd, cmdline));

  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      DIE("KVM_RUN: %s", strerror(errno));
    }
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      uint8_t *data = (uint8_t *)run + run->io.data_offset;
      for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        uint16_t port = run->io.port;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
          if (port >= 0x3f8 && port < 0x400) uart_write(port - 0x3f8u, data[0]);
          else if (port == 0x64 && data[0] == 0xfe) { uart_flush(); return 0; }
        } else if (port >= 0x3f8 && port < 0x400) {
          data[0] = uart_read(port - 0x3f8u);
        } else if (port == 0x71) {
          /* CMOS RTC data: every register 0 (update never in progress), so Linux's
           * rtc_cmos probe ends at once instead of waiting on an absent chip for seconds. */
          memset(data, 0, run->io.size);
        } else {
          memset(data, 0xff, run->io.size);
        }
      }
      break;
    }
    case KVM_EXIT_MMIO:
      if (!run->mmio.is_write) memset(run->mmio.data, 0xff, run->mmio.len);
      break;
    case KVM_EXIT_HLT:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
      break;
    case KVM_EXIT_SHUTDOWN:
      uart_flush();
      fprintf(stderr, "cloader: triple fault\n");
      return 4;
    case KVM_EXIT_SYSTEM_EVENT:
      uart_flush();
      return run->system_event.type == KVM_SYSTEM_EVENT_CRASH ? 4 : 0;
    default:
      uart_flush();
      fprintf(stderr, "cloader: exit reason %u\n", run->exit_reason);
      return 4;
    }
  }
}
