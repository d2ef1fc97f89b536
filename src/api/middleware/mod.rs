//! What wraps every request: the forged-request guard (`csrf`), the access log
//! (`access_log`) and the request metrics (`metrics`).

pub mod access_log;
pub mod csrf;
pub mod metrics;
