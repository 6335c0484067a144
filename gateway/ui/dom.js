// Small DOM helpers. Elements are built node by node: nothing the API answers is ever parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, props, children) {
  let value;
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  if (value !== undefined) {
    el.value = value;    // after the children: a <select> needs its options first
    // ...and its default, so that a form's reset comes back to it.
    if (el.tagName === 'SELECT') for (const o of el.options) o.defaultSelected = o.value === String(value);
  }
  return el;
}

/** h('button', {type: 'button', onclick}, 'Label') */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element: svg('line', {x1: 0, ...}) */
export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

/** Add children to `el` (null, false and undefined are left out). */
export function add(el, ...children) {
  return build(el, null, children);
}

/** Replace what `el` holds. */
export function fill(el, ...children) {
  el.replaceChildren();
  return build(el, null, children);
}

let statusTimer;

/** Say something in the page's live region (screen readers read it out). */
export function announce(message, kind = 'info') {
  const region = document.getElementById('status');
  region.className = `status ${kind}`;
  region.textContent = message;
  clearTimeout(statusTimer);
  if (kind !== 'error') statusTimer = setTimeout(() => { region.textContent = ''; }, 8000);
}

/** A table: columns [{label, cell: row => node or text, num?}], with a caption. */
export function table(caption, columns, rows, { empty = 'Nothing yet.' } = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h('tbody', {}, rows.length
        ? rows.map((row) => h('tr', {}, columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(row) ?? '—'))))
        : h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty)))));
}

/** A labelled field: label + input (or select/textarea) with a shared id. */
let fieldCount = 0;
export function field(label, control, hint) {
  const id = control.id || `field-${++fieldCount}`;
  control.id = id;
  const hintEl = hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

/** A bar of `used` against `limit` (role meter): how much of a budget or limit is taken. */
export function meter(label, used, limit, text) {
  const share = limit > 0 ? Math.min(1, used / limit) : 0;
  const level = share >= 0.9 ? 'high' : share >= 0.6 ? 'mid' : 'low';
  const taken = h('span');
  taken.style.width = `${(share * 100).toFixed(1)}%`;    // CSSOM, not a style attribute: allowed by a strict CSP
  return h('div', { class: 'meter-row' },
    h('div', {
      class: `meter ${level}`, role: 'meter', 'aria-label': label,
      'aria-valuemin': 0, 'aria-valuemax': limit, 'aria-valuenow': Math.min(used, limit), 'aria-valuetext': text,
    }, taken),
    h('span', { class: 'meter-text' }, text));
}

// Formats.
const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export const fmt = {
  num: (n) => {
    if (n === null || n === undefined) return '—';
    return Math.abs(n) > 0 && Math.abs(n) < 0.01 ? n.toPrecision(2) : numberFormat.format(n);
  },
  usd: (n) => {
    if (n === null || n === undefined) return '—';
    if (n === 0) return '$0';
    return `$${Math.abs(n) < 0.01 ? n.toPrecision(2) : n.toFixed(2)}`;
  },
  ms: (n) => (n === null || n === undefined ? '—' : `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)} ms`),
  pct: (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(x && x < 0.01 ? 2 : 1)}%`),
  /** A time from unix milliseconds. */
  time: (ms) => (ms ? new Date(ms).toLocaleString() : '—'),
  /** A time from unix seconds. */
  secs: (s) => (s ? new Date(s * 1000).toLocaleString() : '—'),
};

/** Run a call with a busy button: disabled while it runs. */
export async function busy(button, fn) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = was;
    button.removeAttribute('aria-busy');
  }
}
