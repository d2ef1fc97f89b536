// Workspaces (#/workspaces): each with its latest build, and buttons that start, stop or delete
// it through `POST /api/v2/workspaces/{id}/builds`.

import { get, post } from './api.js';
import {
  ACTIVE_BUILD_STATUSES, absoluteTime, announce, badge, errorBox, fill, h, table, timeAgo,
} from './ui.js';

function actionButtons(workspace, act) {
  const status = workspace.latest_build?.status;
  const busy = ACTIVE_BUILD_STATUSES.includes(status);
  const label = workspace.name;
  const button = (transition, text, disabled, className = '') => h('button', {
    type: 'button',
    class: className,
    disabled: busy || disabled,
    'aria-label': `${text} ${label}`,
    dataset: { key: `${transition}-${workspace.id}` },
    onclick: (event) => act(event.currentTarget, workspace, transition),
  }, text);
  return h('div', { class: 'button-row' },
    button('start', 'Start', status === 'running'),
    button('stop', 'Stop', status === 'stopped'),
    button('delete', 'Delete', status === 'deleted', 'button-danger'));
}

/** When the workspace stops by itself (its deadline) or starts by itself (its schedule). */
function schedule(workspace) {
  const build = workspace.latest_build;
  const lines = [];
  if (build?.status === 'running' && build.deadline) {
    lines.push(h('span', {}, 'Stops ', h('time', { datetime: build.deadline }, absoluteTime(build.deadline))));
  }
  if (workspace.next_start_at) {
    lines.push(h('span', {}, 'Starts ', h('time', { datetime: workspace.next_start_at }, absoluteTime(workspace.next_start_at))));
  }
  if (!lines.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'schedule-cell' }, ...lines);
}

export function workspacesView(app) {
  const list = h('div', { id: 'workspaces' }, h('p', { class: 'muted' }, 'Loading…'));
  const result = h('div', { class: 'action-result' });
  let gone = false;
  let loading = null;

  fill(app.main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Workspaces')),
    h('p', { class: 'muted' }, app.isOwner() ? 'Every workspace on this kiln.' : 'Your workspaces.'),
    result,
    list);

  async function act(button, workspace, transition) {
    // Deleting asks once more, on the button itself.
    if (transition === 'delete' && button.dataset.confirm !== 'yes') {
      button.dataset.confirm = 'yes';
      button.textContent = 'Confirm delete';
      button.setAttribute('aria-label', `Confirm: delete ${workspace.name}`);
      button.focus();
      return;
    }
    button.disabled = true;
    result.replaceChildren();
    try {
      const build = await post(`/workspaces/${encodeURIComponent(workspace.id)}/builds`, { transition });
      announce(`Build #${build.build_number} (${transition}) of ${workspace.name} queued.`);
      app.go(`#/builds/${encodeURIComponent(build.id)}`);
    } catch (err) {
      if (gone) return;
      if (err.signedOut) {
        app.signedOut('Your session has ended. Please sign in again.');
        return;
      }
      fill(result, errorBox(err, `Could not ${transition} ${workspace.name}:`));
      button.disabled = false;
    }
  }

  function render(workspaces) {
    if (!workspaces.length) {
      fill(list, h('p', { class: 'empty' }, 'No workspaces yet.'));
      return;
    }
    fill(list, table('Workspaces', ['Workspace', 'Template', 'Status', 'Latest build', 'Schedule', 'Last used', 'Actions'],
      workspaces.map((w) => ({
        attrs: { dataset: { workspaceId: w.id } },
        cells: [
          h('span', { class: 'workspace-cell' }, h('strong', {}, w.name), h('span', { class: 'muted owner' }, w.owner_name)),
          w.template_display_name || w.template_name || '—',
          w.latest_build ? badge(w.latest_build.status) : '—',
          w.latest_build
            ? h('a', { href: `#/builds/${encodeURIComponent(w.latest_build.id)}` },
              `#${w.latest_build.build_number} ${w.latest_build.transition}`)
            : '—',
          schedule(w),
          timeAgo(w.last_used_at),
          actionButtons(w, act),
        ],
      })), { className: 'workspaces-table' }));
  }

  async function load() {
    if (loading) return;
    loading = get('/workspaces');
    try {
      const answer = await loading;
      if (gone) return;
      const key = list.contains(document.activeElement) ? document.activeElement?.dataset?.key : null;
      render(answer?.workspaces || []);
      if (key) list.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
    } catch (err) {
      if (gone) return;
      if (err.signedOut) app.signedOut('Your session has ended. Please sign in again.');
      else fill(list, errorBox(err, 'Could not load the workspaces:'));
    } finally {
      loading = null;
    }
  }

  load();
  // Pushed overviews mean builds moved: read the workspaces again so their statuses follow.
  let first = true;
  const unsubscribe = app.feed.subscribe((message) => {
    if (message.type !== 'overview') return;
    if (first) {
      first = false;
      return;
    }
    if (!list.querySelector('[data-confirm="yes"]')) load();
  });
  return () => {
    gone = true;
    unsubscribe();
  };
}
