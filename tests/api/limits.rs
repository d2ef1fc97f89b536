//! What one caller may cost everyone else: Coder's rate limits (sign-in per client address and
//! per account, the API per user or address with the owner's bypass, files), and no body read
//! beyond a small one before its sender is authenticated, a few large bodies at a time.
//!
//! Other client addresses are other loopback addresses (127.x.y.z). A server's first window
//! starts with it: what a test counts falls in that window. No time is asserted: answers that
//! must come before a body is sent are read with a deadline far beyond any normal answer and
//! well under the 60 s the server would wait for the body.

use crate::common::daemon::{KEY_HEADER, new_key};
use crate::common::fixtures::{finished, quick, template, upload, workspace};
use crate::common::{Kiln, TestApp, tar_of};
use serde_json::{Value, json};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long an answer that needs nothing more from the client may take.
const ANSWER_WAIT: Duration = Duration::from_secs(20);
const BYPASS: &str = "X-Coder-Bypass-Ratelimit";
const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// An answer read off a connection of the test's own.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    fn of(r: &crate::common::Resp) -> Raw {
        Raw {
            status: r.status,
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: r.body.clone(),
        }
    }
}

/// A connection to `s` from the client address `from`.
async fn connect_from(s: &TestApp, from: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(s.address().parse().unwrap()).await.unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Sends a request's head (`head`: its line and headers) and the first bytes of its body.
fn send(conn: &mut TcpStream, head: &str, body: &[u8]) {
    write!(conn, "{head}\r\nHost: kiln\r\n\r\n").unwrap();
    conn.write_all(body).unwrap();
}

/// The whole answer in `buf`, if it is there.
fn parse(buf: &[u8]) -> Option<Raw> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let body = buf.get(end + 4..end + 4 + length)?.to_vec();
    Some(Raw {
        status,
        headers,
        body,
    })
}

/// Reads one answer; fails when none comes within `ANSWER_WAIT`.
fn answer(conn: &mut TcpStream) -> Raw {
    conn.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        if let Some(raw) = parse(&buf) {
            return raw;
        }
        let n = conn
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("no answer within {ANSWER_WAIT:?} ({e})"));
        assert!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `POST /users/login` from the client address `from`.
async fn login_from(s: &TestApp, from: &str, email: &str, password: &str) -> Raw {
    let body = json!({"email": email, "password": password}).to_string();
    let mut conn = connect_from(s, from).await;
    send(
        &mut conn,
        &format!(
            "POST /api/v2/users/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
            body.len()
        ),
        body.as_bytes(),
    );
    answer(&mut conn)
}

/// Coder's 429: its message, and the headers saying what the limit is and when to come back.
fn assert_limited(r: &Raw, limit: u32, window: &str) {
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"message": format!(
            "You've been rate limited for sending more than {limit} requests in {window}."
        )})
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json; charset=utf-8")
    );
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(r.header("x-ratelimit-limit"), Some(limit.to_string()));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset >= now, "X-Ratelimit-Reset {reset} is past ({now})");
}

#[actix_web::test]
async fn sign_in_is_limited_to_60_a_minute_per_client_address() {
    let s = TestApp::start_with_args(&["--rate-limit-window", "1m"]);
    let owner = s.owner().await;
    for i in 0..60 {
        let r = login_from(&s, "127.0.0.2", &format!("nobody{i}@example.com"), "wrong").await;
        assert_eq!(r.status, 401, "attempt {}: {}", i + 1, r.text());
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("60"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some((59 - i).to_string())
        );
    }
    // The 61st is answered before its body is read: the body is announced and never sent.
    let mut conn = connect_from(&s, "127.0.0.2").await;
    send(
        &mut conn,
        "POST /api/v2/users/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100",
        b"{",
    );
    assert_limited(&answer(&mut conn), 60, "1m0s");
    // Everyone else is served: a sign-in from another address, a signed-in user's request.
    let r = login_from(&s, "127.0.0.3", "owner@example.com", "owner-password").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(owner.get("/api/v2/users/me").await.status, 200);
}

#[actix_web::test]
async fn sign_in_is_limited_to_60_a_minute_per_account() {
    let s = TestApp::start_with_args(&["--rate-limit-window", "1m"]);
    let owner = s.owner().await;
    s.user(&owner, "alice", &[]).await;
    let orgs = owner.get("/api/v2/organizations").await.json();
    let r = owner
        .post(
            "/api/v2/users",
            json!({"email": "bob@example.com", "username": "bob", "password": "bobs-password-1",
                   "organization_ids": [orgs[0]["id"]]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Bob's account guessed at from four addresses, each well under its own limit.
    for i in 0..60 {
        let from = format!("127.0.1.{}", 1 + i % 4);
        let r = login_from(&s, &from, "bob@example.com", "wrong").await;
        assert_eq!(r.status, 401, "attempt {}: {}", i + 1, r.text());
    }
    // The account is refused before its password is checked: even the right one, from an
    // address never seen.
    let r = login_from(&s, "127.0.1.9", "BOB@example.com", "bobs-password-1").await;
    assert_limited(&r, 60, "1m0s");
    // Another account is served, from the same address.
    let r = login_from(&s, "127.0.1.9", "alice@example.com", "member-password").await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[actix_web::test]
async fn the_right_password_works_again_once_the_window_has_passed() {
    let window = Duration::from_secs(10);
    let s = TestApp::start_with_args(&["--login-rate-limit", "3", "--rate-limit-window", "10s"]);
    s.owner().await;
    for i in 0..3 {
        let r = login_from(&s, "127.0.2.1", &format!("nobody{i}@example.com"), "wrong").await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = login_from(&s, "127.0.2.1", "owner@example.com", "owner-password").await;
    assert_limited(&r, 3, "10s");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait <= 2 * window.as_secs(), "Retry-After {wait}");
    actix_web::rt::time::sleep(Duration::from_secs(wait)).await;
    let r = login_from(&s, "127.0.2.1", "owner@example.com", "owner-password").await;
    assert_eq!(r.status, 201, "after Retry-After: {}", r.text());
}

#[actix_web::test]
async fn the_api_limit_counts_per_user_and_path_and_owners_may_skip_it() {
    let s = TestApp::start_with_args(&["--api-rate-limit", "5"]);
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    for left in (0..5).rev() {
        let r = alice.get("/api/v2/users/me").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("5"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(left.to_string()));
    }
    assert_limited(&Raw::of(&alice.get("/api/v2/users/me").await), 5, "1m0s");
    // Each path counts on its own, as in Coder.
    assert_eq!(alice.get("/api/v2/users/alice").await.status, 200);
    // A member's bypass header is refused, as Coder refuses it.
    let bypass = |c: &crate::common::Client, value: &str| {
        c.request("GET", "/api/v2/users/me")
            .insert_header((BYPASS, value.to_string()))
    };
    let r = alice.send(bypass(&alice, "true"), None).await;
    r.assert_error(
        428,
        "\"X-Coder-Bypass-Ratelimit\" provided but user is not owner",
        None,
    );
    // "false" asks for nothing: counted as any request.
    let r = alice.send(bypass(&alice, "false"), None).await;
    assert_eq!(r.status, 429, "{}", r.text());
    // An owner's is honoured; without it the owner is counted as anyone.
    for _ in 0..8 {
        let r = owner.send(bypass(&owner, "true"), None).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for _ in 0..5 {
        assert_eq!(owner.get("/api/v2/users/me").await.status, 200);
    }
    assert_eq!(owner.get("/api/v2/users/me").await.status, 429);
}

#[actix_web::test]
async fn signed_out_callers_are_counted_per_client_address() {
    let s = TestApp::start_with_args(&["--api-rate-limit", "3"]);
    let anon = s.anon();
    for _ in 0..3 {
        assert_eq!(anon.get("/api/v2/buildinfo").await.status, 200);
    }
    assert_limited(&Raw::of(&anon.get("/api/v2/buildinfo").await), 3, "1m0s");
    // A token that is no session counts as signed out.
    let fake = s.client("abcdefghij-abcdefghijklmnopqrstuv");
    assert_eq!(fake.get("/api/v2/buildinfo").await.status, 429);
    // Another address has its own count; what is not the API has none.
    let mut conn = connect_from(&s, "127.0.3.1").await;
    send(&mut conn, "GET /api/v2/buildinfo HTTP/1.1", b"");
    assert_eq!(answer(&mut conn).status, 200);
    for _ in 0..5 {
        assert_eq!(anon.get("/healthz").await.status, 200);
    }
}

#[actix_web::test]
async fn file_uploads_are_limited_to_12_a_minute_per_user() {
    let s = TestApp::start_with_args(&["--rate-limit-window", "1m"]);
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    let tar = |i: usize| tar_of(&[("kiln.json", &format!("{{\"n\": {i}}}"))]);
    let mut first = None;
    for i in 0..12 {
        let r = owner
            .post_raw("/api/v2/files", "application/x-tar", tar(i))
            .await;
        assert_eq!(r.status, 201, "upload {}: {}", i + 1, r.text());
        first.get_or_insert(r.json()["hash"].as_str().unwrap().to_string());
    }
    let r = owner
        .post_raw("/api/v2/files", "application/x-tar", tar(12))
        .await;
    assert_limited(&Raw::of(&r), 12, "1m0s");
    // Another user uploads; a download is another path.
    let r = alice
        .post_raw("/api/v2/files", "application/x-tar", tar(13))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = owner
        .get(&format!("/api/v2/files/{}", first.unwrap()))
        .await;
    assert_eq!(r.status, 200);
}

/// The head of a protocol call about a job: its body's framing, its key if any.
fn protocol_head(call: &str, key: Option<&str>, framing: &str) -> String {
    let key = key.map_or(String::new(), |k| format!("\r\n{KEY_HEADER}: {k}"));
    format!(
        "POST /api/v2/provisionerd/jobs/{NIL}/{call} HTTP/1.1\r\nContent-Type: application/json\r\n{framing}{key}"
    )
}

#[actix_web::test]
async fn a_large_body_is_read_only_from_a_valid_key_or_session() {
    let s = TestApp::start_with_args(&["--workers", "0"]);
    let refusals = [
        (None, "Provisioner daemon key required."),
        (Some("not-a-key"), "Provisioner daemon key invalid."),
    ];
    for call in ["update", "complete", "fail"] {
        for (key, message) in refusals {
            // 16 MiB announced, a few bytes sent: answered at once.
            let mut conn = connect_from(&s, "127.0.0.1").await;
            let framing = format!("Content-Length: {}", 16 << 20);
            send(
                &mut conn,
                &protocol_head(call, key, &framing),
                b"{\"daemon_id\":",
            );
            let r = answer(&mut conn);
            assert_eq!(
                (r.status, r.json()["message"].clone()),
                (401, json!(message))
            );
            // A chunked body, never ended: answered once its first chunks are in.
            let mut conn = connect_from(&s, "127.0.0.1").await;
            send(
                &mut conn,
                &protocol_head(call, key, "Transfer-Encoding: chunked"),
                b"",
            );
            for _ in 0..2 {
                write!(conn, "10000\r\n").unwrap();
                conn.write_all(&[b' '; 1 << 16]).unwrap();
                write!(conn, "\r\n").unwrap();
            }
            let r = answer(&mut conn);
            assert_eq!(
                (r.status, r.json()["message"].clone()),
                (401, json!(message))
            );
        }
    }
    // A user route's 64 MiB is not read for a session that does not exist.
    let mut conn = connect_from(&s, "127.0.0.1").await;
    send(
        &mut conn,
        &format!(
            "PUT /api/v2/workspacebuilds/{NIL}/state HTTP/1.1\r\nContent-Type: application/json\r\nCoder-Session-Token: abcdefghij-abcdefghijklmnopqrstuv\r\nContent-Length: {}",
            64 << 20
        ),
        b"{\"state\":\"",
    );
    let r = answer(&mut conn);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["detail"], "API key is invalid.");

    // A daemon with a valid key sends large bodies: 8 MiB of heartbeat (padding the protocol
    // ignores) is read whole.
    let owner = s.owner().await;
    let key = new_key(&owner, "k", json!({})).await;
    let call = |path: &str, body: Vec<u8>| {
        let req = s
            .anon()
            .request("POST", &format!("/api/v2/provisionerd{path}"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header((KEY_HEADER, key.clone()));
        let c = s.anon();
        async move { c.send(req, Some(body)).await }
    };
    let reg = call("/register", json!({"name": "d"}).to_string().into_bytes()).await;
    assert_eq!(reg.status, 200, "{}", reg.text());
    let daemon = reg.json()["daemon_id"].as_str().unwrap().to_string();
    let file = upload(&owner, &quick()).await;
    let r = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let acquired = call(
        "/acquire",
        json!({"daemon_id": daemon, "wait_ms": 5000})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(acquired.status, 200, "{}", acquired.text());
    let job = acquired.json()["job"]["id"].as_str().unwrap().to_string();
    let mut body = format!(r#"{{"daemon_id":"{daemon}","renew":true,"pad":""#).into_bytes();
    body.resize(8 << 20, b'x');
    body.extend_from_slice(b"\"}");
    let r = call(&format!("/jobs/{job}/update"), body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"state": "held"}));
}

/// `{"state": "AAAA..."}` of exactly `size` bytes (the state: zero bytes, base64).
fn state_body(size: usize) -> Vec<u8> {
    let mut body = br#"{"state":""#.to_vec();
    body.resize(size - 2, b'A');
    body.extend_from_slice(b"\"}");
    body
}

#[actix_web::test]
async fn large_bodies_of_authenticated_callers_are_read_a_few_at_a_time() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let (_, build) = workspace(&owner, &t, "one", json!([])).await;
    finished(&owner, &build).await;
    let size = 20 << 20;
    assert_eq!((size - 12) % 4, 0, "whole base64");
    // A 20 MiB state, over the protocol's 16 MiB and the small limit, is taken whole.
    let r = owner
        .send(
            owner
                .request("PUT", &format!("/api/v2/workspacebuilds/{build}/state"))
                .insert_header(("Content-Type", "application/json")),
            Some(state_body(size)),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());

    // Bodies that are being read hold a turn each: one more than the turns waits, then is
    // answered 503; the others go on.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let turns = 4 + cores;
    let head = format!(
        "PUT /api/v2/workspacebuilds/{build}/state HTTP/1.1\r\nContent-Type: application/json\r\nCoder-Session-Token: {}\r\nContent-Length: {size}",
        owner.token()
    );
    let mut conns = Vec::new();
    for _ in 0..=turns {
        let mut conn = connect_from(&s, "127.0.0.1").await;
        send(&mut conn, &head, b"{\"state\":\"");
        conn.set_nonblocking(true).unwrap();
        conns.push(conn);
    }
    let started = Instant::now();
    let mut answered: Vec<(usize, Raw)> = Vec::new();
    let mut bufs = vec![Vec::new(); conns.len()];
    while answered.is_empty() && started.elapsed() < ANSWER_WAIT {
        for (i, conn) in conns.iter_mut().enumerate() {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk) {
                Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("connection {i}: {e}"),
            }
            if let Some(raw) = parse(&bufs[i]) {
                answered.push((i, raw));
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answered.len(), 1, "one body of {} waits in vain", turns + 1);
    let (refused, r) = answered.pop().unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "The server is reading too many large request bodies at once."
    );
    // A body being read is taken whole once it has all come.
    let mut conn = conns.remove(if refused == 0 { 1 } else { 0 });
    conn.set_nonblocking(false).unwrap();
    conn.write_all(&state_body(size)[10..]).unwrap();
    let r = answer(&mut conn);
    assert_eq!(r.status, 204, "{}", r.text());
}
