/** lang/specs.ts lists the CPU feature names the runtime can hide; they must agree. */
import { CPUID_FEATURES } from "../lang/specs.ts";
import { CPUID_FEATURE_NAMES } from "../runtime/kvm/cpuid.ts";

Deno.test("cpuid feature names: lang and runtime agree", () => {
  const a = [...CPUID_FEATURES].sort().join(" ");
  const b = [...CPUID_FEATURE_NAMES].sort().join(" ");
  if (a !== b) {
    throw new Error(`lang/specs.ts CPUID_FEATURES differs from runtime/kvm/cpuid.ts:\n${a}\n${b}`);
  }
});
