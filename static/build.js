// A build's page (#/builds/<id>): its header fields, a Cancel button while it is active, its
// parameters and resources, and its log, followed live while it runs.

import { get, patch } from './api.js';
import { BuildLog, emptyLogBox } from './log.js';
import { renderParameters, renderResources } from './resources.js';
import {
  announce, badge, duration, errorBox, fill, h, liveDuration, timeAgo,
} from './ui.js';

/** How often an active build is read again, besides the server's pushes. */
const SAFETY_REFRESH_MS = 10000;

function jobActive(job) {
  return job && ['pending', 'running', 'canceling'].includes(job.status);
}

function cancellable(job) {
  return job && ['pending', 'running'].includes(job.status);
}

function field(label, ...value) {
  return h('div', { class: 'field-pair' }, h('dt', {}, label), h('dd', {}, ...value));
}

function buildDuration(job) {
  if (job?.started_at && job?.completed_at) {
    return duration(new Date(job.completed_at) - new Date(job.started_at));
  }
  if (job?.started_at && jobActive(job)) return liveDuration(job.started_at);
  return h('span', { class: 'muted' }, '—');
}

function headerFields(build) {
  const job = build.job || {};
  return h('dl', { class: 'fields' },
    field('Status', badge(build.status), job.status && job.status !== build.status ? h('span', { class: 'muted' }, ` job ${job.status}`) : null),
    field('Transition', build.transition),
    field('Owner', build.workspace_owner_name || '—'),
    field('Initiator', build.initiator_name || '—'),
    field('Reason', build.reason || '—'),
    field('Template version', build.template_version_name || '—'),
    field('Created', timeAgo(build.created_at)),
    field('Started', timeAgo(job.started_at)),
    field('Completed', timeAgo(job.completed_at)),
    field('Duration', buildDuration(job)),
    job.status === 'pending' && job.queue_position
      ? field('Queue position', `${job.queue_position} of ${job.queue_size}`)
      : null,
    build.deadline ? field('Deadline', timeAgo(build.deadline)) : null,
    field('Build ID', h('code', {}, build.id)));
}

export function buildView(app, route) {
  const id = route.id;
  const title = h('h1', {}, 'Build');
  const subtitle = h('p', { class: 'muted subtitle' });
  const header = h('div', { class: 'build-header' }, h('p', { class: 'muted' }, 'Loading…'));
  const failure = h('div');
  const actions = h('div', { class: 'actions' });
  const actionResult = h('div', { class: 'action-result' });
  const parameters = h('div', { id: 'parameters' }, h('p', { class: 'muted' }, 'Loading…'));
  const resources = h('div', { id: 'resources' }, h('p', { class: 'muted' }, 'Loading…'));
  const logStatus = h('p', { class: 'log-state', role: 'status' });
  const logBox = emptyLogBox();
  let build = null;
  let refreshing = null;
  let readAgain = false;
  let log = null;
  let safetyTimer = null;
  let gone = false;

  fill(app.main,
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/' }, '← Overview')),
    h('div', { class: 'page-head' }, h('div', {}, title, subtitle), actions),
    actionResult,
    failure,
    header,
    h('section', { 'aria-labelledby': 'log-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'log-title' }, 'Log'), logStatus),
      logBox),
    h('section', { 'aria-labelledby': 'params-title' }, h('h2', { id: 'params-title' }, 'Parameters'), parameters),
    h('section', { 'aria-labelledby': 'resources-title' }, h('h2', { id: 'resources-title' }, 'Resources'), resources));

  function renderActions() {
    if (!cancellable(build?.job)) {
      actions.replaceChildren();
      return;
    }
    if (actions.querySelector('#cancel-build')) return;
    fill(actions, h('button', { type: 'button', id: 'cancel-build', class: 'button-danger', onclick: cancel }, 'Cancel build'));
  }

  function render() {
    document.title = `${build.workspace_name} #${build.build_number} · kiln`;
    fill(title, build.workspace_name, h('span', { class: 'muted' }, ` build #${build.build_number}`));
    fill(subtitle, `${build.transition} · owned by ${build.workspace_owner_name || 'unknown'}`);
    fill(header, headerFields(build));
    const job = build.job || {};
    fill(failure, job.error
      ? h('div', { class: 'notice notice-error', role: 'alert' },
        h('p', {}, h('strong', {}, 'The build failed: '), job.error),
        job.error_code ? h('p', { class: 'detail' }, job.error_code) : null)
      : null);
    renderActions();
    renderResources(resources, build.resources, !!job.completed_at);
  }

  /**
   * Reads the build again. A call while a read is under way makes that read go once more when
   * it ends, so a change that came during the read is never missed.
   */
  function refresh() {
    if (refreshing) {
      readAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        do {
          readAgain = false;
          try {
            const next = await get(`/workspacebuilds/${encodeURIComponent(id)}`);
            if (gone) return;
            build = next;
            render();
          } catch (err) {
            if (gone) return;
            if (err.signedOut) {
              app.signedOut('Your session has ended. Please sign in again.');
              return;
            }
            if (!build) {
              fill(header, errorBox(err, 'Could not load this build:'));
              return;
            }
          }
        } while (readAgain && !gone);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  async function cancel(event) {
    const button = event.currentTarget;
    button.disabled = true;
    actionResult.replaceChildren();
    try {
      const answer = await patch(`/workspacebuilds/${encodeURIComponent(id)}/cancel`);
      const message = answer?.message || 'Cancel requested.';
      fill(actionResult, h('div', { class: 'notice notice-info', role: 'status' }, message));
      announce(message);
    } catch (err) {
      fill(actionResult, errorBox(err, 'Could not cancel:'));
      button.disabled = false;
    }
    await refresh();
  }

  async function load() {
    await refresh();
    if (gone || !build) {
      if (!gone) {
        fill(title, 'Build');
        logBox.closest('section')?.remove();
        parameters.closest('section')?.remove();
        resources.closest('section')?.remove();
      }
      return;
    }
    log = new BuildLog(id, {
      box: logBox,
      status: logStatus,
      onEnd: () => refresh(),
      onSignedOut: () => app.signedOut('Your session has ended. Please sign in again.'),
    });
    log.follow();
    get(`/workspacebuilds/${encodeURIComponent(id)}/parameters`)
      .then((list) => { if (!gone) renderParameters(parameters, list || []); })
      .catch((err) => { if (!gone) fill(parameters, errorBox(err, 'Could not load the parameters:')); });
    safetyTimer = setInterval(() => { if (jobActive(build?.job)) refresh(); }, SAFETY_REFRESH_MS);
  }

  // The server pushes a new overview whenever jobs or builds change: read this build again
  // while it is active, so its status and Cancel button follow.
  const unsubscribe = app.feed.subscribe((message) => {
    if (message.type === 'overview' && build && jobActive(build.job)) refresh();
  });

  load();

  return () => {
    gone = true;
    unsubscribe();
    clearInterval(safetyTimer);
    log?.stop();
    document.title = 'kiln';
  };
}
