import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { BadRequestError } from '../http/errors.ts';
import { addDays, daysBetween, parseRange } from './range.ts';

const now = new Date('2026-03-10T03:30:00Z');
const pad = (n: number, w: number) => String(n).padStart(w, '0');

describe('parseRange bounds', () => {
  test('years before 1970 or a comparison period before year 1 are refused with a message, not passed to the database', () => {
    for (const [from, to] of [
      ['0000-01-01', '0000-01-05'],
      ['0001-01-01', '0001-01-05'],
      ['1969-12-31', '1970-01-02'],
    ]) {
      assert.throws(
        () => parseRange({ from, to }, 'UTC', now),
        (err: unknown) => err instanceof BadRequestError && /1970/.test(err.message),
        `${from}..${to}`,
      );
    }
    assert.equal(parseRange({ from: '1970-01-01', to: '1970-01-31' }, 'UTC', now).from, '1970-01-01');
    assert.equal(parseRange({ from: '9999-12-01', to: '9999-12-31' }, 'UTC', now).to, '9999-12-31');
  });

  test('any YYYY-MM-DD pair: a 400, or a range inside 1970–9999 whose comparison period is as long and just before', () => {
    const date = fc
      .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }))
      .map(([y, m, d]) => `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`);
    // Near the bounds and near each other too, so that valid ranges are common.
    const near = fc
      .tuple(fc.integer({ min: 1965, max: 2030 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 28 }), fc.integer({ min: -10, max: 4000 }))
      .map(([y, m, d, len]) => {
        const from = `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
        return [from, addDays(from, len)] as const;
      });
    fc.assert(
      fc.property(fc.oneof(fc.tuple(date, date), near), ([from, to]) => {
        let r: ReturnType<typeof parseRange>;
        try {
          r = parseRange({ from, to }, 'UTC', now);
        } catch (err) {
          assert.ok(err instanceof BadRequestError, String(err));
          assert.ok(err.message.length > 0);
          return;
        }
        assert.ok(r.from && r.to && r.previous);
        assert.ok(r.from >= '1970-01-01' && r.to <= '9999-12-31' && r.from <= r.to, `${r.from}..${r.to}`);
        const days = daysBetween(r.from, r.to);
        assert.equal(r.previous.to, addDays(r.from, -1));
        assert.equal(daysBetween(r.previous.from, r.previous.to), days);
        // Every date the queries receive is a plain 4-digit-year date that PostgreSQL accepts (year 1 or later).
        for (const d of [r.from, r.to, r.previous.from, r.previous.to]) assert.match(d, /^(?!0000)\d{4}-\d{2}-\d{2}$/);
      }),
      { numRuns: 2000 },
    );
  });
});
