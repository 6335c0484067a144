// The admin API, as the console calls it: the session cookie on every call, the CSRF header on
// every change, and OpenAI-shaped errors turned into ApiError.

// /ui/api.js -> /admin/: works whether the page was opened as /ui or /ui/.
const ADMIN = new URL('../admin/', import.meta.url);

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `The gateway answered ${status}.`);
    this.status = status;
    this.type = error?.type;
    this.code = error?.code;
    this.param = error?.param;
    this.errors = Array.isArray(error?.errors) ? error.errors : [];
  }
}

let signedOut = () => {};

/** What to do when a call answers 401 (the session ended): the app shows the sign-in form. */
export function onSignedOut(fn) {
  signedOut = fn;
}

/** The URL of an admin path ("keys", "videos/x/content?variant=thumbnail"). */
export function adminUrl(path) {
  return new URL(path, ADMIN).href;
}

/**
 * Call an admin path. `json` is sent as JSON; `body` as is, with `type` as its content type.
 * Answers the parsed JSON, the text (for any other content type), or null (204).
 */
export async function api(path, { method = 'GET', json, body, type, accept, signal } = {}) {
  const headers = {};
  if (method !== 'GET' && method !== 'HEAD') headers['x-console-csrf'] = '1';
  if (accept) headers.accept = accept;
  if (json !== undefined) {
    body = JSON.stringify(json);
    type = 'application/json';
  }
  if (type) headers['content-type'] = type;
  const res = await fetch(adminUrl(path), { method, headers, body, credentials: 'same-origin', signal });
  if (res.status === 204) return null;
  const contentType = res.headers.get('content-type') || '';
  const answer = contentType.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const err = new ApiError(res.status, answer?.error);
    if (res.status === 401 && !path.startsWith('session')) signedOut(err);
    throw err;
  }
  return answer;
}

/** A query string of the given parameters that have a value. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
