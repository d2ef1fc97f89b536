//! The `kiln` client against a real server: signing in (on a terminal and with a token),
//! signing out, errors, templates, workspaces and their builds, logs and state, Ctrl-C and
//! colour. Exact lines and exit codes, and the server's state read back through the API.
//!
//! Process: the `kiln` client binary, on a pseudo-terminal or with pipes, against a server.

use crate::common::cli::{Cli, build_lines, plain_lines, signed_in, template_dir};
use crate::common::{Kiln, TestServer};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

#[test]
fn every_command_has_help_with_an_example() {
    let cli = Cli::new();
    let commands: &[&[&str]] = &[
        &["login"],
        &["logout"],
        &["templates"],
        &["templates", "push"],
        &["templates", "list"],
        &["templates", "versions"],
        &["create"],
        &["list"],
        &["show"],
        &["start"],
        &["stop"],
        &["restart"],
        &["delete"],
        &["cancel"],
        &["builds"],
        &["logs"],
        &["state"],
        &["state", "pull"],
        &["state", "push"],
    ];
    for c in commands {
        let mut args = c.to_vec();
        args.push("--help");
        let out = cli.run(&args);
        let text = out.ok();
        let example = text
            .split("Example:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("kiln {c:?} --help has no example:\n{text}"));
        let first = example.lines().next().unwrap().trim();
        assert!(
            first.starts_with(&format!("kiln {}", c.join(" "))),
            "kiln {c:?}: the example {first:?} does not use the command"
        );
    }
}

#[actix_web::test]
async fn login_on_a_terminal_logout_and_the_errors_a_person_sees() {
    let s = TestServer::start_with_args(&["--workers", "1"]);
    let url = s.url("");
    let cli = Cli::new();

    // Not signed in yet.
    let out = cli.run(&["list"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: no kiln server: run kiln login URL (or set KILN_URL)\n"
    );
    // No user yet and no terminal: the first user's flags are needed.
    let out = cli.run(&["login", &url]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: this server has no user yet: pass --first-user-username (or run kiln login on a terminal)\n"
    );
    assert_eq!(s.anon().get("/api/v2/users/first").await.status, 404);

    // On a terminal, login asks for the first user (the password without echo).
    let mut t = cli.pty(&["login", &url], &[]);
    t.expect("Username: ");
    t.send_line("owner");
    t.expect("Email: ");
    t.send_line("owner@example.com");
    t.expect("Password: ");
    t.send_line("owner-password");
    let (code, shown) = t.wait();
    assert_eq!(code, 0, "{shown}");
    let session = cli.session_file();
    let welcome = format!(
        "Welcome to kiln, owner! You are signed in to {url}.\nThe session is kept in {}.\n",
        session.display()
    );
    assert_eq!(
        shown,
        format!(
            "{url} has no user yet: creating the first one, the owner.\nUsername: owner\nEmail: owner@example.com\nPassword: \n{welcome}"
        )
    );
    let first = s.login("owner@example.com", "owner-password").await;
    let me = first.get("/api/v2/users/me").await.json();
    assert_eq!(me["roles"][0]["name"], "owner", "{me}");
    let stored: Value = serde_json::from_slice(&std::fs::read(&session).unwrap()).unwrap();
    let first_token = stored["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.client(&first_token).get("/api/v2/users/me").await.status,
        200
    );
    let out = cli.run(&["logout"]);
    assert_eq!(out.ok(), format!("You are signed out of {url}.\n"));
    assert_eq!(
        s.client(&first_token).get("/api/v2/users/me").await.status,
        401
    );

    // A user exists: without a terminal or a token, login refuses rather than hang.
    let out = cli.run(&["login", &url]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: kiln login asks for email and password on a terminal; pass --token (or KILN_TOKEN) otherwise\n"
    );
    assert!(!session.exists());

    // A wrong password, on a terminal: the server's message.
    let mut t = cli.pty(&["login", &url], &[]);
    t.expect("Email: ");
    t.send_line("owner@example.com");
    t.expect("Password: ");
    t.send_line("wrong-password");
    let (code, shown) = t.wait();
    assert_eq!(code, 1, "{shown}");
    assert_eq!(
        shown,
        // On a terminal "error:" is red.
        "Email: owner@example.com\nPassword: \n\x1b[31merror:\x1b[0m Incorrect email or password.\n"
    );

    // The right one: signed in, the password never echoed.
    let mut t = cli.pty(&["login", &url], &[]);
    t.expect("Email: ");
    t.send_line("owner@example.com");
    t.expect("Password: ");
    t.send_line("owner-password");
    let (code, shown) = t.wait();
    assert_eq!(code, 0, "{shown}");
    assert_eq!(
        shown,
        format!("Email: owner@example.com\nPassword: \n{welcome}")
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&session), 0o600);
    assert_eq!(mode(session.parent().unwrap()), 0o700);
    let stored: Value = serde_json::from_slice(&std::fs::read(&session).unwrap()).unwrap();
    assert_eq!(stored["url"], url.as_str());
    let token = stored["token"].as_str().unwrap().to_string();
    let me = s.client(&token).get("/api/v2/users/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["username"], "owner");
    assert_eq!(
        cli.run(&["list"]).lines(),
        ["WORKSPACE  TEMPLATE  STATUS  LAST BUILD  LAST BUILT  OUTDATED"]
    );

    // KILN_URL overrides the file: a server that cannot be reached is named.
    let out = cli.run_env(&["list"], &[("KILN_URL", "http://127.0.0.1:1")]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: cannot reach http://127.0.0.1:1/api/v2/workspaces?q=owner%3Ame: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    // KILN_URL naming another server: the stored token is not sent there.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_url = format!("http://{}", other.local_addr().unwrap());
    let seen = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = other.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let body = r#"{"message":"Not signed in here.","detail":""}"#;
        let reply = format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(reply.as_bytes()).unwrap();
        String::from_utf8(head).unwrap()
    });
    let out = cli.run_env(&["list"], &[("KILN_URL", &other_url)]);
    let head = seen.join().unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("get /api/v2/workspaces?q=owner%3ame "),
        "{head}"
    );
    assert!(!head.contains("coder-session-token"), "{head}");
    assert!(!head.contains(&token.to_ascii_lowercase()), "{head}");
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("error: Not signed in here.\nrun kiln login {other_url} to sign in\n")
    );

    // Logout ends the session on the server and forgets it here.
    let out = cli.run(&["logout"]);
    assert_eq!(out.ok(), format!("You are signed out of {url}.\n"));
    assert!(!session.exists());
    let r = s.client(&token).get("/api/v2/users/me").await;
    assert_eq!(r.status, 401);
    // Signing out of one session leaves the others.
    assert_eq!(first.get("/api/v2/users/me").await.status, 200);

    // A token the server refuses (KILN_TOKEN overrides the file): its message and detail, and
    // how to sign in.
    let out = cli.run_env(&["list"], &[("KILN_URL", &url), ("KILN_TOKEN", &token)]);
    assert_eq!(out.code, 1);
    let body = r.json();
    assert_eq!(
        out.stderr,
        format!(
            "error: {}\n{}\nrun kiln login {url} to sign in\n",
            body["message"].as_str().unwrap(),
            body["detail"].as_str().unwrap()
        )
    );
}

/// A template whose start logs "working" and then waits 30 s; stop and delete do nothing.
fn slow() -> Value {
    serde_json::json!({"steps": {"start": [{"log": "working"}, {"sleep_ms": 30000}], "stop": [], "delete": []}})
}

async fn job_status(owner: &crate::common::Client, name: &str) -> Value {
    owner
        .get(&format!("/api/v2/users/me/workspace/{name}"))
        .await
        .json()["latest_build"]["job"]["status"]
        .clone()
}

#[actix_web::test]
async fn ctrl_c_cancels_the_build_and_waits_for_its_end_and_a_failure_exits_1() {
    let s = TestServer::start_with_args(&["--workers", "1"]);
    let (cli, owner) = signed_in(&s).await;
    let dir = template_dir(&slow());
    cli.push_template("slow", &dir);

    let run = cli.spawn(&["create", "w1", "-t", "slow", "--yes"]);
    run.wait_stdout("working\n");
    // The only worker is busy: the next build waits in the Queued stage; Ctrl-C cancels it
    // there.
    let queued = cli.spawn(&["create", "w4", "-t", "slow"]);
    queued.wait_stdout("==> ⧗ Queued\n");
    assert_eq!(job_status(&owner, "w4").await, "pending");
    queued.signal(libc::SIGINT);
    let out = queued.wait();
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.lines(),
        [
            "Workspace owner/w4 created; its first build:",
            "==> ⧗ Queued",
            "=== ✘ Queued [Nms]",
            "Build 1 of owner/w4 (start) was canceled.",
        ]
    );
    assert_eq!(job_status(&owner, "w4").await, "canceled");

    // Ctrl-C once: the running build is canceled, followed to its end, exit 1.
    run.signal(libc::SIGINT);
    let out = run.wait();
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.stderr,
        "Canceling... (Ctrl-C again to leave without waiting)\n"
    );
    let mut want = vec!["Workspace owner/w1 created; its first build:".to_string()];
    want.extend(build_lines(
        "Starting workspace",
        &["working", "The build was canceled: its work was stopped."],
    ));
    // The stage the build was canceled in ends with ✘, and the last stage never began.
    want.truncate(want.len() - 3);
    want.push("=== ✘ Starting workspace [Nms]".into());
    want.push("Build 1 of owner/w1 (start) was canceled.".into());
    assert_eq!(out.lines(), want);
    assert_eq!(job_status(&owner, "w1").await, "canceled");

    // kiln cancel from another terminal ends a build another kiln follows.
    let run = cli.spawn(&["create", "w2", "-t", "slow"]);
    run.wait_stdout("working\n");
    let out = cli.run(&["cancel", "w2"]);
    assert_eq!(out.ok(), "Canceled build 1 of owner/w2 (start).\n");
    let followed = run.wait();
    assert_eq!(followed.code, 1);
    assert_eq!(
        followed.lines().last().unwrap(),
        "Build 1 of owner/w2 (start) was canceled."
    );
    assert_eq!(followed.stderr, "");
    assert_eq!(job_status(&owner, "w2").await, "canceled");
    // Ctrl-C twice: the cancel is sent, and kiln leaves at once (130). The step takes a second
    // to end after its SIGTERM, so the build cannot end (and kiln exit 1) before the second.
    let stubborn = template_dir(&serde_json::json!({"steps": {
        "start": [{"run": "trap 'sleep 1; exit 1' TERM; echo working; sleep 30 & wait"}],
        "stop": [],
        "delete": [],
    }}));
    cli.push_template("stubborn", &stubborn);
    let run = cli.spawn(&["create", "w5", "-t", "stubborn"]);
    run.wait_stdout("working\n");
    run.signal(libc::SIGINT);
    run.wait_stderr("Canceling...");
    run.signal(libc::SIGINT);
    let out = run.wait();
    assert_eq!(out.code, 130, "{out:#?}");
    assert_eq!(
        out.stderr,
        "Canceling... (Ctrl-C again to leave without waiting)\n\
         Interrupted again: the cancel was sent; not waiting for the end.\n"
    );
    let w5 = owner.get("/api/v2/users/me/workspace/w5").await.json();
    let ended = owner
        .wait_build(w5["latest_build"]["id"].as_str().unwrap())
        .await;
    assert_eq!(ended["build_number"], 1);
    assert_eq!(ended["job"]["status"], "canceled");

    // Nothing left to cancel: the server's refusal.
    let out = cli.run(&["cancel", "w2"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: "), "{out:#?}");

    // A failing build: its error on the last line, exit 1.
    let failing =
        template_dir(&serde_json::json!({"steps": {"start": [{"fail": "no disk left"}]}}));
    cli.push_template("failing", &failing);
    let out = cli.run(&["create", "w3", "-t", "failing"]);
    assert_eq!(out.code, 1, "{out:#?}");
    let error =
        owner.get("/api/v2/users/me/workspace/w3").await.json()["latest_build"]["job"]["error"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(error.contains("no disk left"), "{error}");
    assert_eq!(
        out.lines().last().unwrap(),
        &format!("Build 1 of owner/w3 (start) failed: {error}")
    );
    assert_eq!(job_status(&owner, "w3").await, "failed");
    // logs -f of a build that ended badly exits 1 too.
    assert_eq!(cli.run(&["logs", "w3", "-f"]).code, 1);
}

#[actix_web::test]
async fn create_asks_on_a_terminal_and_colours_only_there() {
    let s = TestServer::start_with_args(&["--workers", "1"]);
    let (cli, owner) = signed_in(&s).await;
    let dir = template_dir(&serde_json::json!({
        "parameters": [{"name": "size", "display_name": "Size", "description": "How big.",
                        "type": "number", "required": true, "mutable": true,
                        "options": [{"name": "S", "value": "1"}, {"name": "L", "value": "4"}]}],
        "steps": {"start": [{"log": "size {{param.size}}"}, {"log": "careful", "level": "warn"}]}
    }));
    cli.push_template("box", &dir);

    // Answering "no" creates nothing.
    let mut t = cli.pty(&["create", "dev", "-t", "box"], &[]);
    t.expect("Size (size; one of 1, 4): ");
    t.send_line("4");
    t.expect("Create workspace dev from template box? (yes/no) ");
    t.send_line("no");
    let (code, shown) = t.wait();
    assert_eq!(code, 1);
    assert!(
        shown.ends_with("(yes/no) no\nNothing was created.\n"),
        "{shown:?}"
    );
    assert_eq!(
        owner.get("/api/v2/users/me/workspace/dev").await.status,
        404
    );

    let mut t = cli.pty(&["create", "dev", "-t", "box"], &[]);
    t.expect("Size (size; one of 1, 4): ");
    t.send_line("4");
    t.expect("(yes/no) ");
    t.send_line("yes");
    let (code, shown) = t.wait();
    assert_eq!(code, 0, "{shown}");
    let lines = plain_lines(&shown);
    assert_eq!(
        &lines[..4],
        [
            "How big.",
            "Size (size; one of 1, 4): 4",
            "Create workspace dev from template box? (yes/no) yes",
            "Workspace owner/dev created; its first build:",
        ]
    );
    // Stages bold, marks green, warnings yellow, the outcome green.
    assert!(
        lines.contains(&"\x1b[1m==> ⧗ Starting workspace\x1b[0m".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"=== \x1b[32m✔\x1b[0m Starting workspace [Nms]".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"size 4".to_string()));
    assert!(
        lines.contains(&"\x1b[33mcareful\x1b[0m".to_string()),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "\x1b[32mBuild 1 of owner/dev (start) succeeded.\x1b[0m"
    );
    let w = owner.get("/api/v2/users/me/workspace/dev").await.json();
    let params = owner
        .get(&format!(
            "/api/v2/workspacebuilds/{}/parameters",
            w["latest_build"]["id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(params, serde_json::json!([{"name": "size", "value": "4"}]));

    // NO_COLOR on a terminal: the same lines, plain.
    let t = cli.pty(&["stop", "dev"], &[("NO_COLOR", "1")]);
    let (code, shown) = t.wait();
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let mut want = build_lines("Stopping workspace", &[]);
    want.push("Build 2 of owner/dev (stop) succeeded.".into());
    assert_eq!(plain_lines(&shown), want);
    // Without a terminal: plain too.
    let out = cli.run(&["start", "dev"]);
    assert!(!out.stdout.contains('\x1b'));
    assert_eq!(
        out.lines().last().unwrap(),
        "Build 3 of owner/dev (start) succeeded."
    );
}
