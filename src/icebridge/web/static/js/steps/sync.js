// Sync: how far each copied table is behind its source, in time and in snapshots, and a sync of one
// table or of every lagging one, followed live from each run's event stream.

import { api, follow } from '../api.js';
import { announce, append, bytes, clear, count, duration, errorBox, exactGlob, h } from '../dom.js';
import { RunModel } from './run.js';

const FINISHED = ['succeeded', 'failed', 'interrupted'];
const STREAMS = 2;

export async function render(main) {
  append(main, h('h1', { text: 'Sync' }), h('p', { class: 'lead', text: 'Copied tables whose source has moved on since the copy: snapshots and time behind. A sync replays the source’s new commits on the destination.' }));
  const controller = new AbortController();
  const out = h('div', { 'aria-live': 'polite' });
  const reload = h('button', { type: 'button', text: 'Read the lag again' });
  const syncAll = h('button', { type: 'button', class: 'primary', text: 'Sync every lagging table', disabled: true });
  const progress = h('section', { id: 'sync-runs', 'aria-labelledby': 'sync-runs-title', hidden: true });
  append(main, h('div', { class: 'toolbar' }, reload, syncAll), out, progress);
  let lagging = [];
  let busy = false;

  async function load() {
    clear(out, h('p', { text: 'Reading the sources…' }));
    let lag;
    try {
      lag = await api('/lag');
    } catch (error) {
      clear(out, errorBox(error));
      return;
    }
    lagging = lag.tables.filter((t) => !t.error && t.snapshots_behind);
    syncAll.disabled = busy || !lagging.length;
    clear(syncAll, lagging.length ? `Sync the ${lagging.length} lagging ${lagging.length === 1 ? 'table' : 'tables'}` : 'Sync every lagging table');
    if (!lag.tables.length) {
      clear(out, h('p', { text: 'No copied table yet.' }));
      return;
    }
    const behind = lagging.length;
    clear(
      out,
      h('p', { class: behind ? 'notice warn' : 'notice ok', text: behind ? `${behind} of ${lag.tables.length} copied tables are behind their source.` : `All ${lag.tables.length} copied tables are up to date with their source.` }),
      h(
        'table',
        { class: 'grid', id: 'lag-table' },
        h('caption', { class: 'sr-only', text: 'Lag per table' }),
        h('thead', {}, h('tr', {}, ['Table', 'Snapshots behind', 'Time behind', 'Copied snapshot', 'Source snapshot', 'Sync'].map((t) => h('th', { scope: 'col', text: t })))),
        h(
          'tbody',
          {},
          lag.tables.map((t) => {
            const button = t.error ? null : h('button', { type: 'button', text: 'Sync now', 'aria-label': `Sync now: ${t.source}`, disabled: busy });
            if (button) button.addEventListener('click', () => sync([t.source]));
            return h(
              'tr',
              { class: t.error ? 'failed' : t.snapshots_behind ? 'behind' : null },
              h('th', { scope: 'row', class: 'name', text: t.source }),
              h('td', { class: 'num', text: t.error ? 'unknown' : count(t.snapshots_behind) }),
              h('td', { class: 'num', text: t.error ? t.error : duration(t.seconds_behind) }),
              h('td', { class: 'num', text: t.copied_snapshot_id ?? '–' }),
              h('td', { class: 'num', text: t.current_snapshot_id ?? '–' }),
              h('td', {}, button),
            );
          }),
        ),
      ),
    );
  }

  // one run per table (a glob names exactly one), each followed from its event stream
  async function sync(tables) {
    busy = true;
    syncAll.disabled = true;
    for (const b of out.querySelectorAll('button')) b.disabled = true;
    const model = new RunModel();
    const body = h('tbody');
    const status = h('p', { id: 'sync-status', class: 'meta', role: 'status' });
    const problems = h('div');
    progress.hidden = false;
    clear(
      progress,
      h('h2', { id: 'sync-runs-title', text: tables.length === 1 ? 'Sync of 1 table' : `Sync of ${tables.length} tables` }),
      status,
      problems,
      h(
        'table',
        { class: 'grid', id: 'sync-tables' },
        h('caption', { class: 'sr-only', text: 'Tables being synced' }),
        h('thead', {}, h('tr', {}, ['Table', 'Run', 'Phase', 'Progress', 'Status'].map((t) => h('th', { scope: 'col', text: t })))),
        body,
      ),
    );
    const rows = new Map();
    const runs = [];
    function draw() {
      for (const { source, run } of runs) {
        const entry = model.table(source);
        if (!rows.has(source)) {
          const cells = { phase: h('td'), bar: h('progress', { max: 1, value: 0, 'aria-label': `${source} progress` }), text: h('span', { class: 'meta' }), status: h('td') };
          rows.set(source, cells);
          body.append(h('tr', { 'data-table': source }, h('th', { scope: 'row', class: 'name', text: source }), h('td', {}, h('a', { href: `#/run/${run.id}`, text: `run ${run.id}` })), cells.phase, h('td', {}, cells.bar, ' ', cells.text), cells.status));
        }
        const cells = rows.get(source);
        const done = entry.status === 'succeeded' || entry.status === 'skipped';
        const fraction = done ? 1 : entry.bytesTotal ? Math.min(1, entry.bytes / entry.bytesTotal) : 0;
        cells.phase.textContent = entry.phase;
        cells.bar.value = fraction;
        cells.bar.setAttribute('aria-valuetext', `${Math.round(fraction * 100)} percent`);
        cells.text.textContent = entry.status === 'running' ? `${bytes(entry.bytes)} of ${bytes(entry.bytesTotal)} (${count(entry.files)} of ${count(entry.filesTotal)} files)` : '';
        clear(cells.status, h('span', { class: `state ${entry.status}`, text: entry.status }), entry.message ? h('p', { class: entry.status === 'failed' ? 'reason' : 'meta', text: entry.message }) : null);
      }
      const ended = runs.filter((r) => FINISHED.includes(r.status)).length;
      status.textContent = `${ended} of ${runs.length} sync runs ended`;
    }
    for (const source of tables) {
      try {
        const run = await api('/runs', { method: 'POST', body: { command: 'sync', tables: exactGlob(source) } });
        runs.push({ source, run, status: run.status });
      } catch (error) {
        problems.append(errorBox(error));
      }
    }
    draw();
    // a browser keeps about six connections to a server: follow at most STREAMS runs at a time, so the
    // page's other calls are never stuck behind open streams
    const waiting = [...runs];
    const follower = async () => {
      while (waiting.length && !controller.signal.aborted) await watch(waiting.shift(), model, draw, controller.signal);
    };
    await Promise.all(Array.from({ length: Math.min(STREAMS, runs.length) }, follower));
    if (controller.signal.aborted) return;
    draw();
    const failed = runs.filter((r) => r.status !== 'succeeded').length;
    const text = failed ? `Sync: ${failed} of ${runs.length} runs did not succeed.` : `Sync: all ${runs.length} runs succeeded.`;
    progress.append(h('p', { class: failed ? 'notice error' : 'notice ok', text }));
    announce(text);
    busy = false;
    await load();
  }

  reload.addEventListener('click', load);
  syncAll.addEventListener('click', () => sync(lagging.map((t) => t.source)));
  await load();
  return () => controller.abort();
}

// Follow one run: wait until a worker holds it (a queued run's stream is read from the event log, which
// keeps no progress increments), read its stream into the model, then its final state from the run.
async function watch(entry, model, draw, signal) {
  let detail = entry.run;
  try {
    while (detail.status === 'queued' && !signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      detail = await api(`/runs/${entry.run.id}`);
    }
    await follow(
      entry.run.id,
      (kind, event) => {
        if (kind === 'end') entry.status = event.status;
        else if (!event.table || event.table === entry.source) model.apply(kind, event);
        draw();
      },
      signal,
    );
    // the run's detail may lag its stream by a moment: wait until it too says the run ended
    for (let tries = 0; tries < 40 && !signal.aborted; tries += 1) {
      detail = await api(`/runs/${entry.run.id}`);
      if (FINISHED.includes(detail.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    entry.status = detail.status;
    for (const t of detail.tables) Object.assign(model.table(t.source), { status: t.status, phase: t.phase, message: t.message || '' });
    if (!detail.tables.length && detail.error) Object.assign(model.table(entry.source), { status: detail.status, message: detail.error });
  } catch (error) {
    if (error.name === 'AbortError') return;
    entry.status = 'failed';
    Object.assign(model.table(entry.source), { status: 'failed', message: error.message });
  }
}
