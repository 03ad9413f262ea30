/**
 * One machine for bench/api: the ticker guest with the control API on `SOCK`, its vCPU on
 * a worker (what `vmdesc boot --api-sock` does) or on this very thread (the caller's
 * driver, which `vmdesc boot` uses without the API: the alternative the benchmark
 * measures). Guest lines go to stdout; "ready" on stderr once the socket answers.
 *
 * With SOCK "none" there is no API at all (what `vmdesc boot` runs without --api-sock).
 *
 *   deno run -A bench/api/serve.ts worker|caller SOCK|none
 */
import { compileFile } from "../../mod.ts";
import { createMachine } from "../../runtime/mod.ts";
import { serveApi } from "../../runtime/api/mod.ts";

const [mode, socket] = Deno.args as ["worker" | "caller", string];
const { plans } = await compileFile(
  new URL("../../examples/guests/ticker.vmdesc", import.meta.url).pathname,
);
const machine = await createMachine(plans.get("ticker")!, {
  vcpuThread: mode,
  serial: "stdio",
  warn: () => {},
});
const server = socket === "none" ? null : await serveApi(machine, { path: socket });
const running = machine.run({ sigint: true });
console.error("ready");
await running;
await server?.close();
machine.close();
