import { parseArgs, suggest, UsageError } from "./args.ts";
import { editDistance } from "../lang/suggest.ts";
import { expandInputs } from "./host.ts";

function eq(a: unknown, b: unknown) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  }
}

const SPEC = {
  json: { type: "boolean" as const },
  machine: { type: "string" as const, short: "m" },
};

Deno.test("args: flags in every spelling, '-' and '--' as positionals", () => {
  eq(parseArgs(["a", "--json", "--machine", "x", "b"], SPEC), {
    flags: { json: true, machine: "x" },
    positionals: ["a", "b"],
  });
  eq(parseArgs(["--machine=y", "-"], SPEC).flags.machine, "y");
  eq(parseArgs(["-m", "z"], SPEC).flags.machine, "z");
  eq(parseArgs(["-mz"], SPEC).flags.machine, "z");
  eq(parseArgs(["-h"], SPEC).flags.help, true);
  eq(parseArgs(["--", "--json"], SPEC).positionals, ["--json"]);
  eq(parseArgs(["-"], SPEC).positionals, ["-"]);
});

Deno.test("args: usage errors say what is wrong and suggest", () => {
  const err = (args: string[]) => {
    try {
      parseArgs(args, SPEC);
    } catch (e) {
      if (e instanceof UsageError) return [e.message, e.hint];
      throw e;
    }
    throw new Error(`no error for ${args}`);
  };
  eq(err(["--jsno"]), ["unknown flag '--jsno'", "did you mean '--json'?"]);
  eq(err(["--machine"]), ["flag --machine needs a value", "write --machine VALUE"]);
  eq(err(["--json=1"]), ["flag --json takes no value", "write --json alone"]);
  eq(err(["-q"])[0], "unknown flag '-q'");
});

Deno.test("args: edit distance counts a swap as one edit; suggestions stay close", () => {
  eq(editDistance("jsno", "json"), 1);
  eq(editDistance("chek", "check"), 1);
  eq(editDistance("", "abc"), 3);
  eq(suggest("plna", ["check", "plan", "fmt"]), "plan");
  eq(suggest("zzzzzz", ["check", "plan"]), null);
  eq(suggest("Chek", ["check", "plan"]), "check");
  eq(suggest("CHECK", ["check", "plan"]), "check");
  eq(suggest("e0301", ["E0301", "E0302"]), "E0301");
});

Deno.test("host: inputs that are not directories pass through unchanged", () => {
  eq(expandInputs(["-", "no/such/dir"]), ["-", "no/such/dir"]);
});
