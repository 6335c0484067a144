// YAML text, as the config editor needs it: a small JSON -> YAML writer (for a gateway that
// answers the config as JSON only), and finding the line a validation error is about.

const PLAIN = /^[A-Za-z_/$][\w./$@*:{}-]*$/;
const LOOKS_TYPED = /^(true|false|yes|no|on|off|null|~|[-+]?(\d[\d_]*)?\.?\d+([eE][-+]?\d+)?|0x[0-9a-f]+)$/i;

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  // Plain where it reads back as the same string; else JSON's double-quoted form, which YAML reads.
  if (s && PLAIN.test(s) && !LOOKS_TYPED.test(s) && !s.includes(': ') && !s.endsWith(':') && !s.includes('${')
      && !s.startsWith('{')) {
    return s;
  }
  return JSON.stringify(s);
}

function key(k) {
  return PLAIN.test(k) && !LOOKS_TYPED.test(k) && !k.includes(':') ? k : JSON.stringify(k);
}

const isMap = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isEmpty = (v) => (Array.isArray(v) ? v.length === 0 : isMap(v) && Object.keys(v).length === 0);

/** Block-style YAML of a JSON value. */
export function toYaml(value, indent = '') {
  if (Array.isArray(value)) {
    if (!value.length) return `${indent}[]\n`;
    return value.map((item) => {
      if ((isMap(item) || Array.isArray(item)) && !isEmpty(item)) {
        const inner = toYaml(item, `${indent}  `);
        return `${indent}- ${inner.slice(indent.length + 2)}`;
      }
      return `${indent}- ${isEmpty(item) ? JSON.stringify(item) : scalar(item)}\n`;
    }).join('');
  }
  if (isMap(value)) {
    if (isEmpty(value)) return `${indent}{}\n`;
    return Object.entries(value).map(([k, v]) => {
      if ((isMap(v) || Array.isArray(v)) && !isEmpty(v)) {
        return `${indent}${key(k)}:\n${toYaml(v, Array.isArray(v) ? indent : `${indent}  `)}`;
      }
      return `${indent}${key(k)}: ${isEmpty(v) ? JSON.stringify(v) : scalar(v)}\n`;
    }).join('');
  }
  return `${indent}${scalar(value)}\n`;
}

/** An error's path split: "models[2].route" -> ["models", 2, "route"]. */
export function pathParts(path) {
  const parts = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) parts.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return parts;
}

const INDENT = /^(\s*)/;
const blank = (line) => /^\s*(#.*)?$/.test(line);

/** Where a line's key starts (after any "- "), and the key: {col, key} or null. */
function keyOf(line) {
  const m = /^(\s*(?:-\s+)*)(["']?)([^"':#\s][^"':]*?)\2\s*:(\s|$)/.exec(line);
  return m ? { col: m[1].length, key: m[3] } : null;
}

/** The end (exclusive) of the block that starts at `line` and holds what is indented past `col`
 * (and, under a key, the "- " items at its own indent: YAML lets a list sit level with its key). */
function blockEnd(lines, line, col, end, underKey) {
  const inside = (text) => {
    const indent = INDENT.exec(text)[1].length;
    return indent > col || (underKey && indent === col && text[indent] === '-');
  };
  let i = line + 1;
  while (i < end && (blank(lines[i]) || inside(lines[i]))) i++;
  return i;
}

/**
 * The 1-based line of the YAML text that a path like `models[2].route.targets[0]` names, best effort:
 * as deep as the text's block structure can be followed (flow style `{...}` stops at its line). null if
 * not even the first part is found.
 */
export function lineOfPath(text, path) {
  const lines = text.split('\n');
  let start = 0;
  let end = lines.length;
  let found = null;
  for (const part of pathParts(path)) {
    let hit = -1;
    let col = 0;
    if (typeof part === 'number') {
      const items = [];
      let least = Infinity;
      for (let i = start; i < end; i++) {
        const m = /^(\s*)-(\s|$)/.exec(lines[i]);
        if (!m || (found !== null && i === found)) continue;
        if (m[1].length < least) { least = m[1].length; items.length = 0; }
        if (m[1].length === least) items.push(i);
      }
      if (part < items.length) { hit = items[part]; col = least; }
    } else {
      let least = Infinity;
      for (let i = start; i < end; i++) {
        const k = keyOf(lines[i]);
        if (k && k.col < least) least = k.col;
      }
      for (let i = start; i < end && hit < 0; i++) {
        const k = keyOf(lines[i]);
        if (k && k.col === least && k.key === part) { hit = i; col = k.col; }
      }
    }
    if (hit < 0) break;
    found = hit;
    // A key's children are on the lines below it; an item's keys start on its own line.
    start = typeof part === 'number' ? hit : hit + 1;
    end = blockEnd(lines, hit, col, end, typeof part !== 'number');
    if (typeof part !== 'number' && !blank(lines[hit].slice(lines[hit].indexOf(':') + 1))) break;   // a value inline
  }
  return found === null ? null : found + 1;
}

/** The line a validation error is about: a YAML syntax error's "line N", or its path looked up. */
export function lineOfError(text, error) {
  const said = [...error.matchAll(/line (\d+)/g)];
  if (said.length) return Number(said[said.length - 1][1]);
  const m = /^([\w$-]+(?:\[\d+\]|\.[\w$-]+)*)\s*:/.exec(error);
  return m ? lineOfPath(text, m[1]) : null;
}
