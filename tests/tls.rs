//! HTTPS end to end (`kiln server --tls-*`) with a CA the test makes: the API, a build, a
//! WebSocket follow and a `Secure` cookie over HTTPS; the client (`kiln login --ca-file`) and
//! the provisioner daemon (`--ca-file`) trusting that CA and refusing a certificate they cannot
//! trust; and PostgreSQL reached over TLS only (`ssl = on`, only `hostssl` in `pg_hba.conf`),
//! with `sslmode` as libpq reads it.
//!
//! A test binary of its own: in PostgreSQL mode its throwaway cluster serves TLS with this
//! binary's CA, which must be set up before the cluster's first use (`pg::serve_tls`), so it
//! cannot share the cluster of `tests/process`. Process: the server's log says where HTTPS is
//! served, and the client, the daemon and `kiln server` are run as processes.

mod common;
use common::cli::Cli;
use common::daemon::new_key;
use common::fixtures::quick;
use common::{Kiln, TestServer, postgres_mode};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A CA, a certificate it signed for `localhost` and 127.0.0.1 with its key, and another CA
/// that signed nothing here; all as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let other_key = KeyPair::generate().unwrap();
        let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other = other.self_signed(&other_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki {
            dir,
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        };
        std::fs::write(pki.path("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(pki.path("other-ca.pem"), other.pem()).unwrap();
        std::fs::write(pki.path("cert.pem"), &pki.cert_pem).unwrap();
        std::fs::write(pki.path("key.pem"), &pki.key_pem).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// A client configuration trusting `ca` (a file of this PKI) and nothing else.
    fn client_config(
        &self,
        ca: &str,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for c in kiln::tls::read_certificates(&self.path(ca)).unwrap() {
            roots.add(c).unwrap();
        }
        rustls::ClientConfig::builder_with_provider(kiln::tls::provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

/// The PKI of this binary. In PostgreSQL mode its cluster serves TLS with it, for every test
/// (the cluster is shared, and starts with the first test that needs it).
fn pki() -> &'static Pki {
    static PKI: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    let pki = PKI.get_or_init(Pki::new);
    if postgres_mode() {
        common::pg::serve_tls(&pki.cert_pem, &pki.key_pem);
    }
    pki
}

/// A server serving HTTPS beside plain HTTP; its `https://127.0.0.1:PORT`.
fn https_server(pki: &Pki, extra: &[&str]) -> (TestServer, String) {
    let (cert, key) = (pki.path_str("cert.pem"), pki.path_str("key.pem"));
    let mut args = vec![
        "--tls-enable",
        "--tls-address",
        "127.0.0.1:0",
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
    ];
    args.extend_from_slice(extra);
    let s = TestServer::start_with_args(&args);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.log();
        if let Some(i) = log.find("listening on https://") {
            let rest = &log[i + "listening on ".len()..];
            let base = rest.lines().next().unwrap().trim().to_string();
            return (s, base);
        }
        assert!(Instant::now() < deadline, "no HTTPS listener:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTPS client of kiln trusting the test's CA.
struct Https {
    base: String,
    client: awc::Client,
    token: Option<String>,
}

impl Https {
    fn new(pki: &Pki, base: &str) -> Https {
        let config = pki.client_config("ca.pem", rustls::DEFAULT_VERSIONS);
        Https {
            base: base.to_string(),
            client: awc::Client::builder()
                .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
                .timeout(Duration::from_secs(30))
                .finish(),
            token: None,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, awc::http::header::HeaderMap, Vec<u8>) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.insert_header(("Coder-Session-Token", t.as_str()));
        }
        let mut res = match body {
            Some((content_type, bytes)) => req
                .insert_header(("Content-Type", content_type))
                .send_body(bytes)
                .await
                .expect("HTTPS request"),
            None => req.send().await.expect("HTTPS request"),
        };
        let bytes = res.body().limit(16 << 20).await.unwrap().to_vec();
        (res.status().as_u16(), res.headers().clone(), bytes)
    }

    async fn json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let (status, _, bytes) = self
            .send(
                method,
                path,
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, _, bytes) = self.send("GET", path, None).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).unwrap()
    }
}

#[actix_web::test]
async fn https_serves_the_api_a_build_its_websocket_follow_and_a_secure_cookie() {
    let pki = pki();
    let (s, base) = https_server(pki, &[]);
    let mut c = Https::new(pki, &base);
    let (status, _) = c
        .json(
            "POST",
            "/api/v2/users/first",
            json!({"email": "owner@example.com", "username": "owner", "password": "owner-password"}),
        )
        .await;
    assert_eq!(status, 201);
    let login = json!({"email": "owner@example.com", "password": "owner-password"});
    let (status, headers, body) = c
        .send(
            "POST",
            "/api/v2/users/login",
            Some(("application/json", login.to_string().into_bytes())),
        )
        .await;
    assert_eq!(status, 201);
    let cookie = headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let token = serde_json::from_slice::<Value>(&body).unwrap()["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Over plain HTTP (kept for localhost) the cookie cannot be Secure.
    let r = s.anon().post("/api/v2/users/login", login.clone()).await;
    assert_eq!(r.status, 201);
    assert!(!r.header("set-cookie").unwrap().contains("Secure"));
    c.token = Some(token.clone());

    // A template and a workspace, all over HTTPS; the build runs.
    let archive = common::tar_of(&[("kiln.json", &quick().to_string())]);
    let (status, _, body) = c
        .send(
            "POST",
            "/api/v2/files",
            Some(("application/x-tar", archive)),
        )
        .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let file = serde_json::from_slice::<Value>(&body).unwrap()["hash"].clone();
    let (status, v) = c
        .json(
            "POST",
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let version = v["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.get(&format!("/api/v2/templateversions/{version}")).await["job"]["status"]
        != "succeeded"
    {
        assert!(Instant::now() < deadline, "the import did not end");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, t) = c
        .json(
            "POST",
            "/api/v2/organizations/coder/templates",
            json!({"name": "base", "template_version_id": version}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let (status, w) = c
        .json(
            "POST",
            "/api/v2/users/me/workspaces",
            json!({"name": "dev", "template_id": t["id"], "rich_parameter_values": []}),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    let build = w["latest_build"]["id"].as_str().unwrap().to_string();

    // Its log, followed over a WebSocket on the same TLS listener, to the end.
    let url = format!(
        "{}/api/v2/workspacebuilds/{build}/logs?follow=true",
        base.replacen("https://", "wss://", 1)
    );
    let (_, mut conn) = c
        .client
        .ws(url)
        .header("Coder-Session-Token", token.as_str())
        .connect()
        .await
        .expect("WebSocket upgrade over TLS");
    let mut lines = Vec::new();
    use futures_util::StreamExt;
    loop {
        let frame = actix_web::rt::time::timeout(Duration::from_secs(30), conn.next())
            .await
            .expect("a frame within 30 s");
        match frame {
            Some(Ok(awc::ws::Frame::Text(bytes))) => {
                lines.push(serde_json::from_slice::<Value>(&bytes).unwrap())
            }
            Some(Ok(awc::ws::Frame::Close(reason))) => {
                assert_eq!(reason.unwrap().description.as_deref(), Some("done"));
                break;
            }
            Some(Ok(awc::ws::Frame::Ping(p))) => {
                use futures_util::SinkExt;
                conn.send(awc::ws::Message::Pong(p)).await.unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l["output"].as_str().unwrap_or("").starts_with("hello")),
        "{lines:?}"
    );
    let b = c.get(&format!("/api/v2/workspacebuilds/{build}")).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
}

#[actix_web::test]
async fn the_oldest_tls_version_is_the_operators_choice() {
    let pki = pki();
    let (_s, base) = https_server(pki, &["--tls-min-version", "tls13"]);
    let addr = base.trim_start_matches("https://").to_string();
    let handshake = |versions: &[&'static rustls::SupportedProtocolVersion]| {
        let config = Arc::new(pki.client_config("ca.pem", versions));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut conn = rustls::ClientConnection::new(config, name).unwrap();
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.complete_io(&mut sock).map(|_| conn.protocol_version())
    };
    assert_eq!(
        handshake(&[&rustls::version::TLS13]).unwrap(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert!(handshake(&[&rustls::version::TLS12]).is_err());
    // A server refuses a version rustls does not speak, before it starts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["server", "--tls-min-version", "tls10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS 1.2 and 1.3 only"));
}

#[test]
fn tls_needs_a_certificate_and_its_key() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args([
                "server",
                "--address",
                "127.0.0.1:0",
                "--tls-address",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--tls-enable"]);
    assert!(
        e.contains("--tls-enable needs --tls-cert-file and --tls-key-file"),
        "{e}"
    );
    let (ca, key) = (pki.path_str("ca.pem"), pki.path_str("key.pem"));
    let e = run(&[
        "--tls-enable",
        "--tls-cert-file",
        &ca,
        "--tls-key-file",
        &key,
    ]);
    assert!(e.contains("do not make a certificate and its key"), "{e}");
    let e = run(&[
        "--tls-enable",
        "--tls-cert-file",
        &key,
        "--tls-key-file",
        &key,
    ]);
    assert!(e.contains("holds no certificate"), "{e}");
}

#[actix_web::test]
async fn the_client_and_the_daemon_trust_the_ca_they_are_given_and_refuse_others() {
    let pki = pki();
    let (s, base) = https_server(pki, &["--workers", "0"]);
    let first = [
        "--first-user-username",
        "owner",
        "--first-user-email",
        "owner@example.com",
        "--first-user-password",
        "owner-password",
    ];
    let cli = Cli::new();
    // Without the CA, or with another one: refused, saying how to trust it.
    for ca in [None, Some(pki.path_str("other-ca.pem"))] {
        let mut args = vec!["login", &base];
        args.extend_from_slice(&first);
        if let Some(ca) = &ca {
            args.extend_from_slice(&["--ca-file", ca]);
        }
        let out = cli.run(&args);
        assert_eq!(out.code, 1, "{out:#?}");
        assert!(
            out.stderr.contains(&format!(
                "cannot reach {base}/api/v2/users/first: the server's certificate is not trusted"
            )),
            "{out:#?}"
        );
        assert!(
            out.stderr.contains("--ca-file FILE (or KILN_CA_FILE=FILE)"),
            "{out:#?}"
        );
        assert!(!cli.session_file().exists());
    }
    // With it: signed in, and later commands trust it too (kept with the session).
    let ca = pki.path_str("ca.pem");
    let mut args = vec!["login", &base, "--ca-file", &ca];
    args.extend_from_slice(&first);
    let out = cli.run(&args);
    assert!(out.ok().contains("You are signed in to"), "{out:#?}");
    let session: Value =
        serde_json::from_slice(&std::fs::read(cli.session_file()).unwrap()).unwrap();
    assert_eq!(session["ca_file"], ca.as_str());
    cli.run(&["templates", "list"]).ok();
    // KILN_CA_FILE names it for one command.
    let token = session["token"].as_str().unwrap().to_string();
    let other = Cli::new();
    let env = [("KILN_URL", base.as_str()), ("KILN_TOKEN", token.as_str())];
    let out = other.run_env(&["list"], &env);
    assert_eq!(out.code, 1, "{out:#?}");
    let mut with_ca = env.to_vec();
    with_ca.push(("KILN_CA_FILE", ca.as_str()));
    other.run_env(&["list"], &with_ca).ok();

    // The daemon: an untrusted certificate stops it at start; the CA lets it register.
    let owner = s.client(&token);
    let key = new_key(&owner, "farm", json!({})).await;
    let daemon = |ca: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args([
                "provisioner",
                "start",
                "--url",
                &base,
                "--key",
                &key,
                "--ca-file",
                ca,
                "--data-dir",
            ])
            .arg(dir.path())
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (out, dir)
    };
    let (child, _dir) = daemon(&pki.path_str("other-ca.pem"));
    let out = wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the server's certificate is not trusted"),
        "{err}"
    );
    assert!(err.contains("--ca-file FILE"), "{err}");
    let d = common::daemon::Daemon::start(&base, &key, "tls-box", &["--ca-file", &ca]);
    let listed = common::daemon::daemons(&owner).await;
    assert!(
        listed.iter().any(|x| x["name"] == d.name.as_str()),
        "{listed:?}"
    );
}

fn wait_with_timeout(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[actix_web::test]
async fn postgresql_is_reached_over_tls_as_sslmode_asks() {
    if !postgres_mode() {
        eprintln!("skipped: PostgreSQL runs with KILN_TEST_STORE=postgres");
        return;
    }
    let pki = pki();
    let port = common::pg::serve_tls(&pki.cert_pem, &pki.key_pem);
    let db = common::pg::database_name(&common::pg::fresh_database()).to_string();
    let tcp = |host: &str, extra: &str| {
        format!("host={host} port={port} user=postgres dbname={db} connect_timeout=5 {extra}")
    };
    let start = |database: String| {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args([
                "server",
                "--address",
                "127.0.0.1:0",
                "--workers",
                "0",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(["--database", &database])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (out, dir)
    };
    // Refused: no TLS where pg_hba.conf allows only hostssl; a CA that did not sign it; a name
    // the certificate does not carry (verify-full).
    let ca = pki.path_str("ca.pem");
    let other = pki.path_str("other-ca.pem");
    for (database, why) in [
        (tcp("127.0.0.1", "sslmode=disable"), "no encryption"),
        (
            tcp(
                "127.0.0.1",
                &format!("sslmode=verify-ca sslrootcert={other}"),
            ),
            "certificate",
        ),
        (
            tcp("127.0.0.1", &format!("sslmode=require sslrootcert={other}")),
            "certificate",
        ),
    ] {
        let (child, _dir) = start(database.clone());
        let out = wait_with_timeout(child, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{database}: {err}");
        assert!(
            err.contains("cannot connect to PostgreSQL"),
            "{database}: {err}"
        );
        assert!(err.to_lowercase().contains(why), "{database}: {err}");
    }
    // Accepted: require (encrypted, unchecked), verify-ca and verify-full with the CA.
    for database in [
        tcp("127.0.0.1", "sslmode=require"),
        tcp("127.0.0.1", &format!("sslmode=verify-ca sslrootcert={ca}")),
        tcp(
            "localhost",
            &format!("sslmode=verify-full sslrootcert={ca}"),
        ),
        format!(
            "postgres://postgres@127.0.0.1:{port}/{db}?sslmode=verify-full&sslrootcert={}",
            ca.replace('/', "%2F")
        ),
    ] {
        let (mut child, _dir) = start(database.clone());
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut log = String::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                log.push_str(&line);
                log.push('\n');
                if line.contains("listening on http://") {
                    let _ = tx.send(Ok(log.clone()));
                }
            }
            let _ = tx.send(Err(log));
        });
        let log = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| Err("no answer".into()));
        assert!(log.is_ok(), "{database}: {log:?}");
        // Every connection the server holds over TCP is encrypted.
        let tcp = common::pg::psql(
            &db,
            "SELECT count(*), count(*) FILTER (WHERE ssl) FROM pg_stat_ssl \
             JOIN pg_stat_activity USING (pid) \
             WHERE datname = current_database() AND client_addr IS NOT NULL",
        );
        let (all, encrypted) = tcp.trim().split_once('|').unwrap();
        assert!(all.parse::<u32>().unwrap() > 0, "{database}: {tcp}");
        assert_eq!(all, encrypted, "{database}: {tcp}");
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[actix_web::test]
async fn behind_a_proxy_that_ends_tls_the_cookie_is_secure_on_plain_http() {
    pki();
    let s = TestServer::start_with_args(&["--secure-auth-cookie"]);
    s.owner().await;
    let r = s
        .anon()
        .post(
            "/api/v2/users/login",
            json!({"email": "owner@example.com", "password": "owner-password"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
