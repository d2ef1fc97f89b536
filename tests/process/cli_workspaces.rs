//! The `kiln` client's templates, workspaces, builds, logs and state commands against a real
//! server: exact output lines and exit codes, and what changed read back through the API.
//!
//! Process: the `kiln` client binary against a server.

use crate::common::cli::{Cli, build_lines, signed_in, template_dir};
use crate::common::fixtures::workspace;
use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, TestServer};
use serde_json::{Value, json};

fn box_manifest() -> Value {
    json!({
        "parameters": [
            {"name": "size", "display_name": "Size", "description": "How big.", "type": "number",
             "required": true, "mutable": true},
            {"name": "greeting", "type": "string", "default_value": "Hi", "mutable": true}
        ],
        "resources": [{"name": "box", "type": "kiln_instance", "transitions": ["start"]}],
        "steps": {
            "start": [{"log": "{{param.greeting}} size {{param.size}} build {{build.number}}"}],
            "stop": [{"log": "stopping"}],
            "delete": [{"log": "gone"}]
        }
    })
}

fn import_lines(version: &str, summary: &str) -> Vec<String> {
    vec![
        format!("Importing version {version} of template box."),
        "==> ⧗ Queued".into(),
        "=== ✔ Queued [Nms]".into(),
        "==> ⧗ Setting up".into(),
        "=== ✔ Setting up [Nms]".into(),
        "==> ⧗ Parsing template parameters".into(),
        summary.into(),
        "=== ✔ Parsing template parameters [Nms]".into(),
        "==> ⧗ Cleaning Up".into(),
        "=== ✔ Cleaning Up [Nms]".into(),
    ]
}

/// `YYYY-MM-DD HH:MM:SS` of an API time, as the tables print it.
fn time(v: &Value) -> String {
    v.as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

async fn box_template(c: &Client) -> Value {
    c.get("/api/v2/organizations/coder/templates/box")
        .await
        .json()
}

#[actix_web::test]
async fn templates_push_list_and_versions() {
    let s = TestServer::start_with_args(&["--workers", "1"]);
    // The first user, made by login's flags (no terminal).
    let cli = Cli::new();
    let url = s.url("");
    let out = cli.run(&[
        "login",
        &url,
        "--first-user-username",
        "owner",
        "--first-user-email",
        "owner@example.com",
        "--first-user-password",
        "owner-password",
    ]);
    assert_eq!(
        out.lines()[..2],
        [
            format!("{url} has no user yet: creating the first one, the owner."),
            format!("Welcome to kiln, owner! You are signed in to {url}."),
        ]
    );
    let owner = s.login("owner@example.com", "owner-password").await;
    let dir = template_dir(&box_manifest());
    let d = dir.path().to_str().unwrap();
    let summary =
        "kiln.json is valid: 2 parameter(s), 1 resource(s), steps: start 1, stop 1, delete 1";

    let out = cli.run(&["templates", "push", "box", "-d", d, "--version-name", "v1"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let mut want = import_lines("v1", summary);
    want.push("Template box created with version v1.".into());
    assert_eq!(out.lines(), want);
    let t1 = box_template(&owner).await;
    let v1 = owner
        .get(&format!(
            "/api/v2/templateversions/{}",
            t1["active_version_id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(v1["name"], "v1");

    let out = cli.run(&[
        "templates",
        "push",
        "box",
        "-d",
        d,
        "--version-name",
        "v2",
        "-m",
        "second",
    ]);
    let mut want = import_lines("v2", summary);
    want.push("Template box now uses version v2.".into());
    assert_eq!(out.lines(), want, "{out:#?}");
    let t = box_template(&owner).await;
    assert_eq!(t["id"], t1["id"]);
    let v2 = owner
        .get(&format!(
            "/api/v2/templateversions/{}",
            t["active_version_id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(
        (&v2["name"], &v2["message"]),
        (&json!("v2"), &json!("second"))
    );

    // A broken manifest: the import fails, exit 1, and the template keeps v2.
    let bad = template_dir(&json!({"steps": {"reboot": []}}));
    let out = cli.run(&[
        "templates",
        "push",
        "box",
        "-d",
        bad.path().to_str().unwrap(),
        "--version-name",
        "v3",
    ]);
    assert_eq!(out.code, 1, "{out:#?}");
    let lines = out.lines();
    let v3 = owner
        .get("/api/v2/organizations/coder/templates/box/versions/v3")
        .await
        .json();
    assert_eq!(v3["job"]["status"], "failed");
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "The import of version v3 failed: {}",
            v3["job"]["error"].as_str().unwrap()
        )
    );
    assert_eq!(
        box_template(&owner).await["active_version_id"],
        t["active_version_id"]
    );
    // A folder without kiln.json is refused before anything is uploaded.
    let empty = tempfile::tempdir().unwrap();
    let out = cli.run(&[
        "templates",
        "push",
        "box",
        "-d",
        empty.path().to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: {} holds no kiln.json: a template folder has its manifest at the root\n",
            empty.path().display()
        )
    );

    let t = box_template(&owner).await;
    assert_eq!(
        cli.run(&["templates", "list"]).lines(),
        [
            "NAME  ORGANIZATION  ACTIVE VERSION ID                     USED BY  CREATED AT"
                .to_string(),
            format!(
                "box   coder         {}  0        {}",
                t["active_version_id"].as_str().unwrap(),
                time(&t["created_at"])
            )
        ]
    );
    let listed: Value =
        serde_json::from_str(cli.run(&["templates", "list", "-o", "json"]).ok()).unwrap();
    assert_eq!(
        listed,
        owner
            .get("/api/v2/organizations/coder/templates")
            .await
            .json()
    );
    assert_valid("codersdk.Template", &listed[0]);

    let versions = owner
        .get(&format!(
            "/api/v2/templates/{}/versions",
            t["id"].as_str().unwrap()
        ))
        .await
        .json();
    let row = |i: usize, status: &str, active: &str| {
        let v = &versions[i];
        format!(
            "{}    {}  owner       {status}{active}",
            v["name"].as_str().unwrap(),
            time(&v["created_at"])
        )
    };
    assert_eq!(
        cli.run(&["templates", "versions", "box"]).lines(),
        [
            "NAME  CREATED AT           CREATED BY  STATUS     ACTIVE".to_string(),
            row(2, "failed", ""),
            row(1, "succeeded  ", "Active"),
            row(0, "succeeded", ""),
        ]
    );
    let listed: Value = serde_json::from_str(
        cli.run(&["templates", "versions", "box", "-o", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(listed, versions);
    assert_valid("codersdk.TemplateVersion", &listed[0]);

    let out = cli.run(&["templates", "versions", "nope"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: "), "{out:#?}");
}

#[actix_web::test]
async fn a_workspace_through_its_life() {
    let s = TestServer::start_with_args(&["--workers", "1"]);
    let (cli, owner) = signed_in(&s).await;
    let dir = template_dir(&box_manifest());
    cli.push_template("box", &dir);

    // Without a terminal, a missing required parameter is refused, listing it.
    let out = cli.run(&["create", "dev", "-t", "box"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: template box needs a value for: size\npass each with --parameter NAME=VALUE\n"
    );
    let none = owner.get("/api/v2/workspaces").await.json();
    assert_eq!(none["count"], 0);

    let out = cli.run(&["create", "dev", "-t", "box", "--parameter", "size=3"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let mut want = vec!["Workspace owner/dev created; its first build:".to_string()];
    want.extend(build_lines("Starting workspace", &["Hi size 3 build 1"]));
    want.push("Build 1 of owner/dev (start) succeeded.".into());
    assert_eq!(out.lines(), want);

    // A second user's workspace, seen with -a and by owner/name.
    let alice = s.user(&owner, "alice", &[]).await;
    let t = box_template(&owner).await;
    let (_, aw) = workspace(
        &alice,
        t["id"].as_str().unwrap(),
        "aw",
        json!([{"name": "size", "value": "1"}]),
    )
    .await;
    alice.wait_build(&aw).await;

    let dev = owner.get("/api/v2/users/me/workspace/dev").await.json();
    let aw = owner.get("/api/v2/users/alice/workspace/aw").await.json();
    let row = |w: &Value, name: &str, status: &str| {
        format!(
            "{name}  box       {status}  #1 start    {}  false",
            time(&w["latest_build"]["created_at"])
        )
    };
    let header = "WORKSPACE  TEMPLATE  STATUS   LAST BUILD  LAST BUILT           OUTDATED";
    assert_eq!(
        cli.run(&["list"]).lines(),
        [header.to_string(), row(&dev, "owner/dev", "running")]
    );
    assert_eq!(
        cli.run(&["list", "-a"]).lines(),
        [
            header.to_string(),
            row(&aw, "alice/aw ", "running"),
            row(&dev, "owner/dev", "running")
        ]
    );
    assert_eq!(
        cli.run(&["list", "-a", "--search", "owner:alice"]).lines(),
        [header.to_string(), row(&aw, "alice/aw ", "running")]
    );
    assert_eq!(
        cli.run(&["list", "--search", "name:nothing"]).lines(),
        ["WORKSPACE  TEMPLATE  STATUS  LAST BUILD  LAST BUILT  OUTDATED"]
    );
    let listed: Value = serde_json::from_str(cli.run(&["list", "-a", "-o", "json"]).ok()).unwrap();
    assert_eq!(
        listed,
        owner.get("/api/v2/workspaces").await.json()["workspaces"]
    );
    assert_valid("codersdk.Workspace", &listed[0]);

    let b = &aw["latest_build"];
    assert_eq!(
        cli.run(&["show", "alice/aw"]).lines(),
        [
            "FIELD       VALUE".to_string(),
            "Workspace   alice/aw".into(),
            format!("ID          {}", aw["id"].as_str().unwrap()),
            format!(
                "Template    box (version {})",
                b["template_version_name"].as_str().unwrap()
            ),
            "Status      running".into(),
            format!(
                "Last build  #1 start (succeeded) at {}",
                time(&b["created_at"])
            ),
            "Outdated    false".into(),
            format!("Created     {}", time(&aw["created_at"])),
            "Resource    box (kiln_instance)".into(),
        ]
    );
    let shown: Value = serde_json::from_str(cli.run(&["show", "dev", "-o", "json"]).ok()).unwrap();
    assert_eq!(shown["id"], dev["id"]);
    assert_valid("codersdk.Workspace", &shown);
    let out = cli.run(&["show", "nobody/dev"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: Resource not found or you do not have access to this resource\n"
    );

    // stop, start with a new value, restart: each followed to its end.
    let out = cli.run(&["stop", "dev"]);
    let mut want = build_lines("Stopping workspace", &["stopping"]);
    want.push("Build 2 of owner/dev (stop) succeeded.".into());
    assert_eq!(out.lines(), want, "{out:#?}");
    assert_eq!(out.code, 0);
    let latest = |w: Value| {
        (
            w["latest_build"]["transition"].clone(),
            w["latest_build"]["status"].clone(),
        )
    };
    assert_eq!(
        latest(owner.get("/api/v2/users/me/workspace/dev").await.json()),
        (json!("stop"), json!("stopped"))
    );
    let out = cli.run(&["start", "owner/dev", "--parameter", "greeting=Yo"]);
    let mut want = build_lines("Starting workspace", &["Yo size 3 build 3"]);
    want.push("Build 3 of owner/dev (start) succeeded.".into());
    assert_eq!(out.lines(), want, "{out:#?}");
    let out = cli.run(&["restart", "dev", "--parameter", "size=5"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let mut want = build_lines("Stopping workspace", &["stopping"]);
    want.push("Build 4 of owner/dev (stop) succeeded.".into());
    want.extend(build_lines("Starting workspace", &["Yo size 5 build 5"]));
    want.push("Build 5 of owner/dev (start) succeeded.".into());
    assert_eq!(out.lines(), want);
    let out = cli.run(&["stop", "dev", "--orphan"]);
    assert_eq!(out.stderr, "error: --orphan goes with kiln delete only\n");

    // builds, newest first; logs of one build and of the latest.
    let builds = owner
        .get(&format!(
            "/api/v2/workspaces/{}/builds",
            dev["id"].as_str().unwrap()
        ))
        .await
        .json();
    let mut want =
        vec!["BUILD  TRANSITION  STATUS     INITIATOR  REASON     VERSION  CREATED AT".to_string()];
    for b in builds.as_array().unwrap() {
        want.push(format!(
            "{}      {:<10}  succeeded  owner      initiator  {}  {}",
            b["build_number"],
            b["transition"].as_str().unwrap(),
            b["template_version_name"].as_str().unwrap(),
            time(&b["created_at"])
        ));
    }
    assert_eq!(builds.as_array().unwrap().len(), 5);
    let version_name = builds[0]["template_version_name"].as_str().unwrap();
    assert_eq!(
        cli.run(&["builds", "dev"]).lines(),
        want.iter()
            .map(|l| l.replace(
                "VERSION  ",
                &format!("{:<w$}", "VERSION", w = version_name.len().max(7) + 2)
            ))
            .collect::<Vec<_>>()
    );
    let listed: Value =
        serde_json::from_str(cli.run(&["builds", "dev", "-o", "json"]).ok()).unwrap();
    assert_eq!(listed, builds);
    assert_valid("codersdk.WorkspaceBuild", &listed[0]);
    assert_eq!(
        cli.run(&["logs", "dev", "-n", "1"]).lines(),
        build_lines("Starting workspace", &["Hi size 3 build 1"])
    );
    assert_eq!(
        cli.run(&["logs", "dev"]).lines(),
        build_lines("Starting workspace", &["Yo size 5 build 5"])
    );
    let out = cli.run(&["logs", "dev", "-f"]);
    assert_eq!(
        out.lines(),
        build_lines("Starting workspace", &["Yo size 5 build 5"])
    );
    assert_eq!(out.code, 0);

    // state: pull, push in place, push with a build.
    let latest_id = builds[0]["id"].as_str().unwrap();
    let state = owner
        .get(&format!("/api/v2/workspacebuilds/{latest_id}/state"))
        .await;
    assert_eq!(
        cli.run(&["state", "pull", "dev"]).ok().as_bytes(),
        state.body.as_slice()
    );
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("state.json");
    std::fs::write(&file, br#"{"counter": 41}"#).unwrap();
    let f = file.to_str().unwrap();
    let out = cli.run(&["state", "push", "dev", f, "--no-build"]);
    assert_eq!(
        out.ok(),
        "Replaced the state of build 5 of owner/dev (15 bytes).\n"
    );
    let now = owner
        .get(&format!("/api/v2/workspacebuilds/{latest_id}/state"))
        .await;
    assert_eq!(now.body, br#"{"counter": 41}"#);
    std::fs::write(&file, br#"{"counter": 42}"#).unwrap();
    let out = cli.run(&["state", "push", "dev", f]);
    let mut want = build_lines("Starting workspace", &["Yo size 5 build 6"]);
    want.push("Build 6 of owner/dev (start) succeeded.".into());
    assert_eq!(out.lines(), want, "{out:#?}");
    let pulled = files.path().join("pulled.json");
    cli.run(&["state", "pull", "dev", pulled.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&pulled).unwrap(), br#"{"counter": 42}"#);
    cli.run(&["state", "pull", "dev", "-b", "5", pulled.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&pulled).unwrap(), br#"{"counter": 41}"#);

    // delete --orphan forgets the workspace without its delete steps.
    let out = cli.run(&["delete", "dev", "--orphan"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let lines = out.lines();
    assert!(
        lines.contains(&"Orphan delete: no steps run; the resources are forgotten.".to_string()),
        "{lines:?}"
    );
    assert!(!lines.contains(&"gone".to_string()));
    assert_eq!(
        lines.last().unwrap(),
        "Build 7 of owner/dev (delete) succeeded."
    );
    assert_eq!(
        owner.get("/api/v2/users/me/workspace/dev").await.status,
        404
    );
    // A plain delete runs the steps.
    let out = cli.run(&["delete", "alice/aw"]);
    let mut want = build_lines("Destroying workspace", &["gone"]);
    want.push("Build 2 of alice/aw (delete) succeeded.".into());
    assert_eq!(out.lines(), want, "{out:#?}");
    assert_eq!(
        owner.get("/api/v2/users/alice/workspace/aw").await.status,
        404
    );
}
