/**
 * Holds answers of the control API to its OpenAPI document (docs/api/openapi.json):
 * every answer a test receives goes through `checkAnswer`, which finds the documented
 * response for the method, path, status and media type and validates the body against
 * its schema with ajv (the Plan's schema, plan/schema.json, for GET /v1/machine/plan).
 * An answer the document does not describe fails the test. What was checked is
 * remembered, so a test can require that every error class was seen.
 *
 * The document's schemas use only keywords that mean the same in draft-07 (the Plan's
 * schema) and in OpenAPI 3.1's 2020-12 dialect, so ajv's draft-07 validator checks both.
 */
import Ajv from "ajv";
import doc from "../../docs/api/openapi.json" with { type: "json" };
import planSchema from "../../plan/schema.json" with { type: "json" };

type Validate = ((v: unknown) => boolean) & {
  errors?: { instancePath: string; message?: string }[] | null;
};
// ajv is CommonJS: under Deno its class is the default export's `default`.
// deno-lint-ignore no-explicit-any
const AjvCtor = ((Ajv as any).default ?? Ajv) as new (opts: object) => {
  addSchema(s: unknown, key?: string): void;
  addFormat(name: string, f: (s: string) => boolean): void;
  addVocabulary(words: string[]): void;
  getSchema(ref: string): Validate | undefined;
  compile(s: unknown): Validate;
};

const DOC_ID = "https://vmdesc.dev/docs/api/openapi.json";
const ajv = new AjvCtor({ allErrors: true, strict: true, allowUnionTypes: true });
// The OpenAPI document's own members: ajv keeps them and never reads them as schemas.
ajv.addVocabulary(["openapi", "info", "servers", "paths", "components"]);
ajv.addFormat(
  "date-time",
  (s) =>
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !isNaN(Date.parse(s)),
);
// "../../plan/schema.json" from docs/api/ is the Plan's schema.
ajv.addSchema({ ...planSchema, $id: "https://vmdesc.dev/plan/schema.json" });
ajv.addSchema({ ...doc, $id: DOC_ID });

type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};
type Operation = {
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
};
export const DOC = doc as unknown as Doc;

const pointer = (...parts: string[]) =>
  "#/" + parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");

const validators = new Map<string, Validate>();
function validator(ref: string): Validate {
  let v = validators.get(ref);
  if (!v) {
    v = ajv.getSchema(DOC_ID + ref);
    if (!v) throw new Error(`no schema at ${ref}`);
    validators.set(ref, v);
  }
  return v;
}

/** Every (method path status) checked so far, and every error code seen. */
export const seen = { answers: new Set<string>(), errorCodes: new Set<string>() };

export interface Answer {
  method: string;
  /** The path asked for (query aside). */
  path: string;
  status: number;
  /** The content-type header, or null. */
  contentType: string | null;
  /** The body as text. */
  text: string;
}

function fail(a: Answer, why: string): never {
  throw new Error(
    `${a.method} ${a.path} → ${a.status} (${a.contentType}): ${why}\n${a.text.slice(0, 2000)}`,
  );
}

/**
 * The document's path for a concrete one: itself, or the templated path it fills
 * (/v1/disks/00%3A03.0 → /v1/disks/{id}); a parameter is one path segment.
 */
export function documentedPath(path: string): string {
  if (Object.hasOwn(DOC.paths, path)) return path;
  for (const template of Object.keys(DOC.paths)) {
    if (!template.includes("{")) continue;
    const pattern = new RegExp(
      "^" + template.split(/\{[^}]+\}/).map((p) => p.replace(/[.*+?^$()|[\]\\]/g, "\\$&"))
        .join("[^/]+") +
        "$",
    );
    if (pattern.test(path)) return template;
  }
  return path;
}

/**
 * Throws unless the document describes this answer and its body follows the schema.
 * A method a resource does not take, or a path that is not one, is answered with the
 * documented Error (405, 404) of... the error schema itself.
 */
export function checkAnswer(a: Answer): void {
  const path = documentedPath(a.path.length > 1 ? a.path.replace(/\/$/, "") : a.path);
  const item = Object.hasOwn(DOC.paths, path) ? DOC.paths[path] : null;
  const op = item && Object.hasOwn(item, a.method.toLowerCase())
    ? item[a.method.toLowerCase()]
    : null;
  let ref: string;
  const media = (a.contentType ?? "").split(";")[0].trim();
  if (!op) {
    // Not an operation of the document: only 404 (no such path) and 405 (no such method
    // on a documented path) may answer it, with the Error schema.
    const want = item ? 405 : 404;
    if (a.status !== want) fail(a, `expected ${want} for an undocumented operation`);
    if (media !== "application/json") fail(a, "an error must be application/json");
    ref = pointer("components", "schemas", "Error");
  } else {
    const status = String(a.status);
    if (!Object.hasOwn(op.responses, status)) fail(a, `status ${status} is not documented`);
    const content = op.responses[status].content ?? {};
    if (!Object.hasOwn(content, media)) fail(a, `media type ${media} is not documented`);
    ref = pointer(
      "paths",
      path,
      a.method.toLowerCase(),
      "responses",
      status,
      "content",
      media,
      "schema",
    );
  }
  const validate = validator(ref);
  const bodies = media === "application/x-ndjson"
    ? a.text.split("\n").filter((l) => l.trim() !== "")
    : media === "text/event-stream"
    ? a.text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))
    : [a.text];
  for (const text of bodies) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      fail(a, `not JSON: ${text.slice(0, 200)}`);
    }
    if (!validate(value)) {
      fail(
        a,
        (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; "),
      );
    }
    const code = (value as { error?: { code?: string } })?.error?.code;
    if (code) seen.errorCodes.add(code);
  }
  seen.answers.add(`${a.method} ${path} ${a.status}`);
}

/** Every schema the document uses, compiled (a typo in the document fails here). */
export function compileEverySchema(): number {
  let n = 0;
  for (const [path, item] of Object.entries(DOC.paths)) {
    for (const [method, op] of Object.entries(item)) {
      for (const [status, r] of Object.entries(op.responses)) {
        for (const media of Object.keys(r.content ?? {})) {
          validator(
            pointer("paths", path, method, "responses", status, "content", media, "schema"),
          );
          n++;
        }
      }
      for (const media of Object.keys(op.requestBody?.content ?? {})) {
        validator(pointer("paths", path, method, "requestBody", "content", media, "schema"));
        n++;
      }
    }
  }
  for (const name of Object.keys(DOC.components.schemas)) {
    validator(pointer("components", "schemas", name));
    n++;
  }
  return n;
}

/** The documented request body schema of an operation, to check what a client sends. */
export function checkRequest(method: string, path: string, body: unknown): boolean {
  const ref = pointer(
    "paths",
    path,
    method.toLowerCase(),
    "requestBody",
    "content",
    "application/json",
    "schema",
  );
  return validator(ref)(body);
}
