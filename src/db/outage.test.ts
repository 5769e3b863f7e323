import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutageLog } from './outage.ts';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

function recording() {
  const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
  let now = 1_000_000;
  const log = new OutageLog(
    {
      error: (obj, msg) => lines.push({ level: 'error', msg, obj: obj as Record<string, unknown> }),
      warn: (obj, msg) => lines.push({ level: 'warn', msg, obj: obj as Record<string, unknown> }),
    },
    () => now,
  );
  return { log, lines, advance: (ms: number) => (now += ms) };
}

test('an outage is logged once when it starts, summed up every minute, and once when it ends, with its length', () => {
  const { log, lines, advance } = recording();
  // Three tasks tick through a 150 s outage: the instance lock every second, the sweep every 5 s.
  for (let s = 0; s < 150; s++) {
    assert.equal(log.failed('instance lock reconnects', refused()), true);
    if (s % 5 === 0) log.failed('sweep of orphaned answers', refused());
    advance(1_000);
  }
  log.succeeded();
  log.succeeded(); // later successes say nothing
  assert.deepEqual(
    lines.map((l) => `${l.level} ${l.msg}`),
    [
      'error database unavailable: background work fails until it is back (summed up every minute)',
      'error database still unavailable after 60 s',
      'error database still unavailable after 120 s',
      'warn database available again after 150 s',
    ],
  );
  assert.equal(lines[0]?.obj.task, 'instance lock reconnects');
  assert.deepEqual(lines[1]?.obj.failedTicks, { 'instance lock reconnects': 61, 'sweep of orphaned answers': 12 });
  assert.deepEqual(lines[3]?.obj.failedTicks, { 'instance lock reconnects': 29, 'sweep of orphaned answers': 6 });
  assert.equal(lines[3]?.obj.outageS, 150);
});

test('a failure that is not an outage is left to the caller, and a new outage after the end is logged again', () => {
  const { log, lines, advance } = recording();
  assert.equal(log.failed('sweep of orphaned answers', new Error('relation "x" does not exist')), false);
  assert.equal(lines.length, 0);
  log.failed('partial answer saves', refused());
  advance(2_500);
  log.succeeded();
  log.failed('partial answer saves', refused());
  assert.deepEqual(
    lines.map((l) => l.msg),
    [
      'database unavailable: background work fails until it is back (summed up every minute)',
      'database available again after 2.5 s',
      'database unavailable: background work fails until it is back (summed up every minute)',
    ],
  );
});
