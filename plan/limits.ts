/**
 * Platform limits both sides of the seam enforce: `lang/` reports them as diagnostics with
 * spans, `runtime/` refuses a hand-written Plan that breaks them, and `plan/schema.json`
 * states them as maxima (`plan/limits_test.ts` keeps the schema equal to these numbers).
 */

/** vCPUs per machine: xAPIC IDs 0..254 (0xFF is the broadcast ID). */
export const MAX_CPUS = 255;

/** KVM's usual number of user memslots on x86 (KVM_USER_MEM_SLOTS = 509). */
export const KVM_USER_MEM_SLOTS = 509;
