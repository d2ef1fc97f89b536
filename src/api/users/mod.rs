//! Users: accounts, sign-in and API keys (`accounts`), one's own profile and password
//! (`profile`), suspension (`status`), named tokens (`tokens`), and the dashboard's
//! permission checks (`authcheck`).

pub mod accounts;
pub mod authcheck;
pub mod profile;
pub mod status;
pub mod tokens;
