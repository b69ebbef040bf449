// Connect: the configured catalogs, a connection test per catalog, and the managed storage check.

import { api } from '../api.js';
import { append, clear, errorBox, h } from '../dom.js';

export async function render(main) {
  append(main, h('h1', { text: 'Connect' }), h('p', { class: 'lead', text: 'The catalogs of the configuration, and whether each one answers.' }));
  let list;
  try {
    list = await api('/catalogs');
  } catch (error) {
    append(main, errorBox(error));
    return;
  }
  const cards = h('div', { class: 'cards' });
  for (const catalog of list.catalogs) cards.append(catalogCard(catalog));
  append(main, h('h2', { text: 'Catalogs' }), cards, storageCheck(list.catalogs));
}

function catalogCard(catalog) {
  const result = h('p', { class: 'result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', text: `Test connection to ${catalog.name}` });
  button.addEventListener('click', async () => {
    button.disabled = true;
    clear(result, 'Testing…');
    try {
      const answer = await api(`/catalogs/${encodeURIComponent(catalog.name)}/test`, { method: 'POST' });
      if (answer.reachable) {
        result.className = 'result ok';
        clear(result, `Connected: ${catalog.name} answered in ${answer.seconds.toFixed(2)} s.`);
      } else {
        result.className = 'result bad';
        clear(result, `Cannot connect to ${catalog.name}: ${answer.error}`);
      }
    } catch (error) {
      clear(result, errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  const props = h('dl', { class: 'props' });
  for (const [key, value] of Object.entries(catalog.properties)) append(props, h('dt', { text: key }), h('dd', { text: value }));
  return h(
    'section',
    { class: 'card', 'aria-label': `Catalog ${catalog.name}` },
    h('h3', { text: catalog.name }),
    h('p', { class: 'meta', text: `${catalog.type || 'unknown type'} · ${catalog.roles.join(' and ') || 'not used by any mapping rule'}` }),
    props,
    button,
    result,
  );
}

function storageCheck(catalogs) {
  const destinations = catalogs.filter((c) => c.roles.includes('destination'));
  const choices = destinations.length ? destinations : catalogs;
  const select = h('select', { id: 'storage-catalog' }, choices.map((c) => h('option', { value: c.name, text: c.name })));
  const namespace = h('input', { id: 'storage-namespace', type: 'text', placeholder: 'the warehouse when empty' });
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'storage-title' },
    h('h2', { id: 'storage-title', text: 'Managed storage location' }),
    h('p', { text: 'Writes a small probe where new tables would go, reads it back and deletes it, as pre-flight does.' }),
    h('div', { class: 'row' }, h('div', {}, h('label', { for: 'storage-catalog', text: 'Destination catalog' }), select), h('div', {}, h('label', { for: 'storage-namespace', text: 'Namespace (optional)' }), namespace)),
    h('button', { type: 'submit', text: 'Check storage' }),
    result,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(result, 'Probing…');
    try {
      const answer = await api('/storage/check', { method: 'POST', body: { catalog: select.value, namespace: namespace.value.trim() || null } });
      result.className = `result ${answer.writable ? 'ok' : answer.writable === false ? 'bad' : ''}`;
      const verdict = answer.writable ? 'Writable' : answer.writable === false ? 'Not writable' : 'Chosen by the server';
      clear(result, h('strong', { text: `${verdict}: ` }), answer.message, answer.fix ? h('span', { class: 'fix', text: ` Fix: ${answer.fix}` }) : null);
    } catch (error) {
      clear(result, errorBox(error));
    }
  });
  return form;
}
