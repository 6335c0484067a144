// Videos: the latest video jobs of every key with their thumbnails, playback of a finished one, a
// job's details (attempts, webhook deliveries), and the live `gateway worker` processes.

import { adminUrl, api } from './api.js';
import { modal, report } from './dialog.js';
import { add, fill, fmt, h, table } from './dom.js';

const content = (id, variant) => adminUrl(`videos/${encodeURIComponent(id)}/content${variant ? `?variant=${variant}` : ''}`);

function thumbnail(job) {
  if (job.status !== 'completed') return h('div', { class: 'thumb empty', 'aria-hidden': 'true' }, job.status.replace('_', ' '));
  const img = h('img', { class: 'thumb', src: content(job.id, 'thumbnail'), alt: `Thumbnail of ${job.id}`,
    loading: 'lazy', width: 160, height: 90 });
  img.addEventListener('error', () => img.replaceWith(h('div', { class: 'thumb empty' }, 'no thumbnail')));
  return img;
}

function play(area, job) {
  const video = h('video', { controls: true, preload: 'metadata', src: content(job.id), id: 'player',
    'aria-label': `Video ${job.id}: ${job.prompt || ''}` });
  fill(area, h('section', { class: 'player', 'aria-labelledby': 'player-title' },
    h('h2', { id: 'player-title' }, `Playing ${job.id}`),
    video,
    h('p', {}, job.prompt ? `Prompt: ${job.prompt}` : null),
    h('button', { type: 'button', onclick: () => fill(area) }, 'Close player')));
  video.focus();
}

async function details(id) {
  let answer;
  try {
    answer = await api(`videos/${encodeURIComponent(id)}`);
  } catch (err) {
    report(err, 'Opening the job');
    return;
  }
  const job = answer.job || answer;
  const item = (label, value) => [h('dt', {}, label), h('dd', {}, value === null || value === undefined || value === '' ? '—' : String(value))];
  await modal(`Video job ${job.id}`, h('div', {},
    h('dl', { class: 'facts' },
      item('Status', `${job.status} (${job.progress ?? 0}%)`),
      item('Model', job.target_model && job.target_model !== job.model ? `${job.model} → ${job.target_model}` : job.model),
      item('Provider', job.provider),
      item('Key', job.key_name ? `${job.key_name} (${job.key})` : job.key),
      item('Operation', job.op),
      item('Size, seconds', `${job.size}, ${job.seconds} s`),
      item('Attempts', job.attempts ?? job.runs),
      item('Created', fmt.secs(job.created_at)),
      item('Completed', fmt.secs(job.completed_at)),
      item('Expires', fmt.secs(job.expires_at)),
      item('Cost', job.cost_nano !== undefined ? fmt.usd(job.cost_nano / 1e9) : null),
      item('Error', job.error ? `${job.error.code}: ${job.error.message}` : null),
      item('Prompt', job.prompt)),
    table('Webhook deliveries', [
      { label: 'Event', cell: (d) => d.event?.type || d.event_id },
      { label: 'URL', cell: (d) => h('code', {}, d.url) },
      { label: 'Status', cell: (d) => d.status },
      { label: 'Attempts', num: true, cell: (d) => String(d.attempts) },
      { label: 'Tries', cell: (d) => (d.history || []).map((t) => (typeof t === 'object' ? JSON.stringify(t) : String(t))).join('; ') || '—' },
    ], answer.deliveries || [], { empty: 'No webhook deliveries.' })));
}

function workersView(answer) {
  const rows = Object.entries(answer.providers || {}).map(([name, p]) => ({ name, ...p }));
  return table('Local video providers and their workers', [
    { label: 'Provider', cell: (p) => p.name },
    { label: 'Runs in the gateway', cell: (p) => (p.runs_in_gateway ? 'yes' : 'no') },
    { label: 'Queue depth', num: true, cell: (p) => fmt.num(p.queue_depth) },
    { label: 'Live workers', cell: (p) => (p.workers?.length
      ? h('ul', {}, p.workers.map((w) => h('li', {}, Object.entries(w).map(([k, v]) => `${k} ${v}`).join(', '))))
      : 'none') },
  ], rows, { empty: 'No local video provider (type: diffusers) is configured.' });
}

export async function render(container, ctx) {
  const player = h('div');
  const list = h('div');
  const workers = h('div');
  const load = async () => {
    const [jobs, live] = await Promise.all([
      api('videos?limit=30', { signal: ctx.signal }),
      api('workers', { signal: ctx.signal }).catch((err) => ({ error: err })),
    ]);
    const data = jobs.data || [];
    fill(list, data.length ? h('ul', { class: 'cards' }, data.map((job) => h('li', { class: 'card' },
      thumbnail(job),
      h('div', { class: 'card-body' },
        h('p', {}, h('code', {}, job.id)),
        h('p', {}, h('span', { class: `badge video-${job.status}` }, job.status.replace('_', ' ')), ` ${job.model}`),
        job.status === 'in_progress' || job.status === 'queued'
          ? h('progress', { max: 100, value: job.progress ?? 0, 'aria-label': `Progress of ${job.id}` }) : null,
        h('p', { class: 'muted' }, `${job.size}, ${job.seconds} s · ${job.key_name || job.key || ''} · ${fmt.secs(job.created_at)}`),
        h('div', { class: 'row-actions' },
          job.status === 'completed' ? h('button', { type: 'button', 'aria-label': `Play ${job.id}`,
            onclick: () => play(player, job) }, 'Play') : null,
          h('button', { type: 'button', 'aria-label': `Details of ${job.id}`, onclick: () => details(job.id) }, 'Details'))))))
      : h('p', {}, 'No video jobs yet.'));
    fill(workers, live.error ? h('p', { class: 'error' }, `Workers: ${live.error.message}`) : workersView(live));
  };
  add(container,
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Videos'),
      h('button', { type: 'button', onclick: () => load().catch((e) => report(e, 'Loading videos')) }, 'Refresh')),
    player,
    h('section', { 'aria-labelledby': 'jobs-title' }, h('h2', { id: 'jobs-title' }, 'Latest jobs'), list),
    h('section', { 'aria-labelledby': 'workers-title' }, h('h2', { id: 'workers-title' }, 'Workers'), workers));
  await load();
}
