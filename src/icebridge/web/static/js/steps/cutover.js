// Cut over and roll back: choose tables, read exactly what will change, confirm, and watch the runs.

import { api } from '../api.js';
import { announce, append, clear, errorBox, exactGlob, h } from '../dom.js';

const CUT = ['migrated', 'rolled-back', 'cutover'];

export async function render(main) {
  append(main, h('h1', { text: 'Cut over / Roll back' }), h('p', { class: 'lead', text: 'Point readers at the migrated tables, or undo it. Nothing happens before you confirm.' }));
  const out = h('div');
  const progress = h('div', { id: 'switch-runs', 'aria-live': 'polite' });
  append(main, out, progress);

  async function load() {
    let tasks;
    try {
      tasks = await api('/tasks');
    } catch (error) {
      clear(out, errorBox(error));
      return;
    }
    const cut = tasks.filter((t) => CUT.includes(t.phase) && !t.archived_metadata_location);
    const back = tasks.filter((t) => t.phase === 'cut-over' || (t.archived_metadata_location && t.phase !== 'rolled-back'));
    clear(out, section('cutover', 'Ready to cut over', cut, 'Cut over'), section('rollback', 'Cut over, can be rolled back', back, 'Roll back'));
  }

  function section(command, title, tasks, verb) {
    const id = `${command}-title`;
    const boxes = tasks.map((t) => ({ task: t, box: h('input', { type: 'checkbox', id: `${command}-${t.id}`, value: t.source }) }));
    const button = h('button', { type: 'button', class: command === 'cutover' ? 'primary' : 'danger', text: `${verb} the chosen tables…`, disabled: !tasks.length });
    const problems = h('div', { 'aria-live': 'polite' });
    button.addEventListener('click', () => {
      const chosen = boxes.filter((b) => b.box.checked).map((b) => b.task);
      if (!chosen.length) {
        announce(`Choose at least one table to ${verb.toLowerCase()}.`);
        button.after(h('p', { class: 'field-error', role: 'alert', text: `Choose at least one table to ${verb.toLowerCase()}.` }));
        return;
      }
      confirm(command, verb, chosen, button, problems);
    });
    return h(
      'section',
      { class: 'card', 'aria-labelledby': id },
      h('h2', { id, text: `${title} (${tasks.length})` }),
      tasks.length
        ? h(
            'ul',
            { class: 'choices' },
            boxes.map(({ task, box }) => h('li', {}, box, h('label', { for: box.id }, h('span', { class: 'name', text: task.source }), ' → ', h('span', { class: 'name', text: task.destination }), h('span', { class: 'meta', text: ` (${task.phase})` })))),
          )
        : h('p', { text: 'No table is in this state.' }),
      button,
      problems,
    );
  }

  // what the server says each table's cut-over or roll back changes, its governance adapter's steps included
  function changes(preview) {
    return preview.tables.map((t) =>
      h(
        'section',
        { class: 'confirm-table', 'aria-label': `Changes to ${t.source}` },
        h('h4', {}, h('span', { class: 'name', text: t.source }), h('span', { class: 'meta', text: ` (governance: ${t.governance})` })),
        h('ul', {}, t.changes.map((c) => h('li', { text: c }))),
        t.governance_error ? h('p', { class: 'field-error', text: `The ${t.governance} adapter's steps cannot be read now: ${t.governance_error}` }) : null,
      ),
    );
  }

  async function confirm(command, verb, tasks, opener, problems) {
    let preview;
    try {
      preview = await api('/tasks/cutover-preview', { method: 'POST', body: { command, tables: tasks.map((t) => t.source) } });
    } catch (error) {
      clear(problems, errorBox(error));
      return;
    }
    clear(problems);
    const title = `${verb} ${tasks.length} ${tasks.length === 1 ? 'table' : 'tables'}?`;
    const go = h('button', { type: 'button', class: command === 'cutover' ? 'primary' : 'danger', text: `${verb} ${tasks.length} ${tasks.length === 1 ? 'table' : 'tables'}` });
    const stop = h('button', { type: 'button', text: 'Cancel' });
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-changes' },
      h('h2', { id: 'confirm-title', text: title }),
      h('h3', { text: 'Tables' }),
      h('ul', { class: 'confirm-tables' }, tasks.map((t) => h('li', {}, h('span', { class: 'name', text: t.source }), ' → ', h('span', { class: 'name', text: t.destination })))),
      h('h3', { text: 'What will change' }),
      h('div', { id: 'confirm-changes' }, changes(preview)),
      h('div', { class: 'toolbar' }, stop, go),
    );
    document.body.append(dialog);
    const close = () => {
      dialog.close();
      dialog.remove();
      opener.focus();
    };
    stop.addEventListener('click', close);
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close();
    });
    go.addEventListener('click', async () => {
      go.disabled = true;
      dialog.close();
      dialog.remove();
      await submit(command, verb, tasks);
    });
    dialog.showModal();
    stop.focus();
  }

  async function submit(command, verb, tasks) {
    const list = h('ul', { class: 'runs' });
    clear(progress, h('h2', { text: `${verb}: runs` }), list);
    const runs = [];
    for (const task of tasks) {
      const item = h('li', {}, h('span', { class: 'name', text: task.source }), ': ');
      list.append(item);
      try {
        const run = await api('/runs', { method: 'POST', body: { command, tables: exactGlob(task.source) } });
        const state = h('span', { text: run.status });
        append(item, h('a', { href: `#/run/${run.id}`, text: `run ${run.id}` }), ' ', state);
        runs.push({ run, state, item });
      } catch (error) {
        item.append(errorBox(error));
      }
    }
    for (;;) {
      let open = 0;
      for (const entry of runs) {
        if (['queued', 'running'].includes(entry.run.status)) {
          entry.run = await api(`/runs/${entry.run.id}`);
          const table = entry.run.tables[0];
          entry.state.textContent = `${entry.run.status}${table && table.message ? `: ${table.message}` : ''}`;
          if (['queued', 'running'].includes(entry.run.status)) open += 1;
        }
      }
      if (!open) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const failed = runs.filter((r) => r.run.status !== 'succeeded').length;
    const text = failed ? `${verb}: ${failed} of ${runs.length} runs did not succeed.` : `${verb}: all ${runs.length} runs succeeded.`;
    progress.append(h('p', { class: failed ? 'notice error' : 'notice ok', role: 'status', text }));
    announce(text);
    await load();
  }

  await load();
}
