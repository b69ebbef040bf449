// Map: edit the mapping rules (first match wins) with a live preview of every source's destination.

import { api } from '../api.js';
import { announce, append, clear, debounce, errorBox, h } from '../dom.js';

export async function render(main) {
  let loaded;
  try {
    loaded = await api('/mappings');
  } catch (error) {
    append(main, h('h1', { text: 'Map' }), errorBox(error));
    return;
  }
  let version = loaded.version;
  let rules = loaded.rules.map((r) => ({ ...r }));
  const list = h('ol', { class: 'rules', id: 'rules' });
  const preview = h('div', { id: 'preview' });
  const summary = h('p', { id: 'preview-summary', class: 'meta', 'aria-live': 'polite' });
  const saved = h('div', { 'aria-live': 'polite' });
  const add = h('button', { type: 'button', text: 'Add a rule' });
  const save = h('button', { type: 'button', class: 'primary', text: 'Save the rules' });

  append(
    main,
    h('h1', { text: 'Map' }),
    h('p', { class: 'lead' }, 'Mapping rules send each source table to a destination; the first rule that matches wins. Saved into ', h('code', { text: loaded.path }), ', where the CLI reads them too.'),
    h('h2', { text: 'Rules' }),
    list,
    h('div', { class: 'toolbar' }, add, save),
    saved,
    h('h2', { text: 'Preview' }),
    summary,
    preview,
  );

  function field(index, key, label, value, errors) {
    const id = `rule-${index}-${key}`;
    const problem = errors.find((e) => e.field === key);
    const input =
      key === 'strategy'
        ? h('select', { id }, h('option', { value: '', text: 'chosen by the engine' }), loaded.strategies.map((name) => h('option', { value: name, text: name, selected: value === name })))
        : h('input', { id, type: 'text', value: value || '', spellcheck: 'false', 'aria-invalid': problem ? 'true' : null, 'aria-describedby': problem ? `${id}-error` : null });
    input.addEventListener(key === 'strategy' ? 'change' : 'input', () => {
      rules[index][key] = input.value || (key === 'rename' || key === 'strategy' ? null : '');
      schedule();
    });
    return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, problem ? h('p', { id: `${id}-error`, class: 'field-error', text: problem.message }) : null);
  }

  function drawRules(errors = [], unmatched = []) {
    const focused = document.activeElement && document.activeElement.id;
    clear(
      list,
      rules.map((rule, index) => {
        const mine = errors.filter((e) => e.index === index);
        const up = h('button', { type: 'button', class: 'quiet', text: 'Move up', disabled: index === 0, 'aria-label': `Move up rule ${index + 1}` });
        const down = h('button', { type: 'button', class: 'quiet', text: 'Move down', disabled: index === rules.length - 1, 'aria-label': `Move down rule ${index + 1}` });
        const remove = h('button', { type: 'button', class: 'quiet danger', text: 'Remove', 'aria-label': `Remove rule ${index + 1}` });
        up.addEventListener('click', () => move(index, -1));
        down.addEventListener('click', () => move(index, 1));
        remove.addEventListener('click', () => {
          rules.splice(index, 1);
          drawRules();
          schedule();
        });
        return h(
          'li',
          { class: `rule${mine.length ? ' invalid' : ''}`, 'aria-label': `Rule ${index + 1}` },
          h('div', { class: 'row' }, field(index, 'source', 'Source (catalog.namespace.table, globs allowed)', rule.source, mine), field(index, 'target', 'Target (catalog.namespace)', rule.target, mine), field(index, 'rename', 'Rename (optional, {table})', rule.rename, mine), field(index, 'strategy', 'Strategy', rule.strategy, mine)),
          unmatched.includes(index) ? h('p', { class: 'warning', text: 'This rule matches no table (a typo?).' }) : null,
          h('div', { class: 'toolbar' }, up, down, remove),
        );
      }),
    );
    const again = focused && document.getElementById(focused);
    if (again) again.focus();
  }

  function move(index, by) {
    const [rule] = rules.splice(index, 1);
    rules.splice(index + by, 0, rule);
    drawRules();
    schedule();
  }

  let seq = 0;
  async function refresh() {
    seq += 1;
    const mine = seq;
    let result;
    try {
      result = await api('/mappings/preview', { method: 'POST', body: { rules: clean() } });
    } catch (error) {
      clear(preview, errorBox(error));
      return;
    }
    if (mine !== seq) return;
    drawRules(result.rule_errors, result.unmatched_rules);
    if (!result.valid) {
      clear(summary, `${result.rule_errors.length} rule problem(s): fix them to see the preview.`);
      clear(preview);
      return;
    }
    const text = `${result.mapped} mapped, ${result.unmapped} not mapped, ${result.blocked} blocked, ${result.collisions} in collisions.`;
    clear(summary, text);
    announce(text);
    const body = h('tbody');
    for (const row of result.tables) {
      const state = row.collision ? 'collision' : row.blocked ? 'blocked' : row.rule === null ? 'not mapped' : 'ready';
      body.append(
        h(
          'tr',
          { class: row.collision ? 'collision' : row.blocked ? 'blocked' : null },
          h('th', { scope: 'row', class: 'name', text: row.source }),
          h('td', { text: row.rule === null ? '–' : `rule ${row.rule + 1}` }),
          h('td', { class: 'name', text: row.destination || '–' }),
          h('td', { text: row.strategy || '–' }),
          h('td', {}, h('strong', { class: `state ${state.replace(' ', '-')}`, text: state }), row.findings.filter((f) => f.severity !== 'info').map((f) => h('p', { class: 'finding', text: `${f.message}${f.fix ? ` — fix: ${f.fix}` : ''}` }))),
          h('td', { text: row.reason }),
        ),
      );
    }
    clear(
      preview,
      h('table', { class: 'grid', id: 'preview-table' }, h('caption', { class: 'sr-only', text: 'Each source table under the edited rules' }), h('thead', {}, h('tr', {}, ['Source', 'Rule', 'Destination', 'Strategy', 'State', 'Reason'].map((t) => h('th', { scope: 'col', text: t })))), body),
    );
  }
  const schedule = debounce(refresh, 250);

  function clean() {
    // history and governance are not edited here: each rule keeps what the file says
    return rules.map((r) => ({ source: r.source || '', target: r.target || '', rename: r.rename || null, strategy: r.strategy || null, history: r.history || 'current', governance: r.governance || null }));
  }

  add.addEventListener('click', () => {
    rules.push({ source: '', target: '', rename: null, strategy: null });
    drawRules();
    document.getElementById(`rule-${rules.length - 1}-source`).focus();
  });
  save.addEventListener('click', async () => {
    save.disabled = true;
    try {
      const answer = await api('/mappings', { method: 'PUT', body: { rules: clean(), version } });
      version = answer.version;
      rules = answer.rules.map((r) => ({ ...r }));
      clear(saved, h('p', { class: 'notice ok', role: 'status', text: `Saved ${answer.rules.length} rules to ${answer.path}.` }));
      await refresh();
    } catch (error) {
      clear(saved, errorBox(error));
    } finally {
      save.disabled = false;
    }
  });
  drawRules();
  await refresh();
}
