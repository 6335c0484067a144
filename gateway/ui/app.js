// The console's shell: sign-in, the header, and hash routes (#/overview, #/keys, ...) to pages.
// Each page module exports render(container, ctx) and may set timers through ctx.every.

import { api, onSignedOut } from './api.js';
import { announce, fill, h } from './dom.js';
import * as audit from './page-audit.js';
import * as config from './page-config.js';
import * as keys from './page-keys.js';
import * as overview from './page-overview.js';
import * as providers from './page-providers.js';
import * as requests from './page-requests.js';
import * as videos from './page-videos.js';

const PAGES = {
  overview: { title: 'Overview', page: overview },
  keys: { title: 'Keys', page: keys },
  config: { title: 'Config', page: config },
  providers: { title: 'Providers and routes', page: providers },
  requests: { title: 'Requests', page: requests },
  videos: { title: 'Videos', page: videos },
  audit: { title: 'Audit log', page: audit },
};

const $ = (id) => document.getElementById(id);
let user = null;            // {name, role, expires_at} once signed in
let leaving = () => {};     // stops the shown page's timers
let shown = 0;              // counts renders, so a slow page does not draw over a newer one

/** What every page gets: who is signed in, whether they may change things, timers that stop on leaving. */
function context(params, signal) {
  const timers = [];
  leaving = () => timers.forEach(clearInterval);
  return {
    user,
    canChange: user?.role === 'admin',
    params,
    signal,
    every: (ms, fn) => timers.push(setInterval(fn, ms)),
    /** A note for viewers beside the controls they cannot use. */
    viewerNote: () => (user?.role === 'admin' ? null : h('p', { class: 'note', id: 'viewer-note' },
      'You are signed in as a viewer: you can look at everything, but changes are disabled.')),
    go: (hash) => { location.hash = hash; },
  };
}

function parseHash() {
  const [path, search] = location.hash.replace(/^#\/?/, '').split('?');
  return { name: path || 'overview', params: new URLSearchParams(search || '') };
}

async function route({ focus = true } = {}) {
  if (!user) return;
  if (!location.hash.startsWith('#/')) return;    // #main (the skip link) is not a route
  const { name, params } = parseHash();
  const entry = PAGES[name];
  leaving();
  const run = ++shown;
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const container = h('div');      // a page of its own: a slower, older render fills a detached one
  fill($('page'), container);
  if (!entry) {
    document.title = 'Not found · Gateway console';
    fill(container, h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No such page. Pick one from the menu.'));
    return;
  }
  document.title = `${entry.title} · Gateway console`;
  const abort = new AbortController();
  const ctx = context(params, abort.signal);
  const stopTimers = leaving;
  leaving = () => { stopTimers(); abort.abort(); };
  try {
    await entry.page.render(container, ctx);
  } catch (err) {
    if (run !== shown || err.name === 'AbortError' || err.status === 401) return;
    container.append(h('p', { class: 'error', role: 'alert' }, `Could not load this page: ${err.message}`));
  }
  if (focus && run === shown) container.querySelector('h1')?.focus();
}

function showSignedIn(session) {
  user = session;
  $('who-name').textContent = session.name;
  $('who-role').textContent = session.role;
  $('who').hidden = false;
  $('nav').hidden = false;
  $('sign-in').hidden = true;
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/overview');
  route({ focus: false });
}

function showSignIn(message = '') {
  user = null;
  leaving();
  fill($('page'));
  $('who').hidden = true;
  $('nav').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  document.title = 'Sign in · Gateway console';
  $('sign-in-key').focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $('sign-in-key');
  const button = event.target.querySelector('button');
  button.disabled = true;
  $('sign-in-error').textContent = '';
  try {
    const answer = await api('session', { method: 'POST', json: { key: input.value } });
    input.value = '';
    const session = await api('session').catch(() => answer);
    showSignedIn(session);
    announce(`Signed in as ${session.name} (${session.role}).`);
  } catch (err) {
    $('sign-in-error').textContent = err.status === 401 ? 'That key was not accepted.' : err.message;
    input.select();
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await api('session', { method: 'DELETE' });
  } catch (err) {
    if (err.status !== 401) { announce(`Sign-out failed: ${err.message}`, 'error'); return; }
  }
  showSignIn();
  announce('Signed out.');
}

async function start() {
  onSignedOut(() => showSignIn('Your session ended: sign in again.'));
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('skip').addEventListener('click', (e) => { e.preventDefault(); $('main').focus(); });
  window.addEventListener('hashchange', () => route());
  try {
    showSignedIn(await api('session'));
  } catch (err) {
    showSignIn(err.status === 401 ? '' : `The gateway did not answer as expected: ${err.message}`);
  }
}

start();
