// Sync: how far each copied table is behind its source, in time and in snapshots.

import { api } from '../api.js';
import { append, clear, count, duration, errorBox, h } from '../dom.js';

export async function render(main) {
  append(main, h('h1', { text: 'Sync' }), h('p', { class: 'lead', text: 'Copied tables whose source has moved on since the copy: snapshots and time behind.' }));
  const out = h('div', { 'aria-live': 'polite' });
  const reload = h('button', { type: 'button', text: 'Read the lag again' });
  append(main, h('div', { class: 'toolbar' }, reload), out);
  async function load() {
    clear(out, h('p', { text: 'Reading the sources…' }));
    let lag;
    try {
      lag = await api('/lag');
    } catch (error) {
      clear(out, errorBox(error));
      return;
    }
    if (!lag.tables.length) {
      clear(out, h('p', { text: 'No copied table yet.' }));
      return;
    }
    const behind = lag.tables.filter((t) => t.snapshots_behind).length;
    clear(
      out,
      h('p', { class: behind ? 'notice warn' : 'notice ok', text: behind ? `${behind} of ${lag.tables.length} copied tables are behind their source.` : `All ${lag.tables.length} copied tables are up to date with their source.` }),
      h(
        'table',
        { class: 'grid', id: 'lag-table' },
        h('caption', { class: 'sr-only', text: 'Lag per table' }),
        h('thead', {}, h('tr', {}, ['Table', 'Snapshots behind', 'Time behind', 'Copied snapshot', 'Source snapshot'].map((t) => h('th', { scope: 'col', text: t })))),
        h(
          'tbody',
          {},
          lag.tables.map((t) =>
            h(
              'tr',
              { class: t.error ? 'failed' : t.snapshots_behind ? 'behind' : null },
              h('th', { scope: 'row', class: 'name', text: t.source }),
              h('td', { class: 'num', text: t.error ? 'unknown' : count(t.snapshots_behind) }),
              h('td', { class: 'num', text: t.error ? t.error : duration(t.seconds_behind) }),
              h('td', { class: 'num', text: t.copied_snapshot_id ?? '–' }),
              h('td', { class: 'num', text: t.current_snapshot_id ?? '–' }),
            ),
          ),
        ),
      ),
    );
  }
  reload.addEventListener('click', load);
  await load();
}
