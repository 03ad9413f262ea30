/*
 * The small runtime every vmdesc test guest shares: port and MMIO access, a polling
 * 16550 console on COM1, number printing, isa-debug-exit, PCI config reads by ECAM and
 * by CF8/CFC, and the PVH start info (command line, memory map).
 */
#ifndef VMDESC_GUEST_LIB_H
#define VMDESC_GUEST_LIB_H

#include <stdint.h>
#include <stddef.h>

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4
#define LAPIC 0xfee00000u

/* struct hvm_start_info from Xen's public/arch-x86/hvm/start_info.h (version 1). */
#define HVM_START_MAGIC 0x336ec578u
struct hvm_start_info {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};

struct hvm_memmap_table_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type; /* 1 RAM, 2 reserved, 3 ACPI, 4 NVS */
  uint32_t reserved;
};

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint32_t mmio_read32(uint32_t addr) { return *(volatile uint32_t *)(uintptr_t)addr; }
static inline uint16_t mmio_read16(uint32_t addr) { return *(volatile uint16_t *)(uintptr_t)addr; }
static inline uint8_t mmio_read8(uint32_t addr) { return *(volatile uint8_t *)(uintptr_t)addr; }
static inline void mmio_write32(uint32_t addr, uint32_t v) { *(volatile uint32_t *)(uintptr_t)addr = v; }

static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((uint64_t)hi << 32) | lo; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* Console (COM1, polling: waits for THRE before each byte). */
void serial_init(void);
void putc(char c);
void puts(const char *s);
void put_hex(uint32_t v, int digits); /* zero-padded, no prefix */
void put_dec(uint32_t v);

/* isa-debug-exit: the VMM exits with status (code << 1) | 1. Never returns. */
void debug_exit(uint32_t code) __attribute__((noreturn));

/* PCI configuration space. */
uint32_t cf8_read32(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg);
uint32_t ecam_read32(uint32_t ecam_base, uint32_t bus_start, uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg);

/* PVH start info. */
const struct hvm_start_info *start_info(void); /* set by lib_init; NULL if magic is wrong */
void lib_init(const struct hvm_start_info *info);
const char *cmdline(void);                      /* "" when none */
/* Value of "key=NUMBER" on the command line (hex with 0x, else decimal), or `fallback`. */
uint32_t cmdline_u32(const char *key, uint32_t fallback);
/* Does the command line hold the word "key=value" (exactly)? */
int cmdline_is(const char *key, const char *value);
/* Range "key=A-B" on the command line; returns 0 if absent. */
int cmdline_range(const char *key, uint32_t *lo, uint32_t *hi);

/* ACPI: the RSDP (start info, else the BIOS-area search) and a table by signature from the
 * XSDT (or RSDT); 0 when absent. Tables are read where they are (below 4 GiB). */
int acpi_sig_is(uint32_t addr, const char *sig, uint32_t n);
uint32_t acpi_rsdp(void);
uint32_t acpi_table(const char *sig);

/*
 * Interrupts: one IDT for the guest. idt_set makes `vector` a 32-bit interrupt gate to
 * `handler`; idt_load loads the table, masks both legacy PICs (the IOAPIC and MSIs
 * deliver) and turns the LAPIC on (spurious vector 0xff). Interrupts stay off until the
 * guest's own sti.
 */
void idt_set(int vector, uint32_t handler);
void idt_load(void);
/* irq.S: the entry point for a vector nobody expects (it only returns). */
void irq_spurious_stub(void);

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
size_t strlen(const char *s);

#endif
