//! Users, organizations, memberships and API keys.

use super::dialect::{exec, optional, query_one};
use super::{SqliteStore, Tx};
use crate::model::{Role, Time};
use crate::store::{
    API_KEY_INFO_COLUMNS, ApiKeyInfo, ApiKeyRow, KeyFilter, NewApiKey, NewUser, OrganizationRow,
    StoreError, StoreResult, UserRow, UserStore,
};
use rusqlite::{Row, params};

const USER_COLUMNS: &str = "id, email, username, name, hashed_password, login_type, status, roles, \
                            avatar_url, created_at, updated_at, last_seen_at";

fn user_from_row(r: &Row) -> rusqlite::Result<UserRow> {
    let roles: String = r.get(7)?;
    Ok(UserRow {
        id: r.get(0)?,
        email: r.get(1)?,
        username: r.get(2)?,
        name: r.get(3)?,
        hashed_password: r.get(4)?,
        login_type: r.get(5)?,
        status: r.get(6)?,
        roles: roles.split_whitespace().filter_map(Role::parse).collect(),
        avatar_url: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        last_seen_at: r.get(11)?,
    })
}

fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(" ")
}

/// An API key with its user (every authenticated request that misses the session cache).
pub(super) fn api_key_query() -> String {
    format!(
        "SELECT {}, k.id, k.hashed_secret, k.user_id, k.login_type, k.expires_at \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?1",
        USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

const ORG_COLUMNS: &str =
    "id, name, display_name, description, icon, is_default, created_at, updated_at";

fn org_from_row(r: &Row) -> rusqlite::Result<OrganizationRow> {
    Ok(OrganizationRow {
        id: r.get(0)?,
        name: r.get(1)?,
        display_name: r.get(2)?,
        description: r.get(3)?,
        icon: r.get(4)?,
        is_default: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

fn insert_user(tx: &Tx, u: &NewUser, org_ids: &[String]) -> StoreResult<()> {
    let now = Time::now();
    exec(
        tx,
        &format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, '', ?8, ?8, ?8)"
        ),
        params![
            u.id,
            u.email,
            u.username,
            u.name,
            u.hashed_password,
            u.login_type,
            roles_text(&u.roles),
            now
        ],
    )?;
    for org in org_ids {
        exec(
            tx,
            "INSERT INTO organization_members (organization_id, user_id, created_at) VALUES (?1, ?2, ?3)",
            params![org, u.id, now],
        )?;
    }
    Ok(())
}

impl UserStore for SqliteStore {
    fn user_count(&self) -> StoreResult<i64> {
        let conn = self.conn()?;
        Ok(query_one(&conn, "SELECT count(*) FROM users", [], |r| {
            r.get(0)
        })?)
    }

    fn create_first_user(&self, user: &NewUser, org_id: &str) -> StoreResult<()> {
        self.write(|tx| {
            let now = Time::now();
            // The default organization is made with the first user and only then, so its row
            // is the guard: of two first users racing, the second insert breaks the unique
            // name `coder` (whether or not the database serializes the two transactions).
            exec(tx,
                "INSERT INTO organizations (id, name, display_name, description, icon, is_default, created_at, updated_at) \
                 VALUES (?1, 'coder', 'Coder', 'Builtin default organization.', '', 1, ?2, ?2)",
                params![org_id, now],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("the first user exists".into()),
                other => other,
            })?;
            insert_user(tx, user, &[org_id.to_string()])
        })
    }

    fn create_user(&self, user: &NewUser, org_ids: &[String]) -> StoreResult<()> {
        self.write(|tx| insert_user(tx, user, org_ids))
    }

    fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ?1 AND status <> 'deleted'"
        ))?;
        optional(stmt.query_row([id], user_from_row))
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?1 AND status <> 'deleted'"
        ))?;
        optional(stmt.query_row([username], user_from_row))
    }

    fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        let conn = self.conn()?;
        optional(query_one(
            &conn,
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1 AND status <> 'deleted'"),
            [email],
            user_from_row,
        ))
    }

    fn user_exists(&self, email: &str, username: &str) -> StoreResult<bool> {
        let conn = self.conn()?;
        Ok(query_one(
            &conn,
            "SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1 OR username = ?2)",
            [email, username],
            |r| r.get(0),
        )?)
    }

    fn organization_members(&self, org_id: &str) -> StoreResult<Vec<(UserRow, Time)>> {
        let conn = self.conn()?;
        let columns = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns}, m.created_at FROM organization_members m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = ?1 AND u.status <> 'deleted' ORDER BY u.username COLLATE NOCASE, u.id"
        ))?;
        let rows = stmt.query_map([org_id], |r| Ok((user_from_row(r)?, r.get(12)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE status <> 'deleted' ORDER BY created_at, username"
        ))?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_user_roles(&self, id: &str, roles: &[Role]) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE users SET roles = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, roles_text(roles), Time::now()],
            )?;
            Ok(())
        })
    }

    fn set_user_status(&self, id: &str, status: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status, Time::now()],
            )?;
            Ok(())
        })
    }

    fn update_user_profile(&self, id: &str, username: &str, name: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE users SET username = ?2, name = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, username, name, Time::now()],
            )?;
            Ok(())
        })
    }

    fn set_user_password(&self, id: &str, hashed_password: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE users SET hashed_password = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, hashed_password, Time::now()],
            )?;
            exec(tx, "DELETE FROM api_keys WHERE user_id = ?1", [id])?;
            Ok(())
        })
    }

    fn delete_user(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(tx, "DELETE FROM api_keys WHERE user_id = ?1", [id])?;
            exec(
                tx,
                "DELETE FROM organization_members WHERE user_id = ?1",
                [id],
            )?;
            exec(
                tx,
                "UPDATE users SET status = 'deleted', updated_at = ?2 WHERE id = ?1",
                params![id, Time::now()],
            )?;
            Ok(())
        })
    }

    fn user_organization_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT organization_id FROM organization_members WHERE user_id = ?1 ORDER BY created_at",
        )?;
        let rows = stmt.query_map([user_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ORG_COLUMNS} FROM organizations ORDER BY created_at"
        ))?;
        let rows = stmt.query_map([], org_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn organization(&self, id_or_name: &str) -> StoreResult<Option<OrganizationRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1 OR name = ?1"
        ))?;
        optional(stmt.query_row([id_or_name], org_from_row))
    }

    fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        self.write(|tx| {
            let now = Time::now();
            exec(tx,
                "INSERT INTO api_keys (id, hashed_secret, user_id, login_type, created_at, expires_at, last_used, \
                 token_name, lifetime_seconds, scope) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?7, ?8, ?9)",
                params![key.id, key.hashed_secret, key.user_id, key.login_type, now, key.expires_at,
                    key.token_name, key.lifetime_seconds, key.scope],
            )?;
            Ok(())
        })
    }

    fn api_keys(&self, filter: KeyFilter) -> StoreResult<Vec<ApiKeyInfo>> {
        let (condition, values) = filter.condition('?');
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {API_KEY_INFO_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE {condition} ORDER BY k.created_at, k.id"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
            Ok(ApiKeyInfo {
                id: r.get(0)?,
                user_id: r.get(1)?,
                username: r.get(2)?,
                login_type: r.get(3)?,
                token_name: r.get(4)?,
                scope: r.get(5)?,
                lifetime_seconds: r.get(6)?,
                created_at: r.get(7)?,
                expires_at: r.get(8)?,
                last_used: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn api_key_with_user(&self, id: &str) -> StoreResult<Option<(ApiKeyRow, UserRow)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&api_key_query())?;
        optional(stmt.query_row([id], |r| {
            let user = user_from_row(r)?;
            Ok((
                ApiKeyRow {
                    id: r.get(12)?,
                    hashed_secret: r.get(13)?,
                    user_id: r.get(14)?,
                    login_type: r.get(15)?,
                    expires_at: r.get(16)?,
                },
                user,
            ))
        }))
    }

    fn delete_api_key(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(tx, "DELETE FROM api_keys WHERE id = ?1", [id])?;
            Ok(())
        })
    }
}
