/**
 * For callers that import lang/compile.ts or lang/format.ts directly (the CLI) to start
 * without ohm-js: runs `work`; if a parse needed Ohm (a syntax error, or text the fast
 * parser declines), loads lang/parse.ts, which installs the Ohm fallback, and runs `work`
 * again. `work` must be a pure function of its inputs (compile and format are: they read
 * files only through the LangHost), so the second run's result is exactly what one run
 * with Ohm loaded from the start gives.
 */
import { OhmNotLoaded } from "./parse_lean.ts";

export async function withOhmOnDemand<T>(work: () => T): Promise<T> {
  try {
    return work();
  } catch (e) {
    if (!(e instanceof OhmNotLoaded)) throw e;
  }
  await import("./parse.ts");
  return work();
}
