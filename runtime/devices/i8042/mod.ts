/**
 * The i8042 keyboard controller, reduced to what guests need from it on a VM:
 * the reset line (command 0xFE on port 0x64, "pulse output line 0") ends the machine
 * with a `reset` stop request, and Linux's probe finds a sane controller and does not
 * hang: status reads, controller self-test (0xAA → 0x55), interface test (0xAB → 0x00),
 * read/write of the command byte (0x20/0x60), read/write of the output port (0xD0/0xD1).
 * No keyboard or mouse is attached: bytes written to a device get no answer, so a
 * driver times out and moves on.
 *
 * The controller has no AUX (mouse) port, and says so at once: the AUX loopback command
 * (0xD3) returns its byte on the keyboard line, without the AUX-data status bit, and the
 * AUX interface test (0xA9) answers 0x02 (clock line stuck: nothing there). Linux checks
 * for an AUX port with exactly these two; left unanswered, each waited out its 10000 × 50
 * µs status poll, ~1 s of boot and 20000 exits.
 *
 * Ports: data at the Plan's first port (0x60), status/command at that + 4 (0x64). The
 * model claims exactly those two ports, whether the Plan lists them as two single ports
 * or as one range 0x60..0x64 (0x61..0x63 belong to others: 0x61 is the in-kernel PIT's).
 */
import type { AccessSize, Device, DeviceContext, Space } from "../device.ts";
import type { DevicePlan, Plan, Range } from "../../../plan/types.ts";
import { invalidPlan } from "../errors.ts";

const STATUS_OBF = 0x01; // output buffer full (data for the guest at 0x60)
const STATUS_SYS = 0x04; // system flag: self-test passed
const STATUS_CMD = 0x08; // last write was to the command port
const STATUS_KEYLOCK = 0x10; // keyboard not inhibited (Linux warns "Keylock active" without it)

/** Power-on command byte: keyboard interrupt on, system flag, translation. */
const DEFAULT_COMMAND_BYTE = 0x45;

export function createI8042(entry: DevicePlan, ctx: DeviceContext, _plan: Plan): Device {
  const first = entry.ports[0];
  if (!first) throw invalidPlan(`i8042 ${entry.id}: no port range in the Plan`, "give it `port`");
  const dataPort = first.base;
  const cmdPort = dataPort + 4;
  const ports: Range[] = [{ base: dataPort, size: 1 }, { base: cmdPort, size: 1 }];

  let status = STATUS_SYS | STATUS_KEYLOCK;
  let commandByte = DEFAULT_COMMAND_BYTE;
  let outputPort = 0x01; // bit 0 = reset line not asserted
  let out: number | null = null;
  let pendingCommand: number | null = null; // a command waiting for its data byte
  const counters = { reads: 0, writes: 0, resets_requested: 0 };

  function push(byte: number): void {
    out = byte & 0xff;
    status |= STATUS_OBF;
  }

  function requestReset(): void {
    counters.resets_requested++;
    ctx.requestStop({ kind: "reset", source: entry.id });
  }

  function command(cmd: number): void {
    status |= STATUS_CMD;
    switch (cmd) {
      case 0x20: // read command byte
        push(commandByte);
        return;
      case 0x60: // write command byte (next data byte)
      case 0xd1: // write output port (next data byte)
      case 0xd2: // write keyboard output buffer (next data byte comes back as keyboard data)
      case 0xd3: // write AUX output buffer: no AUX port, so it comes back as keyboard data
        pendingCommand = cmd;
        return;
      case 0xa7: // disable aux
        commandByte |= 0x20;
        return;
      case 0xa8: // enable aux
        commandByte &= ~0x20;
        return;
      case 0xa9: // AUX interface test: 0x02, clock line stuck high (no AUX port)
        push(0x02);
        return;
      case 0xaa: // controller self-test
        status |= STATUS_SYS;
        push(0x55);
        return;
      case 0xab: // keyboard interface test
        push(0x00);
        return;
      case 0xad: // disable keyboard
        commandByte |= 0x10;
        return;
      case 0xae: // enable keyboard
        commandByte &= ~0x10;
        return;
      case 0xd0: // read output port
        push(outputPort);
        return;
    }
    // 0xF0..0xFF: pulse output lines for 6 us; a clear bit 0 pulses the CPU reset line.
    if ((cmd & 0xf0) === 0xf0 && (cmd & 0x01) === 0) requestReset();
    // Anything else (aux loop/write, unknown) is ignored: no device attached.
  }

  function data(value: number): void {
    status &= ~STATUS_CMD;
    const cmd = pendingCommand;
    pendingCommand = null;
    if (cmd === 0x60) {
      commandByte = value;
      if (value & 0x04) status |= STATUS_SYS;
      else status &= ~STATUS_SYS;
    } else if (cmd === 0xd1) {
      outputPort = value;
      if ((value & 0x01) === 0) requestReset();
    } else if (cmd === 0xd2 || cmd === 0xd3) {
      push(value);
    }
    // Bytes for the keyboard itself: no keyboard, no answer.
  }

  function reset(): void {
    status = STATUS_SYS | STATUS_KEYLOCK;
    commandByte = DEFAULT_COMMAND_BYTE;
    outputPort = 0x01;
    out = null;
    pendingCommand = null;
  }

  return {
    id: entry.id,
    kind: entry.kind,
    ports,
    mmio: [],
    read(_space: Space, addr: number, _size: AccessSize): number {
      counters.reads++;
      if (addr === cmdPort) return status;
      if (addr === dataPort) {
        const value = out ?? 0;
        out = null;
        status &= ~STATUS_OBF;
        return value;
      }
      return 0xff;
    },
    write(_space: Space, addr: number, _size: AccessSize, value: number): void {
      counters.writes++;
      if (addr === cmdPort) command(value & 0xff);
      else if (addr === dataPort) data(value & 0xff);
    },
    reset,
    stats(): Record<string, number> {
      return { ...counters };
    },
    close(): void {
      // Holds nothing outside the JS heap.
    },
  };
}
