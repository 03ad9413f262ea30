/**
 * Pure queries over lang's syntax tree that only the editor needs: the innermost node of a
 * kind on a path (from lang/query.ts `nodePathAt`), the `let` and machine definitions of a
 * file, and every use of a name.
 * They read the AST from `lang/ast.ts`; nothing here parses or checks.
 */
import { children } from "../lang/ast.ts";
import type * as A from "../lang/ast.ts";

export function innermost<K extends A.Node["kind"]>(
  path: A.Node[],
  kind: K,
): Extract<A.Node, { kind: K }> | undefined {
  for (let i = path.length - 1; i >= 0; i--) {
    if (path[i].kind === kind) return path[i] as Extract<A.Node, { kind: K }>;
  }
  return undefined;
}

export function walk(node: A.Node, visit: (n: A.Node, parent: A.Node | null) => void) {
  const go = (n: A.Node, parent: A.Node | null) => {
    visit(n, parent);
    for (const c of children(n)) go(c, n);
  };
  go(node, null);
}

export function lets(program: A.Program): A.Let[] {
  return program.items.filter((i): i is A.Let => i.kind === "Let");
}

export function machines(program: A.Program): A.Machine[] {
  return program.items.filter((i): i is A.Machine => i.kind === "Machine");
}

export function imports(program: A.Program): A.Import[] {
  return program.items.filter((i): i is A.Import => i.kind === "Import");
}

/** Every `Name` expression node referring to `name` (uses of a `let`). */
export function nameRefs(program: A.Program, name: string): A.NameRef[] {
  const out: A.NameRef[] = [];
  walk(program, (n) => {
    if (n.kind === "Name" && n.name === name) out.push(n);
  });
  return out;
}

/** `extends` targets naming `machine`. */
export function extendsRefs(program: A.Program, machine: string): A.Ident[] {
  return machines(program).flatMap((m) => (m.base && m.base.name === machine ? [m.base] : []));
}
