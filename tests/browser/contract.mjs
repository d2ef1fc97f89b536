// Answers for the workspace build endpoints in the shapes of Coder's API (as documented in the
// builds spec), made from the rows the test wrote. The test installs them only when the server
// answers 404 for those endpoints (they are written separately), so the build page can still be
// driven end to end against the documented contract.

import { iso } from './kiln.mjs';

/** `build`: what Rows.build returned; `names`: owner, initiator and template version names. */
export function workspaceBuildJson(build, { owner, initiator, versionName, status, jobStatus, queuePosition = 0, queueSize = 0 }) {
  const job = {
    id: build.jobId,
    created_at: iso(build.createdAt),
    started_at: iso(build.startedAt),
    completed_at: iso(build.completedAt),
    canceled_at: iso(build.canceledAt),
    error: build.error || undefined,
    file_id: '00000000-0000-0000-0000-000000000000',
    status: jobStatus,
    tags: {},
    queue_position: queuePosition,
    queue_size: queueSize,
    organization_id: '00000000-0000-0000-0000-000000000000',
    initiator_id: build.initiator,
    input: { workspace_build_id: build.id },
    type: 'workspace_build',
    logs_overflowed: false,
  };
  return {
    id: build.id,
    created_at: iso(build.createdAt),
    updated_at: iso(build.createdAt),
    workspace_id: build.workspace.id,
    workspace_name: build.workspace.name,
    workspace_owner_id: build.workspace.ownerId,
    workspace_owner_name: owner,
    workspace_owner_avatar_url: '',
    template_version_id: build.workspace.template.versionId,
    template_version_name: versionName,
    build_number: build.number,
    transition: build.transition,
    initiator_id: build.initiator,
    initiator_name: initiator,
    job,
    reason: 'initiator',
    resources: jobStatus === 'succeeded' ? build.resources.map((r) => ({
      id: r.id,
      created_at: iso(build.createdAt),
      job_id: build.jobId,
      workspace_transition: build.transition,
      type: r.type,
      name: r.name,
      hide: false,
      icon: '',
      agents: r.agents,
      metadata: r.metadata,
      daily_cost: 0,
    })) : [],
    deadline: null,
    max_deadline: null,
    status,
    daily_cost: 0,
    matched_provisioners: { count: 3, available: 3, most_recently_seen: null },
    template_version_preset_id: null,
  };
}

/** Log lines in Coder's ProvisionerJobLog shape, with ids from 1. */
export function logJson(build) {
  return build.logs.map((l, i) => ({
    id: i + 1,
    created_at: iso(build.createdAt + i * 150000),
    log_source: l.log_source,
    log_level: l.log_level,
    stage: l.stage,
    output: l.output,
  }));
}

function sse(logs, ended) {
  let body = '';
  for (const log of logs) body += `event: log\nid: ${log.id}\ndata: ${JSON.stringify(log)}\n\n`;
  if (ended) body += 'event: end\ndata: \n\n';
  return body;
}

/**
 * Serves GET /workspacebuilds/{id}, /parameters, /logs (SSE) and PATCH /cancel from `served`,
 * a map from build id to `{ json(), logs, logsVisible, ended, canceled }` that the test changes
 * as it goes. Counts the requests in `served.requests`.
 */
export async function serveBuildContract(page, served) {
  served.requests = [];
  await page.route((url) => url.pathname.startsWith('/api/v2/workspacebuilds/'), async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    const [, id, part = ''] = url.pathname.match(/^\/api\/v2\/workspacebuilds\/([^/]+)\/?(.*)$/) || [];
    served.requests.push(`${request.method()} ${url.pathname}${url.search}`);
    const entry = served[id];
    const json = (status, body) => route.fulfill({
      status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body),
    });
    if (!entry) return json(404, { message: 'Resource not found or you do not have access to this resource' });
    if (request.method() === 'GET' && part === '') return json(200, entry.json());
    if (request.method() === 'GET' && part === 'parameters') return json(200, entry.parameters);
    if (request.method() === 'GET' && part === 'logs') {
      const after = Number(url.searchParams.get('after') || 0);
      const logs = entry.logs.slice(0, entry.logsVisible).filter((l) => l.id > after);
      return route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: sse(logs, entry.ended) });
    }
    if (request.method() === 'PATCH' && part === 'cancel') {
      entry.canceled = true;
      return json(200, { message: 'Job has been marked as canceled...' });
    }
    return json(404, { message: 'Resource not found or you do not have access to this resource' });
  });
}

/** codersdk.Workspace, with the fields the page reads, around `latestBuild` (a WorkspaceBuild). */
export function workspaceJson(workspace, { owner, templateName, latestBuild }) {
  return {
    id: workspace.id,
    created_at: latestBuild.created_at,
    updated_at: latestBuild.updated_at,
    owner_id: workspace.ownerId,
    owner_name: owner,
    owner_avatar_url: '',
    organization_id: '00000000-0000-0000-0000-000000000000',
    organization_name: 'coder',
    template_id: workspace.template.id,
    template_name: templateName,
    template_display_name: '',
    template_icon: '',
    template_allow_user_cancel_workspace_jobs: true,
    template_active_version_id: workspace.template.versionId,
    template_require_active_version: false,
    latest_build: latestBuild,
    outdated: false,
    name: workspace.name,
    autostart_schedule: null,
    ttl_ms: null,
    last_used_at: latestBuild.created_at,
    deleting_at: null,
    dormant_at: null,
    health: { healthy: true, failing_agents: [] },
    automatic_updates: 'never',
    allow_renames: false,
    favorite: false,
    next_start_at: null,
  };
}

/**
 * Serves GET /workspaces, POST /workspaces/{id}/builds, GET /organizations/coder/templates and
 * GET /templateversions/{id} from `served`: `{ workspaces: [...], templates: [...], versions:
 * {id: version}, createBuild(workspaceId, body) }`. Records the builds asked for in
 * `served.created`.
 */
export async function serveWorkspaceContract(page, served) {
  served.created = [];
  const json = (route, status, body) => route.fulfill({
    status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body),
  });
  await page.route((url) => url.pathname === '/api/v2/workspaces', (route) => json(route, 200, {
    workspaces: served.workspaces, count: served.workspaces.length,
  }));
  await page.route((url) => /^\/api\/v2\/workspaces\/[^/]+\/builds$/.test(url.pathname), (route) => {
    const workspaceId = new URL(route.request().url()).pathname.split('/')[4];
    const body = route.request().postDataJSON();
    served.created.push({ workspaceId, body });
    return json(route, 201, served.createBuild(workspaceId, body));
  });
  await page.route((url) => url.pathname === '/api/v2/organizations/coder/templates', (route) => json(route, 200, served.templates));
  await page.route((url) => url.pathname.startsWith('/api/v2/templateversions/'), (route) => {
    const id = new URL(route.request().url()).pathname.split('/')[4];
    const version = served.versions[id];
    return version ? json(route, 200, version) : json(route, 404, { message: 'Resource not found or you do not have access to this resource' });
  });
}
