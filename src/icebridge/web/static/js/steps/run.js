// Run: start a migration, then follow it live from its event stream — per-table progress with bytes,
// throughput and ETA, cancel, failures with their reason and a retry, and the run's pictures.

import { api, follow } from '../api.js';
import { barChart, lineChart, timeline } from '../charts.js';
import { announce, append, bytes, clear, count, duration, errorBox, exactGlob, h, when } from '../dom.js';

export async function render(main, params) {
  if (params[0]) return watch(main, Number(params[0]));
  return start(main);
}

async function start(main) {
  const tables = h('input', { id: 'run-tables', type: 'text', placeholder: 'every planned table', spellcheck: 'false' });
  const engine = h('input', { id: 'run-engine', type: 'text', placeholder: 'as the mapping rules say', spellcheck: 'false' });
  const problems = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'start-title' },
    h('h2', { id: 'start-title', text: 'Start a migration' }),
    h('p', { text: 'Scaffold, copy and validate the chosen tables. Tables already migrated are skipped; interrupted ones resume.' }),
    h('div', { class: 'row' }, h('div', {}, h('label', { for: 'run-tables', text: 'Tables (glob, optional)' }), tables), h('div', {}, h('label', { for: 'run-engine', text: 'Engine (optional)' }), engine)),
    h('button', { type: 'submit', class: 'primary', text: 'Start migration' }),
    problems,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const run = await api('/runs', { method: 'POST', body: { command: 'migrate', tables: tables.value.trim() || null, engine: engine.value.trim() || null } });
      window.location.hash = `#/run/${run.id}`;
    } catch (error) {
      clear(problems, errorBox(error));
    }
  });
  append(main, h('h1', { text: 'Run' }), form, h('h2', { text: 'Recent runs' }), await recentRuns());
}

export async function recentRuns(kinds = ['migrate', 'validate', 'cutover', 'rollback', 'sync'], target = 'run') {
  let runs;
  try {
    runs = await api('/runs?limit=20');
  } catch (error) {
    return errorBox(error);
  }
  const shown = runs.filter((r) => kinds.includes(r.kind));
  if (!shown.length) return h('p', { text: 'No runs yet.' });
  return h(
    'ul',
    { class: 'runs' },
    shown.map((r) => h('li', {}, h('a', { href: `#/${target}/${r.id}`, text: `Run ${r.id}: ${r.kind} ${r.status}` }), ` — started ${when(r.started_at)}${r.started_by ? ` by ${r.started_by}` : ''}`)),
  );
}

const FINISHED = ['succeeded', 'failed', 'interrupted'];

function ms(iso) {
  return new Date(iso).getTime();
}

export class RunModel {
  constructor() {
    this.tables = new Map();
    this.t0 = null;
    this.samples = [];
    this.copied = 0;
    this.commits = [];
    this.status = 'queued';
  }

  table(name) {
    if (!this.tables.has(name)) {
      this.tables.set(name, { source: name, destination: '', phase: 'planned', status: 'pending', files: 0, bytes: 0, filesTotal: 0, bytesTotal: 0, phaseStart: null, segments: [], message: '', committed: 0, lastBatch: null });
    }
    return this.tables.get(name);
  }

  openPhase(entry, phase, at) {
    const last = entry.segments[entry.segments.length - 1];
    if (last && last.end === null) last.end = at;
    entry.segments.push({ phase, start: at, end: null });
    entry.phase = phase;
    entry.phaseStart = at;
    entry.files = 0;
    entry.bytes = 0;
    entry.phaseCommitted = { files: 0, bytes: 0 };
  }

  apply(kind, event) {
    const at = ms(event.at);
    if (this.t0 === null) this.t0 = at;
    const data = event.data || {};
    const entry = event.table ? this.table(event.table) : null;
    switch (kind) {
      case 'run-started':
        this.status = 'running';
        this.t0 = at;
        break;
      case 'table-started':
        entry.destination = data.destination || entry.destination;
        entry.status = 'running';
        this.openPhase(entry, data.phase, at);
        entry.filesTotal = data.files_total;
        entry.bytesTotal = data.bytes_total;
        break;
      case 'phase-started':
        this.openPhase(entry, data.phase, at);
        if (data.files_total !== null && data.files_total !== undefined) entry.filesTotal = data.files_total;
        if (data.bytes_total !== null && data.bytes_total !== undefined) entry.bytesTotal = data.bytes_total;
        break;
      case 'progress':
        entry.files += data.files || 0;
        entry.bytes += data.bytes || 0;
        if (data.phase === 'copy') {
          this.copied += data.bytes || 0;
          this.samples.push({ x: (at - this.t0) / 1000, y: this.copied });
        }
        break;
      case 'batch-committed':
        entry.committed += data.bytes || 0;
        // a stream read from the event log has no progress increments: the commits move the bar then
        if (entry.phaseCommitted) {
          entry.phaseCommitted.files += data.files || 0;
          entry.phaseCommitted.bytes += data.bytes || 0;
          entry.files = Math.max(entry.files, entry.phaseCommitted.files);
          entry.bytes = Math.max(entry.bytes, entry.phaseCommitted.bytes);
        }
        entry.lastBatch = { batch: data.batch, at: event.at, shown: null };
        this.commits.push({ x: (at - this.t0) / 1000, bytes: data.bytes || 0 });
        break;
      case 'retry':
        entry && (entry.message = event.message);
        break;
      case 'table-finished': {
        const last = entry.segments[entry.segments.length - 1];
        if (last && last.end === null) last.end = at;
        entry.status = data.status;
        entry.phase = data.phase;
        entry.rows = data.rows;
        entry.finalBytes = data.bytes;
        entry.message = data.outcome || '';
        entry.seconds = data.seconds;
        break;
      }
      case 'run-finished':
        this.status = data.status;
        break;
      default:
        break;
    }
  }

  throughput() {
    if (this.samples.length) return this.samples;
    let total = 0;
    return this.commits.map((c) => ({ x: c.x, y: (total += c.bytes) }));
  }
}

async function watch(main, runId) {
  const controller = new AbortController();
  const model = new RunModel();
  const heading = h('h1', { text: `Run ${runId}` });
  const status = h('p', { id: 'run-status', class: 'meta', 'aria-live': 'polite' });
  const cancel = h('button', { type: 'button', class: 'danger', text: 'Cancel the run' });
  const problems = h('div', { 'aria-live': 'polite' });
  const body = h('tbody');
  const grid = h(
    'table',
    { class: 'grid', id: 'run-tables' },
    h('caption', { class: 'sr-only', text: 'Tables of the run' }),
    h('thead', {}, h('tr', {}, ['Table', 'Phase', 'Progress', 'Throughput', 'ETA', 'Status'].map((t) => h('th', { scope: 'col', text: t })))),
    body,
  );
  const charts = h('div', { class: 'charts' });
  const after = h('p');
  append(main, heading, status, h('div', { class: 'toolbar' }, cancel, h('a', { href: '#/run', text: 'Start another run' })), problems, grid, after, h('h2', { text: 'Pictures of the run' }), charts);

  let detail;
  try {
    detail = await api(`/runs/${runId}`);
  } catch (error) {
    append(main, errorBox(error));
    return undefined;
  }
  clear(heading, `Run ${runId}: ${detail.kind}`);
  model.status = detail.status;
  for (const t of detail.tables) {
    const entry = model.table(t.source);
    Object.assign(entry, { destination: t.destination, phase: t.phase, status: t.status, committed: t.bytes, message: t.message || '' });
  }

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await api(`/runs/${runId}/cancel`, { method: 'POST' });
      announce('Cancellation asked for; the tables stop between commits.');
    } catch (error) {
      clear(problems, errorBox(error));
    }
  });

  const rows = new Map();
  function row(entry) {
    if (rows.has(entry.source)) return rows.get(entry.source);
    const bar = h('progress', { max: 1, value: 0, 'aria-label': `${entry.source} progress` });
    const cells = {
      phase: h('td'),
      progressText: h('span', { class: 'meta' }),
      rate: h('td', { class: 'num' }),
      eta: h('td', { class: 'num' }),
      status: h('td'),
      bar,
    };
    const tr = h('tr', { 'data-table': entry.source }, h('th', { scope: 'row', class: 'name', text: entry.source }), cells.phase, h('td', {}, bar, ' ', cells.progressText), cells.rate, cells.eta, cells.status);
    cells.tr = tr;
    rows.set(entry.source, cells);
    body.append(tr);
    return cells;
  }

  function drawRow(entry, now) {
    const cells = row(entry);
    cells.phase.textContent = entry.phase;
    const running = entry.status === 'running';
    const done = entry.status === 'succeeded' || entry.status === 'skipped';
    const total = entry.bytesTotal || 0;
    const fraction = done ? 1 : total ? Math.min(1, entry.bytes / total) : 0;
    cells.bar.value = fraction;
    cells.bar.setAttribute('aria-valuetext', `${Math.round(fraction * 100)} percent`);
    cells.progressText.textContent = running ? `${bytes(entry.bytes)} of ${bytes(total)} (${count(entry.files)} of ${count(entry.filesTotal)} files)` : done ? `${bytes(entry.finalBytes ?? entry.committed)}` : '';
    const seconds = entry.phaseStart ? (now - entry.phaseStart) / 1000 : 0;
    const rate = running && seconds > 0 ? entry.bytes / seconds : null;
    const moved = entry.finalBytes ?? entry.committed;
    const average = done && entry.seconds && moved ? `${bytes(moved / entry.seconds)}/s over ${duration(entry.seconds)}` : '–';
    cells.rate.textContent = rate ? `${bytes(rate)}/s` : average;
    cells.eta.textContent = rate && total > entry.bytes ? duration((total - entry.bytes) / rate) : '–';
    if (entry.lastBatch) {
      cells.tr.dataset.lastBatch = String(entry.lastBatch.batch);
      cells.tr.dataset.lastBatchAt = entry.lastBatch.at;
      if (entry.lastBatch.shown === null) entry.lastBatch.shown = Date.now();
      cells.tr.dataset.lastBatchShownAt = String(entry.lastBatch.shown);
    }
    const failed = entry.status === 'failed';
    cells.tr.className = failed ? 'failed' : done ? 'done' : '';
    const statusText = h('span', { class: `state ${entry.status}`, text: entry.status });
    const parts = [statusText];
    if (entry.message) parts.push(h('p', { class: failed ? 'reason' : 'meta', text: entry.message }));
    if (failed && model.status !== 'running') {
      const retry = h('button', { type: 'button', text: 'Retry', 'aria-label': `Retry ${entry.source}` });
      retry.addEventListener('click', async () => {
        try {
          const again = await api('/runs', { method: 'POST', body: { command: detail.kind === 'migrate' ? 'migrate' : detail.kind, tables: exactGlob(entry.source) } });
          window.location.hash = `#/run/${again.id}`;
        } catch (error) {
          clear(problems, errorBox(error));
        }
      });
      parts.push(retry);
    }
    const key = JSON.stringify([entry.status, entry.message, model.status]);
    if (cells.statusKey !== key) {
      cells.statusKey = key;
      clear(cells.status, parts);
    }
  }

  let chartsDrawnAt = 0;
  function draw(force = false) {
    const now = Date.now();
    const entries = [...model.tables.values()].sort((a, b) => a.source.localeCompare(b.source));
    for (const entry of entries) drawRow(entry, now);
    const done = entries.filter((e) => ['succeeded', 'failed', 'skipped'].includes(e.status)).length;
    const failed = entries.filter((e) => e.status === 'failed').length;
    status.textContent = `${model.status} · ${done} of ${entries.length} tables done${failed ? ` · ${failed} failed` : ''}`;
    cancel.hidden = !['queued', 'running'].includes(model.status);
    if (!force && now - chartsDrawnAt < 1000) return;
    chartsDrawnAt = now;
    const series = model.throughput();
    const t0 = model.t0 || now;
    const segments = entries.filter((e) => e.segments.length).map((e) => ({ label: e.source, segments: e.segments.map((g) => ({ phase: g.phase, start: g.start, end: g.end ?? now })) }));
    clear(
      charts,
      lineChart([{ x: 0, y: 0 }, ...series], { title: 'Bytes copied over time', caption: `${bytes(series.length ? series[series.length - 1].y : 0)} copied in ${duration((now - t0) / 1000)}.`, format: bytes }),
      barChart(
        entries.map((e) => ({ label: e.source, value: e.finalBytes ?? (e.committed || e.bytes) })),
        { title: 'Bytes by table', caption: entries.map((e) => `${e.source}: ${bytes(e.finalBytes ?? (e.committed || e.bytes))}`).join('; '), format: bytes },
      ),
      segments.length ? timeline(segments, { title: 'Phases per table', caption: 'Each table’s scaffold, copy and validate phases over the run.' }) : null,
    );
  }

  let pending = false;
  function soon() {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      draw();
    }, 100);
  }
  draw(true);
  const ticker = setInterval(() => draw(), 1000);
  // a stream opened while the run waits in the queue is read from the event log (no progress
  // increments): wait until a worker has taken the run, so the stream follows it live
  while (detail.status === 'queued' && !controller.signal.aborted) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      detail = await api(`/runs/${runId}`);
    } catch (error) {
      break;
    }
  }

  follow(
    runId,
    (kind, event) => {
      if (kind === 'end') {
        model.status = event.status;
        return;
      }
      model.apply(kind, event);
      if (kind === 'batch-committed' || kind === 'table-finished' || kind === 'table-started') draw();
      else soon();
    },
    controller.signal,
  )
    .then(async () => {
      clearInterval(ticker);
      try {
        // the run's detail may lag its stream by a moment: wait until it too says the run ended
        for (let tries = 0; tries < 40; tries += 1) {
          const final = await api(`/runs/${runId}`);
          if (FINISHED.includes(final.status)) {
            model.status = final.status;
            for (const t of final.tables) Object.assign(model.table(t.source), { status: t.status, phase: t.phase, message: t.message || '', finalBytes: t.bytes });
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      } catch (error) {
        clear(problems, errorBox(error));
      }
      draw(true);
      announce(`Run ${runId} ${model.status}`);
      if (['migrate', 'validate', 'cutover'].includes(detail.kind)) clear(after, h('a', { href: `#/validate/${runId}`, text: `See the validation of run ${runId}` }));
    })
    .catch((error) => {
      if (error.name === 'AbortError') return;
      console.error(error);
      clear(problems, errorBox(error));
    });

  return () => {
    controller.abort();
    clearInterval(ticker);
  };
}
