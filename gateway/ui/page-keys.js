// Keys: every key with its use against its limits (this moment) and budget; create (the secret shown once), edit
// (PATCH), revoke (after a confirmation). Viewers see the same with the controls disabled.

import { api } from './api.js';
import { confirm, modal, report, withSwitchOff } from './dialog.js';
import { add, announce, busy, field, fill, fmt, h, meter, table } from './dom.js';

const LIMITS = [
  ['rpm', 'Requests per minute'],
  ['tpm', 'Tokens per minute'],
  ['concurrent', 'Concurrent requests'],
  ['videos_per_hour', 'Videos per hour'],
];
const PERIODS = ['day', 'week', 'month', 'total'];

const ref = (key) => encodeURIComponent(key.id || key.name);

/** Each limit with what the key uses of it this moment (`usage`: requests and tokens in the current
 * minute, requests in flight, videos this hour) as a bar; the limit alone where the gateway could not say. */
function limitsCell(key) {
  const usage = key.usage || {};
  const rows = LIMITS.filter(([name]) => key.limits?.[name] !== undefined && key.limits?.[name] !== null)
    .map(([name, label]) => {
      const limit = key.limits[name];
      const used = usage[name]?.used;
      return typeof used === 'number'
        ? meter(`${key.name}: ${label}`, used, limit, `${fmt.num(used)} / ${fmt.num(limit)} ${name}`)
        : h('div', { class: 'nowrap' }, `${fmt.num(limit)} ${name}`);
    });
  return rows.length ? rows : 'none';
}

function budgetCell(key) {
  const b = key.budget;
  if (!b) return 'none';
  const spent = b.spent_usd ?? 0;
  return meter(`${key.name}: budget used`, spent, b.usd, `${fmt.usd(spent)} of ${fmt.usd(b.usd)} a ${b.period}`);
}

function useCell(key) {
  const u = key.this_month || {};
  return `${fmt.num(u.requests ?? 0)} requests, ${fmt.num(u.tokens ?? 0)} tokens, ${fmt.usd(u.cost_usd ?? 0)}`;
}

/** The form's fields for models, limits and budget, filled from `key` when editing. */
function settingsFields(key = {}) {
  const models = (key.models || []).join(', ');
  return [
    field('Models', h('input', { name: 'models', value: models === '*' ? '' : models, placeholder: '*' }),
      'Comma-separated names or globs (gpt-4.1*); empty: every model.'),
    h('fieldset', { class: 'inline' }, h('legend', {}, 'Limits (empty: none)'),
      LIMITS.map(([name, label]) => field(label,
        h('input', { name, type: 'number', min: 0, step: 1, inputmode: 'numeric', value: key.limits?.[name] ?? '' })))),
    h('fieldset', { class: 'inline' }, h('legend', {}, 'Budget (empty: none)'),
      field('Budget in USD', h('input', { name: 'budget_usd', type: 'number', min: 0, step: 'any', value: key.budget?.usd ?? '' })),
      field('Budget period', h('select', { name: 'budget_period', value: key.budget?.period || 'month' },
        PERIODS.map((p) => h('option', { value: p }, p))))),
  ];
}

/** models, limits and budget as the API takes them, from the form. */
function settingsOf(form) {
  const v = (name) => form.elements[name].value.trim();
  const models = v('models').split(/[\s,]+/).filter(Boolean);
  const limits = Object.fromEntries(LIMITS.map(([name]) => [name, v(name) === '' ? null : Number(v(name))]));
  const budget = v('budget_usd') === '' ? null : { usd: Number(v('budget_usd')), period: v('budget_period') };
  return { models: models.length ? models : ['*'], limits, budget };
}

function secretPanel(answer, onDone) {
  const input = h('input', { id: 'new-secret', readonly: true, value: answer.key, class: 'mono', spellcheck: 'false' });
  const copy = async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(answer.key);
    } catch {
      document.execCommand('copy');      // plain http on a non-local host has no clipboard API
    }
    announce('Secret copied.');
  };
  return h('section', { class: 'secret', 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title' }, `Key "${answer.name}" created`),
    h('p', { class: 'warning' }, h('strong', {}, 'Copy the secret now. '),
      'It is shown this once: the gateway keeps only its hash.'),
    field('Secret', input),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: copy }, 'Copy secret'),
      h('button', { type: 'button', onclick: onDone }, 'Done')));
}

export async function render(container, ctx) {
  const listArea = h('div');
  const createArea = h('div');
  const locked = !ctx.canChange;
  const lockedProps = locked ? { disabled: true, 'aria-describedby': 'viewer-note', title: 'Viewers cannot change keys' } : {};

  async function load() {
    const answer = await api('keys', { signal: ctx.signal });
    const keys = answer.keys || answer.data || [];
    fill(listArea, table('Gateway keys', [
      { label: 'Name', cell: (k) => [k.name, k.role ? h('span', { class: 'badge' }, k.role) : null,
        k.active === false ? h('span', { class: 'badge off' }, 'off') : null] },
      { label: 'Id', cell: (k) => h('code', {}, k.id || '—') },
      { label: 'Models', cell: (k) => (k.role ? '—' : (k.models || ['*']).join(', ')) },
      { label: 'Limits', cell: limitsCell },
      { label: 'Budget', cell: budgetCell },
      { label: 'This month', cell: useCell },
      { label: 'Actions', cell: (k) => h('div', { class: 'row-actions' },
        h('button', { type: 'button', ...lockedProps, 'aria-label': `Edit ${k.name}`, onclick: () => edit(k) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', ...lockedProps, 'aria-label': `Revoke ${k.name}`,
          onclick: () => revoke(k) }, 'Revoke')) },
    ], keys, { empty: 'No keys.' }));
  }

  async function revoke(key) {
    const sure = await confirm(`Revoke "${key.name}"?`,
      h('p', {}, 'Every application using this key gets 401 from now on. Its records and spend are kept.'),
      'Revoke key');
    if (!sure) return;
    try {
      const done = await withSwitchOff((suffix) => api(`keys/${ref(key)}${suffix}`, { method: 'DELETE' }));
      if (done === null) return;
      announce(`Key "${key.name}" revoked.`);
      await load();
    } catch (err) {
      report(err, 'Revoking the key');
    }
  }

  async function edit(key) {
    const form = h('div', { class: 'form-grid' }, settingsFields(key));
    const answer = await modal(`Edit "${key.name}"`, form,
      [{ label: 'Cancel', value: 'cancel' }, { label: 'Save', value: 'save', kind: 'primary' }]);
    if (answer !== 'save') return;
    const change = settingsOf({ elements: fieldsOf(form) });
    try {
      const done = await withSwitchOff((suffix) => api(`keys/${ref(key)}${suffix}`, { method: 'PATCH', json: change }));
      if (done === null) return;
      announce(`Key "${key.name}" saved${done.version ? ` (config version ${done.version})` : ''}.`);
      await load();
    } catch (err) {
      report(err, 'Saving the key');
    }
  }

  const createForm = h('form', { class: 'form-grid', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'Create a key'),
    field('Name', h('input', { name: 'name', required: true, autocomplete: 'off', ...lockedProps })),
    field('Kind', h('select', { name: 'role', ...lockedProps },
      h('option', { value: '' }, 'Client key (calls the API)'),
      h('option', { value: 'viewer' }, 'Console viewer (reads the admin API)'),
      h('option', { value: 'admin' }, 'Console admin (changes things)'))),
    settingsFields(),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', ...lockedProps }, 'Create key')));
  if (locked) for (const control of createForm.elements) control.disabled = true;
  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const { models, limits, budget } = settingsOf(createForm);
    const body = { name: createForm.elements.name.value.trim() };
    if (createForm.elements.role.value) body.role = createForm.elements.role.value;
    if (!(models.length === 1 && models[0] === '*')) body.models = models;
    const set = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== null));
    if (Object.keys(set).length) body.limits = set;
    if (budget) body.budget = budget;
    try {
      const answer = await busy(event.submitter, () => api('keys', { method: 'POST', json: body }));
      createForm.reset();
      fill(createArea, secretPanel(answer, () => { fill(createArea); createForm.elements.name.focus(); }));
      createArea.querySelector('#new-secret').focus();
      announce(`Key "${answer.name}" created. Copy its secret now: it is shown once.`);
      await load();
    } catch (err) {
      report(err, 'Creating the key');
    }
  });

  add(container, h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Keys'),
    h('button', { type: 'button', onclick: () => load().catch((e) => report(e, 'Loading keys')) }, 'Refresh')),
  ctx.viewerNote(), createArea, listArea, createForm);
  await load();
}

/** A form-like view of a dialog's fields (they live in a <div>, inside the dialog's own form). */
function fieldsOf(root) {
  const elements = {};
  for (const el of root.querySelectorAll('[name]')) elements[el.name] = el;
  return elements;
}
