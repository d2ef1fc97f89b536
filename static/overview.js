// The overview (#/): version, uptime, workers, the queue and recent builds, redrawn whenever the
// server pushes a new overview.

import {
  ACTIVE_BUILD_STATUSES, BUILD_STATUSES, badge, duration, fill, h, liveDuration, table, timeAgo,
} from './ui.js';

const STATE_TEXT = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Connection lost, reconnecting…',
};

function statCard(label, ...value) {
  return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', {}, ...value));
}

function jobLabel(job) {
  if (job.type === 'workspace_build') {
    return [job.workspace_name ?? 'workspace', job.build_number ? ` #${job.build_number}` : ''];
  }
  if (job.type === 'template_version_import') {
    return ['template version ', h('strong', {}, job.template_version_name ?? job.job_id.slice(0, 8))];
  }
  return job.job_id;
}

const JOB_TYPE = {
  workspace_build: 'Workspace build',
  template_version_import: 'Template import',
};

function renderStats(el, overview) {
  const since = new Date(Date.now() - overview.uptime_seconds * 1000).toISOString();
  const { busy, total } = overview.workers;
  fill(el,
    statCard('Version', h('span', { class: 'stat-value' }, overview.version)),
    statCard('Uptime', h('span', { class: 'stat-value', title: `Started ${overview.started_at}` }, liveDuration(since))),
    statCard('Workers busy',
      h('span', { class: 'stat-value', id: 'workers-busy' }, `${busy} / ${total}`),
      h('meter', { min: 0, max: Math.max(total, 1), value: busy, 'aria-label': `${busy} of ${total} workers busy` })),
    statCard('Queued jobs', h('span', { class: 'stat-value', id: 'queue-length' }, String(overview.queue_size))),
    ...(overview.database_bytes === undefined ? []
      : [statCard('Database', h('span', { class: 'stat-value', id: 'database-size' }, byteSize(overview.database_bytes)))]));
}

/** 1234567 -> "1.2 MB". */
function byteSize(n) {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return i === 0 ? `${n} bytes` : `${n.toFixed(1)} ${units[i]}`;
}

function renderQueue(el, queue) {
  if (queue.length === 0) {
    fill(el, h('p', { class: 'empty' }, 'The queue is empty: no job is waiting for a worker.'));
    return;
  }
  fill(el, table('Pending jobs, oldest first', ['Position', 'Job', 'Type', 'Queued'],
    queue.map((job) => ({
      attrs: { dataset: { jobId: job.job_id } },
      cells: [
        h('span', { class: 'position' }, `${job.position}`),
        jobLabel(job),
        JOB_TYPE[job.type] || job.type,
        timeAgo(job.created_at),
      ],
    })), { className: 'queue-table' }));
}

function tagsText(tags) {
  const extra = Object.entries(tags || {}).filter(([k, v]) => !(k === 'scope' && v === 'organization') && !(k === 'owner' && v === ''));
  return extra.length ? extra.map(([k, v]) => `${k}=${v}`).join(', ') : h('span', { class: 'muted' }, 'untagged');
}

const DAEMON_TONE = { busy: 'tone-busy', idle: 'tone-good', offline: 'tone-quiet' };

function renderDaemons(el, daemons) {
  if (!daemons || daemons.length === 0) {
    fill(el, h('p', { class: 'empty' }, 'No provisioner daemons (built-in workers or `kiln provisioner start`).'));
    return;
  }
  fill(el, table('Provisioner daemons, built-in workers first', ['Name', 'Kind', 'Tags', 'Status', 'Current job', 'Last seen'],
    daemons.map((d) => ({
      attrs: { dataset: { daemonId: d.id } },
      cells: [
        d.name,
        d.kind,
        tagsText(d.tags),
        h('span', { class: `badge ${DAEMON_TONE[d.status] || 'tone-quiet'}` }, d.status),
        d.current_job_id ? d.current_job_id.slice(0, 8) : h('span', { class: 'muted' }, '—'),
        d.kind === 'built-in' && d.status !== 'offline' ? 'now' : timeAgo(d.last_seen_at),
      ],
    })), { className: 'daemons-table' }));
}

function buildDuration(build) {
  if (build.duration_ms !== undefined && build.duration_ms !== null) return duration(build.duration_ms);
  if (build.started_at && ACTIVE_BUILD_STATUSES.includes(build.status)) return liveDuration(build.started_at);
  return h('span', { class: 'muted' }, '—');
}

function renderBuilds(el, builds, status) {
  if (builds.length === 0) {
    fill(el, h('p', { class: 'empty' }, status ? `No builds with status “${status}”.` : 'No builds yet.'));
    return;
  }
  fill(el, table('Recent builds, newest first',
    ['Workspace', 'Build', 'Transition', 'Status', 'Initiator', 'Created', 'Duration'],
    builds.map((b) => ({
      attrs: { dataset: { buildId: b.id } },
      cells: [
        h('span', { class: 'workspace-cell' },
          h('a', { href: `#/builds/${encodeURIComponent(b.id)}`, dataset: { key: `build-${b.id}` } }, b.workspace_name),
          h('span', { class: 'muted owner' }, b.owner_name)),
        `#${b.build_number}`,
        b.transition,
        badge(b.status),
        b.initiator_name,
        timeAgo(b.created_at),
        buildDuration(b),
      ],
    })), { className: 'builds-table' }));
}

/** Redraws `render` while keeping keyboard focus on the same link if it is redrawn. */
function keepingFocus(container, render) {
  const key = container.contains(document.activeElement) ? document.activeElement?.dataset?.key : null;
  render();
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

export function overviewView(app, route) {
  const initialStatus = BUILD_STATUSES.includes(route.params.get('status')) ? route.params.get('status') : '';
  const stats = h('dl', { class: 'stats', 'aria-label': 'Server' });
  const liveState = h('p', { class: 'live-state', role: 'status' });
  const queue = h('div', { id: 'queue' });
  const daemons = h('div', { id: 'daemons' });
  const builds = h('div', { id: 'builds' });
  const filter = h('select', { id: 'status-filter', name: 'status' },
    h('option', { value: '' }, 'All statuses'),
    BUILD_STATUSES.map((s) => h('option', { value: s }, s)));
  filter.value = initialStatus;
  filter.addEventListener('change', () => {
    history.replaceState(null, '', filter.value ? `#/?status=${filter.value}` : '#/');
    fill(builds, h('p', { class: 'muted' }, 'Loading…'));
    app.feed.setStatusFilter(filter.value);
  });

  fill(app.main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Overview'), liveState),
    stats,
    h('section', { 'aria-labelledby': 'queue-title' }, h('h2', { id: 'queue-title' }, 'Queue'), queue),
    h('section', { 'aria-labelledby': 'daemons-title' }, h('h2', { id: 'daemons-title' }, 'Provisioners'), daemons),
    h('section', { 'aria-labelledby': 'builds-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'builds-title' }, 'Recent builds'),
        h('div', { class: 'filter' }, h('label', { for: 'status-filter' }, 'Status'), filter)),
      builds));
  fill(builds, h('p', { class: 'muted' }, 'Loading…'));
  app.feed.setStatusFilter(initialStatus);

  return app.feed.subscribe((message) => {
    if (message.type === 'state') {
      liveState.textContent = STATE_TEXT[message.state] || message.state;
      liveState.dataset.state = message.state;
      return;
    }
    const overview = message.overview;
    renderStats(stats, overview);
    keepingFocus(queue, () => renderQueue(queue, overview.queue));
    renderDaemons(daemons, overview.daemons);
    keepingFocus(builds, () => renderBuilds(builds, overview.builds, app.feed.status));
  });
}
