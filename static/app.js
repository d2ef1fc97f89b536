// The kiln status page: who is signed in, which view is shown (routes live in the URL's hash:
// #/, #/builds/<id>, #/workspaces, #/templates), and the live overview feed the views share.

import { get, post } from './api.js';
import { showSetup, showSignIn } from './auth.js';
import { buildView } from './build.js';
import { OverviewFeed } from './live.js';
import { overviewView } from './overview.js';
import { templatesView } from './templates.js';
import { errorBox, fill, h, startTicker } from './ui.js';
import { workspacesView } from './workspaces.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const session = document.getElementById('session');

const app = {
  main,
  user: null,
  feed: null,
  /** Called when the current view goes away. */
  cleanup: null,
  /** Goes to a route, e.g. app.go('#/builds/<id>'). */
  go(hash) {
    if (location.hash === hash) route(true);
    else location.hash = hash;
  },
  signedOut,
  isOwner() {
    return (app.user?.roles || []).some((r) => r.name === 'owner');
  },
};

app.feed = new OverviewFeed(() => signedOut('Your session has ended. Please sign in again.'));

/** The current route: its name and parameters. */
function currentRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const params = new URLSearchParams(query);
  let m;
  if (path === '/' || path === '') return { name: 'overview', params };
  if ((m = path.match(/^\/builds\/([^/]+)$/))) return { name: 'build', id: decodeURIComponent(m[1]), params };
  if (path === '/workspaces') return { name: 'workspaces', params };
  if (path === '/templates') return { name: 'templates', params };
  return { name: 'unknown', params };
}

const VIEWS = {
  overview: overviewView,
  build: buildView,
  workspaces: workspacesView,
  templates: templatesView,
  unknown: (ctx) => {
    fill(ctx.main,
      h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', {}, 'There is nothing at this address. ', h('a', { href: '#/' }, 'Back to the overview'), '.'));
  },
};

function clearView() {
  if (app.cleanup) {
    try {
      app.cleanup();
    } catch (e) {
      console.warn('cleaning up a view failed', e);
    }
  }
  app.cleanup = null;
}

/** Shows the view of the current route; `focusHeading` moves focus to its heading. */
function route(focusHeading = true) {
  if (!app.user) return;
  clearView();
  const r = currentRoute();
  for (const link of nav.querySelectorAll('a[data-route]')) {
    const current = link.dataset.route === r.name || (r.name === 'build' && link.dataset.route === 'overview');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.replaceChildren();
  const cleanup = VIEWS[r.name](app, r);
  app.cleanup = typeof cleanup === 'function' ? cleanup : null;
  const heading = main.querySelector('h1');
  if (heading && focusHeading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

function signedIn(user) {
  app.user = user;
  const roles = (user.roles || []).map((r) => r.display_name || r.name);
  fill(document.getElementById('session-user'),
    h('span', { class: 'session-name' }, user.username),
    roles.length ? h('span', { class: 'role' }, roles.join(', ')) : h('span', { class: 'role' }, 'Member'));
  nav.hidden = false;
  session.hidden = false;
  app.feed.start();
  route(false);
}

function signedOut(message) {
  clearView();
  app.feed.stop();
  app.user = null;
  nav.hidden = true;
  session.hidden = true;
  showSignIn(app, afterSignIn, message);
}

async function afterSignIn() {
  try {
    signedIn(await get('/users/me'));
  } catch (err) {
    fill(main, h('h1', {}, 'kiln'), errorBox(err, 'Signed in, but could not load your user:'));
  }
}

async function signOut() {
  const button = document.getElementById('sign-out');
  button.disabled = true;
  try {
    await post('/users/logout');
  } catch (err) {
    if (!err.signedOut) console.warn('sign out failed', err);
  } finally {
    button.disabled = false;
  }
  if (location.hash && location.hash !== '#/') history.replaceState(null, '', '#/');
  signedOut('You have signed out.');
}

/** Decides what to show first: the first-user form, the sign-in form, or the page. One
 * request that answers 200 in every case, so a first visit shows no failed request. */
async function checkSession() {
  let session;
  try {
    session = await get('/kiln/session');
  } catch (err) {
    fill(main, h('h1', {}, 'kiln'), errorBox(err, 'kiln did not answer as expected:'),
      h('p', {}, h('button', { type: 'button', onclick: () => checkSession() }, 'Try again')));
    return;
  }
  if (!session.has_first_user) showSetup(app, afterSignIn);
  else if (!session.user) showSignIn(app, afterSignIn);
  else signedIn(session.user);
}

startTicker();
// The skip link moves focus without touching the hash, which holds the route.
document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
document.getElementById('sign-out').addEventListener('click', signOut);
window.addEventListener('hashchange', () => route(true));
checkSession();
