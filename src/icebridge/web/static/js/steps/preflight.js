// Preflight: every check a table must pass, findings grouped by severity, each with its fix.

import { api } from '../api.js';
import { announce, append, clear, errorBox, h } from '../dom.js';

const ORDER = [
  ['blocker', 'Blockers', 'Must be fixed before these tables can be migrated.'],
  ['warning', 'Warnings', 'Worth a look; they do not stop the migration.'],
  ['info', 'Information', 'Facts about the migration.'],
];

export async function render(main) {
  const tables = h('input', { id: 'preflight-tables', type: 'text', placeholder: 'every mapped table', spellcheck: 'false' });
  const button = h('button', { type: 'submit', class: 'primary', text: 'Run pre-flight' });
  const out = h('div', { id: 'preflight-results', 'aria-live': 'polite' });
  const form = h('form', { class: 'toolbar' }, h('div', {}, h('label', { for: 'preflight-tables', text: 'Tables (glob, optional)' }), tables), button);
  append(main, h('h1', { text: 'Preflight' }), h('p', { class: 'lead', text: 'Source readable, namespace creatable, storage writable, features carried: checked before anything is copied.' }), form, out);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    clear(out, h('p', { text: 'Checking…' }));
    try {
      const result = await api('/preflight', { method: 'POST', body: { tables: tables.value.trim() || null } });
      draw(out, result);
    } catch (error) {
      clear(out, errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
}

function draw(out, result) {
  const text = `${result.checked} tables checked: ${result.blockers} blockers, ${result.findings.length} findings.`;
  clear(out, h('p', { class: result.blockers ? 'notice error' : 'notice ok', text: result.blockers ? `${text} Fix the blockers before migrating.` : `${text} Nothing blocks the migration.` }));
  for (const [severity, title, help] of ORDER) {
    const findings = result.findings.filter((f) => f.severity === severity);
    const section = h('section', { class: `findings ${severity}`, 'aria-labelledby': `findings-${severity}` }, h('h2', { id: `findings-${severity}`, text: `${title} (${findings.length})` }), h('p', { class: 'meta', text: help }));
    if (!findings.length) section.append(h('p', { text: 'None.' }));
    else
      section.append(
        h(
          'ul',
          {},
          findings.map((f) => h('li', {}, h('span', { class: 'name', text: f.table || 'all tables' }), ' ', h('code', { text: f.code }), h('p', { text: f.message }), f.fix ? h('p', { class: 'fix', text: `Fix: ${f.fix}` }) : null)),
        ),
      );
    out.append(section);
  }
  announce(text);
}
