//! Reading a migrated fixture back through the current API and comparing it with what the old
//! kiln answered, and using it.

use super::fixture::Fixture;
use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, TestApp};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

/// Asserts that everything `recorded` holds is in `current`, equal: objects may have more
/// fields now, arrays must have the same elements in the same order.
pub fn assert_recorded(at: &str, recorded: &Value, current: &Value) {
    match (recorded, current) {
        (Value::Object(r), Value::Object(c)) => {
            for (k, v) in r {
                let Some(cv) = c.get(k) else {
                    panic!("{at}.{k}: recorded {v}, missing now in {current}");
                };
                assert_recorded(&format!("{at}.{k}"), v, cv);
            }
        }
        (Value::Array(r), Value::Array(c)) => {
            assert_eq!(
                r.len(),
                c.len(),
                "{at}: {} recorded, {} now: {recorded} / {current}",
                r.len(),
                c.len()
            );
            for (i, (rv, cv)) in r.iter().zip(c).enumerate() {
                assert_recorded(&format!("{at}[{i}]"), rv, cv);
            }
        }
        _ => assert_eq!(recorded, current, "{at}"),
    }
}

pub async fn get(c: &Client, path: &str, def: Option<&str>) -> Value {
    let r = c.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    let v = r.json();
    if let Some(def) = def {
        assert_valid(def, &v);
    }
    v
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

pub fn lines(logs: &Value) -> Vec<String> {
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| str_of(l, "output").to_string())
        .collect()
}

/// Reads through the current API everything `f` recorded and compares it.
pub async fn read_back(app: &TestApp, f: &Fixture) -> (Client, Client) {
    let rec = &f.record;
    let name = &f.name;
    let owner = app
        .login(
            str_of(&rec["owner"], "email"),
            str_of(&rec["owner"], "password"),
        )
        .await;
    let member = app
        .login(
            str_of(&rec["member"], "email"),
            str_of(&rec["member"], "password"),
        )
        .await;
    let me = get(&member, "/api/v2/users/me", Some("codersdk.User")).await;
    assert_eq!(me["id"], rec["member"]["id"], "{name}: the member");

    // Users, with their roles' names.
    let mut users = get(&owner, "/api/v2/users", Some("codersdk.GetUsersResponse")).await["users"]
        .as_array()
        .unwrap()
        .clone();
    users.sort_by(|a, b| a["username"].as_str().cmp(&b["username"].as_str()));
    for u in &mut users {
        let mut roles: Vec<Value> = u["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].clone())
            .collect();
        roles.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        u["roles"] = Value::Array(roles);
    }
    assert_recorded(
        &format!("{name}: users"),
        &rec["users"],
        &Value::Array(users),
    );

    // Tokens: each still signs its user in; the list where the old kiln had one.
    let owner_id = rec["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "owner")
        .unwrap()["id"]
        .clone();
    for key in [&rec["api_key"], &rec["named_key"]] {
        if let Some(key) = key.as_str() {
            let me = get(&app.client(key), "/api/v2/users/me", None).await;
            assert_eq!(me["id"], owner_id, "{name}: the token {key}");
        }
    }
    if !rec["tokens"].is_null() {
        let mut tokens = get(&owner, "/api/v2/users/me/keys/tokens", None)
            .await
            .as_array()
            .unwrap()
            .clone();
        tokens.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        assert_recorded(
            &format!("{name}: tokens"),
            &rec["tokens"],
            &Value::Array(tokens),
        );
    }

    // Templates, their versions (each with its file and import logs).
    let org = str_of(rec, "organization_id");
    let templates = get(
        &owner,
        &format!("/api/v2/organizations/{org}/templates"),
        Some("[]codersdk.Template"),
    )
    .await;
    assert_recorded(&format!("{name}: templates"), &rec["templates"], &templates);
    let mut versions = Vec::new();
    for t in templates.as_array().unwrap() {
        let listed = get(
            &owner,
            &format!("/api/v2/templates/{}/versions", str_of(t, "id")),
            Some("[]codersdk.TemplateVersion"),
        )
        .await;
        for v in listed.as_array().unwrap() {
            let id = str_of(v, "id");
            let mut v = get(
                &owner,
                &format!("/api/v2/templateversions/{id}"),
                Some("codersdk.TemplateVersion"),
            )
            .await;
            let file = str_of(&v["job"], "file_id").to_string();
            let bytes = owner.get(&format!("/api/v2/files/{file}")).await;
            assert_eq!(bytes.status, 200, "{name}: file {file}");
            v["job_status"] = v["job"]["status"].clone();
            v["file_id"] = file.into();
            v["file_sha256"] = sha2::Sha256::digest(&bytes.body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into();
            v["logs"] = get(
                &owner,
                &format!("/api/v2/templateversions/{id}/logs"),
                Some("[]codersdk.ProvisionerJobLog"),
            )
            .await;
            versions.push(v);
        }
    }
    assert_recorded(
        &format!("{name}: versions"),
        &rec["versions"],
        &Value::Array(versions),
    );

    // Workspaces, every build with its logs and state.
    let mut workspaces = get(
        &owner,
        "/api/v2/workspaces",
        Some("codersdk.WorkspacesResponse"),
    )
    .await["workspaces"]
        .as_array()
        .unwrap()
        .clone();
    workspaces.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut builds = Vec::new();
    for w in &mut workspaces {
        w["latest_build_id"] = w["latest_build"]["id"].clone();
        let listed = get(
            &owner,
            &format!("/api/v2/workspaces/{}/builds", str_of(w, "id")),
            Some("[]codersdk.WorkspaceBuild"),
        )
        .await;
        for b in listed.as_array().unwrap() {
            let id = str_of(b, "id");
            let mut b = get(
                &owner,
                &format!("/api/v2/workspacebuilds/{id}"),
                Some("codersdk.WorkspaceBuild"),
            )
            .await;
            b["job_status"] = b["job"]["status"].clone();
            b["logs"] = get(
                &owner,
                &format!("/api/v2/workspacebuilds/{id}/logs"),
                Some("[]codersdk.ProvisionerJobLog"),
            )
            .await;
            let state = owner
                .get(&format!("/api/v2/workspacebuilds/{id}/state"))
                .await;
            assert_eq!(state.status, 200, "{name}: state of {id}");
            b["state_base64"] = base64::engine::general_purpose::STANDARD
                .encode(&state.body)
                .into();
            builds.push(b);
        }
    }
    assert_recorded(
        &format!("{name}: workspaces"),
        &rec["workspaces"],
        &Value::Array(workspaces),
    );
    assert_recorded(
        &format!("{name}: builds"),
        &rec["builds"],
        &Value::Array(builds),
    );
    (owner, member)
}

/// The migrated database is usable: a new build on an old workspace runs and succeeds, and the
/// member uploading the bytes of the owner's template file gets a file of their own (uploads
/// are per uploader since schema 11 on SQLite, 10 on PostgreSQL).
pub async fn build_again(owner: &Client, member: &Client, f: &Fixture) {
    let rec = &f.record;
    let file = str_of(&rec["versions"][0], "file_id");
    let bytes = owner.get(&format!("/api/v2/files/{file}")).await.body;
    let up = member
        .post_raw("/api/v2/files", "application/x-tar", bytes.clone())
        .await;
    assert_eq!(
        up.status,
        201,
        "{}: the member's upload: {}",
        f.name,
        up.text()
    );
    let own = str_of(&up.json(), "hash").to_string();
    assert_ne!(own, file, "{}", f.name);
    let again = member
        .post_raw("/api/v2/files", "application/x-tar", bytes)
        .await;
    assert_eq!(again.status, 200, "{}: {}", f.name, again.text());
    assert_eq!(again.json()["hash"], own.as_str(), "{}", f.name);

    let ws = rec["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "owner-ws")
        .unwrap();
    let ws_id = str_of(ws, "id");
    let last = rec["builds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["workspace_id"] == ws["id"])
        .map(|b| b["build_number"].as_i64().unwrap())
        .max()
        .unwrap();
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws_id}/builds"),
            json!({"transition": "start", "rich_parameter_values": [{"name": "mode", "value": "ok"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}: a new build: {}", f.name, r.text());
    let id = str_of(&r.json(), "id").to_string();
    let b = owner.wait_build(&id).await;
    assert_eq!(b["job"]["status"], "succeeded", "{}: {b}", f.name);
    assert_eq!(b["build_number"], last + 1, "{}", f.name);
    let logs = get(owner, &format!("/api/v2/workspacebuilds/{id}/logs"), None).await;
    let out = lines(&logs);
    for want in [
        "template version two",
        "unicode: héllo wörld ✓ — 日本語 🚀",
        "out-line",
    ] {
        assert!(
            out.iter().any(|l| l == want),
            "{}: {want:?} in {out:?}",
            f.name
        );
    }
    let state = owner
        .get(&format!("/api/v2/workspacebuilds/{id}/state"))
        .await;
    assert_eq!(
        state.text(),
        format!("{{\"owner\":\"owner\",\"build\":{}}}", last + 1),
        "{}",
        f.name
    );
}

pub async fn read_back_after_restart(app: &TestApp, f: &Fixture) {
    let rec = &f.record;
    let owner = app
        .login(
            str_of(&rec["owner"], "email"),
            str_of(&rec["owner"], "password"),
        )
        .await;
    for b in rec["builds"].as_array().unwrap() {
        let logs = get(
            &owner,
            &format!("/api/v2/workspacebuilds/{}/logs", str_of(b, "id")),
            None,
        )
        .await;
        assert_recorded(
            &format!("{}: logs after a restart", f.name),
            &b["logs"],
            &logs,
        );
    }
}
