//! Identity over real HTTP: first user, login/logout, roles, keys (never stored in clear), orgs,
//! the generic 404, and the cookie's cross-site rules. (The auth matrix, which reads the
//! access log, and a restart are in `tests/process/identity.rs`.)

use crate::common::fixtures::{NOT_FOUND, SIGNED_OUT};
use crate::common::{Kiln, TestApp, pg, postgres_mode};
use serde_json::json;

#[actix_web::test]
async fn health_and_buildinfo_need_no_auth() {
    let s = TestApp::start();
    let r = s.anon().get("/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    let r = s.anon().get("/api/v2/buildinfo").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["version"].as_str().unwrap().starts_with('v'));
    assert_eq!(v["external_url"], s.url(""));
}

#[actix_web::test]
async fn first_user_rules() {
    let s = TestApp::start();
    let anon = s.anon();
    anon.get("/api/v2/users/first").await.assert_error(
        404,
        "The initial user has not been created!",
        None,
    );

    // Validation, in field order, with Coder's tag details.
    let r = anon
        .post(
            "/api/v2/users/first",
            json!({"email": "not-an-email", "username": "bad name!", "password": ""}),
        )
        .await;
    r.assert_error(400, "Validation failed.", None);
    assert_eq!(
        r.json()["validations"],
        json!([
            {"field": "email", "detail": "Validation failed for tag \"email\" with value: \"not-an-email\""},
            {"field": "username", "detail": "Validation failed for tag \"username\" with value: \"bad name!\""},
            {"field": "password", "detail": "Validation failed for tag \"required\" with value: \"\""},
        ])
    );
    let r = anon
        .post(
            "/api/v2/users/first",
            json!({"email": "a@example.com", "username": "alice", "password": "abc"}),
        )
        .await;
    r.assert_error(400, "Password not strong enough!", None);
    assert_eq!(r.json()["validations"][0]["field"], "password");
    // Coder's strength rule: an estimate of the password's entropy, not only its length.
    let r = anon
        .post(
            "/api/v2/users/first",
            json!({"email": "a@example.com", "username": "alice", "password": "aaaaaa"}),
        )
        .await;
    r.assert_error(400, "Password not strong enough!", None);
    assert_eq!(
        r.json()["validations"],
        json!([{"field": "password", "detail": "insecure password, try including more special characters, using uppercase letters, using numbers or using a longer password"}])
    );
    let r = s
        .anon()
        .post_raw("/api/v2/users/first", "application/json", b"{nope".to_vec())
        .await;
    r.assert_error(400, "Request body must be valid JSON.", None);
    assert!(!r.json()["detail"].as_str().unwrap().is_empty());

    let r = anon
        .post(
            "/api/v2/users/first",
            json!({"email": "a@example.com", "username": "alice", "password": "alice-password"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert!(uuid::Uuid::parse_str(v["user_id"].as_str().unwrap()).is_ok());
    let org_id = v["organization_id"].as_str().unwrap().to_string();

    let r = anon.get("/api/v2/users/first").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["message"],
        "The initial user has already been created!"
    );
    anon.post(
        "/api/v2/users/first",
        json!({"email": "b@example.com", "username": "bob", "password": "bob-password"}),
    )
    .await
    .assert_error(409, "The initial user has already been created.", None);

    let alice = s.login("a@example.com", "alice-password").await;
    let me = alice.get("/api/v2/users/me").await.json();
    assert_eq!(me["username"], "alice");
    assert_eq!(
        me["roles"],
        json!([{"name": "owner", "display_name": "Owner", "organization_id": ""}])
    );
    assert_eq!(me["organization_ids"], json!([org_id]));
    assert_eq!(me["login_type"], "password");
    assert_eq!(me["status"], "active");
    let orgs = alice.get("/api/v2/organizations").await.json();
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!(orgs[0]["name"], "coder");
    assert_eq!(orgs[0]["is_default"], true);
    assert_eq!(orgs[0]["id"], org_id.as_str());
    for key in ["coder", org_id.as_str()] {
        let r = alice.get(&format!("/api/v2/organizations/{key}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["id"], org_id.as_str());
    }
    alice
        .get("/api/v2/organizations/nope")
        .await
        .assert_error(404, NOT_FOUND, None);
}

#[actix_web::test]
async fn login_sets_an_http_only_cookie_and_logout_ends_the_session() {
    let s = TestApp::start();
    s.owner().await;
    let r = s
        .anon()
        .post(
            "/api/v2/users/login",
            json!({"email": "owner@example.com", "password": "owner-password"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let token = r.json()["session_token"].as_str().unwrap().to_string();
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("coder_session_token={token}")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    for (email, password) in [
        ("owner@example.com", "wrong-password"),
        ("nobody@example.com", "owner-password"),
    ] {
        s.anon()
            .post(
                "/api/v2/users/login",
                json!({"email": email, "password": password}),
            )
            .await
            .assert_error(401, "Incorrect email or password.", None);
    }
    let r = s
        .anon()
        .post(
            "/api/v2/users/login",
            json!({"email": "owner@example.com", "password": ""}),
        )
        .await;
    r.assert_error(400, "Validation failed.", None);

    let c = s.client(&token);
    let r = c.post("/api/v2/users/logout", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "Logged out!");
    c.get("/api/v2/users/me")
        .await
        .assert_error(401, SIGNED_OUT, Some("API key is invalid."));
}

#[actix_web::test]
async fn roles_and_users() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "mary", &[]).await;
    let admin = s.user(&owner, "tom", &["template-admin"]).await;

    let tom = admin.get("/api/v2/users/me").await.json();
    assert_eq!(
        tom["roles"],
        json!([{"name": "template-admin", "display_name": "Template Admin", "organization_id": ""}])
    );
    let mary = member.get("/api/v2/users/me").await.json();
    assert_eq!(mary["roles"], json!([]));
    // By username and by id.
    assert_eq!(
        owner.get("/api/v2/users/mary").await.json()["id"],
        mary["id"]
    );
    let by_id = format!("/api/v2/users/{}", mary["id"].as_str().unwrap());
    assert_eq!(owner.get(&by_id).await.json()["username"], "mary");
    owner
        .get("/api/v2/users/nobody")
        .await
        .assert_error(404, NOT_FOUND, None);

    let list = owner.get("/api/v2/users").await.json();
    assert_eq!(list["count"], 3);
    assert_eq!(list["users"].as_array().unwrap().len(), 3);

    // A member may not create users or change roles.
    member
        .post("/api/v2/users", json!({"email": "x@example.com", "username": "x", "password": "x-password-1", "organization_ids": []}))
        .await
        .assert_error(403, "You are not authorized to create users.", None);
    member
        .put("/api/v2/users/tom/roles", json!({"roles": []}))
        .await
        .assert_error(403, "Forbidden.", None);
    owner
        .put("/api/v2/users/me/roles", json!({"roles": []}))
        .await
        .assert_error(400, "You cannot change your own roles.", None);
    owner
        .put("/api/v2/users/mary/roles", json!({"roles": ["wizard"]}))
        .await
        .assert_error(400, "Invalid role name \"wizard\".", None);
    let r = owner
        .put("/api/v2/users/tom/roles", json!({"roles": []}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["roles"], json!([]));

    // Duplicates and bad input.
    let org = owner.get("/api/v2/organizations").await.json()[0]["id"].clone();
    owner
        .post("/api/v2/users", json!({"email": "MARY@example.com", "username": "someone", "password": "x-password-1", "organization_ids": [org]}))
        .await
        .assert_error(409, "User already exists.", None);
    let r = owner
        .post("/api/v2/users", json!({"email": "", "username": "ok", "password": "x-password-1", "organization_ids": [org]}))
        .await;
    r.assert_error(400, "Validation failed.", None);
    assert_eq!(r.json()["validations"][0]["field"], "email");
}

#[actix_web::test]
async fn api_keys_work_and_secrets_never_reach_the_database() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "mary", &[]).await;
    let r = member.post("/api/v2/users/me/keys", json!({})).await;
    assert_eq!(r.status, 201);
    let key = r.json()["key"].as_str().unwrap().to_string();
    assert_eq!(
        s.client(&key).get("/api/v2/users/me").await.json()["username"],
        "mary"
    );
    // A member cannot mint keys for someone else.
    member
        .post("/api/v2/users/owner/keys", json!({}))
        .await
        .assert_error(404, NOT_FOUND, None);

    // Everything the database holds: the SQLite file and its WAL, or a dump of the PostgreSQL
    // database (its data files would do less well: a row may sit in a WAL segment or be
    // compressed).
    let bytes = if postgres_mode() {
        pg::dump(s.pg_database())
    } else {
        let mut bytes = std::fs::read(s.db_path()).unwrap();
        if let Ok(wal) = std::fs::read(s.dir.join("kiln.db-wal")) {
            bytes.extend(wal);
        }
        bytes
    };
    let hay = String::from_utf8_lossy(&bytes);
    // What was written is in these bytes (so the search below can find a secret there).
    assert!(
        hay.contains("mary@example.com"),
        "the users are in the database"
    );
    assert!(
        hay.contains(key.split_once('-').unwrap().0),
        "the key's id is in the database"
    );
    for secret in [
        key.split_once('-').unwrap().1,
        owner.token().split_once('-').unwrap().1,
        "owner-password",
        "member-password",
    ] {
        assert!(!hay.contains(secret), "{secret} found in the database");
        // pg_dump writes bytea columns in hex.
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !hay.contains(&hex),
            "{secret} found in the database, in hex"
        );
    }
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_the_generic_404() {
    let s = TestApp::start();
    let owner = s.owner().await;
    for r in [
        owner.get("/api/v2/nothing/here").await,
        s.anon().get("/api/v2/nothing").await,
        owner
            .send(owner.request("DELETE", "/api/v2/users/first"), None)
            .await,
        owner
            .send(owner.request("PATCH", "/api/v2/buildinfo"), None)
            .await,
    ] {
        r.assert_error(404, NOT_FOUND, None);
    }
}

/// A request a page of another origin makes with the browser's cookie: the session cookie
/// alone, `text/plain` as an HTML form can send, and the browser's `Origin` (none: a very
/// old browser, or a client that sends only the cookie).
fn forged(
    s: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    origin: Option<&str>,
    content_type: &str,
) -> awc::ClientRequest {
    let mut req = s
        .anon()
        .request(method, path)
        .insert_header(("Cookie", format!("coder_session_token={token}")))
        .insert_header(("Content-Type", content_type));
    if let Some(o) = origin {
        req = req.insert_header(("Origin", o));
    }
    req
}

const CROSS_SITE: &str = "Cross-site request refused: a request signed in by the session cookie must come from kiln's own page.";

#[actix_web::test]
async fn requests_signed_in_by_the_cookie_must_come_from_kilns_own_page() {
    use crate::common::fixtures::{quick, template, workspace};
    let s = TestApp::start();
    let owner = s.owner().await;
    let token = owner.token().to_string();
    let t = template(&owner, "base", quick()).await;
    let (ws, _) = workspace(&owner, &t, "dev", json!([])).await;
    let member = s.user(&owner, "mallory", &[]).await;
    let admin = s.user(&owner, "tom", &["template-admin"]).await;
    let file = member
        .post_raw(
            "/api/v2/files",
            "application/x-tar",
            crate::common::tar_of(&[("kiln.json", &quick().to_string())]),
        )
        .await
        .json()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let own = s.url("");
    let own = own.trim_end_matches('/');
    // Another port of the same host: the same site, another origin.
    let other_port = {
        let (scheme_host, port) = own.rsplit_once(':').unwrap();
        format!("{scheme_host}:{}", port.parse::<u16>().unwrap() + 1)
    };
    let attempts = [
        (
            token.clone(),
            format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "delete"}),
        ),
        (token.clone(), "/api/v2/users/me/keys".into(), json!({})),
        (
            token.clone(),
            "/api/v2/users".into(),
            json!({"email": "eve@example.com", "username": "eve", "password": "eve-password-1", "organization_ids": []}),
        ),
        (
            admin.token().to_string(),
            "/api/v2/organizations/coder/templateversions".into(),
            json!({"storage_method": "file", "file_id": file, "provisioner": "echo", "template_id": t}),
        ),
    ];
    for (token, path, body) in &attempts {
        for origin in [Some(other_port.as_str()), Some("null"), None] {
            for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
                let req = forged(&s, "POST", path, token, origin, content_type);
                let r = s
                    .anon()
                    .send(req, Some(body.to_string().into_bytes()))
                    .await;
                r.expect_error(403, CROSS_SITE, None);
            }
        }
        // The browser's Sec-Fetch-Site is believed over an Origin that happens to match.
        let req = forged(&s, "POST", path, token, Some(own), "application/json")
            .insert_header(("Sec-Fetch-Site", "same-site"));
        let r = s
            .anon()
            .send(req, Some(body.to_string().into_bytes()))
            .await;
        r.expect_error(403, CROSS_SITE, None);
    }
    // Nothing changed: the workspace is up, no key, no user, no version of the member's file.
    let w = owner.get(&format!("/api/v2/workspaces/{ws}")).await.json();
    assert_eq!(w["latest_build"]["transition"], "start", "{w}");
    assert_eq!(w["latest_build"]["build_number"], 1, "{w}");
    let users = owner.get("/api/v2/users").await.json();
    assert_eq!(users["count"], 3, "{users}");
    let versions = owner
        .get(&format!("/api/v2/templates/{t}/versions"))
        .await
        .json();
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");

    // kiln's own page: the cookie with its Origin (or Sec-Fetch-Site) is accepted, as JSON.
    let (token, path, body) = &attempts[1];
    let req = forged(&s, "POST", path, token, Some(own), "application/json");
    let r = s
        .anon()
        .send(req, Some(body.to_string().into_bytes()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let req = forged(&s, "POST", path, token, None, "application/json")
        .insert_header(("Sec-Fetch-Site", "same-origin"));
    let r = s
        .anon()
        .send(req, Some(body.to_string().into_bytes()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // ... but not a body that an HTML form could have made.
    let req = forged(
        &s,
        "POST",
        path,
        token,
        Some(own),
        "text/plain;charset=UTF-8",
    );
    let r = s
        .anon()
        .send(req, Some(body.to_string().into_bytes()))
        .await;
    r.expect_error(
        415,
        "Unsupported content type header \"text/plain;charset=UTF-8\".",
        Some("A request signed in by the session cookie must send its body as Content-Type: application/json."),
    );
    // The token in the header is unaffected, whatever the Origin and the content type (as
    // `curl -d` sends a form type); so is the header with the same cookie beside it.
    for origin in [Some(other_port.as_str()), None] {
        let req = owner
            .request("POST", path)
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
        let req = match origin {
            Some(o) => req.insert_header(("Origin", o)),
            None => req,
        };
        let r = owner.send(req, Some(body.to_string().into_bytes())).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let req = forged(&s, "POST", path, token, Some(&other_port), "text/plain")
        .insert_header(("Coder-Session-Token", token.as_str()));
    let r = s
        .anon()
        .send(req, Some(body.to_string().into_bytes()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Reads are not refused.
    let req = forged(
        &s,
        "GET",
        "/api/v2/users/me",
        token,
        Some(&other_port),
        "text/plain",
    );
    assert_eq!(s.anon().send(req, None).await.status, 200);
}

#[actix_web::test]
async fn another_sites_page_cannot_claim_a_fresh_server_or_sign_a_browser_in() {
    let s = TestApp::start();
    let body = json!({"email": "eve@example.com", "username": "eve", "password": "eve-password-1"});
    let req = s
        .anon()
        .request("POST", "/api/v2/users/first")
        .insert_header(("Content-Type", "text/plain"))
        .insert_header(("Origin", "http://evil.example"));
    let r = s
        .anon()
        .send(req, Some(body.to_string().into_bytes()))
        .await;
    r.expect_error(
        403,
        "Cross-site request refused: this request came from another site's page.",
        None,
    );
    s.anon().get("/api/v2/users/first").await.assert_error(
        404,
        "The initial user has not been created!",
        None,
    );
    // curl, as the README shows it: no Origin, a form type.
    let req = s
        .anon()
        .request("POST", "/api/v2/users/first")
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    let r = s
        .anon()
        .send(req, Some(body.to_string().into_bytes()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let login = json!({"email": "eve@example.com", "password": "eve-password-1"});
    let req = s
        .anon()
        .request("POST", "/api/v2/users/login")
        .insert_header(("Content-Type", "text/plain"))
        .insert_header(("Sec-Fetch-Site", "cross-site"));
    let r = s
        .anon()
        .send(req, Some(login.to_string().into_bytes()))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.header("set-cookie").is_none());
}

#[actix_web::test]
async fn websockets_signed_in_by_the_cookie_must_come_from_kilns_own_page() {
    use crate::common::fixtures::{quick, template, workspace};
    let s = TestApp::start();
    let owner = s.owner().await;
    let token = owner.token().to_string();
    let t = template(&owner, "base", quick()).await;
    let (ws, build) = workspace(&owner, &t, "dev", json!([])).await;
    let own = s.url("");
    let own = own.trim_end_matches('/').to_string();
    let paths = [
        format!("/api/v2/workspacebuilds/{build}/logs?follow=true"),
        format!("/api/v2/workspaces/{ws}/watch-ws"),
    ];
    // The status of the upgrade: 101, or the refusal's.
    let upgrade = |path: &str, cookie: bool, header: bool, origin: Option<&str>| {
        let url = s.url(path).replacen("http://", "ws://", 1);
        let mut req = awc::Client::new().ws(url);
        if cookie {
            req = req.header("Cookie", format!("coder_session_token={token}"));
        }
        if header {
            req = req.header("Coder-Session-Token", token.as_str());
        }
        if let Some(o) = origin {
            req = req.origin(o);
        }
        async move {
            match req.connect().await {
                Ok((res, _)) => res.status().as_u16(),
                Err(awc::error::WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
                Err(e) => panic!("upgrade: {e}"),
            }
        }
    };
    for path in &paths {
        assert_eq!(
            upgrade(path, true, false, Some("http://evil.example")).await,
            403
        );
        assert_eq!(upgrade(path, true, false, Some(&own)).await, 101);
        assert_eq!(upgrade(path, true, false, None).await, 101);
        assert_eq!(
            upgrade(path, false, true, Some("http://evil.example")).await,
            101
        );
    }
}
