// A build's parameters and resources (agents, apps, metadata). Sensitive metadata values are
// never put on the page.

import { fill, h, notice, table } from './ui.js';

export function renderParameters(el, parameters) {
  if (!parameters.length) {
    fill(el, h('p', { class: 'empty' }, 'This build has no parameters.'));
    return;
  }
  fill(el, table('Parameters', ['Name', 'Value'],
    parameters.map((p) => ({ cells: [h('code', {}, p.name), p.value === '' ? h('span', { class: 'muted' }, '(empty)') : p.value] })),
    { className: 'params-table' }));
}

function metadataList(metadata) {
  if (!metadata?.length) return null;
  return h('dl', { class: 'kv' }, metadata.flatMap((m) => [
    h('dt', {}, m.key),
    h('dd', {}, m.sensitive
      ? h('span', { class: 'sensitive', title: 'Sensitive value, not shown' }, '•••••• (sensitive)')
      : m.value),
  ]));
}

function appItem(app) {
  const target = app.url || app.command || '';
  return h('li', { class: 'app' },
    h('strong', {}, app.display_name || app.slug),
    app.slug && app.display_name ? h('span', { class: 'muted' }, ` (${app.slug})`) : null,
    target ? [' ', h('code', {}, target)] : null,
    app.external ? h('span', { class: 'tag' }, 'external') : null,
    app.sharing_level ? h('span', { class: 'tag' }, app.sharing_level) : null);
}

function agentItem(agent) {
  const platform = [agent.operating_system, agent.architecture].filter(Boolean).join(' / ');
  return h('li', { class: 'agent' },
    h('div', { class: 'agent-head' },
      h('strong', {}, agent.name),
      agent.status ? h('span', { class: 'tag' }, agent.status) : null,
      platform ? h('span', { class: 'muted' }, platform) : null),
    agent.directory ? h('p', { class: 'muted' }, 'Directory ', h('code', {}, agent.directory)) : null,
    agent.apps?.length
      ? [h('p', { class: 'label' }, 'Apps'), h('ul', { class: 'apps' }, agent.apps.map(appItem))]
      : null);
}

function resourceCard(resource) {
  return h('article', { class: 'resource' },
    h('h3', {},
      resource.name,
      ' ',
      h('span', { class: 'muted resource-type' }, resource.type),
      resource.hide ? h('span', { class: 'tag' }, 'hidden') : null),
    resource.daily_cost ? h('p', { class: 'muted' }, `Daily cost: ${resource.daily_cost}`) : null,
    metadataList(resource.metadata),
    resource.agents?.length
      ? [h('p', { class: 'label' }, 'Agents'), h('ul', { class: 'agents' }, resource.agents.map(agentItem))]
      : null);
}

/** `jobDone`: whether the build's job has completed (resources appear only then). */
export function renderResources(el, resources, jobDone) {
  if (!resources?.length) {
    fill(el, jobDone
      ? h('p', { class: 'empty' }, 'This build produced no resources.')
      : notice('Resources appear when the build completes.'));
    return;
  }
  const sorted = [...resources].sort((a, b) => a.name.localeCompare(b.name));
  fill(el, h('div', { class: 'resources' }, sorted.map(resourceCard)));
}
