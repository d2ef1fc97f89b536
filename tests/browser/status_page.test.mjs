// The status page in headless Chromium against a real kiln: first user, sign out and in, the
// overview updated live by the server, a build's page, and no console errors.
// Run: tests/browser/run.sh (or `node --test` here after `cargo build` and `npm ci`).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  logJson, serveBuildContract, serveWorkspaceContract, workspaceBuildJson, workspaceJson,
} from './contract.mjs';
import { Rows, micros, root, startBrowser, startKiln } from './kiln.mjs';

const OWNER = { email: 'ada@example.com', username: 'ada', name: 'Ada Lovelace', password: 'a-long-password-for-ada' };
const docs = join(root, 'docs');
const extraShots = join(root, 'target', 'browser-screenshots');

let kiln;
let browser;
let page;
let rows;
const problems = [];
// Answers the page is expected to make the browser log as failed loads: "no user yet", "not
// signed in", the refused weak password and wrong password this test sends, a build that does
// not exist, and the 404s of the workspace and template APIs while this kiln lacks them.
const EXPECTED_FAILED_LOADS = [
  [404, /\/api\/v2\/users\/first$/],
  [400, /\/api\/v2\/users\/first$/],
  [401, /\/api\/v2\/users\/me$/],
  [401, /\/api\/v2\/users\/login$/],
  [404, /\/api\/v2\/workspacebuilds\/[^/]+$/],
  [404, /\/api\/v2\/workspaces$/],
  [404, /\/api\/v2\/organizations\/coder\/templates$/],
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
  assert.match(await page.locator('.stats').textContent(), /v\d+\.\d+\.\d+/);
  assert.match(await page.locator('#workers-busy').textContent(), /0 \/ 3/);
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
});

const LOG_LINES = [
  ['provisioner_daemon', 'info', 'Setting up', ''],
  ['provisioner', 'info', 'Setting up', 'Fetching template version docker-v1'],
  ['provisioner_daemon', 'info', 'Planning infrastructure', ''],
  ['provisioner', 'info', 'Planning infrastructure', 'Plan: 2 to add, 0 to change, 0 to destroy.'],
  ['provisioner_daemon', 'info', 'Starting workspace', ''],
  ['provisioner', 'info', 'Starting workspace', 'docker_image.main: Creating...'],
  ['provisioner', 'warn', 'Starting workspace', 'Warning: image tag "latest" is not pinned'],
  ['provisioner', 'info', 'Starting workspace', 'docker_container.dev: Creation complete after 2s'],
  ['provisioner_daemon', 'info', 'Cleaning Up', ''],
].map(([log_source, log_level, stage, output]) => ({ log_source, log_level, stage, output }));

const RESOURCES = [{
  id: randomUUID(),
  type: 'docker_container',
  name: 'dev',
  metadata: [
    { key: 'image', value: 'ubuntu:24.04', sensitive: false },
    { key: 'database password', value: 'hunter2-never-shown', sensitive: true },
  ],
  agents: [{
    id: randomUUID(), name: 'main', status: 'connecting', operating_system: 'linux', architecture: 'amd64',
    directory: '/home/coder', apps: [{ id: randomUUID(), slug: 'code-server', display_name: 'VS Code', url: 'http://localhost:13337', external: false, sharing_level: 'owner' }],
  }],
}];

let template;
let devBuild;
let apiBuild;
let webBuild;

test('builds written to the database appear on the overview without a reload', async () => {
  rows = new Rows(kiln.db);
  const ownerId = rows.userId(OWNER.username);
  template = rows.template('docker', ownerId);
  const dev = rows.workspace('dev', ownerId, template);
  const web = rows.workspace('web', ownerId, template);
  const t = micros() - 600e6;
  await markPage();
  devBuild = rows.build(dev, {
    number: 1, transition: 'start', initiator: ownerId, createdAt: t - 1.5e6,
    job: { startedAt: t, completedAt: t + 42.5e6 },
    parameters: [{ name: 'region', value: 'eu-west' }, { name: 'cpus', value: '4' }],
    resources: RESOURCES,
    logs: LOG_LINES,
  });
  webBuild = rows.build(web, {
    number: 1, transition: 'start', initiator: ownerId, createdAt: t + 59e6,
    job: { startedAt: t + 60e6, completedAt: t + 71e6, error: 'terraform apply: exit status 1' },
  });
  const devRow = page.locator(`tr[data-build-id="${devBuild.id}"]`);
  await devRow.waitFor();
  assert.match(await devRow.textContent(), /dev.*ada.*#1.*start.*running.*ada.*42 s/s);
  await page.locator('tr', { hasText: 'web' }).locator('.badge', { hasText: 'failed' }).waitFor();

  // A pending build: in the queue and at the top of the builds, pushed by the server.
  const api = rows.workspace('api', ownerId, template);
  apiBuild = rows.build(api, { number: 1, transition: 'start', initiator: ownerId });
  const queued = page.locator(`#queue tr[data-job-id="${apiBuild.jobId}"]`);
  await queued.waitFor();
  assert.match(await queued.textContent(), /1.*api #1.*Workspace build/s);
  assert.equal(await page.locator('#builds tbody tr').first().getAttribute('data-build-id'), apiBuild.id);
  await page.locator(`tr[data-build-id="${apiBuild.id}"] .badge`, { hasText: 'pending' }).waitFor();
  assert.match(await page.locator('#queue-length').textContent(), /^1$/);

  // A worker takes it: starting, the queue empties, one worker busy.
  rows.startJob(apiBuild.jobId);
  await page.locator(`tr[data-build-id="${apiBuild.id}"] .badge`, { hasText: 'starting' }).waitFor();
  await page.getByText('The queue is empty').waitFor();
  assert.match(await page.locator('#workers-busy').textContent(), /1 \/ 3/);
  await assertNotReloaded();
});

test('the status filter and the keyboard', async () => {
  await page.getByLabel('Status').selectOption('failed');
  await page.waitForFunction(() => document.querySelectorAll('#builds tbody tr').length === 1);
  assert.match(await page.locator('#builds').textContent(), /web/);
  assert.match(page.url(), /#\/\?status=failed$/);
  await page.getByLabel('Status').selectOption('');
  await page.waitForFunction(() => document.querySelectorAll('#builds tbody tr').length === 3);
  // The first Tab reaches the skip link; links and buttons are reachable in order.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  let reached = false;
  for (let i = 0; i < 30 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate((id) => document.activeElement?.closest?.('tr')?.dataset.buildId === id, devBuild.id);
  }
  assert.ok(reached, 'the build link is reachable with Tab');
});

test('screenshots of the overview at 1280 px and on a phone', async () => {
  // Two more jobs wait in the queue, in creation order.
  const ownerId = rows.userId(OWNER.username);
  const ci = rows.workspace('ci', ownerId, template);
  const ciBuild = rows.build(ci, { number: 1, transition: 'start', initiator: ownerId });
  const devStop = rows.build(devBuild.workspace, { number: 2, transition: 'stop', initiator: ownerId });
  await page.waitForFunction(() => document.querySelectorAll('#queue tbody tr').length === 2);
  assert.deepEqual(await page.locator('#queue tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.jobId)), [ciBuild.jobId, devStop.jobId]);
  assert.match(await page.locator('#queue').textContent(), /1.*ci #1.*2.*dev #2/s);
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: join(docs, 'screenshot-overview.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(extraShots, 'overview-phone.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is wider than a phone by ${overflow}px`);
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(extraShots, 'overview-phone-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("a build's page: header, parameters, resources, its log and Cancel", async () => {
  const realApi = await page.evaluate(async (id) => (await fetch(`/api/v2/workspacebuilds/${id}`)).status !== 404, devBuild.id);
  if (!realApi) {
    const names = { owner: OWNER.username, initiator: OWNER.username, versionName: template.versionName };
    const apiLogs = Array.from({ length: 60 }, (_, i) => ({
      log_source: 'provisioner', log_level: 'info', stage: 'Starting workspace', output: `step ${i + 1} of 60`,
    }));
    const served = {
      [devBuild.id]: {
        json: () => workspaceBuildJson(devBuild, { ...names, status: 'running', jobStatus: 'succeeded' }),
        parameters: devBuild.parameters,
        logs: logJson(devBuild),
        logsVisible: Infinity,
        ended: true,
      },
    };
    const running = served[apiBuild.id] = {
      json: () => workspaceBuildJson({ ...apiBuild, logs: apiLogs, resources: [], startedAt: micros() - 5e6, canceledAt: running.canceled ? micros() : null },
        { ...names, status: running.canceled ? 'canceling' : 'starting', jobStatus: running.canceled ? 'canceling' : 'running' }),
      parameters: [],
      logs: logJson({ ...apiBuild, logs: apiLogs }),
      logsVisible: 30,
      ended: false,
    };
    await serveBuildContract(page, served);

    // A running build: its log follows (resuming after the last id), and it can be canceled.
    await page.goto(`${kiln.url}/#/builds/${apiBuild.id}`);
    await page.getByRole('heading', { name: /api build #1/ }).waitFor();
    await page.locator('.log-line').nth(29).waitFor();
    running.logsVisible = 60;
    await page.locator('.log-line').nth(59).waitFor();
    assert.ok(served.requests.some((r) => r.includes('/logs?follow=true&after=30')), served.requests.join('\n'));
    assert.equal(await page.locator('.log-line').count(), 60);
    // The log keeps its newest line in view.
    await page.waitForFunction(() => {
      const box = document.getElementById('build-log');
      return box.scrollHeight > box.clientHeight && box.scrollTop + box.clientHeight >= box.scrollHeight - 2;
    });
    await page.getByRole('button', { name: 'Cancel build' }).click();
    await page.getByText('Job has been marked as canceled...').waitFor();
    await page.locator('.build-header .badge', { hasText: 'canceling' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel build' }).count(), 0);
    assert.ok(served.requests.includes(`PATCH /api/v2/workspacebuilds/${apiBuild.id}/cancel`));
  }

  // A finished build from the overview's link.
  await page.goto(kiln.url);
  await page.locator(`tr[data-build-id="${devBuild.id}"] a`).click();
  await page.getByRole('heading', { name: /dev build #1/ }).waitFor();
  await page.locator('.build-header .badge', { hasText: 'running' }).waitFor();
  await page.getByText('The log is complete.').waitFor();
  // Stage marker lines (no output) show as the stage headings.
  assert.equal(await page.locator('.log-line').count(), LOG_LINES.filter((l) => l.output).length);
  assert.equal(await page.locator('.log-stage').count(), 4);
  await page.locator('.log-stage', { hasText: 'Planning infrastructure' }).waitFor();
  assert.match(await page.locator('#parameters').textContent(), /region.*eu-west.*cpus.*4/s);
  const resources = await page.locator('#resources').textContent();
  assert.match(resources, /dev.*docker_container.*ubuntu:24\.04/s);
  assert.match(resources, /main.*linux \/ amd64.*VS Code/s);
  assert.match(resources, /sensitive/);
  assert.ok(!(await page.content()).includes('hunter2-never-shown'), 'a sensitive value reached the page');
  assert.equal(await page.getByRole('button', { name: 'Cancel build' }).count(), 0);
  await page.screenshot({ path: join(docs, 'screenshot-build.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(extraShots, 'build-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.unrouteAll({ behavior: 'ignoreErrors' });
});

test('a build this kiln cannot show says so', async () => {
  await page.goto(`${kiln.url}/#/builds/${randomUUID()}`);
  await page.getByText(/This build cannot be shown|Could not load this build/).waitFor();
});

/** The status of GET `path` for the signed-in page (404: this kiln lacks that API). */
function statusOf(path) {
  return page.evaluate(async (p) => (await fetch(p)).status, path);
}

test('workspaces: a clear message without the API, else start / stop / delete buttons', async () => {
  await page.goto(`${kiln.url}/#/`);
  await page.locator('#nav').getByRole('link', { name: 'Workspaces' }).click();
  await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
  if ((await statusOf('/api/v2/workspaces')) !== 404) {
    await page.locator('#workspaces tr', { hasText: 'web' }).waitFor();
    return;
  }
  await page.getByText('Workspaces cannot be shown').waitFor();

  // The documented contract, answered from the rows this test wrote.
  const names = { owner: OWNER.username, initiator: OWNER.username, versionName: template.versionName };
  const builds = {};
  const served = {
    workspaces: [
      workspaceJson(devBuild.workspace, { owner: OWNER.username, templateName: 'docker', latestBuild: workspaceBuildJson(devBuild, { ...names, status: 'running', jobStatus: 'succeeded' }) }),
      workspaceJson(webBuild.workspace, { owner: OWNER.username, templateName: 'docker', latestBuild: workspaceBuildJson(webBuild, { ...names, status: 'failed', jobStatus: 'failed' }) }),
    ],
    templates: [],
    versions: {},
    createBuild: (workspaceId, body) => {
      const next = { ...webBuild, id: randomUUID(), jobId: randomUUID(), number: 2, transition: body.transition, startedAt: null, completedAt: null, error: '', createdAt: micros() };
      const json = workspaceBuildJson(next, { ...names, status: 'pending', jobStatus: 'pending', queuePosition: 1, queueSize: 1 });
      builds[next.id] = { json: () => json, parameters: [], logs: [], logsVisible: 0, ended: false };
      return json;
    },
  };
  await serveWorkspaceContract(page, served);
  await serveBuildContract(page, builds);
  await page.locator('#nav').getByRole('link', { name: 'Overview' }).click();
  await page.locator('#nav').getByRole('link', { name: 'Workspaces' }).click();
  const dev = page.locator(`tr[data-workspace-id="${devBuild.workspace.id}"]`);
  const web = page.locator(`tr[data-workspace-id="${webBuild.workspace.id}"]`);
  await web.waitFor();
  await page.screenshot({ path: join(extraShots, 'workspaces.png') });
  assert.ok(await dev.getByRole('button', { name: 'Start dev' }).isDisabled(), 'a running workspace cannot start');
  assert.ok(await dev.getByRole('button', { name: 'Stop dev' }).isEnabled());
  // Delete asks once more before it sends anything.
  await web.getByRole('button', { name: 'Delete web' }).click();
  await web.getByRole('button', { name: 'Confirm: delete web' }).waitFor();
  assert.equal(served.created.length, 0);
  await web.getByRole('button', { name: 'Start web' }).click();
  await page.getByRole('heading', { name: /web build #2/ }).waitFor();
  assert.deepEqual(served.created, [{ workspaceId: webBuild.workspace.id, body: { transition: 'start' } }]);
  await page.getByRole('button', { name: 'Cancel build' }).waitFor();
  assert.match(await page.locator('.build-header').textContent(), /Queue position\s*1 of 1/);
  await page.unrouteAll({ behavior: 'ignoreErrors' });
});

test('templates: a clear message without the API, else name, active version and import status', async () => {
  await page.locator('#nav').getByRole('link', { name: 'Templates' }).click();
  await page.getByRole('heading', { name: 'Templates', level: 1 }).waitFor();
  if ((await statusOf('/api/v2/organizations/coder/templates')) !== 404) {
    await page.locator('#templates tr', { hasText: 'docker' }).waitFor();
    return;
  }
  await page.getByText('Templates cannot be shown').waitFor();
  await serveWorkspaceContract(page, {
    workspaces: [],
    templates: [{
      id: template.id, name: 'docker', display_name: 'Docker', active_version_id: template.versionId,
      created_by_name: OWNER.username, updated_at: new Date().toISOString(),
    }],
    versions: { [template.versionId]: { id: template.versionId, name: template.versionName, job: { status: 'succeeded' } } },
    createBuild: () => ({}),
  });
  await page.locator('#nav').getByRole('link', { name: 'Overview' }).click();
  await page.locator('#nav').getByRole('link', { name: 'Templates' }).click();
  const row = page.locator(`tr[data-template-id="${template.id}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /Docker.*docker.*docker-v1.*succeeded.*ada/s);
  await page.screenshot({ path: join(extraShots, 'templates.png') });
  await page.unrouteAll({ behavior: 'ignoreErrors' });
});

test('no console errors', () => {
  assert.deepEqual(problems, []);
});
