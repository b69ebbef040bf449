// Discover: the saved inventory, searched, sorted and paginated by the server.

import { api, query } from '../api.js';
import { barChart } from '../charts.js';
import { announce, append, bytes, clear, count, debounce, errorBox, h, when } from '../dom.js';

const COLUMNS = [
  ['table', 'Table'],
  ['format_version', 'Format'],
  ['bytes', 'Size'],
  ['files', 'Files'],
  ['snapshots', 'Snapshots'],
  ['records', 'Records'],
  [null, 'Features'],
  ['blockers', 'Blockers'],
];

export async function render(main) {
  const state = { q: '', sort: 'table', desc: false, offset: 0, limit: 50, seq: 0, controller: null };
  const search = h('input', { id: 'inventory-search', type: 'search', autocomplete: 'off', 'aria-controls': 'inventory-table' });
  const size = h('select', { id: 'page-size' }, [25, 50, 100, 200].map((n) => h('option', { value: n, text: n, selected: n === 50 })));
  const status = h('p', { id: 'inventory-status', class: 'meta', 'aria-live': 'polite' });
  const chart = h('div', { class: 'chart-box' });
  const table = h('table', { id: 'inventory-table', class: 'grid' });
  const pager = h('div', { class: 'pager' });
  const captured = h('p', { class: 'meta' });
  const refresh = h('button', { type: 'button', text: 'Read the catalogs again' });
  const problems = h('div');

  append(
    main,
    h('h1', { text: 'Discover' }),
    h('p', { class: 'lead', text: 'Every source table: size, files, snapshots, the features a migration must carry, and what blocks it.' }),
    h('div', { class: 'toolbar' }, h('div', {}, h('label', { for: 'inventory-search', text: 'Search tables' }), search), h('div', {}, h('label', { for: 'page-size', text: 'Tables per page' }), size), refresh),
    captured,
    problems,
    status,
    table,
    pager,
    h('h2', { text: 'Bytes by namespace' }),
    chart,
  );

  async function load() {
    state.seq += 1;
    const seq = state.seq;
    if (state.controller) state.controller.abort();
    state.controller = new AbortController();
    let page;
    try {
      page = await api(`/inventory/tables${query({ q: state.q, sort: state.sort, desc: state.desc, offset: state.offset, limit: state.limit })}`, { signal: state.controller.signal });
    } catch (error) {
      if (error.name !== 'AbortError') clear(problems, errorBox(error));
      return;
    }
    if (seq !== state.seq) return;
    clear(problems);
    draw(page);
  }

  function header() {
    return h(
      'thead',
      {},
      h(
        'tr',
        {},
        COLUMNS.map(([key, label]) => {
          if (!key) return h('th', { scope: 'col', text: label });
          const active = state.sort === key;
          const button = h('button', { type: 'button', class: 'sort', text: label });
          button.addEventListener('click', () => {
            state.desc = active ? !state.desc : key !== 'table';
            state.sort = key;
            state.offset = 0;
            load();
          });
          return h('th', { scope: 'col', 'aria-sort': active ? (state.desc ? 'descending' : 'ascending') : 'none' }, button);
        }),
      ),
    );
  }

  function draw(page) {
    clear(captured, page.captured_at ? `Inventory read ${when(page.captured_at)}.` : 'No inventory yet: read the catalogs first.');
    const first = page.matched ? page.offset + 1 : 0;
    const last = Math.min(page.offset + page.limit, page.matched);
    const text = page.matched
      ? `Showing ${count(first)}–${count(last)} of ${count(page.matched)} matching tables (${count(page.total)} in the inventory).`
      : `No table matches (${count(page.total)} in the inventory).`;
    clear(status, text);
    const body = h('tbody');
    for (const row of page.rows) {
      body.append(
        h(
          'tr',
          { class: row.blockers.length ? 'blocked' : null },
          h('th', { scope: 'row', class: 'name', text: row.table }),
          h('td', { text: `v${row.format_version}` }),
          h('td', { class: 'num', text: bytes(row.bytes) }),
          h('td', { class: 'num', text: count(row.files) }),
          h('td', { class: 'num', text: count(row.snapshots) }),
          h('td', { class: 'num', text: count(row.records) }),
          h('td', {}, row.features.map((f) => h('span', { class: 'chip', text: f }))),
          h('td', {}, row.blockers.length ? row.blockers.map((b) => h('p', { class: 'blocker', text: `${b.message}${b.fix ? ` — fix: ${b.fix}` : ''}` })) : 'none'),
        ),
      );
    }
    clear(table, h('caption', { class: 'sr-only', text: 'Source tables' }), header(), body);
    const prev = h('button', { type: 'button', text: 'Previous page', disabled: page.offset === 0 });
    const next = h('button', { type: 'button', text: 'Next page', disabled: last >= page.matched });
    prev.addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - state.limit);
      load();
    });
    next.addEventListener('click', () => {
      state.offset += state.limit;
      load();
    });
    const pages = Math.max(1, Math.ceil(page.matched / page.limit));
    clear(pager, prev, h('span', { text: `Page ${Math.floor(page.offset / page.limit) + 1} of ${pages}` }), next);
    clear(
      chart,
      page.namespaces.length
        ? barChart(
            page.namespaces.map((n) => ({ label: n.namespace, value: n.bytes })),
            { title: 'Bytes by namespace', caption: page.namespaces.map((n) => `${n.namespace}: ${bytes(n.bytes)} in ${n.tables} tables`).join('; '), format: bytes },
          )
        : h('p', { text: 'No tables.' }),
    );
    document.body.dataset.inventoryShownAt = String(performance.now());
    announce(text);
  }

  search.addEventListener(
    'input',
    debounce(() => {
      state.q = search.value.trim();
      state.offset = 0;
      load();
    }, 120),
  );
  size.addEventListener('change', () => {
    state.limit = Number(size.value);
    state.offset = 0;
    load();
  });
  refresh.addEventListener('click', async () => {
    refresh.disabled = true;
    clear(status, 'Reading the source catalogs…');
    try {
      await api('/inventory', { method: 'POST', body: { refresh: true } });
      await load();
    } catch (error) {
      clear(problems, errorBox(error));
    } finally {
      refresh.disabled = false;
    }
  });
  await load();
}
