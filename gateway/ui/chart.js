// Line charts drawn as inline SVG: a y axis from 0 to a round maximum, time along x, one line per
// series (a gap where a value is missing), and a legend with each series' latest value.

import { h, svg } from './dom.js';

const W = 440;
const H = 190;
const PAD = { left: 62, right: 10, top: 10, bottom: 24 };

/** The smallest of 1, 2, 5 x 10^n at or above `v` (1 for nothing). */
function roundUp(v) {
  if (!(v > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * step).find((m) => m >= v * 0.999);
}

/**
 * A <figure> with the chart and its legend.
 * times: unix ms of each point; series: [{name, values: [number|null]}]; format: value -> text;
 * timeLabel: unix ms -> short text for the x axis.
 */
export function lineChart({ title, times, series, format, timeLabel }) {
  const known = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const top = roundUp(Math.max(0, ...known));
  const span = Math.max(1, times.length - 1);
  const x = (i) => PAD.left + (i * (W - PAD.left - PAD.right)) / span;
  const y = (v) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / top);

  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => svg('g', { class: 'grid' },
    svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(top * f), y2: y(top * f) }),
    svg('text', { x: PAD.left - 6, y: y(top * f) + 4, 'text-anchor': 'end' }, format(top * f))));
  const ticks = times.length ? [0, Math.floor(times.length / 2), times.length - 1] : [];
  const xLabels = [...new Set(ticks)].map((i, n) => svg('text', {
    class: 'axis', x: x(i), y: H - 8, 'text-anchor': n === 0 ? 'start' : n === ticks.length - 1 ? 'end' : 'middle',
  }, timeLabel(times[i])));

  const lines = series.map((s, k) => {
    let d = '';
    let pen = false;
    const dots = [];
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
      const alone = !Number.isFinite(s.values[i - 1]) && !Number.isFinite(s.values[i + 1]);
      if (alone) dots.push(svg('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
      pen = true;
    });
    return svg('g', { class: `series s${k}` }, d ? svg('path', { d: d.trim() }) : null, dots);
  });

  const latest = (s) => [...s.values].reverse().find((v) => Number.isFinite(v));
  const summary = series.map((s) => {
    const peak = Math.max(...s.values.filter((v) => Number.isFinite(v)));
    return Number.isFinite(peak) ? `${s.name}: latest ${format(latest(s))}, peak ${format(peak)}` : `${s.name}: no data`;
  }).join('; ');
  const points = series.reduce((n, s) => n + s.values.filter((v) => Number.isFinite(v) && v > 0).length, 0);

  return h('figure', { class: 'chart' },
    h('figcaption', {}, title),
    svg('svg', {
      viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}. ${summary}.`, 'data-points': points,
      preserveAspectRatio: 'xMidYMid meet',
    }, grid, xLabels, lines),
    h('ul', { class: 'legend' }, series.map((s, k) => h('li', {},
      h('span', { class: `swatch s${k}`, 'aria-hidden': 'true' }),
      `${s.name} `, h('span', { class: 'latest' }, Number.isFinite(latest(s)) ? format(latest(s)) : '—')))));
}
