/**
 * Where `vmdesc boot` spends its start-up, phase by phase, inside one process (the
 * benchmark runs it as a subprocess): module loading of lang/, compile (grammar build
 * included), module loading of runtime/, machine creation (VM, memslots, payload, vCPU
 * worker start), the run, and teardown. Prints one JSON line; times in ms since the
 * process's time origin.
 */
const mark: Record<string, number> = { script_start: performance.now() };
const [file, kernel, cmdline, strategy] = Deno.args;
// ohm-js first, on its own, to see its share of lang's module loading.
await import("ohm-js");
mark.ohm_loaded = performance.now();
const { compile } = await import("../../lang/mod.ts");
const { DenoHost } = await import("../../cli/host.ts");
mark.lang_loaded = performance.now();
const host = new DenoHost();
const r = compile(host.readFile(file)!, {
  file,
  host,
  kernel,
  cmdline,
  holeStrategy: strategy as "trap" | "shadow",
});
const plan = [...r.plans.values()][0];
mark.compiled = performance.now();
const { createMachine } = await import("../../runtime/mod.ts");
mark.runtime_loaded = performance.now();
const m = await createMachine(plan, { serial: () => {}, warn: () => {} });
mark.machine_created = performance.now();
const res = await m.run({ timeout: 60 });
mark.ran = performance.now();
m.close();
mark.closed = performance.now();
console.log(
  JSON.stringify({
    ...Object.fromEntries(Object.entries(mark).map(([k, v]) => [k, Math.round(v * 10) / 10])),
    status: res.exitStatus,
    guest_wall_ms: res.stats.wall_ms,
  }),
);
