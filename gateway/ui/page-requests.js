// Requests: the request log, filtered (key, model, provider, status, time) and paged back in time;
// a record's details (each upstream attempt, headers sent back, tokens, cost, prompt and answer when kept).

import { api, query } from './api.js';
import { modal, report } from './dialog.js';
import { add, field, fill, fmt, h, table } from './dom.js';

const FILTERS = ['key', 'model', 'provider', 'status', 'since', 'until', 'limit'];

/** datetime-local's value (local time) as ISO 8601 in UTC; '' stays ''. */
const toIso = (local) => (local ? new Date(local).toISOString() : '');

function statusCell(r) {
  const kind = r.status >= 500 ? 'bad' : r.status >= 400 ? 'warn' : 'good';
  return [h('span', { class: `badge status-${kind}` }, String(r.status)), r.error ? ` ${r.error}` : null];
}

/** An upstream attempt's outcome: the upstream's status (none when it never answered) and the failure's code. */
function attemptCell(a) {
  if (a.status === null || a.status === undefined) {
    return [h('span', { class: 'badge status-bad' }, 'no answer'), a.error ? ` ${a.error}` : null];
  }
  return statusCell(a);
}

/** Each upstream attempt, in order: its target, how it ended, how long it took. */
function attemptsTable(r) {
  const rows = (r.attempt_log || []).map((a, i) => ({ ...a, n: i + 1 }));
  return table('Attempts', [
    { label: '#', num: true, cell: (a) => String(a.n) },
    { label: 'Provider', cell: (a) => a.provider },
    { label: 'Upstream model', cell: (a) => h('code', {}, a.model) },
    { label: 'Outcome', cell: attemptCell },
    { label: 'Time', num: true, cell: (a) => fmt.ms(a.ms) },
  ], rows, { empty: r.attempts ? 'Not kept (logged before attempts were).' : 'None made.' });
}

/** A prompt or answer as kept (JSON, possibly cut at 32 KiB): indented when it parses. */
function showBody(label, value) {
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  try {
    text = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // cut short, or not JSON: shown as kept
  }
  return h('pre', { class: 'code', tabindex: 0, 'aria-label': label }, text);
}

async function details(id) {
  let r;
  try {
    r = await api(`requests/${encodeURIComponent(id)}`);
  } catch (err) {
    report(err, 'Opening the request');
    return;
  }
  const item = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? '—')];
  const headers = Object.entries(r.headers || {});
  await modal(`Request ${r.id}`, h('div', { class: 'request-detail' },
    h('dl', { class: 'facts' },
      item('Ended', fmt.time(r.time_ms)),
      item('Key', r.key ? `${r.key} (${r.key_id})` : r.key_id || '(none accepted)'),
      item('Endpoint', r.endpoint),
      item('Model', r.model || '—'),
      item('Provider', r.provider || '(none answered)'),
      item('Status', statusCell(r)),
      item('Attempts', String(r.attempts)),
      item('Stream', r.stream ? 'yes' : 'no'),
      item('Cache hit', r.cache_hit ? 'yes' : 'no'),
      item('Latency', fmt.ms(r.latency_ms)),
      item('Gateway overhead', fmt.ms(r.overhead_ms)),
      item('Tokens in / out', `${fmt.num(r.tokens_in)} / ${fmt.num(r.tokens_out)}`),
      item('Cost', fmt.usd(r.cost_usd))),
    attemptsTable(r),
    table('Headers sent back', [
      { label: 'Header', cell: ([k]) => h('code', {}, k) },
      { label: 'Value', cell: ([, v]) => String(v) },
    ], Array.isArray(r.headers) ? r.headers : headers, { empty: 'None kept.' }),
    h('h3', {}, 'Prompt'),
    r.prompt !== undefined ? showBody('Prompt', r.prompt) : h('p', {}, 'Not kept (logging.prompts is off, or it was a stream).'),
    h('h3', {}, 'Answer'),
    r.answer !== undefined ? showBody('Answer', r.answer) : h('p', {}, 'Not kept (logging.prompts is off, or it was a stream).')));
}

export async function render(container, ctx) {
  const results = h('div');
  const pager = h('div', { class: 'actions' });
  const input = (name, props = {}) => h('input', { name, value: ctx.params.get(name) || '', ...props });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter requests' },
    field('Key', input('key', { placeholder: 'name or key_…' })),
    field('Model', input('model')),
    field('Provider', input('provider')),
    field('Status', input('status', { placeholder: '429 or 5xx', pattern: '[1-5]([0-9]{2}|xx)' })),
    field('Since', input('since', { type: 'datetime-local' })),
    field('Until', input('until', { type: 'datetime-local' })),
    field('Per page', h('select', { name: 'limit', value: ctx.params.get('limit') || '50' },
      ['25', '50', '100', '200'].map((n) => h('option', { value: n, selected: n === '50' }, n)))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Search'),
      h('button', { type: 'reset' }, 'Clear')));

  const values = () => Object.fromEntries(FILTERS.map((k) => [k, form.elements[k].value.trim()]));

  async function search(before) {
    const v = values();
    history.replaceState(null, '', `#/requests${query(v)}`);     // a link to this search, without re-rendering
    const page = await api(`requests${query({ ...v, since: toIso(v.since), until: toIso(v.until), before })}`,
      { signal: ctx.signal });
    fill(results, table(before ? 'Requests (older page)' : 'Requests, newest first', [
      { label: 'Ended', cell: (r) => fmt.time(r.time_ms) },
      { label: 'Key', cell: (r) => r.key || r.key_id || '—' },
      { label: 'Endpoint', cell: (r) => r.endpoint },
      { label: 'Model', cell: (r) => r.model || '—' },
      { label: 'Provider', cell: (r) => r.provider || '—' },
      { label: 'Status', cell: statusCell },
      { label: 'Latency', num: true, cell: (r) => fmt.ms(r.latency_ms) },
      { label: 'Tokens in/out', num: true, cell: (r) => `${fmt.num(r.tokens_in)} / ${fmt.num(r.tokens_out)}` },
      { label: 'Cost', num: true, cell: (r) => fmt.usd(r.cost_usd) },
      { label: 'Details', cell: (r) => h('button', { type: 'button', class: 'link', 'aria-label': `Open ${r.id}`,
        'data-request': r.id, onclick: () => details(r.id) }, 'Open') },
    ], page.data || [], { empty: 'No request matches.' }));
    fill(pager,
      before ? h('button', { type: 'button', onclick: () => search().catch((e) => report(e, 'Search')) }, 'Newest') : null,
      page.next ? h('button', { type: 'button', onclick: () => search(page.next).catch((e) => report(e, 'Search')) },
        'Older') : null);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    search().catch((err) => report(err, 'Search'));
  });
  form.addEventListener('reset', () => setTimeout(() => search().catch((err) => report(err, 'Search'))));

  add(container, h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Requests')), form, results, pager);
  await search();
}
