// Config: the running config as YAML in an editor with line numbers, checked as you type
// (POST /admin/config/validate), a line diff against the running version before applying (PUT),
// and the version history with one-click rollback.

import { api } from './api.js';
import { confirm, report, withSwitchOff } from './dialog.js';
import { add, announce, fill, fmt, h, table } from './dom.js';
import { hunks, lineDiff } from './diff.js';
import { lineOfError, toYaml } from './yaml.js';

const YAML = 'application/yaml';
const CHECK_AFTER_MS = 400;

/** The running config as YAML text: asked for as YAML; a gateway that answers JSON is written out here. */
async function readRunning(signal) {
  const answer = await api('config', { accept: `${YAML}, application/json;q=0.5`, signal });
  if (typeof answer === 'string') return { text: answer, version: null };
  return { text: toYaml(answer.config), version: answer.version };
}

function diffView(before, after) {
  const lines = lineDiff(before, after);
  const added = lines.filter((l) => l.op === '+').length;
  const removed = lines.filter((l) => l.op === '-').length;
  const kinds = { '+': 'add', '-': 'del', ' ': 'same', '…': 'skip' };
  return [
    h('p', {}, `${added} line${added === 1 ? '' : 's'} added, ${removed} removed.`),
    h('pre', { class: 'diff', tabindex: 0, 'aria-label': 'Changes against the running version' },
      hunks(lines).map((l) => h('span', { class: `d-${kinds[l.op]}` },
        l.op === '…' ? '…\n' : `${l.op} ${String(l.new ?? l.old).padStart(4)}  ${l.text}\n`))),
  ];
}

export async function render(container, ctx) {
  let running = { text: '', version: null };
  let checked = { text: null, valid: false };
  let checkRun = 0;
  let timer;
  const locked = !ctx.canChange;
  const lockedProps = locked ? { disabled: true, 'aria-describedby': 'viewer-note', title: 'Viewers cannot change the config' } : {};

  const textarea = h('textarea', { id: 'config-text', spellcheck: 'false', wrap: 'off', autocapitalize: 'off',
    autocomplete: 'off', 'aria-describedby': 'config-check', rows: 28 });
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const status = h('p', { id: 'config-check', class: 'check', role: 'status' });
  const errorList = h('ul', { class: 'errors', id: 'config-errors' });
  const versionLine = h('p', { class: 'muted' });
  const historyArea = h('div');
  const apply = h('button', { type: 'button', class: 'primary', ...lockedProps, onclick: review }, 'Review and apply');
  const discard = h('button', { type: 'button', onclick: () => showRunning() }, 'Discard changes');

  let numbered = '';
  function numberLines(bad = new Map()) {
    const count = textarea.value.split('\n').length;
    const said = `${count} ${[...bad.keys()]}`;
    if (said === numbered) return;      // the same lines and marks: nothing to redraw
    numbered = said;
    fill(gutter, Array.from({ length: count }, (_, i) => h('span',
      { class: bad.has(i + 1) ? 'bad' : null, title: bad.get(i + 1) || null }, String(i + 1))));
    gutter.scrollTop = textarea.scrollTop;
  }

  function setText(text) {
    textarea.value = text;
    numberLines();
  }

  function goToLine(line) {
    const lines = textarea.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(start, start + (lines[line - 1] ?? '').length);
    const height = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
    textarea.scrollTop = Math.max(0, (line - 1) * height - textarea.clientHeight / 3);
    gutter.scrollTop = textarea.scrollTop;
  }

  function showErrors(errors) {
    const text = textarea.value;
    const bad = new Map();
    fill(errorList, errors.map((e) => {
      const line = lineOfError(text, e);
      if (line && !bad.has(line)) bad.set(line, e);
      return h('li', {}, line
        ? h('button', { type: 'button', class: 'link', onclick: () => goToLine(line) }, `Line ${line}`)
        : null, ` ${e}`);
    }));
    numberLines(bad);
  }

  function updateButtons() {
    const changed = textarea.value !== running.text;
    apply.disabled = locked || !changed || !(checked.text === textarea.value && checked.valid);
    discard.disabled = !changed;
  }

  async function check() {
    const text = textarea.value;
    const run = ++checkRun;
    status.textContent = 'Checking…';
    status.className = 'check';
    let errors;
    try {
      const answer = await api('config/validate', { method: 'POST', body: text, type: YAML, signal: ctx.signal });
      errors = answer.valid ? [] : answer.errors || [];
    } catch (err) {
      if (err.status !== 400) { if (run === checkRun) status.textContent = `Could not check: ${err.message}`; return; }
      errors = err.errors.length ? err.errors : [err.message];     // e.g. YAML that does not parse
    }
    if (run !== checkRun) return;     // the text changed again: a newer check is on its way
    checked = { text, valid: errors.length === 0 };
    status.textContent = errors.length ? `${errors.length} error${errors.length === 1 ? '' : 's'}:` : 'Valid.';
    status.className = errors.length ? 'check bad' : 'check good';
    showErrors(errors);
    updateButtons();
  }

  function showRunning() {
    clearTimeout(timer);
    checkRun++;        // a check still on its way is about text that is gone
    setText(running.text);
    checked = { text: running.text, valid: true };
    status.textContent = '';
    fill(errorList);
    updateButtons();
  }

  async function loadRunning() {
    running = await readRunning(ctx.signal);
    showRunning();
  }

  async function loadHistory() {
    const answer = await api('config/versions', { signal: ctx.signal });
    const current = answer.current;
    versionLine.textContent = `Running version ${current}.`;
    fill(historyArea, table('Versions, newest first', [
      { label: 'Version', num: true, cell: (v) => String(v.version) },
      { label: 'When', cell: (v) => fmt.secs(v.at) },
      { label: 'Author', cell: (v) => v.author },
      { label: 'Summary', cell: (v) => v.summary || '—' },
      { label: 'Actions', cell: (v) => (v.version === current ? h('span', { class: 'badge' }, 'running')
        : h('button', { type: 'button', ...lockedProps, 'aria-label': `Roll back to version ${v.version}`,
          onclick: () => rollback(v.version) }, 'Roll back')) },
    ], answer.versions || []));
  }

  async function review() {
    const text = textarea.value;
    const go = await confirm('Apply this config?', diffView(running.text, text), 'Apply', 'primary');
    if (!go) return;
    try {
      const done = await withSwitchOff((suffix) => api(`config${suffix}`, { method: 'PUT', body: text, type: YAML }));
      if (done === null) return;
      announce(`Applied: version ${done.version}. ${done.summary || ''}`);
      await Promise.all([loadRunning(), loadHistory()]);
    } catch (err) {
      if (err.errors.length && err.code === 'invalid_config') showErrors(err.errors);
      report(err, 'Applying the config');
    }
  }

  async function rollback(version) {
    const sure = await confirm(`Roll back to version ${version}?`,
      h('p', {}, `Version ${version}'s config becomes a new, newest version, applied at once.`), 'Roll back');
    if (!sure) return;
    try {
      const done = await withSwitchOff((suffix) => api(`config/rollback${suffix}`, { method: 'POST', json: { version } }));
      if (done === null) return;
      announce(`Rolled back to version ${version}: now version ${done.version}.`);
      await Promise.all([loadRunning(), loadHistory()]);
    } catch (err) {
      report(err, 'Rolling back');
    }
  }

  textarea.addEventListener('input', () => {
    checkRun++;        // an answer still on its way is about older text
    numberLines();
    updateButtons();
    clearTimeout(timer);
    timer = setTimeout(check, CHECK_AFTER_MS);
  });
  textarea.addEventListener('scroll', () => { gutter.scrollTop = textarea.scrollTop; });

  add(container,
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Config')),
    versionLine, ctx.viewerNote(),
    h('section', { 'aria-labelledby': 'editor-title' },
      h('h2', { id: 'editor-title' }, 'Edit'),
      h('label', { for: 'config-text' }, 'Config (YAML): secrets show as ***; sending *** back keeps them'),
      h('div', { class: 'editor' }, gutter, textarea),
      status, errorList,
      h('div', { class: 'actions' }, apply, discard)),
    h('section', { 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'History'), historyArea));
  await Promise.all([loadRunning(), loadHistory()]);
}
