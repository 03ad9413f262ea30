/**
 * The sleep registers of a hardware-reduced ACPI machine (ACPI 6.4 §4.8.3.7): how a guest
 * powers the machine off.
 *
 * A hardware-reduced FADT has no PM1 control block; it names a SLEEP_CONTROL_REG and a
 * SLEEP_STATUS_REG instead (`runtime/boot/acpi/` points both at this device's ports), and
 * the DSDT's `\_S5` package gives the sleep type of soft-off: the Plan entry's `s5_type`
 * property, which the ACPI builder reads too, so the two always agree.
 * Linux's `poweroff` ends in `acpi_hw_extended_sleep`: it clears WAK_STS, writes SLP_TYP,
 * then SLP_TYP | SLP_EN to the control register — and this device asks the machine to
 * stop with `poweroff` (process status 0, like a real shutdown).
 *
 * Ports (8-bit registers): control at the Plan's first port, status at the next one.
 *
 * Only S5 is announced in the DSDT. A guest that asks for another sleep state anyway
 * (S1-S4 are not implemented) is counted and sees the machine wake at once (WAK_STS
 * set), so a driver waiting for the wake-up does not spin forever.
 */
import type { Device, DeviceContext } from "../device.ts";
import type { DevicePlan, Plan, Range } from "../../../plan/types.ts";
import { invalidPlan } from "../errors.ts";
import { byteRegisters } from "../byte_registers.ts";

/** Sleep control register: SLP_TYP in bits 4:2, SLP_EN bit 5. */
export const SLP_TYP_SHIFT = 2;
export const SLP_TYP_MASK = 0x7 << SLP_TYP_SHIFT;
export const SLP_EN = 1 << 5;
/** Sleep status register: WAK_STS bit 7, write 1 to clear. */
export const WAK_STS = 1 << 7;

export function createAcpiSleep(entry: DevicePlan, ctx: DeviceContext, _plan: Plan): Device {
  const first = entry.ports[0];
  if (!first || first.size < 2) {
    throw invalidPlan(
      `acpi_sleep ${entry.id}: needs two ports (sleep control, sleep status)`,
      "give it one port range of size 2, e.g. 0x600 + 2",
    );
  }
  const s5 = sleepTypeOf(entry);
  const controlPort = first.base;
  const statusPort = first.base + 1;
  const ports: Range[] = [{ base: controlPort, size: 2 }];

  let slpTyp = 0;
  let status = 0;
  const counters = { reads: 0, writes: 0, poweroffs: 0, unsupported_sleeps: 0 };

  function control(value: number): void {
    slpTyp = (value & SLP_TYP_MASK) >> SLP_TYP_SHIFT;
    if ((value & SLP_EN) === 0) return;
    if (slpTyp === s5) {
      counters.poweroffs++;
      ctx.requestStop({ kind: "poweroff", source: entry.id });
      return;
    }
    // A sleep state the DSDT never offered: wake up at once.
    counters.unsupported_sleeps++;
    status |= WAK_STS;
  }

  function readByte(port: number): number {
    if (port === statusPort) return status;
    // SLP_EN always reads 0; reserved bits read 0.
    if (port === controlPort) return slpTyp << SLP_TYP_SHIFT;
    return 0xff;
  }

  function writeByte(port: number, byte: number): void {
    if (port === controlPort) control(byte);
    else if (port === statusPort) status &= ~(byte & WAK_STS);
  }

  return {
    id: entry.id,
    kind: entry.kind,
    ports,
    mmio: [],
    // Two 8-bit registers: a wider read at the control port returns both.
    ...byteRegisters(counters, readByte, writeByte),
    reset(): void {
      slpTyp = 0;
      status = 0;
    },
    stats(): Record<string, number> {
      return { ...counters };
    },
    close(): void {
      // Holds nothing outside the JS heap.
    },
  };
}

/** The Plan entry's `s5_type`: the SLP_TYP (0..7) `\_S5` announces for soft-off. */
export function sleepTypeOf(entry: DevicePlan): number {
  const t = entry.props.s5_type;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t > 7) {
    throw invalidPlan(
      `acpi_sleep ${entry.id}: props.s5_type must be a sleep type 0..7, not ${JSON.stringify(t)}`,
      'give it the SLP_TYP of S5, e.g. `"s5_type": 5`',
    );
  }
  return t;
}
