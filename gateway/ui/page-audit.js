// Audit log: every admin action and every failed sign-in, newest first.

import { api, query } from './api.js';
import { report } from './dialog.js';
import { add, field, fill, fmt, h, table } from './dom.js';

export async function render(container, ctx) {
  const body = h('div');
  const limit = h('select', { name: 'limit', value: ctx.params.get('limit') || '100' },
    ['50', '100', '500'].map((n) => h('option', { value: n }, n)));
  const load = async () => {
    const answer = await api(`audit${query({ limit: limit.value })}`, { signal: ctx.signal });
    fill(body, table('Admin actions and sign-ins, newest first', [
      { label: 'When', cell: (e) => fmt.secs(e.at) },
      { label: 'Who', cell: (e) => e.actor || '(unknown key)' },
      { label: 'Role', cell: (e) => e.role || '—' },
      { label: 'Action', cell: (e) => h('code', {}, e.action) },
      { label: 'Target', cell: (e) => e.target || '—' },
      { label: 'Status', num: true, cell: (e) => h('span', { class: `badge status-${e.status >= 400 ? 'bad' : 'good'}` }, String(e.status)) },
      { label: 'From', cell: (e) => e.from || '—' },
    ], answer.data || [], { empty: 'Nothing recorded yet.' }));
  };
  limit.addEventListener('change', () => load().catch((e) => report(e, 'Loading the audit log')));
  add(container,
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Audit log'), field('Entries', limit),
      h('button', { type: 'button', onclick: () => load().catch((e) => report(e, 'Loading the audit log')) }, 'Refresh')),
    body);
  await load();
}
