//! What wraps every request: the forged-request guard (`csrf`), the access log
//! (`access_log`), the request metrics (`metrics`) and the rate limits (`rate_limit`).

pub mod access_log;
pub mod csrf;
pub mod metrics;
pub mod rate_limit;
