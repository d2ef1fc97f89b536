//! Users, organizations, memberships and API keys on PostgreSQL. Emails and usernames compare
//! without case (unique indexes on `lower(...)`).

use super::PgStore;
use super::pool::Tx;
use crate::model::{Role, Time};
use crate::store::{
    API_KEY_INFO_COLUMNS, ApiKeyInfo, ApiKeyRow, KeyFilter, NewApiKey, NewUser, OrganizationRow,
    StoreError, StoreResult, UserRow, UserStore,
};
use postgres::Row;

const USER_COLUMNS: &str = "u.id, u.email, u.username, u.name, u.hashed_password, u.login_type, \
    u.status, u.roles, u.avatar_url, u.created_at, u.updated_at, u.last_seen_at";

fn user_from_row(r: &Row) -> UserRow {
    let roles: String = r.get(7);
    UserRow {
        id: r.get(0),
        email: r.get(1),
        username: r.get(2),
        name: r.get(3),
        hashed_password: r.get(4),
        login_type: r.get(5),
        status: r.get(6),
        roles: roles.split_whitespace().filter_map(Role::parse).collect(),
        avatar_url: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
        last_seen_at: r.get(11),
    }
}

fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(" ")
}

const ORG_COLUMNS: &str =
    "id, name, display_name, description, icon, is_default, created_at, updated_at";

fn org_from_row(r: &Row) -> OrganizationRow {
    OrganizationRow {
        id: r.get(0),
        name: r.get(1),
        display_name: r.get(2),
        description: r.get(3),
        icon: r.get(4),
        is_default: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

fn insert_user(tx: &mut Tx, u: &NewUser, org_ids: &[String]) -> StoreResult<()> {
    let now = Time::now();
    tx.execute(
        "INSERT INTO users (id, email, username, name, hashed_password, login_type, status, roles, \
         avatar_url, created_at, updated_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, '', $8, $8, $8)",
        &[
            &u.id,
            &u.email,
            &u.username,
            &u.name,
            &u.hashed_password,
            &u.login_type,
            &roles_text(&u.roles),
            &now,
        ],
    )?;
    for org in org_ids {
        tx.execute(
            "INSERT INTO organization_members (organization_id, user_id, created_at) VALUES ($1, $2, $3)",
            &[org, &u.id, &now],
        )?;
    }
    Ok(())
}

impl PgStore {
    fn user_where(&self, filter: &str, value: &str) -> StoreResult<Option<UserRow>> {
        let row = self.conn()?.query_opt(
            format!("SELECT {USER_COLUMNS} FROM users u WHERE {filter} AND u.status <> 'deleted'")
                .as_str(),
            &[&value],
        )?;
        Ok(row.map(|r| user_from_row(&r)))
    }
}

/// An API key with its user (every authenticated request that misses the session cache).
pub(super) fn api_key_query() -> String {
    format!(
        "SELECT {USER_COLUMNS}, k.id, k.hashed_secret, k.user_id, k.login_type, k.expires_at \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1"
    )
}

impl UserStore for PgStore {
    fn user_count(&self) -> StoreResult<i64> {
        Ok(self
            .conn()?
            .query_one("SELECT count(*) FROM users", &[])?
            .get(0))
    }

    fn create_first_user(&self, user: &NewUser, org_id: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                // The default organization is made with the first user and only then, so its
                // row is the guard: of two first users racing (on any servers), the second
                // insert breaks the unique name `coder`.
                tx.execute(
                    "INSERT INTO organizations (id, name, display_name, description, icon, is_default, \
                     created_at, updated_at) \
                     VALUES ($1, 'coder', 'Coder', 'Builtin default organization.', '', true, $2, $2)",
                    &[&org_id, &Time::now()],
                )
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict("the first user exists".into()),
                    other => other,
                })?;
                insert_user(tx, user, &[org_id.to_string()])
            },
            |_| vec![],
        )
    }

    fn create_user(&self, user: &NewUser, org_ids: &[String]) -> StoreResult<()> {
        self.write(|tx| insert_user(tx, user, org_ids), |_| vec![])
    }

    fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>> {
        self.user_where("u.id = $1", id)
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        self.user_where("lower(u.username) = lower($1)", username)
    }

    fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        self.user_where("lower(u.email) = lower($1)", email)
    }

    fn user_exists(&self, email: &str, username: &str) -> StoreResult<bool> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users \
                 WHERE lower(email) = lower($1) OR lower(username) = lower($2))",
                &[&email, &username],
            )?
            .get(0))
    }

    fn organization_members(&self, org_id: &str) -> StoreResult<Vec<(UserRow, Time)>> {
        let rows = self.conn()?.query(
            format!(
                "SELECT {USER_COLUMNS}, m.created_at FROM organization_members m JOIN users u ON u.id = m.user_id \
                 WHERE m.organization_id = $1 AND u.status <> 'deleted' \
                 ORDER BY lower(u.username) COLLATE \"C\", u.id"
            )
            .as_str(),
            &[&org_id],
        )?;
        Ok(rows.iter().map(|r| (user_from_row(r), r.get(12))).collect())
    }

    fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        let rows = self.conn()?.query(
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.status <> 'deleted' ORDER BY u.created_at, lower(u.username) COLLATE \"C\"").as_str(),
            &[],
        )?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    fn set_user_roles(&self, id: &str, roles: &[Role]) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE users SET roles = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &roles_text(roles), &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn set_user_status(&self, id: &str, status: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE users SET status = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &status, &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn update_user_profile(&self, id: &str, username: &str, name: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE users SET username = $2, name = $3, updated_at = $4 WHERE id = $1",
                    &[&id, &username, &name, &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn set_user_password(&self, id: &str, hashed_password: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE users SET hashed_password = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &hashed_password, &Time::now()],
                )?;
                tx.execute("DELETE FROM api_keys WHERE user_id = $1", &[&id])?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn delete_user(&self, id: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute("DELETE FROM api_keys WHERE user_id = $1", &[&id])?;
                tx.execute(
                    "DELETE FROM organization_members WHERE user_id = $1",
                    &[&id],
                )?;
                tx.execute(
                    "UPDATE users SET status = 'deleted', updated_at = $2 WHERE id = $1",
                    &[&id, &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn user_organization_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows = self.conn()?.query(
            "SELECT organization_id FROM organization_members WHERE user_id = $1 ORDER BY created_at",
            &[&user_id],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRow>> {
        let rows = self.conn()?.query(
            format!("SELECT {ORG_COLUMNS} FROM organizations ORDER BY created_at").as_str(),
            &[],
        )?;
        Ok(rows.iter().map(org_from_row).collect())
    }

    fn organization(&self, id_or_name: &str) -> StoreResult<Option<OrganizationRow>> {
        let row = self.conn()?.query_opt(
            format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1 OR name = $1").as_str(),
            &[&id_or_name],
        )?;
        Ok(row.map(|r| org_from_row(&r)))
    }

    fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "INSERT INTO api_keys (id, hashed_secret, user_id, login_type, created_at, expires_at, last_used, \
                     token_name, lifetime_seconds, scope) VALUES ($1, $2, $3, $4, $5, $6, $5, $7, $8, $9)",
                    &[&key.id, &key.hashed_secret, &key.user_id, &key.login_type, &Time::now(), &key.expires_at,
                      &key.token_name, &key.lifetime_seconds, &key.scope],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn api_keys(&self, filter: KeyFilter) -> StoreResult<Vec<ApiKeyInfo>> {
        let (condition, values) = filter.condition('$');
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let rows = self.conn()?.query(
            format!(
                "SELECT {API_KEY_INFO_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
                 WHERE {condition} ORDER BY k.created_at, k.id"
            )
            .as_str(),
            &params,
        )?;
        Ok(rows
            .iter()
            .map(|r| ApiKeyInfo {
                id: r.get(0),
                user_id: r.get(1),
                username: r.get(2),
                login_type: r.get(3),
                token_name: r.get(4),
                scope: r.get(5),
                lifetime_seconds: r.get(6),
                created_at: r.get(7),
                expires_at: r.get(8),
                last_used: r.get(9),
            })
            .collect())
    }

    fn api_key_with_user(&self, id: &str) -> StoreResult<Option<(ApiKeyRow, UserRow)>> {
        let row = self.conn()?.query_opt(api_key_query().as_str(), &[&id])?;
        Ok(row.map(|r| {
            (
                ApiKeyRow {
                    id: r.get(12),
                    hashed_secret: r.get(13),
                    user_id: r.get(14),
                    login_type: r.get(15),
                    expires_at: r.get(16),
                },
                user_from_row(&r),
            )
        }))
    }

    fn delete_api_key(&self, id: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute("DELETE FROM api_keys WHERE id = $1", &[&id])?;
                Ok(())
            },
            |_| vec![],
        )
    }
}
