/**
 * Queries built and compiled once, run many times with new values.
 *
 * Building a Kysely query (immutable builder nodes) and compiling it to SQL
 * costs more CPU than SQLite takes to run the small statements of a chat turn.
 * So the store writes each hot statement once, as usual with the query
 * builder (column names and types still checked), but with named slots where
 * the values go; it is compiled at once, and each call only swaps its values
 * into the parameter list. The SQL text is the same every time, which is also
 * what lets the SQLite driver reuse its prepared statement.
 */
import type { Compilable, CompiledQuery } from 'kysely';

/** Stands in for a value in a query being compiled; compiled as an ordinary parameter. */
class Slot {
  constructor(readonly name: string) {}
}

/** A compiled query waiting for its values. */
export type Precompiled<P, R> = (values: P) => CompiledQuery<R>;

/**
 * Compiles `build`'s query once. `build` receives an object whose every
 * property is a slot (typed as `P` says); wherever one is used as a value, the
 * value of that name is bound at each call. Values written as literals in
 * `build` stay as they were compiled. Slots work only where Kysely takes a
 * value (comparisons, `set`, `values`, function arguments), not where it takes
 * SQL (a column name, a direction).
 */
export function precompile<P extends object, R>(build: (slots: P) => Compilable<R>): Precompiled<P, R> {
  const slots = new Proxy({}, { get: (_target, name) => new Slot(String(name)) }) as P;
  const compiled = build(slots).compile();
  const parameters = compiled.parameters;
  return (values) => {
    const named = values as Record<string, unknown>;
    const bind = (p: unknown): unknown => {
      if (!(p instanceof Slot)) return p;
      const value = named[p.name];
      if (value === undefined) throw new Error(`No value for the query parameter ${p.name} (absent values are null).`);
      return value;
    };
    return { ...compiled, parameters: parameters.map(bind) };
  };
}
