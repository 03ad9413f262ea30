/**
 * Errors device models raise while being built from a Plan. A Plan that `lang/` lowered
 * never triggers them; a hand-written one can, and then the user gets E1006 (invalid
 * Plan) with a hint instead of a stack trace.
 */
import { RuntimeError } from "../errors.ts";

export function invalidPlan(message: string, hint: string): RuntimeError {
  return new RuntimeError("E1006", message, hint);
}
