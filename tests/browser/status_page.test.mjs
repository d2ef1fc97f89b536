// The status page in headless Chromium against a real kiln with real workers: the first user and
// signing in through the page's forms, then templates, workspaces and builds made through the API
// and run by kiln's engine, watched live on the overview and on build pages; Cancel; the
// workspaces and templates pages; no console errors. Nothing is written to kiln's database by
// hand and no answer is stood in for.
// Run: tests/browser/run.sh (or `node --test` here after `cargo build` and `npm ci`).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Api, root, startBrowser, startKiln } from './kiln.mjs';

const OWNER = { email: 'ada@example.com', username: 'ada', name: 'Ada Lovelace', password: 'a-long-password-for-ada' };
const SECRET = 'hunter2-never-shown';
const LIVE_LINES = 30;
const docs = join(root, 'docs');
const extraShots = join(root, 'target', 'browser-screenshots');

// A workspace template: a start that takes about 2 s with a few log lines, a stop that logs
// `line 1`..`line 30` one by one, a parameter and a resource with an agent, an app and a
// sensitive metadata value.
const DEVBOX = {
  parameters: [
    {
      name: 'region', display_name: 'Region', type: 'string', default_value: 'eu-west', mutable: true,
      options: [{ name: 'Europe', value: 'eu-west' }, { name: 'United States', value: 'us-east' }],
    },
    { name: 'cpus', display_name: 'CPUs', type: 'number', default_value: '2', mutable: true },
  ],
  resources: [{
    name: 'dev',
    type: 'kiln_instance',
    metadata: [
      { key: 'region', value: '{{param.region}}' },
      { key: 'image', value: 'ubuntu:24.04' },
      { key: 'database password', value: SECRET, sensitive: true },
    ],
    agents: [{
      name: 'main',
      directory: '/home/coder',
      apps: [{ slug: 'code-server', display_name: 'VS Code', url: 'http://localhost:13337/{{workspace.name}}' }],
    }],
  }],
  steps: {
    start: [
      { log: 'Starting {{workspace.name}} in {{param.region}} for {{owner.name}}' },
      { sleep_ms: 600 },
      { log: 'Pulling image ubuntu:24.04' },
      { sleep_ms: 600 },
      { log: 'the image tag is not pinned to a digest', level: 'warn' },
      { sleep_ms: 600 },
      { log: '{{workspace.name}} is up' },
    ],
    stop: Array.from({ length: LIVE_LINES }, (_, i) => [{ log: `line ${i + 1}` }, { sleep_ms: 80 }]).flat(),
    delete: [{ log: 'Deleting {{workspace.name}}' }],
  },
};
// Builds that keep a worker busy until they are canceled.
const SLOW = {
  steps: {
    start: [{ log: 'Waiting for a slow job' }, { run: 'echo still waiting; sleep 30' }],
    stop: [{ log: 'stopped' }],
  },
};
// Builds that fail.
const BROKEN = {
  steps: { start: [{ log: 'Compiling' }, { sleep_ms: 200 }, { fail: 'terraform apply: exit status 1' }] },
};

let kiln;
let browser;
let page;
let api;
const templates = {};
const workspaces = {};
const problems = [];
// Failed loads the browser reports as console errors that this test provokes on purpose: the
// refused weak password, the wrong password, and a build that does not exist. The first visit
// before any user exists makes no failing request.
const EXPECTED_FAILED_LOADS = [
  [400, /^\/api\/v2\/users\/first$/],
  [401, /^\/api\/v2\/users\/login$/],
  [404, /^\/api\/v2\/workspacebuilds\/[^/]+$/],
];

before(async () => {
  mkdirSync(docs, { recursive: true });
  mkdirSync(extraShots, { recursive: true });
  kiln = await startKiln();
  browser = await startBrowser();
  page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    const url = message.location()?.url || '';
    const m = text.match(/status of (\d+)/);
    const expected = m && EXPECTED_FAILED_LOADS.some(([status, path]) => status === Number(m[1]) && path.test(new URL(url, kiln.url).pathname));
    if (!expected) problems.push(`console error: ${text} (${url})`);
  });
});

// The last test closes both itself; this is for a run that stopped short of it.
after(async () => {
  await browser?.close();
  await kiln?.stop();
});

/** The page has not been reloaded since `markPage()`. */
async function markPage() {
  await page.evaluate(() => { window.kilnTestMark = 'still here'; });
}
async function assertNotReloaded() {
  assert.equal(await page.evaluate(() => window.kilnTestMark), 'still here', 'the page was reloaded');
}

const buildRow = (build) => page.locator(`#builds tr[data-build-id="${build.id}"]`);
const headerBadge = () => page.locator('.build-header .badge');

/** Goes to a build's page the way a person would: the overview, then the build's link. */
async function openBuild(build, heading) {
  await page.locator('#nav').getByRole('link', { name: 'Overview' }).click();
  await buildRow(build).getByRole('link').click();
  await page.getByRole('heading', { name: heading }).waitFor();
}

test('creates the first user through the form and sees the overview', async () => {
  await page.goto(kiln.url);
  await page.getByRole('heading', { name: 'Welcome to kiln' }).waitFor();
  await page.getByLabel('Email').fill(OWNER.email);
  await page.getByLabel('Username').fill(OWNER.username);
  await page.getByLabel('Full name').fill(OWNER.name);
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create user and sign in' }).click();
  // The server's validation is shown next to the field.
  await page.locator('#password[aria-invalid="true"]').waitFor();
  await page.getByLabel('Password').fill(OWNER.password);
  await page.getByRole('button', { name: 'Create user and sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.locator('.live-state[data-state="live"]').waitFor();
  assert.match(await page.locator('.session-name').textContent(), /ada/);
  // The first overview comes just after the stream opens.
  await page.locator('#workers-busy').waitFor();
  assert.match(await page.locator('.stats').textContent(), /v\d+\.\d+\.\d+/);
  assert.match(await page.locator('#workers-busy').textContent(), /0 \/ 3/);
  // The owner sees the database's size.
  assert.match(await page.locator('#database-size').textContent(), /^\d+(\.\d)? (bytes|KB|MB)$/);
  await page.getByText('The queue is empty').waitFor();
  await page.getByText('No builds yet.').waitFor();
  // The session is the HttpOnly cookie; the page keeps no token.
  const cookies = await browser.cookies(kiln.url);
  assert.ok(cookies.some((c) => c.name === 'coder_session_token' && c.httpOnly));
  assert.equal(await page.evaluate(() => document.cookie), '');
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
});

test('signs out and back in', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to kiln' }).waitFor();
  await page.getByText('You have signed out.').waitFor();
  assert.equal((await browser.cookies(kiln.url)).filter((c) => c.name === 'coder_session_token' && c.value).length, 0);
  await page.getByLabel('Email').fill(OWNER.email);
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Incorrect email or password.').waitFor();
  await page.getByLabel('Password').fill(OWNER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  // A reload keeps the session (the cookie).
  await page.reload();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.locator('.live-state[data-state="live"]').waitFor();
});

test('a workspace made through the API appears on the overview and runs, without a reload', async () => {
  await markPage();
  api = await Api.login(kiln.url, OWNER.email, OWNER.password);
  [templates.devbox, templates.slow, templates.broken] = await Promise.all([
    api.template('devbox', DEVBOX), api.template('slow', SLOW), api.template('broken', BROKEN),
  ]);
  // Every status word a build's row shows, in order, as the page redraws it.
  await page.evaluate(() => {
    window.kilnSeen = {};
    new MutationObserver(() => {
      for (const tr of document.querySelectorAll('#builds tr[data-build-id]')) {
        const status = tr.querySelector('.badge')?.textContent;
        const seen = (window.kilnSeen[tr.dataset.buildId] ||= []);
        if (status && seen.at(-1) !== status) seen.push(status);
      }
    }).observe(document.getElementById('main'), { childList: true, subtree: true });
  });

  workspaces.dev = await api.workspace('dev', templates.devbox, [{ name: 'region', value: 'us-east' }]);
  const devBuild = workspaces.dev.latest_build;
  const row = buildRow(devBuild);
  await row.locator('.badge', { hasText: 'starting' }).waitFor();
  await page.waitForFunction(() => document.getElementById('workers-busy')?.textContent === '1 / 3');
  await row.locator('.badge', { hasText: /^running$/ }).waitFor();
  const seen = await page.evaluate((id) => window.kilnSeen[id], devBuild.id);
  assert.ok(seen.indexOf('starting') >= 0 && seen.indexOf('starting') < seen.indexOf('running'), `statuses seen: ${seen}`);
  assert.match(await row.textContent(), /dev.*ada.*#1.*start.*running.*ada.*\d+ (ms|s)$/s);
  await page.waitForFunction(() => document.getElementById('workers-busy')?.textContent === '0 / 3');

  workspaces.web = await api.workspace('web', templates.broken);
  await buildRow(workspaces.web.latest_build).locator('.badge', { hasText: 'failed' }).waitFor();
  await assertNotReloaded();
});

test('the status filter and the keyboard', async () => {
  await page.getByLabel('Status').selectOption('failed');
  await page.waitForFunction(() => document.querySelectorAll('#builds tbody tr').length === 1);
  assert.match(await page.locator('#builds').textContent(), /web/);
  assert.match(page.url(), /#\/\?status=failed$/);
  await page.getByLabel('Status').selectOption('');
  await page.waitForFunction(() => document.querySelectorAll('#builds tbody tr').length === 2);
  // The first Tab reaches the skip link; links and buttons are reachable in order.
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  let reached = false;
  for (let i = 0; i < 30 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate((id) => document.activeElement?.closest?.('tr')?.dataset.buildId === id, workspaces.dev.latest_build.id);
  }
  assert.ok(reached, 'the build link is reachable with Tab');
  await assertNotReloaded();
});

test('a busy kiln: three slow builds take the workers, a fourth waits in the queue; screenshots', async () => {
  for (const name of ['ci', 'api', 'docs']) {
    workspaces[name] = await api.workspace(name, templates.slow);
    await api.until(`/workspacebuilds/${workspaces[name].latest_build.id}`, (b) => b.job.status === 'running');
  }
  workspaces.devStop = await api.build(workspaces.dev, 'stop');
  const queued = page.locator(`#queue tr[data-job-id="${workspaces.devStop.job.id}"]`);
  await queued.waitFor();
  assert.match(await queued.textContent(), /1.*dev #2.*Workspace build/s);
  assert.equal(await page.locator('#queue-length').textContent(), '1');
  assert.equal(await page.locator('#workers-busy').textContent(), '3 / 3');
  await buildRow(workspaces.devStop).locator('.badge', { hasText: 'pending' }).waitFor();
  assert.equal(await page.locator('#builds tbody tr').first().getAttribute('data-build-id'), workspaces.devStop.id);
  for (const name of ['ci', 'api', 'docs']) {
    await buildRow(workspaces[name].latest_build).locator('.badge', { hasText: 'starting' }).waitFor();
  }

  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  await page.screenshot({ path: join(docs, 'screenshot-overview.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(extraShots, 'overview-phone.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the overview is wider than a phone by ${overflow}px`);
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(extraShots, 'overview-phone-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 900 });
  await assertNotReloaded();
});

test("a build's page: header, log, parameters and resources, never a sensitive value", async () => {
  const build = workspaces.dev.latest_build;
  await openBuild(build, /dev build #1/);
  await headerBadge().filter({ hasText: /^running$/ }).waitFor();
  await page.getByText('The log is complete.').waitFor();
  const header = await page.locator('.build-header').textContent();
  assert.match(header, /Transition\s*start/);
  assert.match(header, /Owner\s*ada/);
  assert.match(header, /Initiator\s*ada/);
  assert.match(header, /Reason\s*initiator/);
  assert.match(header, new RegExp(`Template version\\s*${build.template_version_name}`));
  assert.match(header, /Duration\s*\d+ s/);
  assert.match(header, new RegExp(`Build ID\\s*${build.id}`));
  assert.equal(await page.getByRole('button', { name: 'Cancel build' }).count(), 0);

  // The steps' lines, placeholders filled in; the stages' marker lines show as headings.
  assert.deepEqual(await page.locator('.log-line .log-output').allTextContents(), [
    'Starting dev in us-east for ada', 'Pulling image ubuntu:24.04', 'the image tag is not pinned to a digest', 'dev is up',
  ]);
  await page.locator('.log-line.level-warn', { hasText: 'not pinned' }).waitFor();
  assert.deepEqual(await page.locator('.log-stage > span').allTextContents(),
    ['Setting up', 'Planning infrastructure', 'Starting workspace', 'Cleaning Up']);

  await page.locator('#parameters tr', { hasText: 'region' }).waitFor();
  assert.match(await page.locator('#parameters').textContent(), /region.*us-east.*cpus.*2/s);
  const resources = await page.locator('#resources').textContent();
  assert.match(resources, /dev.*kiln_instance/s);
  assert.match(resources, /region.*us-east.*image.*ubuntu:24\.04.*database password.*sensitive/s);
  assert.match(resources, /main.*linux \/ amd64.*\/home\/coder.*VS Code.*http:\/\/localhost:13337\/dev/s);
  assert.ok(!(await page.content()).includes(SECRET), 'a sensitive value reached the page');

  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: join(docs, 'screenshot-build.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(extraShots, 'build-phone.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the build page is wider than a phone by ${overflow}px`);
  await page.setViewportSize({ width: 1280, height: 900 });
  await assertNotReloaded();
});

test("a queued build's page follows it: its queue position, then its log line by line, then the end", async () => {
  const build = workspaces.devStop;
  await openBuild(build, /dev build #2/);
  await headerBadge().filter({ hasText: 'pending' }).waitFor();
  assert.match(await page.locator('.build-header').textContent(), /Queue position\s*1 of 1/);
  await page.getByRole('button', { name: 'Cancel build' }).waitFor();
  await page.locator('.log-state[data-state="live"]').waitFor();
  // When each line arrives, and whether the log was scrolled to its end right then.
  await page.evaluate(() => {
    const box = document.getElementById('build-log');
    window.kilnLines = [];
    new MutationObserver((records) => {
      const at = performance.now();
      for (const record of records) {
        for (const node of record.addedNodes) {
          if (!node.classList?.contains('log-line')) continue;
          window.kilnLines.push({
            text: node.querySelector('.log-output').textContent,
            at,
            atEnd: box.scrollTop + box.clientHeight >= box.scrollHeight - 2,
          });
        }
      }
    }).observe(box, { childList: true });
  });

  // A worker frees up: the build starts.
  await api.patch(`/workspacebuilds/${workspaces.api.latest_build.id}/cancel`);
  await headerBadge().filter({ hasText: 'stopping' }).waitFor();
  await page.locator('.log-line', { hasText: /^.*line 3$/ }).waitFor();
  assert.ok(await page.locator('.log-line', { hasText: `line ${LIVE_LINES}` }).count() === 0, 'the whole log came at once');
  await page.getByText('The log is complete.').waitFor();
  await headerBadge().filter({ hasText: 'stopped' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Cancel build' }).count(), 0);

  const lines = await page.evaluate(() => window.kilnLines);
  assert.deepEqual(lines.map((l) => l.text), Array.from({ length: LIVE_LINES }, (_, i) => `line ${i + 1}`));
  const arrivals = new Set(lines.map((l) => Math.round(l.at))).size;
  assert.ok(arrivals >= LIVE_LINES / 3, `the lines came in only ${arrivals} batches`);
  assert.ok(lines.at(-1).at - lines[0].at > 1500, 'the lines did not arrive over time');
  // The log overflowed its box and was kept scrolled to its newest line.
  assert.ok(await page.evaluate(() => {
    const box = document.getElementById('build-log');
    return box.scrollHeight > box.clientHeight;
  }), 'the log never overflowed its box');
  assert.deepEqual(lines.filter((l) => !l.atEnd).map((l) => l.text), []);
  // A stop leaves no resources; its parameters are the workspace's.
  await page.getByText('This build produced no resources.').waitFor();
  assert.match(await page.locator('#parameters').textContent(), /region.*us-east/s);
  await assertNotReloaded();
});

test('Cancel stops a long-running build within seconds', async () => {
  const build = workspaces.ci.latest_build;
  await openBuild(build, /ci build #1/);
  await headerBadge().filter({ hasText: 'starting' }).waitFor();
  await page.locator('.log-line', { hasText: 'still waiting' }).waitFor();
  const started = Date.now();
  await page.getByRole('button', { name: 'Cancel build' }).click();
  await page.locator('.action-result').getByText('Job has been marked as canceled...').waitFor();
  await page.locator('#announcer', { hasText: 'Job has been marked as canceled...' }).waitFor({ state: 'attached' });
  await headerBadge().filter({ hasText: /^canceled$/ }).waitFor({ timeout: 5000 });
  assert.ok(Date.now() - started < 5000, `canceling took ${Date.now() - started} ms`);
  await page.getByText('The log is complete.').waitFor();
  await page.locator('.log-line', { hasText: 'The build was canceled' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Cancel build' }).count(), 0);
  await page.locator('#nav').getByRole('link', { name: 'Overview' }).click();
  await buildRow(build).locator('.badge', { hasText: /^canceled$/ }).waitFor();
  await assertNotReloaded();
});

test('workspaces: each with its latest build, and start / stop / delete', async () => {
  // A schedule shows as the workspace's next start.
  await api.call('PUT', `/workspaces/${workspaces.dev.id}/autostart`, { schedule: 'CRON_TZ=UTC 30 9 * * *' });
  await page.locator('#nav').getByRole('link', { name: 'Workspaces' }).click();
  await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
  const row = (name) => page.locator(`tr[data-workspace-id="${workspaces[name].id}"]`);
  await row('dev').locator('.badge', { hasText: 'stopped' }).waitFor();
  assert.match(await row('dev').textContent(), /dev.*ada.*devbox.*stopped.*#2 stop.*Starts/s);
  assert.ok(await row('dev').locator('.schedule-cell time').getAttribute('datetime'), 'the next start has its time');
  assert.match(await row('web').textContent(), /web.*broken.*failed.*#1 start/s);
  assert.match(await row('ci').textContent(), /ci.*slow.*canceled/s);
  assert.match(await row('docs').textContent(), /docs.*slow.*starting/s);
  assert.ok(await row('dev').getByRole('button', { name: 'Start dev' }).isEnabled());
  assert.ok(await row('dev').getByRole('button', { name: 'Stop dev' }).isDisabled(), 'a stopped workspace cannot stop');
  assert.ok(await row('docs').getByRole('button', { name: 'Stop docs' }).isDisabled(), 'a busy workspace takes no build');
  await page.screenshot({ path: join(extraShots, 'workspaces.png') });

  // Delete asks once more before it sends anything, then shows the new build.
  await row('web').getByRole('button', { name: 'Delete web' }).click();
  await row('web').getByRole('button', { name: 'Confirm: delete web' }).click();
  await page.getByRole('heading', { name: /web build #2/ }).waitFor();
  await headerBadge().filter({ hasText: /^deleted$/ }).waitFor();
  await page.getByText('The log is complete.').waitFor();
  const builds = await api.get(`/workspaces/${workspaces.web.id}/builds`);
  assert.deepEqual(builds.map((b) => [b.build_number, b.transition, b.status]), [[2, 'delete', 'deleted'], [1, 'start', 'failed']]);
  await assertNotReloaded();
});

test('templates: name, active version and its import', async () => {
  await page.locator('#nav').getByRole('link', { name: 'Templates' }).click();
  await page.getByRole('heading', { name: 'Templates', level: 1 }).waitFor();
  for (const name of ['devbox', 'slow', 'broken']) {
    const template = templates[name];
    const version = await api.get(`/templateversions/${template.active_version_id}`);
    const row = page.locator(`tr[data-template-id="${template.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), new RegExp(`${name}.*${version.name}.*succeeded.*ada`, 's'));
  }
  await page.screenshot({ path: join(extraShots, 'templates.png') });
  await assertNotReloaded();
});

test('a build that does not exist says so', async () => {
  await page.evaluate((id) => { location.hash = `#/builds/${id}`; }, randomUUID());
  await page.getByText('Could not load this build:').waitFor();
  await assertNotReloaded();
});

test('signing out; kiln then stops at once with nothing left running', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to kiln' }).waitFor();
  await assertNotReloaded();
  // The last slow build is canceled. Its change also ends the signed-out page's event stream
  // on the server (kiln notices a stream's reader has gone only when it next writes to it; an
  // open stream would hold up its graceful stop).
  await api.patch(`/workspacebuilds/${workspaces.docs.latest_build.id}/cancel`);
  await api.until(`/workspacebuilds/${workspaces.docs.latest_build.id}`, (b) => b.status === 'canceled');
  const overview = await api.get('/kiln/overview');
  assert.deepEqual([overview.queue.length, overview.workers.busy], [0, 0]);
  await browser.close();
  const started = Date.now();
  await kiln.stop();
  assert.ok(Date.now() - started < 2000, `kiln took ${Date.now() - started} ms to stop`);
});

test('no console errors', () => {
  assert.deepEqual(problems, []);
});
