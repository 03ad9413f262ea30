import { editDistance, suggest } from "./suggest.ts";

function eq<T>(a: T, b: T) {
  if (a !== b) throw new Error(`expected ${b}, got ${a}`);
}

Deno.test("editDistance", () => {
  eq(editDistance("kitten", "sitting"), 3);
  eq(editDistance("", "abc"), 3);
  eq(editDistance("memroy", "memory"), 1);
  eq(editDistance("abc", "abc"), 0);
  eq(editDistance("bsae", "base"), 1);
});

Deno.test("suggest picks a close candidate or nothing", () => {
  eq(suggest("memroy", ["memory", "cpus", "ram"]), "memory");
  eq(suggest("seral", ["serial", "debug_exit", "i8042"]), "serial");
  eq(suggest("CPUS", ["cpus", "memory"]), "cpus");
  eq(suggest("zzzzzz", ["memory", "cpus"]), null);
});
