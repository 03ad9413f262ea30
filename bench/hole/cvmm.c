/*
 * cvmm: the smallest honest userspace VMM for the PCI-hole benchmark.
 *
 * It is the floor vmdesc is compared against: one vCPU, one synchronous KVM_RUN loop,
 * no threads, no device model beyond what the scan guests touch (a write-only COM1,
 * isa-debug-exit at 0xf4). It boots the same PVH ELF with the same memory layout as
 * bench/hole/scan.vmdesc (RAM from 0, the ECAM window at --ecam-base) and implements the
 * same two hole strategies:
 *   trap   - no memslot over the ECAM window: every access is a KVM_EXIT_MMIO, reads
 *            answer all-ones, writes are dropped;
 *   shadow - one KVM_MEM_READONLY memslot over the window, backed by one memfd chunk of
 *            0xff bytes mapped again and again (MAP_FIXED|MAP_SHARED, PROT_READ) over a
 *            PROT_NONE reservation: reads never exit, writes exit as MMIO and are dropped.
 *
 * Usage: cvmm [--strategy trap|shadow] [--mem MiB] [--ecam-base ADDR] [--ecam-size BYTES]
 *             [--chunk BYTES] [--cmdline TEXT] [--stats] [--hold-ms N] guest.elf
 * Exit status: (v << 1) | 1 for a debug-exit write of v, as QEMU; 0 on HLT; 2 on errors.
 * --stats prints one JSON line on stderr (exit counts, ns spent inside KVM_RUN and in the
 * whole run loop). --hold-ms keeps the process alive (mappings intact) for that long after
 * the guest ends, so a benchmark can read /proc/PID/smaps_rollup.
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
#include <time.h>
#include <unistd.h>

#define DIE(...) do { fprintf(stderr, "cvmm: " __VA_ARGS__); fputc('\n', stderr); exit(2); } while (0)
#define CHECK(x, what) do { if ((x) < 0) DIE("%s: %s", what, strerror(errno)); } while (0)

/* Boot data placement, the same pages vmdesc's lowering uses for PVH guests. */
#define START_INFO 0x6000u
#define MEMMAP     0x6100u
#define CMDLINE    0x7000u
#define CMDLINE_MAX 0x1000u

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t parse_u64(const char *s) {
  char *end;
  errno = 0;
  uint64_t v = strtoull(s, &end, 0);
  if (errno || *end) DIE("bad number: %s", s);
  return v;
}

/* Loads PT_LOAD segments of a 32- or 64-bit ELF into RAM; returns the PVH entry point
 * (Xen ELF note type 18, XEN_ELFNOTE_PHYS32_ENTRY). */
static uint32_t load_pvh(const char *path, uint8_t *ram, uint64_t ram_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  CHECK(fd, path);
  struct stat st;
  CHECK(fstat(fd, &st), "fstat");
  uint8_t *f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (f == MAP_FAILED) DIE("mmap %s: %s", path, strerror(errno));
  close(fd);
  if (st.st_size < 52 || memcmp(f, "\x7f" "ELF", 4)) DIE("%s: not an ELF", path);
  int is64 = f[4] == 2;
  uint64_t phoff, phentsize, phnum;
  if (is64) {
    phoff = *(uint64_t *)(f + 32); phentsize = *(uint16_t *)(f + 54); phnum = *(uint16_t *)(f + 56);
  } else {
    phoff = *(uint32_t *)(f + 28); phentsize = *(uint16_t *)(f + 42); phnum = *(uint16_t *)(f + 44);
  }
  uint32_t entry = 0;
  int have_entry = 0;
  for (uint64_t i = 0; i < phnum; i++) {
    uint8_t *ph = f + phoff + i * phentsize;
    uint32_t type = *(uint32_t *)ph;
    uint64_t off, paddr, filesz, memsz;
    if (is64) {
      off = *(uint64_t *)(ph + 8); paddr = *(uint64_t *)(ph + 24);
      filesz = *(uint64_t *)(ph + 32); memsz = *(uint64_t *)(ph + 40);
    } else {
      off = *(uint32_t *)(ph + 4); paddr = *(uint32_t *)(ph + 12);
      filesz = *(uint32_t *)(ph + 16); memsz = *(uint32_t *)(ph + 20);
    }
    if (off + filesz > (uint64_t)st.st_size) DIE("%s: truncated", path);
    if (type == 1) { /* PT_LOAD */
      if (paddr + memsz > ram_size) DIE("%s: segment outside RAM", path);
      memcpy(ram + paddr, f + off, filesz);
      memset(ram + paddr + filesz, 0, memsz - filesz);
    } else if (type == 4) { /* PT_NOTE: walk the notes */
      uint64_t p = off, end = off + filesz;
      while (p + 12 <= end) {
        uint32_t namesz = *(uint32_t *)(f + p), descsz = *(uint32_t *)(f + p + 4);
        uint32_t ntype = *(uint32_t *)(f + p + 8);
        uint64_t name = p + 12, desc = name + ((namesz + 3) & ~3u);
        if (ntype == 18 && namesz == 4 && !memcmp(f + name, "Xen", 4) && descsz >= 4) {
          entry = *(uint32_t *)(f + desc);
          have_entry = 1;
        }
        p = desc + ((descsz + 3) & ~3u);
      }
    }
  }
  munmap(f, (size_t)st.st_size);
  if (!have_entry) DIE("%s: no PVH entry note", path);
  return entry;
}

/* shadow: a PROT_NONE reservation of `size` bytes covered by `size / chunk` read-only
 * aliases of one memfd of 0xff bytes. Returns the host address of the window. */
static void *ones_alias(uint64_t size, uint64_t chunk) {
  if (chunk == 0 || chunk % 4096 || size % chunk) DIE("chunk must divide the window");
  int fd = memfd_create("cvmm-ones", MFD_CLOEXEC);
  CHECK(fd, "memfd_create");
  CHECK(ftruncate(fd, (off_t)chunk), "ftruncate");
  uint8_t *w = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (w == MAP_FAILED) DIE("mmap chunk: %s", strerror(errno));
  memset(w, 0xff, chunk);
  munmap(w, chunk);
  uint8_t *base = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) DIE("reserve window: %s", strerror(errno));
  for (uint64_t off = 0; off < size; off += chunk) {
    if (mmap(base + off, chunk, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
      DIE("alias chunk: %s", strerror(errno));
  }
  close(fd); /* the mappings keep the memfd alive */
  return base;
}

int main(int argc, char **argv) {
  const char *strategy = "shadow", *cmdline = "", *elf = NULL;
  uint64_t mem = 128ull << 20, ecam_base = 0xE0000000ull, ecam_size = 256ull << 20;
  uint64_t chunk = 1ull << 20, hold_ms = 0;
  int stats = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--strategy") && i + 1 < argc) strategy = argv[++i];
    else if (!strcmp(a, "--mem") && i + 1 < argc) mem = parse_u64(argv[++i]) << 20;
    else if (!strcmp(a, "--ecam-base") && i + 1 < argc) ecam_base = parse_u64(argv[++i]);
    else if (!strcmp(a, "--ecam-size") && i + 1 < argc) ecam_size = parse_u64(argv[++i]);
    else if (!strcmp(a, "--chunk") && i + 1 < argc) chunk = parse_u64(argv[++i]);
    else if (!strcmp(a, "--cmdline") && i + 1 < argc) cmdline = argv[++i];
    else if (!strcmp(a, "--hold-ms") && i + 1 < argc) hold_ms = parse_u64(argv[++i]);
    else if (!strcmp(a, "--stats")) stats = 1;
    else if (a[0] != '-' && !elf) elf = a;
    else DIE("usage: cvmm [--strategy trap|shadow] [--mem MiB] [--ecam-base A] [--ecam-size N] "
             "[--chunk N] [--cmdline T] [--stats] [--hold-ms N] guest.elf");
  }
  if (!elf) DIE("no guest ELF");
  int shadow = !strcmp(strategy, "shadow");
  if (!shadow && strcmp(strategy, "trap")) DIE("strategy must be trap or shadow");
  if (strlen(cmdline) + 1 > CMDLINE_MAX) DIE("command line too long");

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  CHECK(kvm, "/dev/kvm");
  if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) DIE("KVM API version mismatch");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  CHECK(vm, "KVM_CREATE_VM");
  CHECK(ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul), "KVM_SET_TSS_ADDR");

  uint8_t *ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) DIE("mmap RAM: %s", strerror(errno));
  struct kvm_userspace_memory_region r = {
    .slot = 0, .flags = 0, .guest_phys_addr = 0, .memory_size = mem, .userspace_addr = (uintptr_t)ram,
  };
  CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r), "KVM_SET_USER_MEMORY_REGION ram");
  if (shadow) {
    if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0) DIE("no KVM_CAP_READONLY_MEM");
    void *win = ones_alias(ecam_size, chunk);
    struct kvm_userspace_memory_region h = {
      .slot = 1, .flags = KVM_MEM_READONLY, .guest_phys_addr = ecam_base,
      .memory_size = ecam_size, .userspace_addr = (uintptr_t)win,
    };
    CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &h), "KVM_SET_USER_MEMORY_REGION ecam");
  }

  uint32_t entry = load_pvh(elf, ram, mem);
  /* hvm_start_info v1: magic, version, flags, nr_modules, modlist, cmdline, rsdp, memmap. */
  uint8_t *si = ram + START_INFO;
  memset(si, 0, 56);
  *(uint32_t *)(si + 0) = 0x336ec578u;
  *(uint32_t *)(si + 4) = 1;
  *(uint64_t *)(si + 16) = 0;
  *(uint64_t *)(si + 24) = CMDLINE;
  *(uint64_t *)(si + 40) = MEMMAP;
  *(uint32_t *)(si + 48) = 1;
  uint8_t *mm = ram + MEMMAP; /* one entry: all of RAM (type 1) */
  *(uint64_t *)(mm + 0) = 0;
  *(uint64_t *)(mm + 8) = mem;
  *(uint32_t *)(mm + 16) = 1;
  *(uint32_t *)(mm + 20) = 0;
  memcpy(ram + CMDLINE, cmdline, strlen(cmdline) + 1);

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  CHECK(vcpu, "KVM_CREATE_VCPU");
  {
    int n = 256;
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
    c->nent = n;
    CHECK(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c), "KVM_GET_SUPPORTED_CPUID");
    CHECK(ioctl(vcpu, KVM_SET_CPUID2, c), "KVM_SET_CPUID2");
    free(c);
  }
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  CHECK(run_size, "KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) DIE("mmap kvm_run: %s", strerror(errno));

  /* PVH entry: 32-bit protected mode, flat 4 GiB segments, paging off, ebx = start info. */
  struct kvm_sregs s;
  CHECK(ioctl(vcpu, KVM_GET_SREGS, &s), "KVM_GET_SREGS");
  struct kvm_segment code = {
    .base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb, .present = 1,
    .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
  };
  struct kvm_segment data = code;
  data.selector = 0x10;
  data.type = 0x3;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.cr0 = 0x11; /* PE | ET */
  s.cr4 = 0;
  s.efer = 0;
  CHECK(ioctl(vcpu, KVM_SET_SREGS, &s), "KVM_SET_SREGS");
  struct kvm_regs regs;
  memset(&regs, 0, sizeof regs);
  regs.rip = entry;
  regs.rbx = START_INFO;
  regs.rflags = 0x2;
  CHECK(ioctl(vcpu, KVM_SET_REGS, &regs), "KVM_SET_REGS");

  static char out[1 << 16];
  setvbuf(stdout, out, _IOLBF, sizeof out); /* a line at a time, like a console */
  uint8_t lcr = 0; /* COM1 line control: bit 7 (DLAB) redirects 0x3f8 to the divisor */
  uint64_t n_io = 0, n_mmio_read = 0, n_mmio_write = 0, n_ecam = 0, ns_run = 0;
  int status = -1;
  uint64_t t_loop = now_ns();
  while (status < 0) {
    uint64_t t0 = now_ns();
    int rc = ioctl(vcpu, KVM_RUN, 0);
    ns_run += now_ns() - t0;
    if (rc < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      DIE("KVM_RUN: %s", strerror(errno));
    }
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      n_io++;
      uint8_t *d = (uint8_t *)run + run->io.data_offset;
      uint16_t port = run->io.port;
      if (run->io.direction == KVM_EXIT_IO_OUT) {
        if (port == 0x3f8 && !(lcr & 0x80)) { /* THR (with DLAB set it is the divisor) */
          for (uint32_t i = 0; i < run->io.count; i++) putchar(d[i * run->io.size]);
        } else if (port == 0x3fb) {
          lcr = d[0];
        } else if (port == 0xf4) {
          status = (int)((d[0] << 1) | 1);
        }
      } else {
        /* COM1 line status: transmitter empty; everything else reads as all-ones. */
        memset(d, port == 0x3fd ? 0x60 : 0xff, (size_t)run->io.size * run->io.count);
      }
      break;
    }
    case KVM_EXIT_MMIO: {
      uint64_t a = run->mmio.phys_addr;
      if (a >= ecam_base && a < ecam_base + ecam_size) n_ecam++;
      if (run->mmio.is_write) n_mmio_write++;
      else {
        n_mmio_read++;
        memset(run->mmio.data, 0xff, run->mmio.len); /* absent function / unassigned */
      }
      break;
    }
    case KVM_EXIT_HLT:
      status = 0;
      break;
    case KVM_EXIT_SHUTDOWN:
      DIE("guest triple fault");
    case KVM_EXIT_FAIL_ENTRY:
      DIE("KVM_EXIT_FAIL_ENTRY 0x%llx", (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    case KVM_EXIT_INTERNAL_ERROR:
      DIE("KVM_EXIT_INTERNAL_ERROR suberror %u", run->internal.suberror);
    default:
      DIE("unhandled exit reason %u", run->exit_reason);
    }
  }
  uint64_t ns_loop = now_ns() - t_loop;
  fflush(stdout);
  if (stats)
    fprintf(stderr,
            "{\"strategy\":\"%s\",\"exits_io\":%llu,\"exits_mmio_read\":%llu,\"exits_mmio_write\":%llu,"
            "\"exits_ecam\":%llu,\"ns_in_kvm_run\":%llu,\"ns_run_loop\":%llu}\n",
            strategy, (unsigned long long)n_io, (unsigned long long)n_mmio_read,
            (unsigned long long)n_mmio_write, (unsigned long long)n_ecam,
            (unsigned long long)ns_run, (unsigned long long)ns_loop);
  if (hold_ms) {
    fprintf(stderr, "cvmm: holding\n");
    usleep((useconds_t)(hold_ms * 1000));
  }
  /* The kernel releases the VM, memslots and mappings at exit. */
  return status;
}
