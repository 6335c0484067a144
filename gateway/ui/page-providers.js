// Providers and routes: each provider and the health of its targets in this process (GET
// /admin/providers), and which targets each model routes to (the running config). Refreshed every 10 s.

import { api } from './api.js';
import { report } from './dialog.js';
import { add, fill, fmt, h, table } from './dom.js';
import { toYaml } from './yaml.js';

const circuitBadge = (state) => h('span', { class: `badge circuit-${state}` }, state.replace('_', ' '));

/** A route's targets as a list; a nested route as a sub-list. */
function targetList(route, circuits) {
  return h('ol', { class: 'targets' }, (route?.targets || []).map((t) => {
    if (t.route) return h('li', {}, `route (${t.route.strategy || 'fallback'})`, targetList(t.route, circuits));
    const id = t.model ? `${t.provider}/${t.model}` : t.provider;
    const state = circuits.get(id) || circuits.get(t.provider);
    return h('li', {}, h('code', {}, id), t.weight !== undefined ? ` weight ${t.weight}` : null, ' ',
      state ? circuitBadge(state) : null);
  }));
}

function limitsText(limits) {
  const set = Object.entries(limits || {});
  return set.length ? set.map(([k, v]) => `${k} ${fmt.num(v)}`).join(', ') : 'none';
}

export async function render(container, ctx) {
  const body = h('div');
  const load = async () => {
    const [health, running] = await Promise.all([
      api('providers', { signal: ctx.signal }),
      api('config', { accept: 'application/json', signal: ctx.signal }),
    ]);
    const providers = health.providers || [];
    const targets = providers.flatMap((p) => p.targets || []);
    // Circuit per target id, and per provider the worst of its targets (for routes naming no model).
    const circuits = new Map(targets.map((t) => [t.target, t.circuit]));
    const rank = { closed: 0, half_open: 1, open: 2 };
    for (const t of targets) {
      const p = t.target.split('/')[0];
      if (!circuits.has(p) || rank[t.circuit] > rank[circuits.get(p)]) circuits.set(p, t.circuit);
    }
    const config = running.config || {};
    fill(body,
      table('Providers', [
        { label: 'Name', cell: (p) => p.name },
        { label: 'Type', cell: (p) => p.type },
        { label: 'State', cell: (p) => (p.enabled ? h('span', { class: 'badge on' }, 'on')
          : [h('span', { class: 'badge off' }, 'off'), ` ${p.disabled_because || ''}`]) },
        { label: 'Limits', cell: (p) => limitsText(p.limits) },
        { label: 'Targets used', num: true, cell: (p) => String((p.targets || []).length) },
      ], providers),
      table('Targets in this process', [
        { label: 'Target', cell: (t) => h('code', {}, t.target) },
        { label: 'Circuit', cell: (t) => circuitBadge(t.circuit) },
        { label: 'Failures in a row', num: true, cell: (t) => fmt.num(t.consecutive_failures) },
        { label: 'Latency', num: true, cell: (t) => fmt.ms(t.latency_ms) },
        { label: 'In flight', num: true, cell: (t) => fmt.num(t.in_flight) },
        { label: 'Error rate', num: true, cell: (t) => (t.error_rate === undefined ? '—' : fmt.pct(t.error_rate)) },
        { label: 'Last error', cell: (t) => (t.last_error
          ? `${t.last_error}${t.last_error_ago_s !== null ? ` (${fmt.num(t.last_error_ago_s)} s ago)` : ''}` : 'none') },
      ], targets, { empty: 'No target has been called yet.' }),
      table('Routes: models to targets', [
        { label: 'Model', cell: (m) => h('code', {}, m.name) },
        { label: 'Kind', cell: (m) => m.kind },
        { label: 'Strategy', cell: (m) => m.route?.strategy || 'fallback' },
        { label: 'Targets, in order', cell: (m) => targetList(m.route, circuits) },
        { label: 'Retries', num: true, cell: (m) => (m.retries === undefined ? '—' : String(m.retries)) },
      ], config.models || []),
      h('h2', {}, 'Rules'),
      (config.rules || []).length
        ? h('pre', { class: 'code', tabindex: 0, 'aria-label': 'Rules' }, toYaml(config.rules))
        : h('p', {}, 'No rules: every model uses its own route.'));
  };
  add(container, h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Providers and routes'),
    h('button', { type: 'button', onclick: () => load().catch((e) => report(e, 'Loading providers')) }, 'Refresh')),
  body);
  await load();
  ctx.every(10_000, () => load().catch(() => {}));
}
