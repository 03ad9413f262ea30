/**
 * Where `vmdesc boot` spends its start-up, phase by phase, inside one process (the
 * benchmark runs it as a subprocess): module loading of lang/, compile, module loading of
 * runtime/, machine creation (VM, memslots, devices, payload), the run, and teardown. As
 * `vmdesc boot` does, a 1-vCPU machine runs on this thread (vcpuThread "caller"). Prints one JSON line; times in ms since the
 * process's time origin.
 */
const mark: Record<string, number> = { script_start: performance.now() };
const [file, kernel, cmdline, strategy] = Deno.args;
// As cli/boot.ts does: the lean compile path (ohm-js is loaded only for a file the fast
// parser declines).
const { compile } = await import("../../lang/compile.ts");
const { withOhmOnDemand } = await import("../../lang/ohm_on_demand.ts");
const { DenoHost } = await import("../../host/disk_host.ts");
mark.lang_loaded = performance.now();
const host = new DenoHost();
const r = await withOhmOnDemand(() =>
  compile(host.readFile(file)!, {
    file,
    host,
    kernel,
    cmdline,
    holeStrategy: strategy as "trap" | "shadow",
  })
);
const plan = [...r.plans.values()][0];
mark.compiled = performance.now();
const { createMachine } = await import("../../runtime/mod.ts");
mark.runtime_loaded = performance.now();
const m = await createMachine(plan, { serial: () => {}, warn: () => {}, vcpuThread: "caller" });
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
