// The REST API with the tab's bearer token (sessionStorage: gone when the tab closes).

const KEY = 'icebridge.token';

export const session = {
  token: () => sessionStorage.getItem(KEY),
  signIn: (token) => sessionStorage.setItem(KEY, token),
  signOut: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const message = body && typeof body === 'object' ? body.message || JSON.stringify(body) : String(body || '');
    super(message || `HTTP ${status}`);
    this.status = status;
    this.error = body && body.error;
    this.detail = body && body.detail;
    this.title = body && body.error ? `${body.error}:` : `HTTP ${status}:`;
  }
}

function headers(extra) {
  return { Authorization: `Bearer ${session.token() || ''}`, ...extra };
}

// JSON with its integers beyond 2^53 (snapshot ids) kept exact, as their digits: a number would round them
function parse(text) {
  return JSON.parse(text, (key, value, context) => (typeof value === 'number' && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source) ? context.source : value));
}

async function answer(response) {
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? parse(await response.text()) : await response.text();
  if (response.status === 401) {
    session.signOut();
    window.dispatchEvent(new CustomEvent('icebridge:signed-out'));
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function api(path, { method = 'GET', body, signal } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  return answer(await fetch(`/api/v1${path}`, init));
}

export async function check(token) {
  const response = await fetch('/api/v1/catalogs', { headers: { Authorization: `Bearer ${token}` } });
  return response.ok;
}

export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return pairs.length ? `?${new URLSearchParams(pairs.map(([k, v]) => [k, String(v)]))}` : '';
}

// A run's Server-Sent Events, read through fetch so the token goes in a header (EventSource cannot).
export async function follow(runId, onEvent, signal) {
  const response = await fetch(`/api/v1/runs/${runId}/events`, { headers: headers({ Accept: 'text/event-stream' }), signal });
  if (!response.ok) return answer(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let name = 'message';
  let data = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return undefined;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, cut).replace(/\r$/, '');
      buffer = buffer.slice(cut + 1);
      if (line.startsWith('event: ')) name = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
      else if (line === '') {
        if (data) onEvent(name, parse(data));
        name = 'message';
        data = '';
      }
    }
  }
}

// A run's reports opened in a tab of their own from a fresh signed link (POST /reports/{run}/links): every file
// of the run's report folder is under the link's prefix, so the pages' own links, scripts and styles resolve
// there, without the token, until the link expires (15 minutes).
async function openLinked(runId, pick) {
  const link = await api(`/reports/${runId}/links`, { method: 'POST' });
  const url = pick(link);
  if (!url) throw new ApiError(404, { error: 'NotFound', message: `run ${runId} has no such report` });
  window.open(url, '_blank', 'noopener,noreferrer');
  return url;
}

// The HTML validation report of a run.
export function openReport(runId) {
  return openLinked(runId, (link) => link.html);
}

// One page of the Great Expectations Data Docs a run wrote ('index.html', 'validations/…/….html').
export function openDataDocs(runId, page) {
  const path = page.split('/').map(encodeURIComponent).join('/');
  return openLinked(runId, (link) => link.data_docs && link.data_docs.replace(/index\.html$/, path));
}
