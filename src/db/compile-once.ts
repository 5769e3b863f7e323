import { type Compilable, CompiledQuery, DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import type { Db } from './database.ts';
import type { Database } from './schema.ts';

/** Kysely without a connection, only to build and compile queries (its documented "cold" instance). */
const builder: Db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

/** Where each parameter of the compiled statement comes from: an argument of the call, or a constant of the query. */
type Slot = { arg: number } | { value: unknown };

/**
 * A Kysely query built and compiled once, for the few that every request runs (the session check, the chat page).
 * Kysely builds and compiles a query on every call — about 30 µs for a join with subqueries, as much as the
 * database spends running it. `build` is called once with stand-ins for its arguments; each call then binds the real
 * arguments in their places, and the SQL text stays the same string (PostgreSQL has it prepared, see database.ts).
 * The query's shape must not depend on the arguments' values; an argument used other than as a bound value
 * (in the SQL text, or transformed first) is refused at the first call.
 */
export function compileOnce<A extends unknown[], R>(build: (db: Db, ...args: A) => Compilable<R>): (db: Db, ...args: A) => Promise<R[]> {
  let compiled: { sql: string; slots: Slot[] } | undefined;
  return async (db, ...args) => {
    compiled ??= compile(build, args.length);
    const parameters = compiled.slots.map((s) => ('arg' in s ? args[s.arg] : s.value));
    const result = await db.executeQuery<R>(CompiledQuery.raw(compiled.sql, parameters));
    return result.rows;
  };
}

function compile<A extends unknown[], R>(build: (db: Db, ...args: A) => Compilable<R>, arity: number): { sql: string; slots: Slot[] } {
  const standIns = Array.from({ length: arity }, (_, i) => `\u0000compileOnce argument ${i}\u0000`);
  const query = build(builder, ...(standIns as A)).compile();
  const slots = query.parameters.map((p): Slot => {
    const arg = standIns.indexOf(p as string);
    return arg >= 0 ? { arg } : { value: p };
  });
  const bound = new Set(slots.flatMap((s) => ('arg' in s ? [s.arg] : [])));
  if (query.sql.includes('\u0000') || bound.size !== arity) {
    throw new Error('compileOnce: every argument must be used as a bound value, unchanged');
  }
  return { sql: query.sql, slots };
}
