//! Users, the default organization, memberships and API keys.

use super::error::StoreResult;
use crate::model::{Role, Time};

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub hashed_password: String,
    pub login_type: String,
    pub status: String,
    pub roles: Vec<Role>,
    pub avatar_url: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub last_seen_at: Time,
}

impl UserRow {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Clone, Debug)]
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub is_default: bool,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(Clone, Debug)]
pub struct ApiKeyRow {
    pub id: String,
    pub hashed_secret: Vec<u8>,
    pub user_id: String,
    pub login_type: String,
    pub expires_at: Time,
}

/// A user to insert; the store fills in the times.
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub hashed_password: String,
    pub login_type: String,
    pub roles: Vec<Role>,
}

/// An API key to insert: only the hash of its secret.
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub hashed_secret: &'a [u8],
    pub user_id: &'a str,
    pub login_type: &'a str,
    pub expires_at: Time,
    /// A named token's name (`""`: a session or an unnamed key).
    pub token_name: &'a str,
    pub lifetime_seconds: i64,
    /// `all` (the only scope kiln grants).
    pub scope: &'a str,
}

/// An API key as its listings show it (`codersdk.APIKey`), with its owner's username; never
/// its secret's hash.
#[derive(Clone, Debug)]
pub struct ApiKeyInfo {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub login_type: String,
    pub token_name: String,
    pub scope: String,
    pub lifetime_seconds: i64,
    pub created_at: Time,
    pub expires_at: Time,
    pub last_used: Time,
}

/// Which keys `api_keys` lists.
#[derive(Clone, Copy, Debug)]
pub enum KeyFilter<'a> {
    /// The named tokens of one user.
    TokensOf(&'a str),
    /// Every user's named tokens.
    AllTokens,
    /// One key, by id (any kind).
    Id(&'a str),
    /// One user's named token, by name.
    Named(&'a str, &'a str),
}

/// The columns of an `ApiKeyInfo`, keys `k` joined with users `u`, in `ApiKeyInfo` order.
pub const API_KEY_INFO_COLUMNS: &str = "k.id, k.user_id, u.username, k.login_type, k.token_name, \
    k.scope, k.lifetime_seconds, k.created_at, k.expires_at, k.last_used";

impl KeyFilter<'_> {
    /// The condition (over `k`) and its parameters, placeholders numbered from 1 (`?N`).
    pub fn condition(&self) -> (String, Vec<&str>) {
        let mark = '?';
        const TOKEN: &str = "k.login_type = 'token' AND k.token_name <> ''";
        match *self {
            KeyFilter::TokensOf(user) => (format!("{TOKEN} AND k.user_id = {mark}1"), vec![user]),
            KeyFilter::AllTokens => (TOKEN.to_string(), vec![]),
            KeyFilter::Id(id) => (format!("k.id = {mark}1"), vec![id]),
            KeyFilter::Named(user, name) => (
                format!("{TOKEN} AND k.user_id = {mark}1 AND k.token_name = {mark}2"),
                vec![user, name],
            ),
        }
    }
}

pub trait UserStore {
    fn user_count(&self) -> StoreResult<i64>;

    /// Creates the first user and the default organization `coder` (with id `org_id`), in one
    /// transaction. `Conflict` when the first user was created already.
    fn create_first_user(&self, user: &NewUser, org_id: &str) -> StoreResult<()>;

    /// `Conflict` when the email or username is taken.
    fn create_user(&self, user: &NewUser, org_ids: &[String]) -> StoreResult<()>;

    fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>>;

    /// Usernames compare without case.
    fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>>;

    /// Emails compare without case.
    fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>>;

    fn user_exists(&self, email: &str, username: &str) -> StoreResult<bool>;

    /// All users, oldest first.
    fn list_users(&self) -> StoreResult<Vec<UserRow>>;

    fn set_user_roles(&self, id: &str, roles: &[Role]) -> StoreResult<()>;

    /// `active` or `suspended`.
    fn set_user_status(&self, id: &str, status: &str) -> StoreResult<()>;

    /// Sets a user's username and name. `Conflict` when another user has the username (in
    /// any case).
    fn update_user_profile(&self, id: &str, username: &str, name: &str) -> StoreResult<()>;

    /// Sets a user's password (its hash) and ends every API key of theirs, sessions and named
    /// tokens alike, in one transaction, as Coder does.
    fn set_user_password(&self, id: &str, hashed_password: &str) -> StoreResult<()>;

    /// Deletes a user as Coder does: the row stays (builds and templates still name them) with
    /// status `deleted`, which no lookup finds; their keys and memberships go. Their email and
    /// username stay taken.
    fn delete_user(&self, id: &str) -> StoreResult<()>;

    /// The organizations `user_id` belongs to, in the order they joined.
    fn user_organization_ids(&self, user_id: &str) -> StoreResult<Vec<String>>;

    /// The members of an organization (deleted users aside), by username without case, each
    /// with the time they joined it.
    fn organization_members(&self, org_id: &str) -> StoreResult<Vec<(UserRow, Time)>>;

    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRow>>;

    /// An organization by id or by name.
    fn organization(&self, id_or_name: &str) -> StoreResult<Option<OrganizationRow>>;

    /// `Conflict` when it is a named token whose name its user already has.
    fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()>;

    /// An API key and its user, in one read (every authenticated request asks).
    fn api_key_with_user(&self, id: &str) -> StoreResult<Option<(ApiKeyRow, UserRow)>>;

    fn delete_api_key(&self, id: &str) -> StoreResult<()>;

    /// Removes the API keys that expired before `expired_before` (Coder's dbpurge); returns
    /// how many.
    fn purge_expired_api_keys(&self, expired_before: Time) -> StoreResult<u64>;

    /// API keys as their listings show them, oldest first.
    fn api_keys(&self, filter: KeyFilter) -> StoreResult<Vec<ApiKeyInfo>>;
}
