// Overview: GET /admin/stats?range=hour|day|month, drawn as charts over time, totals, and tables per
// model and per provider. Refreshed every 15 s while shown.

import { api, query } from './api.js';
import { report } from './dialog.js';
import { lineChart } from './chart.js';
import { add, fill, fmt, h, table } from './dom.js';

const RANGES = [['hour', 'Last hour'], ['day', 'Last day'], ['month', 'Last 30 days']];

/** Every bucket of the range, in order: the ones the gateway left out (no traffic) as empty. */
function everyBucket(stats) {
  const step = stats.bucket_s * 1000;
  const byStart = new Map(stats.buckets.map((b) => [b.start_ms, b]));
  const out = [];
  for (let t = stats.since_ms; t < stats.until_ms; t += step) out.push(byStart.get(t) || { start_ms: t, empty: true });
  return out.length ? out : stats.buckets;
}

function timeLabel(range) {
  const opts = range === 'month' ? { month: 'short', day: 'numeric' } : { hour: '2-digit', minute: '2-digit' };
  return (ms) => new Date(ms).toLocaleString(undefined, opts);
}

const latency = (b, which, p) => (b.empty || !b.requests ? null : b[which]?.[p] ?? null);

function charts(stats) {
  const buckets = everyBucket(stats);
  const times = buckets.map((b) => b.start_ms);
  const label = timeLabel(stats.range);
  const value = (name) => buckets.map((b) => (b.empty ? 0 : b[name] ?? 0));
  return h('div', { class: 'charts' },
    lineChart({ title: 'Requests per second', times, timeLabel: label, format: fmt.num,
      series: [{ name: 'requests/s', values: value('requests_per_s') }] }),
    lineChart({ title: 'Error rate', times, timeLabel: label, format: fmt.pct,
      series: [{ name: 'errors', values: buckets.map((b) => (b.requests ? b.error_rate ?? b.errors / b.requests : null)) },
        { name: 'server errors', values: buckets.map((b) => (b.requests ? (b.server_errors ?? 0) / b.requests : null)) }] }),
    lineChart({ title: 'Latency', times, timeLabel: label, format: fmt.ms,
      series: [{ name: 'p50', values: buckets.map((b) => latency(b, 'latency_ms', 'p50')) },
        { name: 'p99', values: buckets.map((b) => latency(b, 'latency_ms', 'p99')) }] }),
    lineChart({ title: 'Gateway overhead', times, timeLabel: label, format: fmt.ms,
      series: [{ name: 'p50', values: buckets.map((b) => latency(b, 'overhead_ms', 'p50')) },
        { name: 'p99', values: buckets.map((b) => latency(b, 'overhead_ms', 'p99')) }] }),
    lineChart({ title: 'Spend', times, timeLabel: label, format: fmt.usd,
      series: [{ name: 'USD', values: value('cost_usd') }] }));
}

function tiles(stats) {
  const t = stats.totals || {};
  const tile = (label, value) => h('div', { class: 'tile' }, h('dt', {}, label), h('dd', {}, value));
  return h('dl', { class: 'tiles', 'aria-label': 'Totals' },
    tile('Requests', fmt.num(t.requests ?? 0)),
    tile('Requests/s', fmt.num(t.requests_per_s ?? 0)),
    tile('Error rate', fmt.pct(t.error_rate ?? 0)),
    tile('Latency p50 / p99', `${fmt.ms(t.latency_ms?.p50)} / ${fmt.ms(t.latency_ms?.p99)}`),
    tile('Overhead p50 / p99', `${fmt.ms(t.overhead_ms?.p50)} / ${fmt.ms(t.overhead_ms?.p99)}`),
    tile('Tokens in / out', `${fmt.num(t.tokens_in ?? 0)} / ${fmt.num(t.tokens_out ?? 0)}`),
    tile('Spent today', fmt.usd(stats.spend?.today_usd ?? 0)),
    tile('Spent this month', fmt.usd(stats.spend?.month_usd ?? 0)));
}

/** The (model, provider) rows added up per provider. */
function perProvider(groups) {
  const out = new Map();
  for (const g of groups) {
    const p = out.get(g.provider) || { provider: g.provider, requests: 0, errors: 0, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
    for (const k of ['requests', 'errors', 'tokens_in', 'tokens_out', 'cost_usd']) p[k] += g[k] ?? 0;
    out.set(g.provider, p);
  }
  return [...out.values()].sort((a, b) => b.requests - a.requests);
}

const COUNTS = [
  { label: 'Requests', num: true, cell: (r) => fmt.num(r.requests) },
  { label: 'Errors', num: true, cell: (r) => fmt.num(r.errors ?? 0) },
  { label: 'Error rate', num: true, cell: (r) => fmt.pct(r.requests ? (r.errors ?? 0) / r.requests : 0) },
];
const TOKENS = [
  { label: 'Tokens in', num: true, cell: (r) => fmt.num(r.tokens_in ?? 0) },
  { label: 'Tokens out', num: true, cell: (r) => fmt.num(r.tokens_out ?? 0) },
  { label: 'Cost', num: true, cell: (r) => fmt.usd(r.cost_usd ?? 0) },
];

function tables(stats) {
  const groups = stats.models || [];
  return h('div', { class: 'tables' },
    table('Per model and provider', [
      { label: 'Model', cell: (r) => r.model || '(none)' },
      { label: 'Provider', cell: (r) => r.provider || '(none answered)' },
      ...COUNTS,
      { label: 'Latency p50 / p99', num: true, cell: (r) => `${fmt.ms(r.latency_ms?.p50)} / ${fmt.ms(r.latency_ms?.p99)}` },
      ...TOKENS,
    ], groups, { empty: 'No requests in this range.' }),
    table('Per provider', [{ label: 'Provider', cell: (r) => r.provider || '(none answered)' }, ...COUNTS, ...TOKENS],
      perProvider(groups), { empty: 'No requests in this range.' }));
}

export async function render(container, ctx) {
  let range = RANGES.some(([r]) => r === ctx.params.get('range')) ? ctx.params.get('range') : 'hour';
  const body = h('div', { 'aria-live': 'off' });
  const updated = h('p', { class: 'muted' });
  const load = async () => {
    const stats = await api(`stats${query({ range })}`, { signal: ctx.signal });
    fill(body, tiles(stats), charts(stats), tables(stats));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  };
  const picker = h('fieldset', { class: 'segmented' }, h('legend', {}, 'Range'),
    RANGES.map(([value, label]) => h('label', {},
      h('input', { type: 'radio', name: 'range', value, checked: value === range,
        onchange: () => { range = value; load().catch((e) => report(e, 'Loading the overview')); } }), label)));
  add(container,
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Overview'), picker,
      h('button', { type: 'button', onclick: () => load().catch((e) => report(e, 'Loading the overview')) }, 'Refresh')),
    updated, body);
  await load();
  ctx.every(15_000, () => load().catch(() => {}));
}
