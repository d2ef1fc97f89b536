// Templates (#/templates): name, active version and whether that version imported.

import { get } from './api.js';
import { badge, errorBox, fill, h, table, timeAgo } from './ui.js';

async function activeVersion(template) {
  if (!template.active_version_id) return null;
  try {
    return await get(`/templateversions/${encodeURIComponent(template.active_version_id)}`);
  } catch (err) {
    return { error: err };
  }
}

function versionCells(version) {
  if (!version) return ['—', '—'];
  if (version.error) {
    return [h('span', { class: 'muted' }, version.error.message), h('span', { class: 'muted' }, 'unknown')];
  }
  return [h('code', {}, version.name), badge(version.job?.status)];
}

export function templatesView(app) {
  const list = h('div', { id: 'templates' }, h('p', { class: 'muted' }, 'Loading…'));
  let gone = false;
  fill(app.main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Templates')),
    h('p', { class: 'muted' }, 'Templates of the default organization, with the version new workspaces get.'),
    list);

  (async () => {
    try {
      const templates = (await get('/organizations/coder/templates')) || [];
      if (gone) return;
      if (!templates.length) {
        fill(list, h('p', { class: 'empty' }, 'No templates yet.'));
        return;
      }
      const versions = await Promise.all(templates.map(activeVersion));
      if (gone) return;
      fill(list, table('Templates', ['Template', 'Active version', 'Import', 'Created by', 'Updated'],
        templates.map((t, i) => ({
          attrs: { dataset: { templateId: t.id } },
          cells: [
            h('span', { class: 'workspace-cell' },
              h('strong', {}, t.display_name || t.name),
              t.display_name && t.display_name !== t.name ? h('span', { class: 'muted owner' }, t.name) : null),
            ...versionCells(versions[i]),
            t.created_by_name || '—',
            timeAgo(t.updated_at),
          ],
        })), { className: 'templates-table' }));
    } catch (err) {
      if (gone) return;
      if (err.signedOut) app.signedOut('Your session has ended. Please sign in again.');
      else fill(list, errorBox(err, 'Could not load the templates:'));
    }
  })();

  return () => { gone = true; };
}
