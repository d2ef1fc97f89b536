//! /organizations: kiln has one, the default `coder`.

use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::lookup::{find_organization, find_user};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::model;
use crate::store::OrganizationRow;
use actix_web::web;

pub fn organization_json(o: OrganizationRow) -> model::Organization {
    model::Organization {
        id: o.id,
        name: o.name,
        display_name: o.display_name,
        description: o.description,
        icon: o.icon,
        created_at: o.created_at,
        updated_at: o.updated_at,
        is_default: o.is_default,
    }
}

pub async fn list(state: State, _actor: Actor) -> ApiResult<Reply> {
    blocking(move || {
        let orgs: Vec<_> = state
            .store
            .list_organizations()?
            .into_iter()
            .map(organization_json)
            .collect();
        ok(&orgs)
    })
    .await
}

pub async fn get(state: State, _actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || ok(&organization_json(find_organization(&state, &path)?))).await
}

/// The organizations `{user}` is a member of.
pub async fn of_user(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        let mut orgs = Vec::new();
        for id in state.store.user_organization_ids(&user.id)? {
            if let Some(o) = state.store.organization(&id)? {
                orgs.push(organization_json(o));
            }
        }
        ok(&orgs)
    })
    .await
}
