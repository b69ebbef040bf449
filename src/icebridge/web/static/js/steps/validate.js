// Validate: per table, the levels that ran and what each proved; mismatches with their drill-down rows;
// the run's HTML report; pass/fail at a glance.

import { api, openDataDocs, openReport } from '../api.js';
import { passFail } from '../charts.js';
import { append, clear, errorBox, h } from '../dom.js';
import { recentRuns } from './run.js';

export async function render(main, params) {
  append(main, h('h1', { text: 'Validate' }));
  const runId = params[0] ? Number(params[0]) : await newestValidated();
  const again = h('form', { class: 'toolbar', 'aria-label': 'Validate again' });
  const level = h('select', { id: 'validate-level' }, h('option', { value: '', text: 'the levels of each strategy' }), [1, 2, 3, 4].map((n) => h('option', { value: n, text: `levels 1 to ${n}` })));
  const tables = h('input', { id: 'validate-tables', type: 'text', placeholder: 'every migrated table', spellcheck: 'false' });
  const problems = h('div', { 'aria-live': 'polite' });
  append(again, h('div', {}, h('label', { for: 'validate-tables', text: 'Tables (glob, optional)' }), tables), h('div', {}, h('label', { for: 'validate-level', text: 'Levels' }), level), h('button', { type: 'submit', text: 'Validate again' }));
  again.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const run = await api('/runs', { method: 'POST', body: { command: 'validate', tables: tables.value.trim() || null, level: level.value ? Number(level.value) : null } });
      window.location.hash = `#/run/${run.id}`;
    } catch (error) {
      clear(problems, errorBox(error));
    }
  });
  append(main, again, problems);
  if (!runId) {
    append(main, h('p', { text: 'No run has validated a table yet: migrate first.' }));
    return;
  }
  let report;
  try {
    report = await api(`/reports/${runId}`);
  } catch (error) {
    append(main, errorBox(error));
    return;
  }
  const passed = report.tables.filter((t) => t.verdict === 'passed').length;
  const failed = report.tables.length - passed;
  const reportButton = h('button', { type: 'button', text: `Open the HTML report of run ${runId}`, disabled: !report.html });
  reportButton.addEventListener('click', async () => {
    try {
      await openReport(runId);
    } catch (error) {
      clear(problems, errorBox(error));
    }
  });
  const glance = h(
    'ul',
    { class: 'tiles', 'aria-label': 'Verdict per table' },
    report.tables.map((t) => h('li', { class: t.verdict === 'passed' ? 'pass' : 'fail' }, h('span', { class: 'name', text: t.source }), h('strong', { text: t.verdict }))),
  );
  append(
    main,
    h('h2', { id: 'validation-title', text: `Run ${runId}: ${report.kind} ${report.status}` }),
    h('div', { class: 'glance' }, passFail(passed, failed, { title: 'Tables passed', caption: `${passed} of ${report.tables.length} tables passed validation${failed ? `, ${failed} failed` : ''}.` }), glance),
    h('div', { class: 'toolbar' }, reportButton, report.html ? null : h('span', { class: 'meta', text: 'This run wrote no HTML report.' })),
    dataDocs(runId, report.data_docs || [], problems),
    report.tables.map(tableReport),
    h('h2', { text: 'Other runs' }),
    await recentRuns(['migrate', 'validate', 'cutover'], 'validate'),
  );
}

// The Great Expectations Data Docs the run wrote (reports: {data_docs: true}): each page opened from a signed link.
function dataDocs(runId, pages, problems) {
  if (!pages.length) return null;
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'data-docs-title' },
    h('h2', { id: 'data-docs-title', text: 'Great Expectations Data Docs' }),
    h('p', { class: 'meta', text: `The same evidence as checkpoints of Great Expectations, written by run ${runId}. Each page opens in a new tab from a link that works for 15 minutes; from there, the site's own links lead to its other pages.` }),
    h(
      'ul',
      { class: 'data-docs' },
      pages.map((page) => {
        const button = h('button', { type: 'button', text: page === 'index.html' ? 'Open the Data Docs index' : `Open ${page}` });
        button.addEventListener('click', async () => {
          try {
            await openDataDocs(runId, page);
          } catch (error) {
            clear(problems, errorBox(error));
          }
        });
        return h('li', {}, button);
      }),
    ),
  );
}

async function newestValidated() {
  const runs = await api('/runs?limit=50');
  const run = runs.find((r) => ['migrate', 'validate', 'cutover'].includes(r.kind) && r.report_path);
  return run ? run.id : null;
}

function tableReport(table) {
  return h(
    'section',
    { class: `card verdict-${table.verdict.replace(/ /g, '-')}`, 'aria-label': `Validation of ${table.source}` },
    h('h3', {}, h('span', { class: 'name', text: table.source }), ' → ', h('span', { class: 'name', text: table.destination })),
    h('p', { class: 'meta', text: `${table.strategy} · ${table.verdict}` }),
    h(
      'table',
      { class: 'grid' },
      h('caption', { class: 'sr-only', text: `Levels of ${table.source}` }),
      h('thead', {}, h('tr', {}, ['Level', 'Comparator', 'Result', 'What it found', 'What it proves'].map((t) => h('th', { scope: 'col', text: t })))),
      h(
        'tbody',
        {},
        table.levels.map((l) =>
          h(
            'tr',
            { class: l.passed ? null : 'failed' },
            h('td', { text: `${l.level} ${l.level_name}` }),
            h('td', { text: l.comparator }),
            h('td', {}, h('strong', { class: l.passed ? 'state succeeded' : 'state failed', text: l.passed ? 'passed' : 'failed' })),
            h('td', {}, l.summary, l.passed ? null : details(l.details)),
            h('td', { text: l.proves || '–' }),
          ),
        ),
      ),
    ),
  );
}

function details(data) {
  const shown = new Set(['summary', 'level_name', 'proves']); // already in the row
  const entries = Object.entries(data || {}).filter(([key]) => !shown.has(key));
  if (!entries.length) return null;
  const out = h('details', {}, h('summary', { text: 'Details and differing rows' }));
  for (let [key, value] of entries) {
    if (Array.isArray(value) && value.length && typeof value[0] === 'object' && value[0] !== null) {
      // drill-down samples carry their row as an object: its columns become the table's columns
      value = value.map((v) => (v.row && typeof v.row === 'object' && !Array.isArray(v.row) ? { ...withoutRow(v), ...v.row } : v));
      const columns = [...new Set(value.flatMap((v) => Object.keys(v)))];
      out.append(
        h('h4', { text: key }),
        h('table', { class: 'grid small' }, h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: c })))), h('tbody', {}, value.map((v) => h('tr', {}, columns.map((c) => h('td', { text: typeof v[c] === 'object' ? JSON.stringify(v[c]) : String(v[c] ?? '') })))))),
      );
    } else {
      out.append(h('p', {}, h('strong', { text: `${key}: ` }), typeof value === 'object' ? JSON.stringify(value) : String(value)));
    }
  }
  return out;
}

function withoutRow(entry) {
  const copy = { ...entry };
  delete copy.row;
  return copy;
}
