import type { KyselyPlugin, OperationNode } from 'kysely';

export interface FlushCounter {
  /** Add to a Kysely instance with `db.withPlugin(counter.plugin)`; it only observes. */
  plugin: KyselyPlugin;
  /** UPDATEs that set txmarkdown without setting a status: the partial-answer flushes (finalize sets txstatus). */
  flushes: number;
  /** Those of them that appended to the stored text (appendPartial) rather than replacing it. */
  appends: number;
  /** UTF-8 bytes of text those flushes sent: the whole text, or what they appended. */
  bytes: number;
}

/** Counts what the partial-answer flushes send to the database, on the query tree (so on PGlite and PostgreSQL alike). */
export function countFlushes(): FlushCounter {
  const counter: FlushCounter = {
    flushes: 0,
    appends: 0,
    bytes: 0,
    plugin: {
      transformQuery({ node }) {
        if (node.kind !== 'UpdateQueryNode') return node;
        const updates = (node.updates ?? []).map((u) => ({ column: columnName(u.column), value: u.value }));
        const text = updates.find((u) => u.column === 'txmarkdown');
        if (!text || updates.some((u) => u.column === 'txstatus')) return node;
        if (text.value.kind === 'ValueNode') {
          counter.flushes++;
          counter.bytes += Buffer.byteLength(String((text.value as unknown as { value: unknown }).value));
        } else if (text.value.kind === 'RawNode') {
          // sql`txmarkdown || ${delta}`: its one parameter is the text appended.
          counter.flushes++;
          counter.appends++;
          for (const p of (text.value as unknown as { parameters: OperationNode[] }).parameters)
            if (p.kind === 'ValueNode') counter.bytes += Buffer.byteLength(String((p as unknown as { value: unknown }).value));
        }
        return node;
      },
      transformResult: async ({ result }) => result,
    },
  };
  return counter;
}

function columnName(node: OperationNode): string {
  return node.kind === 'ColumnNode' ? (node as unknown as { column: { name: string } }).column.name : '';
}
