//! Identity over real HTTP where the server's process matters: the auth matrix (every way of
//! sending a token; the access log shows the request without the token's secret; an expired
//! key), and users and tokens surviving a kill and a restart.
//!
//! Process: the server's log is read, and the server is killed and started again on its data.

use crate::common::fixtures::SIGNED_OUT;
use crate::common::{Kiln, TestServer, pg, postgres_mode};

#[actix_web::test]
async fn auth_matrix() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let token = owner.token().to_string();
    let (id, secret) = token.split_once('-').unwrap();
    assert_eq!((id.len(), secret.len()), (10, 22));

    let me = "/api/v2/users/me";
    s.anon().get(me).await.assert_error(
        401,
        SIGNED_OUT,
        Some("Cookie \"coder_session_token\" or query parameter must be provided."),
    );
    let cases = [
        (
            "abc".to_string(),
            "Invalid API key format: incorrect amount of API key parts, expected 2 got 1",
        ),
        (
            "a-b-c".to_string(),
            "Invalid API key format: incorrect amount of API key parts, expected 2 got 3",
        ),
        (
            format!("short-{secret}"),
            "Invalid API key format: invalid API key ID length, expected 10 got 5",
        ),
        (
            format!("{id}-short"),
            "Invalid API key format: invalid API key secret length, expected 22 got 5",
        ),
        (format!("0123456789-{secret}"), "API key is invalid."),
        (
            format!("{id}-{}", "x".repeat(22)),
            "API key secret is invalid.",
        ),
    ];
    for (bad, detail) in cases {
        s.client(&bad)
            .get(me)
            .await
            .assert_error(401, SIGNED_OUT, Some(detail));
    }

    // Every way of sending the token works.
    let c = s.anon();
    let via_cookie = c
        .request("GET", me)
        .insert_header(("Cookie", format!("coder_session_token={token}")));
    let via_bearer = c
        .request("GET", me)
        .insert_header(("Authorization", format!("Bearer {token}")));
    for req in [via_cookie, via_bearer] {
        let r = c.send(req, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = c.get(&format!("{me}?coder_session_token={token}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(owner.get(me).await.status, 200);
    // The access log shows the request, not the token (nor the secret half of it).
    let log = s.log();
    assert!(
        log.contains(&format!(
            "GET {me}?coder_session_token=[redacted] HTTP/1.1 200"
        )),
        "{log}"
    );
    assert!(!log.contains(secret), "a token's secret is in the log");

    // Expired. The database is edited because no API makes a key expire sooner than in days.
    let changed = if postgres_mode() {
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id:?}");
        let out = pg::psql(
            s.pg_database(),
            &format!(
                "WITH changed AS (UPDATE api_keys SET expires_at = 1000000 WHERE id = '{id}' \
                 RETURNING 1) SELECT count(*) FROM changed"
            ),
        );
        out.trim().parse::<usize>().unwrap()
    } else {
        let db = rusqlite::Connection::open(s.db_path()).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        db.execute(
            "UPDATE api_keys SET expires_at = 1000000 WHERE id = ?1",
            [id],
        )
        .unwrap()
    };
    assert_eq!(changed, 1, "the session's key is in the database");
    // kiln keeps a checked key for up to a second; an edit of the database shows after that.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let r = loop {
        let r = s.client(&token).get(me).await;
        if r.status != 200 {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the expired key still works: {}",
            r.text()
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    r.assert_error(
        401,
        SIGNED_OUT,
        Some("API key expired at \"1970-01-01T00:00:01.000000Z\"."),
    );
}

#[actix_web::test]
async fn users_and_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let s = TestServer::start_in(dir.path(), &[]);
        let owner = s.owner().await;
        s.user(&owner, "mary", &["template-admin"]).await;
        owner.token().to_string()
    };
    let s = TestServer::start_in(dir.path(), &[]);
    let owner = s.client(&token);
    assert_eq!(
        owner.get("/api/v2/users/me").await.json()["username"],
        "owner"
    );
    let mary = owner.get("/api/v2/users/mary").await.json();
    assert_eq!(mary["roles"][0]["name"], "template-admin");
    s.anon().get("/api/v2/users/first").await.assert_error(
        200,
        "The initial user has already been created!",
        None,
    );
}
