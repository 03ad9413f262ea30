/**
 * Checks every structure size, field offset, ioctl number and capability number in
 * abi.ts against the kernel's own <linux/kvm.h>, by compiling a C program with gcc.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import * as abi from "./abi.ts";
import { skipReason } from "../../tests/skip.ts";
import { KVM_CPUID_FEATURES, KVM_CPUID_SIGNATURE, KVM_FEATURE } from "../../plan/cpuid.ts";
import { CPUID_FLAG_SIGNIFICANT_INDEX } from "./cpuid_policy.ts";
import type { Layout } from "./layout.ts";

const LAYOUTS: Layout<string>[] = [
  abi.KVM_USERSPACE_MEMORY_REGION,
  abi.KVM_REGS,
  abi.KVM_SEGMENT,
  abi.KVM_DTABLE,
  abi.KVM_SREGS,
  abi.KVM_CPUID_ENTRY2,
  abi.KVM_CPUID2,
  abi.KVM_PIT_CONFIG,
  abi.KVM_IRQ_LEVEL,
  abi.KVM_MSI,
  abi.KVM_MP_STATE,
  abi.KVM_CLOCK_DATA,
  abi.KVM_MSRS,
  abi.KVM_MSR_ENTRY,
  abi.KVM_DEVICE_ATTR,
  abi.KVM_RUN_STRUCT,
];

const NUMBERS: Record<string, number> = {
  KVM_GET_API_VERSION: abi.KVM_GET_API_VERSION,
  KVM_CREATE_VM: abi.KVM_CREATE_VM,
  KVM_CHECK_EXTENSION: abi.KVM_CHECK_EXTENSION,
  KVM_GET_VCPU_MMAP_SIZE: abi.KVM_GET_VCPU_MMAP_SIZE,
  KVM_GET_SUPPORTED_CPUID: abi.KVM_GET_SUPPORTED_CPUID,
  KVM_CREATE_VCPU: abi.KVM_CREATE_VCPU,
  KVM_SET_USER_MEMORY_REGION: abi.KVM_SET_USER_MEMORY_REGION,
  KVM_SET_TSS_ADDR: abi.KVM_SET_TSS_ADDR,
  KVM_SET_IDENTITY_MAP_ADDR: abi.KVM_SET_IDENTITY_MAP_ADDR,
  KVM_CREATE_IRQCHIP: abi.KVM_CREATE_IRQCHIP,
  KVM_IRQ_LINE: abi.KVM_IRQ_LINE,
  KVM_SIGNAL_MSI: abi.KVM_SIGNAL_MSI,
  KVM_CREATE_PIT2: abi.KVM_CREATE_PIT2,
  KVM_RUN: abi.KVM_RUN,
  KVM_GET_REGS: abi.KVM_GET_REGS,
  KVM_SET_REGS: abi.KVM_SET_REGS,
  KVM_GET_SREGS: abi.KVM_GET_SREGS,
  KVM_SET_SREGS: abi.KVM_SET_SREGS,
  KVM_SET_CPUID2: abi.KVM_SET_CPUID2,
  KVM_GET_MP_STATE: abi.KVM_GET_MP_STATE,
  KVM_SET_MP_STATE: abi.KVM_SET_MP_STATE,
  KVM_GET_TSC_KHZ: abi.KVM_GET_TSC_KHZ,
  KVM_CPUID_FLAG_SIGNIFCANT_INDEX: CPUID_FLAG_SIGNIFICANT_INDEX,
  // <asm/kvm_para.h>: the paravirtual leaves and feature bits plan/cpuid.ts names.
  KVM_CPUID_SIGNATURE,
  KVM_CPUID_FEATURES,
  ...Object.fromEntries(Object.entries(KVM_FEATURE).map(([k, v]) => [`KVM_FEATURE_${k}`, v])),
  KVM_SET_CLOCK: abi.KVM_SET_CLOCK,
  KVM_GET_CLOCK: abi.KVM_GET_CLOCK,
  KVM_GET_MSRS: abi.KVM_GET_MSRS,
  KVM_SET_MSRS: abi.KVM_SET_MSRS,
  KVM_KVMCLOCK_CTRL: abi.KVM_KVMCLOCK_CTRL,
  KVM_SET_DEVICE_ATTR: abi.KVM_SET_DEVICE_ATTR,
  KVM_GET_DEVICE_ATTR: abi.KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR: abi.KVM_HAS_DEVICE_ATTR,
  KVM_VCPU_TSC_CTRL: abi.KVM_VCPU_TSC_CTRL,
  KVM_VCPU_TSC_OFFSET: abi.KVM_VCPU_TSC_OFFSET,
  KVM_API_VERSION: abi.KVM_API_VERSION,
  KVM_MEM_LOG_DIRTY_PAGES: abi.KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY: abi.KVM_MEM_READONLY,
  KVM_EXIT_IO_IN: abi.KVM_EXIT_IO_IN,
  KVM_EXIT_IO_OUT: abi.KVM_EXIT_IO_OUT,
  KVM_SYSTEM_EVENT_SHUTDOWN: abi.KVM_SYSTEM_EVENT.SHUTDOWN,
  KVM_SYSTEM_EVENT_RESET: abi.KVM_SYSTEM_EVENT.RESET,
  KVM_SYSTEM_EVENT_CRASH: abi.KVM_SYSTEM_EVENT.CRASH,
  KVM_INTERNAL_ERROR_EMULATION: abi.KVM_INTERNAL_ERROR.EMULATION,
  KVM_MP_STATE_RUNNABLE: abi.KVM_MP_STATE_RUNNABLE,
  KVM_MP_STATE_UNINITIALIZED: abi.KVM_MP_STATE_UNINITIALIZED,
  ...Object.fromEntries(Object.entries(abi.KVM_CAP).map(([k, v]) => [`KVM_CAP_${k}`, v])),
  ...Object.fromEntries(Object.entries(abi.KVM_EXIT).map(([k, v]) => [`KVM_EXIT_${k}`, v])),
};

function cProgram(): { source: string; expected: string[] } {
  const lines: string[] = [];
  const expected: string[] = [];
  for (const l of LAYOUTS) {
    lines.push(`P("${l.ctype} size", sizeof(${l.ctype}));`);
    expected.push(`${l.ctype} size ${l.size}`);
    for (const [name, fld] of Object.entries(l.f)) {
      lines.push(`P("${l.ctype} ${name} off", offsetof(${l.ctype}, ${name}));`);
      expected.push(`${l.ctype} ${name} off ${fld.off}`);
      if (fld.count > 0) {
        const elem = fld.count > 1 ? `[0]` : "";
        lines.push(`P("${l.ctype} ${name} size", sizeof(((${l.ctype}*)0)->${name}${elem}));`);
        expected.push(`${l.ctype} ${name} size ${fld.size}`);
      }
    }
  }
  for (const [name, v] of Object.entries(NUMBERS)) {
    lines.push(`P("${name}", (unsigned long)(${name}));`);
    expected.push(`${name} ${v}`);
  }
  const source = `#include <stdio.h>
#include <stddef.h>
#include <linux/kvm.h>
#include <linux/kvm_para.h>
#define P(n, v) printf("%s %lu\\n", n, (unsigned long)(v))
int main(void) {
${lines.join("\n")}
return 0; }
`;
  return { source, expected };
}

Deno.test({
  name: "abi: every layout, ioctl and constant matches <linux/kvm.h>",
  ignore: skipReason("abi test", { tools: ["gcc"], files: ["/usr/include/linux/kvm.h"] }) !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-abi-" });
    try {
      const { source, expected } = cProgram();
      await Deno.writeTextFile(`${dir}/abi.c`, source);
      const cc = await new Deno.Command("gcc", {
        args: [`${dir}/abi.c`, "-o", `${dir}/abi`],
        stderr: "piped",
      }).output();
      assertEquals(cc.code, 0, new TextDecoder().decode(cc.stderr));
      const out = await new Deno.Command(`${dir}/abi`, { stdout: "piped" }).output();
      const got = new TextDecoder().decode(out.stdout).trim().split("\n");
      assertEquals(got, expected);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
