import { html, type SafeHtml } from '../views/html.ts';

/**
 * Line charts drawn on the server as SVG: no script and no inline style (the CSP forbids both), colours from
 * public/stats.css classes (series-0 … series-5, chosen to read on the dark theme), geometry as presentation
 * attributes. Each chart has its data as a table for screen readers right after it (the SVG itself is aria-hidden). The table sits in a visually-hidden div: a table does not shrink to
 * Bootstrap's 1px box and widened the phone page.
 */
export interface Series {
  name: string;
  values: (number | null)[];
}

export interface LineChart {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  days: string[];
  series: Series[];
  format: (v: number) => string;
}

const W = 720;
const H = 260;
const PAD = { left: 60, right: 16, top: 12, bottom: 48 };
const SERIES_CLASSES = 6;

/** 0, and 4 more steps of a "nice" size (1, 2 or 5 × 10ⁿ) reaching at least max. */
function niceTicks(max: number): number[] {
  if (max <= 0) return [0, 1];
  const rough = max / 4;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 5, 10].map((m) => m * pow).find((s) => s >= rough) ?? rough) as number;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function lineChart(c: LineChart): SafeHtml {
  const values = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const ticks = niceTicks(Math.max(0, ...values));
  const yMax = ticks[ticks.length - 1] ?? 1;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (c.days.length <= 1 ? plotW / 2 : (plotW * i) / (c.days.length - 1));
  const y = (v: number) => PAD.top + plotH - (plotH * v) / yMax;
  const labelEvery = Math.max(1, Math.ceil(c.days.length / 8));
  const empty = values.length === 0;

  const lines = c.series.map((s, si) => {
    const cls = `series-${si % SERIES_CLASSES}`;
    // A gap (a day without a value, e.g. no timed answer) breaks the line instead of drawing it down to zero.
    const segments: string[][] = [[]];
    s.values.forEach((v, i) => {
      if (v === null) segments.push([]);
      else segments[segments.length - 1]?.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    return html`${segments
      .filter((seg) => seg.length > 0)
      .map((seg) =>
        seg.length === 1
          ? html`<circle class="${cls}" cx="${seg[0]?.split(',')[0] ?? ''}" cy="${seg[0]?.split(',')[1] ?? ''}" r="3"></circle>`
          : html`<polyline class="${cls}" fill="none" stroke-width="2" points="${seg.join(' ')}"></polyline>`,
      )}`;
  });

  return html`<figure class="stats-chart" aria-labelledby="${c.id}-title">
  <figcaption id="${c.id}-title" class="h6">${c.title}</figcaption>
  <svg viewBox="0 0 ${W} ${H}" class="stats-svg" aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">
    ${ticks.map(
      (t) => html`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}"></line>
    <text class="tick" x="${PAD.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${c.format(t)}</text>`,
    )}
    ${c.days.map((d, i) =>
      // Every labelEvery-th day, and the last one unless a regular label sits right before it (they would overlap).
      (i % labelEvery === 0 && c.days.length - 1 - i >= labelEvery / 2) || i === c.days.length - 1
        ? html`<text class="tick" x="${x(i).toFixed(1)}" y="${H - PAD.bottom + 18}" text-anchor="${i === c.days.length - 1 && i > 0 ? 'end' : 'middle'}">${d.slice(5)}</text>`
        : '',
    )}
    <text class="axis-label" x="${PAD.left + plotW / 2}" y="${H - 6}" text-anchor="middle">${c.xLabel}</text>
    <text class="axis-label" x="14" y="${PAD.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${PAD.top + plotH / 2})">${c.yLabel}</text>
    ${empty ? html`<text class="tick" x="${PAD.left + plotW / 2}" y="${PAD.top + plotH / 2}" text-anchor="middle">No data in this range</text>` : ''}
    ${lines}
  </svg>
  <ul class="stats-legend list-inline small mb-1">
    ${c.series.map((s, si) => html`<li class="list-inline-item"><span class="swatch series-${si % SERIES_CLASSES}"></span>${s.name}</li>`)}
  </ul>
  <div class="visually-hidden"><table>
    <caption>${c.title}</caption>
    <thead><tr><th scope="col">Day</th>${c.series.map((s) => html`<th scope="col">${s.name}</th>`)}</tr></thead>
    <tbody>${c.days.map(
      (d, i) =>
        html`<tr><th scope="row">${d}</th>${c.series.map((s) => {
          const v = s.values[i];
          return html`<td>${v === null || v === undefined ? '—' : c.format(v)}</td>`;
        })}</tr>`,
    )}</tbody>
  </table></div>
</figure>`;
}
