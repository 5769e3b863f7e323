/**
 * How the statistics write their measured figures, on the page and in the CSV alike (one rule, so a figure copied
 * from either reads the same): seconds to 3 decimals, as the design note's ROUND(AVG(...), 3); tokens per second to 1.
 * A string from SQL (a numeric's text, already rounded) passes through the same rounding.
 */
export function secondsFigure(v: number | string | null): string | null {
  if (v === null) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n.toFixed(3) : null;
}

export function tokensPerSecondFigure(v: number | null): string | null {
  return v === null || !Number.isFinite(v) ? null : v.toFixed(1);
}
