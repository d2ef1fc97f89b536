//! The route table, as the router itself builds it: `res` (every resource) and `scope` record
//! the full pattern of each resource while `patterns` runs `configure`, so the metrics' `path`
//! label and the OpenAPI test read the very routes that are served. A new route needs nothing
//! more than `res(...)`; its operations go in `openapi/kiln.json` (or Coder's document).

use actix_web::{App, Scope, web};
use std::cell::RefCell;

thread_local! {
    /// While `patterns` runs: the scope prefixes entered and the patterns seen.
    static RECORDING: RefCell<Option<(Vec<String>, Vec<String>)>> = const { RefCell::new(None) };
}

/// Records `path` under the current scopes (when recording).
pub fn record(path: &str) {
    RECORDING.with(|r| {
        if let Some((prefixes, seen)) = r.borrow_mut().as_mut() {
            let full = format!("{}{path}", prefixes.concat());
            if !seen.contains(&full) {
                seen.push(full);
            }
        }
    });
}

/// `web::scope(prefix)`, filled by `fill`, with the resources inside recorded under `prefix`.
pub fn scope(prefix: &str, fill: impl FnOnce(Scope) -> Scope) -> Scope {
    let enter = |push: bool| {
        RECORDING.with(|r| {
            if let Some((prefixes, _)) = r.borrow_mut().as_mut() {
                if push {
                    prefixes.push(prefix.to_string());
                } else {
                    prefixes.pop();
                }
            }
        })
    };
    enter(true);
    let scope = fill(web::scope(prefix));
    enter(false);
    scope
}

/// Every route pattern the router serves (`/api/v2/workspacebuilds/{workspacebuild}`, ...), in
/// the order they are tried.
pub fn patterns() -> Vec<String> {
    RECORDING.with(|r| *r.borrow_mut() = Some((Vec::new(), Vec::new())));
    let _ = App::new().configure(super::configure);
    RECORDING
        .with(|r| r.borrow_mut().take())
        .map(|(_, seen)| seen)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn patterns_are_full_and_unique() {
        let p = super::patterns();
        assert!(p.contains(&"/healthz".to_string()));
        assert!(p.contains(&"/api/v2/workspacebuilds/{workspacebuild}".to_string()));
        assert!(p.contains(&"/api/v2/kiln/overview".to_string()));
        let mut sorted = p.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), p.len());
    }
}
