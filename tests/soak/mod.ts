/**
 * `deno task soak`: boots of a small guest (examples/guests/hello.vmdesc) one after
 * another, through the library API in this process and through the CLI as processes,
 * then the in-flight close on both virtio transports. Prints the first and the last
 * hundred boots (time, RSS, mappings, threads; a tenth of a shorter run) and every boot
 * that did not end as it should or left something behind (tests/soak/soak.ts).
 *
 *   deno task soak [--boots N] [--cli N] [--json OUT.json]      (defaults 1000 and 200)
 *
 * Exit status 0 when nothing was wrong, 1 otherwise.
 */
import { parseArgs } from "node:util";
import { cliBoots, firstAndLast, inflightClose, libraryBoots } from "./soak.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      boots: { type: "string", default: "1000" },
      cli: { type: "string", default: "200" },
      json: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task soak [--boots N] [--cli N] [--json OUT.json]\n" +
        "N library boots and N CLI boots of examples/guests/hello.vmdesc, then a machine\n" +
        "closed while its guest writes to a disk; see tests/soak/soak.ts.",
    );
    Deno.exit(0);
  }
  const progress = (what: string) => (_: unknown, i: number) => {
    if ((i + 1) % 100 === 0) console.log(`${what}: ${i + 1} boots`);
  };
  const lib = await libraryBoots(Number(values.boots), progress("library"));
  const libBlocks = firstAndLast(lib.boots);
  console.log(
    `library, ${lib.boots.length} boots:\n  first ${JSON.stringify(libBlocks.first)}\n  last  ${
      JSON.stringify(libBlocks.last)
    }`,
  );
  const cli = await cliBoots(Number(values.cli), progress("cli"));
  // The first and the last hundred (of 200: the two halves), or a tenth of a shorter run.
  const cliBlocks = firstAndLast(
    cli.boots,
    Math.min(100, Math.max(1, cli.boots.length >= 200 ? 100 : Math.floor(cli.boots.length / 10))),
  );
  console.log(
    `CLI, ${cli.boots.length} boots:\n  first ${JSON.stringify(cliBlocks.first)}\n  last  ${
      JSON.stringify(cliBlocks.last)
    }`,
  );
  const inflight = [];
  for (const machine of ["virtio_pci", "virtio_mmio"]) {
    const r = await inflightClose(machine, 300);
    inflight.push({ machine, ...r });
    console.log(`in-flight close (${machine}): ${JSON.stringify(r)}`);
  }
  const problems = [
    ...lib.problems,
    ...cli.problems,
    ...inflight.flatMap((r) =>
      [...r.lost, ...r.stray, ...r.leaks].map((p) => `${r.machine}: ${p}`)
    ),
  ];
  for (const p of problems.slice(0, 50)) console.log(`PROBLEM ${p}`);
  if (values.json) {
    Deno.writeTextFileSync(
      values.json,
      JSON.stringify(
        {
          what: "deno task soak: hello booted N times (library API, CLI), in-flight close",
          date: new Date().toISOString(),
          library: { boots: lib.boots.length, baseline: lib.baseline, ...libBlocks },
          cli: { boots: cli.boots.length, ...cliBlocks },
          inflight,
          problems,
        },
        null,
        2,
      ) + "\n",
    );
  }
  Deno.exit(problems.length ? 1 : 0);
}
