/*
 * echo: reads one line from COM1 and prints it back, then exits with the line's length
 * as the debug-exit value. Two ways to wait for input:
 *   default      interrupt-driven: the UART's RX interrupt (IER.RDI, MCR.OUT2) on GSI 4,
 *                routed by the IOAPIC to vector 0x24 on this CPU; the CPU sleeps in HLT
 *                between bytes, so every byte proves the VMM raised the line.
 *   mode=poll    polls LSR.DR.
 * Prints "echo: ready" first (so a test knows when to type), then "echo: <line>".
 * A line ends at '\n' or '\r'; at most 120 bytes are kept.
 */
#include "lib.h"

#define IOAPIC 0xfec00000u
#define SERIAL_GSI 4
#define SERIAL_VECTOR 0x24

static volatile char line[128];
static volatile uint32_t len;
static volatile int done;
volatile uint32_t irq_count;

static void take_byte(uint8_t c) {
  if (done) return;
  if (c == '\n' || c == '\r') {
    done = 1;
    return;
  }
  if (len < 120) line[len++] = (char)c;
}

/* Called from the interrupt stub in echo_irq.S. */
void serial_irq(void) {
  irq_count++;
  while (inb(COM1 + 5) & 0x01) take_byte(inb(COM1));
  mmio_write32(LAPIC + 0xb0, 0); /* EOI */
}

extern void serial_irq_stub(void);

static void set_gate(int vec, void (*fn)(void)) { idt_set(vec, (uint32_t)(uintptr_t)fn); }

static void ioapic_write(uint32_t reg, uint32_t v) {
  mmio_write32(IOAPIC, reg);
  mmio_write32(IOAPIC + 0x10, v);
}

uint32_t guest_main(const struct hvm_start_info *info) {
  lib_init(info);
  int poll = cmdline_is("mode", "poll");
  if (!poll) {
    for (int v = 0; v < 256; v++) set_gate(v, irq_spurious_stub);
    set_gate(SERIAL_VECTOR, serial_irq_stub);
    idt_load(); /* the legacy PICs masked: the IOAPIC delivers */
    uint32_t apic_id = mmio_read32(LAPIC + 0x20) >> 24;
    ioapic_write(0x10 + 2 * SERIAL_GSI + 1, apic_id << 24);
    ioapic_write(0x10 + 2 * SERIAL_GSI, SERIAL_VECTOR); /* fixed, physical, edge, high, unmasked */
    outb(COM1 + 4, 0x0b);                               /* DTR RTS OUT2 */
    outb(COM1 + 1, 0x01);                               /* IER: RX data */
  }
  puts(poll ? "echo: ready (polling)\n" : "echo: ready (interrupts)\n");
  while (!done) {
    if (poll) {
      if (inb(COM1 + 5) & 0x01) take_byte(inb(COM1));
    } else {
      __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
  }
  puts("echo: ");
  for (uint32_t i = 0; i < len; i++) putc(line[i]);
  putc('\n');
  return len;
}
