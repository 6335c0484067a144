// A line diff: the longest common subsequence of two texts' lines, as kept/removed/added lines,
// grouped into hunks with a few lines of context.

const MOST_CELLS = 4_000_000;   // past this (2,000 x 2,000 changed lines) the middle is shown as replaced whole

/** [{op: ' ' | '-' | '+', text, old, new}] where old/new are 1-based line numbers (or null). */
export function lineDiff(before, after) {
  const a = before.split('\n');
  const b = after.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }

  const out = [];
  const keep = (i, j) => out.push({ op: ' ', text: a[i], old: i + 1, new: j + 1 });
  const remove = (i) => out.push({ op: '-', text: a[i], old: i + 1, new: null });
  const add = (j) => out.push({ op: '+', text: b[j], old: null, new: j + 1 });

  for (let i = 0; i < start; i++) keep(i, i);
  const n = endA - start;
  const m = endB - start;
  if (n * m > MOST_CELLS) {
    for (let i = start; i < endA; i++) remove(i);
    for (let j = start; j < endB; j++) add(j);
  } else {
    // lcs[i][j]: the LCS length of a[start+i..endA) and b[start+j..endB), in one flat array.
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = a[start + i] === b[start + j]
          ? lcs[(i + 1) * w + j + 1] + 1
          : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[start + i] === b[start + j]) { keep(start + i, start + j); i++; j++; }
      else if (j < m && (i === n || lcs[i * w + j + 1] > lcs[(i + 1) * w + j])) { add(start + j); j++; }
      else { remove(start + i); i++; }
    }
  }
  for (let i = endA, j = endB; i < a.length; i++, j++) keep(i, j);
  return out;
}

/** The changed lines with `context` kept lines around each run; a {op: '…'} line where lines are left out. */
export function hunks(lines, context = 3) {
  const near = lines.map(() => false);
  lines.forEach((line, i) => {
    if (line.op === ' ') return;
    for (let k = Math.max(0, i - context); k <= Math.min(lines.length - 1, i + context); k++) near[k] = true;
  });
  const out = [];
  lines.forEach((line, i) => {
    if (near[i]) out.push(line);
    else if (!out.length || out[out.length - 1].op !== '…') out.push({ op: '…', text: '' });
  });
  if (out.length && out[out.length - 1].op === '…') out.pop();
  return out;
}
