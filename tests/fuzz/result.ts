/** A run of fuzz cases that has not counted anything yet: what each worker and the total start from. */
import type { WorkerResult } from "./worker.ts";

export function emptyResult(): WorkerResult {
  return {
    cases: 0,
    withPlans: 0,
    withErrors: 0,
    clean: 0,
    codes: {},
    failures: [],
    slowest: [],
  };
}
