// The wizard's shell: the token prompt, the steps and the hash router (#/connect, #/run/12, ...).

import { check, session } from './api.js';
import { announce, clear, h } from './dom.js';
import * as connect from './steps/connect.js';
import * as cutover from './steps/cutover.js';
import * as discover from './steps/discover.js';
import * as map from './steps/map.js';
import * as preflight from './steps/preflight.js';
import * as run from './steps/run.js';
import * as sync from './steps/sync.js';
import * as validate from './steps/validate.js';

const STEPS = [
  ['connect', 'Connect', connect],
  ['discover', 'Discover', discover],
  ['map', 'Map', map],
  ['preflight', 'Preflight', preflight],
  ['run', 'Run', run],
  ['validate', 'Validate', validate],
  ['sync', 'Sync', sync],
  ['cutover', 'Cut over / Roll back', cutover],
];

const main = document.getElementById('main');
const nav = document.getElementById('steps-nav');
const signOut = document.getElementById('sign-out');
let leave = null;

function drawSteps(current) {
  const list = document.getElementById('steps');
  clear(
    list,
    STEPS.map(([id, label], index) =>
      h(
        'li',
        {},
        h('a', { href: `#/${id}`, 'aria-current': id === current ? 'step' : null }, h('span', { class: 'num', text: index + 1 }), label),
      ),
    ),
  );
}

function prompt(message) {
  nav.hidden = true;
  signOut.hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { id: 'token-error', class: 'field-error', role: 'alert' });
  if (message) error.textContent = message;
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title', text: 'Sign in' }),
    h('p', { text: "Paste the server's API token (ICEBRIDGE_API_TOKEN or service.token). It stays in this tab only." }),
    h('label', { for: 'token', text: 'API token' }),
    input,
    error,
    h('button', { type: 'submit', class: 'primary', text: 'Sign in' }),
  );
  input.setAttribute('aria-describedby', 'token-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (await check(token)) {
      session.signIn(token);
      route();
    } else {
      error.textContent = 'That token was refused by the server. Check it and try again.';
      input.focus();
    }
  });
  clear(main, form);
  input.focus();
}

async function route() {
  if (leave) {
    leave();
    leave = null;
  }
  const token = session.token();
  if (!token || !(await check(token))) {
    session.signOut();
    prompt(token ? 'The saved token is no longer accepted. Sign in again.' : '');
    return;
  }
  nav.hidden = false;
  signOut.hidden = false;
  const [id, ...params] = (window.location.hash.replace(/^#\/?/, '') || 'connect').split('/');
  const step = STEPS.find(([name]) => name === id) || STEPS[0];
  drawSteps(step[0]);
  document.title = `${step[1]} — IceBridge migration wizard`;
  clear(main);
  leave = (await step[2].render(main, params.map(decodeURIComponent))) || null;
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
  announce(`${step[1]} step`);
}

signOut.addEventListener('click', () => {
  session.signOut();
  window.location.hash = '#/connect';
  prompt('Signed out.');
});
window.addEventListener('hashchange', route);
window.addEventListener('icebridge:signed-out', () => prompt('The server refused the token. Sign in again.'));
route();
