//! Request bodies: only a JSON object where an object is expected, size limits chosen per
//! route and answered in Coder's shape, slow and idle clients that do not hold others up.

use crate::common::fixtures::{finished, quick, template, workspace};
use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, TestApp};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const INVALID: &str = "Request body must be valid JSON.";

async fn send(c: &Client, method: &str, path: &str, body: Vec<u8>) -> crate::common::Resp {
    let req = c
        .request(method, path)
        .insert_header(("Content-Type", "application/json"));
    c.send(req, Some(body)).await
}

fn assert_refused(r: &crate::common::Resp, status: u16, message: &str) {
    r.assert_error(status, message, None);
    assert_valid("codersdk.Response", &r.json());
}

#[actix_web::test]
async fn every_json_endpoint_refuses_what_is_not_an_object() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let (ws, first) = workspace(&owner, &t, "one", json!([])).await;
    let first = finished(&owner, &first).await;
    let state_before = owner
        .get(&format!(
            "/api/v2/workspacebuilds/{}/state",
            first["id"].as_str().unwrap()
        ))
        .await
        .body;
    let me = owner.get("/api/v2/users/me").await.json();
    let me = me["id"].as_str().unwrap();
    let anon = s.anon();
    let endpoints: Vec<(&Client, &str, String)> = vec![
        (&anon, "POST", "/api/v2/users/first".into()),
        (&anon, "POST", "/api/v2/users/login".into()),
        (&owner, "POST", "/api/v2/users".into()),
        (&owner, "PUT", format!("/api/v2/users/{me}/roles")),
        (
            &owner,
            "POST",
            "/api/v2/organizations/coder/templateversions".into(),
        ),
        (
            &owner,
            "POST",
            "/api/v2/organizations/coder/templates".into(),
        ),
        (&owner, "PATCH", format!("/api/v2/templates/{t}/versions")),
        (&owner, "POST", "/api/v2/users/me/workspaces".into()),
        (
            &owner,
            "POST",
            "/api/v2/organizations/coder/members/me/workspaces".into(),
        ),
        (&owner, "POST", format!("/api/v2/workspaces/{ws}/builds")),
        (
            &owner,
            "PUT",
            format!(
                "/api/v2/workspacebuilds/{}/state",
                first["id"].as_str().unwrap()
            ),
        ),
    ];
    // An array would once have filled the fields in order: `["stop"]` made a stop build and
    // `[]` emptied the state.
    for (c, method, path) in &endpoints {
        for body in [&b"[\"stop\"]"[..], b"[]", b"null", b"\"stop\"", b"42", b""] {
            let r = send(c, method, path, body.to_vec()).await;
            assert_refused(&r, 400, INVALID);
            assert!(
                !r.json()["detail"].as_str().unwrap().is_empty(),
                "{method} {path} {}",
                String::from_utf8_lossy(body)
            );
        }
    }
    let builds = owner
        .get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .json();
    assert_eq!(
        builds.as_array().unwrap().len(),
        1,
        "no build was made: {builds}"
    );
    let state_after = owner
        .get(&format!(
            "/api/v2/workspacebuilds/{}/state",
            first["id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(state_after, state_before, "the state is untouched");
}

#[actix_web::test]
async fn each_route_has_its_own_size_limit_answered_in_coders_shape() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let (ws, first) = workspace(&owner, &t, "one", json!([])).await;
    finished(&owner, &first).await;

    // Sign-in: 64 KiB. One byte more is refused before anything is read into a user.
    let pad = |n: usize| {
        let mut v = br#"{"email":"owner@example.com","password":"x","pad":""#.to_vec();
        v.resize(n - 2, b'a');
        v.extend_from_slice(b"\"}");
        v
    };
    let r = send(
        &s.anon(),
        "POST",
        "/api/v2/users/login",
        pad((64 << 10) + 1),
    )
    .await;
    assert_refused(
        &r,
        413,
        "Request body is too large: this endpoint accepts at most 64 KiB.",
    );
    // Within the limit, the body is read (and the password is wrong).
    let r = send(&s.anon(), "POST", "/api/v2/users/login", pad(64 << 10)).await;
    assert_eq!(r.status, 401, "{}", r.text());

    // A workspace's state: 64 MiB. 1 MiB, four times the old limit, is taken whole.
    let big: String = "s".repeat(1 << 20);
    let r = owner
        .put(
            &format!("/api/v2/workspacebuilds/{first}/state"),
            json!({"state": base64_of(big.as_bytes())}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let back = owner
        .get(&format!("/api/v2/workspacebuilds/{first}/state"))
        .await
        .body;
    assert_eq!(back.len(), big.len());
    let mut huge = br#"{"state":""#.to_vec();
    huge.resize((64 << 20) + 1, b'A');
    let r = send(
        &owner,
        "PUT",
        &format!("/api/v2/workspacebuilds/{first}/state"),
        huge,
    )
    .await;
    assert_refused(
        &r,
        413,
        "Request body is too large: this endpoint accepts at most 64 MiB.",
    );

    // Other JSON bodies: 1 MiB, also when no length is announced (a chunked body).
    let mut body = br#"{"transition":"stop","pad":""#.to_vec();
    body.resize(2 << 20, b'a');
    let chunks = futures_util::stream::iter(
        body.chunks(64 << 10)
            .map(|c| Ok::<_, std::io::Error>(actix_web::web::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let mut res = owner
        .request("POST", "/api/v2/organizations/coder/templates")
        .insert_header(("Content-Type", "application/json"))
        .send_stream(chunks)
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        v["message"],
        "Request body is too large: this endpoint accepts at most 1 MiB."
    );
    // Nothing was made by the refused requests.
    let builds = owner
        .get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .json();
    assert_eq!(builds.as_array().unwrap().len(), 1);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn host_port(s: &TestApp) -> String {
    s.url("").trim_start_matches("http://").to_string()
}

#[actix_web::test]
async fn a_slow_body_and_a_thousand_idle_connections_hold_nobody_up() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let addr = host_port(&s);

    // A client that announces a body and sends one byte a second.
    let mut slow = TcpStream::connect(&addr).unwrap();
    write!(
        slow,
        "POST /api/v2/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    // A thousand connections that never send a request.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(&addr).expect("the server takes a thousand connections"))
        .collect();

    for _ in 0..20 {
        let r = owner.get("/api/v2/users/me").await;
        assert_eq!(r.status, 200);
    }
    slow.write_all(b"\"").unwrap();

    // Connections that send nothing are closed by the server (after its request timeout).
    let mut first = idle.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = first.read(&mut buf).is_ok();
    assert!(
        closed && started.elapsed() < Duration::from_secs(30),
        "an idle connection stays open"
    );
}

#[actix_web::test]
async fn null_members_count_as_absent_as_in_go() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let (ws, first) = workspace(&owner, &t, "one", json!([])).await;
    let first = finished(&owner, &first).await;
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "stop", "rich_parameter_values": null, "state": null,
                   "template_version_id": "00000000-0000-0000-0000-000000000000",
                   "orphan": null, "log_level": null}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    assert_valid("codersdk.WorkspaceBuild", &b);
    assert_eq!(b["template_version_id"], first["template_version_id"]);
    assert_eq!(b["transition"], "stop");
    let me = owner.get("/api/v2/users/me").await.json();
    let r = owner
        .post(
            "/api/v2/users",
            json!({"email": "nell@example.com", "username": "nell", "password": "a-long-password-1",
                   "login_type": null, "name": null, "organization_ids": me["organization_ids"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["login_type"], "password");
}
