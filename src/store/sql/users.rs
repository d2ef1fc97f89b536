//! Users, organizations, memberships and API keys. Emails and usernames compare without case
//! (`Dialect::nocase_eq`, along the databases' case-insensitive unique indexes).

use super::{Conn, Db, Row, Stmt, params};
use crate::model::{Role, Time};
use crate::store::{
    API_KEY_INFO_COLUMNS, ApiKeyInfo, ApiKeyRow, KeyFilter, NewApiKey, NewUser, OrganizationRow,
    StoreError, StoreResult, UserRow, UserStore,
};

const USER_COLUMNS: &str = "u.id, u.email, u.username, u.name, u.hashed_password, u.login_type, \
    u.status, u.roles, u.avatar_url, u.created_at, u.updated_at, u.last_seen_at";

fn user_from_row(r: &dyn Row) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        email: r.get(1)?,
        username: r.get(2)?,
        name: r.get(3)?,
        hashed_password: r.get(4)?,
        login_type: r.get(5)?,
        status: r.get(6)?,
        roles: r
            .str(7)?
            .split_whitespace()
            .filter_map(Role::parse)
            .collect(),
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
pub static API_KEY_WITH_USER: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {USER_COLUMNS}, k.id, k.hashed_secret, k.user_id, k.login_type, k.expires_at \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?1"
    )
});

static USER_BY_ID: Stmt = Stmt::new(|_| {
    format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1 AND u.status <> 'deleted'")
});

static USER_BY_USERNAME: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE {} AND u.status <> 'deleted'",
        (d.nocase_eq)("u.username", "?1")
    )
});

static USER_BY_EMAIL: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE {} AND u.status <> 'deleted'",
        (d.nocase_eq)("u.email", "?1")
    )
});

static USER_EXISTS: Stmt = Stmt::new(|d| {
    format!(
        "SELECT EXISTS (SELECT 1 FROM users WHERE {} OR {})",
        (d.nocase_eq)("email", "?1"),
        (d.nocase_eq)("username", "?2")
    )
});

static MEMBERS: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {USER_COLUMNS}, m.created_at FROM organization_members m \
         JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = ?1 AND u.status <> 'deleted' ORDER BY {}, u.id",
        (d.nocase_order)("u.username")
    )
});

static USERS: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.status <> 'deleted' \
         ORDER BY u.created_at, {}",
        (d.nocase_order)("u.username")
    )
});

const ORG_COLUMNS: &str =
    "id, name, display_name, description, icon, is_default, created_at, updated_at";

fn org_from_row(r: &dyn Row) -> StoreResult<OrganizationRow> {
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

static ORGANIZATIONS: Stmt =
    Stmt::new(|_| format!("SELECT {ORG_COLUMNS} FROM organizations ORDER BY created_at"));

static ORGANIZATION: Stmt =
    Stmt::new(|_| format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1 OR name = ?1"));

fn insert_user(c: &mut dyn Conn, u: &NewUser, org_ids: &[String]) -> StoreResult<()> {
    let now = Time::now();
    c.execute(
        "INSERT INTO users (id, email, username, name, hashed_password, login_type, status, roles, \
         avatar_url, created_at, updated_at, last_seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, '', ?8, ?8, ?8)",
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
        c.execute(
            "INSERT INTO organization_members (organization_id, user_id, created_at) \
             VALUES (?1, ?2, ?3)",
            params![org, u.id, now],
        )?;
    }
    Ok(())
}

/// Runs one statement that changes a row, in a transaction of its own.
fn update(db: &impl Db, sql: &str, params: &[super::Value]) -> StoreResult<()> {
    db.write(|c| c.execute(sql, params).map(drop), |_| vec![])
}

impl<D: Db> UserStore for D {
    fn user_count(&self) -> StoreResult<i64> {
        self.read(|c| c.query_one("SELECT count(*) FROM users", &[], |r| r.get(0)))
    }

    fn create_first_user(&self, user: &NewUser, org_id: &str) -> StoreResult<()> {
        self.write(
            |c| {
                // The default organization is made with the first user and only then, so its
                // row is the guard: of two first users racing (on any servers), the second
                // insert breaks the unique name `coder` (whether or not the database
                // serializes the two transactions).
                c.execute(
                    "INSERT INTO organizations (id, name, display_name, description, icon, \
                     is_default, created_at, updated_at) \
                     VALUES (?1, 'coder', 'Coder', 'Builtin default organization.', '', true, ?2, ?2)",
                    params![org_id, Time::now()],
                )
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict("the first user exists".into()),
                    other => other,
                })?;
                insert_user(c, user, &[org_id.to_string()])
            },
            |_| vec![],
        )
    }

    fn create_user(&self, user: &NewUser, org_ids: &[String]) -> StoreResult<()> {
        self.write(|c| insert_user(c, user, org_ids), |_| vec![])
    }

    fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>> {
        self.read(|c| c.query_opt(&USER_BY_ID, params![id], user_from_row))
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        self.read(|c| c.query_opt(&USER_BY_USERNAME, params![username], user_from_row))
    }

    fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        self.read(|c| c.query_opt(&USER_BY_EMAIL, params![email], user_from_row))
    }

    fn user_exists(&self, email: &str, username: &str) -> StoreResult<bool> {
        self.read(|c| c.query_one(&USER_EXISTS, params![email, username], |r| r.get(0)))
    }

    fn organization_members(&self, org_id: &str) -> StoreResult<Vec<(UserRow, Time)>> {
        self.read(|c| {
            c.query(&MEMBERS, params![org_id], |r| {
                Ok((user_from_row(r)?, r.get(12)?))
            })
        })
    }

    fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        self.read(|c| c.query(&USERS, &[], user_from_row))
    }

    fn set_user_roles(&self, id: &str, roles: &[Role]) -> StoreResult<()> {
        update(
            self,
            "UPDATE users SET roles = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, roles_text(roles), Time::now()],
        )
    }

    fn set_user_status(&self, id: &str, status: &str) -> StoreResult<()> {
        update(
            self,
            "UPDATE users SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, status, Time::now()],
        )
    }

    fn update_user_profile(&self, id: &str, username: &str, name: &str) -> StoreResult<()> {
        update(
            self,
            "UPDATE users SET username = ?2, name = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, username, name, Time::now()],
        )
    }

    fn set_user_password(&self, id: &str, hashed_password: &str) -> StoreResult<()> {
        self.write(
            |c| {
                c.execute(
                    "UPDATE users SET hashed_password = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, hashed_password, Time::now()],
                )?;
                c.execute("DELETE FROM api_keys WHERE user_id = ?1", params![id])?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn delete_user(&self, id: &str) -> StoreResult<()> {
        self.write(
            |c| {
                c.execute("DELETE FROM api_keys WHERE user_id = ?1", params![id])?;
                c.execute(
                    "DELETE FROM organization_members WHERE user_id = ?1",
                    params![id],
                )?;
                c.execute(
                    "UPDATE users SET status = 'deleted', updated_at = ?2 WHERE id = ?1",
                    params![id, Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn user_organization_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.read(|c| {
            c.query(
                "SELECT organization_id FROM organization_members WHERE user_id = ?1 \
                 ORDER BY created_at",
                params![user_id],
                |r| r.get(0),
            )
        })
    }

    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRow>> {
        self.read(|c| c.query(&ORGANIZATIONS, &[], org_from_row))
    }

    fn organization(&self, id_or_name: &str) -> StoreResult<Option<OrganizationRow>> {
        self.read(|c| c.query_opt(&ORGANIZATION, params![id_or_name], org_from_row))
    }

    fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        update(
            self,
            "INSERT INTO api_keys (id, hashed_secret, user_id, login_type, created_at, expires_at, \
             last_used, token_name, lifetime_seconds, scope) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?7, ?8, ?9)",
            params![
                key.id,
                key.hashed_secret,
                key.user_id,
                key.login_type,
                Time::now(),
                key.expires_at,
                key.token_name,
                key.lifetime_seconds,
                key.scope
            ],
        )
    }

    fn api_keys(&self, filter: KeyFilter) -> StoreResult<Vec<ApiKeyInfo>> {
        let (condition, values) = filter.condition();
        let values: Vec<super::Value> = values.into_iter().map(super::Value::Text).collect();
        let sql = format!(
            "SELECT {API_KEY_INFO_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE {condition} ORDER BY k.created_at, k.id"
        );
        self.read(|c| {
            c.query(&sql, &values, |r| {
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
            })
        })
    }

    fn api_key_with_user(&self, id: &str) -> StoreResult<Option<(ApiKeyRow, UserRow)>> {
        self.read(|c| {
            c.query_opt(&API_KEY_WITH_USER, params![id], |r| {
                let key = ApiKeyRow {
                    id: r.get(12)?,
                    hashed_secret: r.get(13)?,
                    user_id: r.get(14)?,
                    login_type: r.get(15)?,
                    expires_at: r.get(16)?,
                };
                Ok((key, user_from_row(r)?))
            })
        })
    }

    fn delete_api_key(&self, id: &str) -> StoreResult<()> {
        update(self, "DELETE FROM api_keys WHERE id = ?1", params![id])
    }

    fn purge_expired_api_keys(&self, expired_before: Time) -> StoreResult<u64> {
        self.write(
            |c| {
                c.execute(
                    "DELETE FROM api_keys WHERE expires_at < ?1",
                    params![expired_before],
                )
            },
            |_| vec![],
        )
    }
}
