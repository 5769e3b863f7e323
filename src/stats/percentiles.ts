/**
 * Percentiles from fixed histograms (migration 011's HISTOGRAM_EDGES_S): bucket i holds values in
 * [edges[i-1], edges[i]), the first from 0, the last from the final edge up. The answer interpolates linearly inside
 * the bucket that holds the rank, so it is within one bucket of the exact percentile; in the open last bucket it is
 * that bucket's lower edge (the page says "≥").
 */
export function percentileFromHistogram(counts: number[], edges: number[], p: number): number | null {
  const total = counts.reduce((a, n) => a + n, 0);
  if (total <= 0) return null;
  const rank = p * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i] ?? 0;
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : (edges[i - 1] ?? 0);
      const upper = edges[i];
      if (upper === undefined) return lower;
      return lower + ((upper - lower) * Math.max(0, rank - seen)) / n;
    }
    seen += n;
  }
  return edges[edges.length - 1] ?? null;
}

/** Element-wise sum of histograms of the same length. */
export function sumHistograms(histograms: number[][]): number[] {
  const out: number[] = [];
  for (const h of histograms) for (let i = 0; i < h.length; i++) out[i] = (out[i] ?? 0) + Number(h[i] ?? 0);
  return out;
}
