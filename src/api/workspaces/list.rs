//! `GET /workspaces`: Coder's search syntax (`q`, parsed by `domain::search`) and pagination
//! (`limit`, `offset`). Members see only their own workspaces, whatever they search for.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::lookup::find_user;
use crate::api::extract::query::QueryParser;
use crate::api::present::render::Renderer;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::domain::search::{WorkspaceSearch, workspace_search};
use crate::model::{Workspace, WorkspacesResponse};
use actix_web::HttpRequest;

/// How many workspaces a search that filters on the rendered workspace renders at a time.
const RENDER_CHUNK: usize = 500;

pub async fn list(state: State, actor: Actor, req: HttpRequest) -> ApiResult<Reply> {
    let mut q = QueryParser::new(&req);
    let query = q.first("q").unwrap_or_default().to_string();
    let limit = q.positive_int32("limit", 0) as usize;
    let offset = q.positive_int32("offset", 0) as usize;
    q.finish()?;
    let search = workspace_search(&query).map_err(|errors| {
        let mut e = ApiError::bad_request("Invalid workspace search query.");
        e.body.validations = errors;
        e
    })?;
    blocking(move || {
        // Members: their own, always. Others: the owner searched for, if any.
        let mut owner_id = actor.caller().workspace_owner_filter().map(str::to_string);
        if let Some(name) = &search.owner {
            match find_user(&state, &actor, name) {
                Ok(u) if owner_id.as_ref().is_none_or(|id| *id == u.id) => owner_id = Some(u.id),
                _ => return ok(&WorkspacesResponse::default()),
            }
        }
        if !needs_rendering(&search) && search.ids.is_empty() && search.name.is_none() {
            // Nothing to filter but the owner: the store reads just the page.
            let (count, rows) =
                state
                    .store
                    .workspace_page(owner_id.as_deref(), offset as i64, limit as i64)?;
            let workspaces = Renderer::new(&state).workspaces(&rows)?;
            return ok(&WorkspacesResponse {
                workspaces,
                count: count as usize,
            });
        }
        let rows = state.store.workspaces(owner_id.as_deref())?;
        let take = if limit == 0 { usize::MAX } else { limit };
        let (count, page): (usize, Vec<Workspace>) = if needs_rendering(&search) {
            let mut found = Vec::new();
            // Rendered a chunk at a time: each chunk's builds and resources in one read each.
            let mut render = Renderer::new(&state);
            for chunk in rows.chunks(RENDER_CHUNK) {
                for w in render.workspaces(chunk)? {
                    if matches(&search, &w) {
                        found.push(w);
                    }
                }
            }
            (
                found.len(),
                found.into_iter().skip(offset).take(take).collect(),
            )
        } else {
            // Every filter reads the row itself: only the page is rendered (its builds read).
            let found: Vec<_> = rows
                .into_iter()
                .filter(|r| search.ids.is_empty() || search.ids.contains(&r.id))
                .filter(|r| {
                    search
                        .name
                        .as_ref()
                        .is_none_or(|n| r.name.to_lowercase().contains(n.as_str()))
                })
                .collect();
            let count = found.len();
            let page: Vec<_> = found.into_iter().skip(offset).take(take).collect();
            (count, Renderer::new(&state).workspaces(&page)?)
        };
        ok(&WorkspacesResponse {
            workspaces: page,
            count,
        })
    })
    .await
}

/// Whether a filter of `s` needs the rendered workspace (its template, latest build, or
/// organization), not only its row.
fn needs_rendering(s: &WorkspaceSearch) -> bool {
    s.template.is_some()
        || s.status.is_some()
        || s.outdated.is_some()
        || s.organization.is_some()
        || s.dormant
}

/// Whether `w` passes every filter of the search but the owner (applied by the store).
fn matches(s: &WorkspaceSearch, w: &Workspace) -> bool {
    let name_ok = s
        .name
        .as_ref()
        .is_none_or(|n| w.name.to_lowercase().contains(n.as_str()));
    let template_ok = s
        .template
        .as_ref()
        .is_none_or(|t| w.template_name.eq_ignore_ascii_case(t));
    let status_ok = s
        .status
        .as_ref()
        .is_none_or(|st| w.latest_build.status.as_str() == st);
    let outdated_ok = s.outdated.is_none_or(|o| w.outdated == o);
    let id_ok = s.ids.is_empty() || s.ids.contains(&w.id);
    let org_ok = s
        .organization
        .as_ref()
        .is_none_or(|o| w.organization_name.eq_ignore_ascii_case(o) || w.organization_id == *o);
    name_ok && template_ok && status_ok && outdated_ok && id_ok && org_ok && !s.dormant
}
