import { sql } from 'kysely';
import type { Db } from '../src/db/database.ts';

/**
 * The three usage rollups as the pages read them: each key's slot rows (migration 030) summed into one, in key
 * order, NUMERIC sums compared by value (a recount may write 1.50 where the triggers summed to 1.5). Writers under
 * contention spread over slots and a recount writes slot 0, so two states agree when these agree.
 */
export async function rollupsByKey(db: Db): Promise<Record<'model' | 'user' | 'total', Record<string, unknown>[]>> {
  return {
    model: await summedBySlot(db, 'usage_day_model', ['dday', 'idllm', 'txsource']),
    user: await summedBySlot(db, 'usage_day_user', ['dday', 'idappuser', 'idllm', 'txsource']),
    total: await summedBySlot(db, 'usage_user_total', ['idappuser', 'txsource']),
  };
}

async function summedBySlot(db: Db, table: string, key: string[]): Promise<Record<string, unknown>[]> {
  const { rows } = await sql.raw<Record<string, unknown>>(`SELECT * FROM chatbot_schema.${table} ORDER BY ${key.join(', ')}, nslot`).execute(db);
  const byKey = new Map<string, Record<string, unknown>>();
  for (const raw of JSON.parse(JSON.stringify(rows)) as Record<string, unknown>[]) {
    const { nslot: _slot, ...row } = raw;
    const id = JSON.stringify(key.map((k) => row[k]));
    const into = byKey.get(id);
    if (!into) {
      byKey.set(id, Object.fromEntries(Object.entries(row).map(([k, v]) => [k, key.includes(k) ? v : asNumber(v)])));
      continue;
    }
    for (const [k, v] of Object.entries(row)) {
      if (key.includes(k)) continue;
      into[k] = merge(k, into[k], asNumber(v));
    }
  }
  return [...byKey.values()].map((row) => ('models' in row ? { ...row, models: [...(row.models as number[])].sort((a, b) => a - b) } : row));
}

const asNumber = (v: unknown): unknown => (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v);

function merge(column: string, a: unknown, b: unknown): unknown {
  if (column === 'models') return [...new Set([...(a as number[]), ...(b as number[])])];
  if (column === 'dtlast') return a === null ? b : b === null ? a : String(a) > String(b) ? a : b;
  if (Array.isArray(a) && Array.isArray(b)) return a.map((x, i) => Number(x) + Number(b[i]));
  if (typeof a === 'number' && typeof b === 'number') return Number((a + b).toFixed(6));
  return a;
}
