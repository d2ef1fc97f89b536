//! Workspace schedules: `PUT …/autostart`, `…/ttl`, `…/extend`, `GET …/resolve-autostart`, and
//! the lifecycle executor that stops workspaces at their deadline and starts them on schedule.

use crate::common::fixtures::{
    BUILD, NOT_FOUND, build_count, finished, get_build, get_workspace, new_build, post_build,
    quick, steps, template_with_ttl, workspace_for,
};
use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, Resp, TestApp, postgres_mode, tar_of};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const POLL: [&str; 2] = ["--autobuild-poll-interval", "200ms"];
#[actix_web::test]
async fn autostop_at_the_deadline_as_the_workspace_owner() {
    let s = TestApp::start_with_args(&POLL);
    let owner = s.owner().await;
    let member = s.user(&owner, "member", &[]).await;
    let t = template_with_ttl(&owner, "short", quick(), 2000).await;
    // The owner makes it for the member: the first build is the owner's, the autostop the
    // member's (the workspace owner).
    let (ws, first) =
        workspace_for(&owner, "member", json!({"name": "dev", "template_id": t})).await;
    let started = finished(&member, &first).await;
    assert_eq!(started["status"], "running");
    let gap = secs_between(&started["job"]["completed_at"], &started["deadline"]);
    assert!(
        (1.9..2.1).contains(&gap),
        "deadline {gap}s after completion"
    );
    let stop = wait_build_number(&member, &ws, 2, Duration::from_secs(15)).await;
    assert_eq!(stop["transition"], "stop");
    assert_eq!(stop["reason"], "autostop");
    assert_eq!(stop["status"], "stopped");
    assert_eq!(stop["initiator_name"], "member");
    assert_eq!(stop["template_version_id"], started["template_version_id"]);
    assert!(secs_between(&started["deadline"], &stop["created_at"]) >= 0.0);
    // Stopped, with no schedule: nothing more happens.
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(build_count(&member, &ws).await, 2);
}

#[actix_web::test]
async fn autostart_on_schedule_and_what_is_left_alone() {
    let s = TestApp::start_with_args(&POLL);
    let owner = s.owner().await;
    let member = s.user(&owner, "member", &[]).await;
    let t = template_with_ttl(&owner, "base", quick(), 0).await;
    let failing = steps(json!([{"log": "up"}]), json!([{"run": "exit 3"}]));
    let tf = template_with_ttl(&owner, "failing", failing, 0).await;
    let (plain, _) = workspace_for(&owner, "me", json!({"name": "plain", "template_id": t})).await;
    let (always, _) = workspace_for(
        &owner,
        "me",
        json!({"name": "always", "template_id": t, "automatic_updates": "always"}),
    )
    .await;
    let (broken, _) =
        workspace_for(&owner, "me", json!({"name": "broken", "template_id": tf})).await;
    let (theirs, _) =
        workspace_for(&member, "me", json!({"name": "theirs", "template_id": t})).await;
    for (c, ws) in [
        (&owner, &plain),
        (&owner, &always),
        (&owner, &broken),
        (&member, &theirs),
    ] {
        wait_build_number(c, ws, 1, Duration::from_secs(15)).await;
    }
    // A new active version: only the `always` workspace moves to it.
    let v2 = owner
        .import_version(tar_of(&[("kiln.json", &quick().to_string())]), Some(&t))
        .await;
    let r = owner
        .patch(
            &format!("/api/v2/templates/{t}/versions"),
            json!({"id": v2["id"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (sched, due) = next_minute_schedule("CRON_TZ=UTC ");
    for (c, ws) in [
        (&owner, &plain),
        (&owner, &always),
        (&owner, &broken),
        (&member, &theirs),
    ] {
        let r = c
            .put(
                &format!("/api/v2/workspaces/{ws}/autostart"),
                json!({"schedule": sched}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        let stop = new_build(c, ws, "stop").await;
        finished(c, stop["id"].as_str().unwrap()).await;
    }
    assert_eq!(
        get_workspace(&owner, &plain).await["autostart_schedule"],
        sched
    );
    assert_eq!(
        get_workspace(&owner, &broken).await["latest_build"]["status"],
        "failed"
    );
    let r = owner
        .put("/api/v2/users/member/status/suspend", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = get_workspace(&owner, &plain).await["latest_build"].clone();
    assert!(
        Instant::now() < due,
        "the schedule came before the stops ended"
    );

    let wait = due.saturating_duration_since(Instant::now()) + Duration::from_secs(15);
    let start = wait_build_number(&owner, &plain, 3, wait).await;
    assert_eq!(start["transition"], "start");
    assert_eq!(start["reason"], "autostart");
    assert_eq!(start["status"], "running");
    assert_eq!(start["initiator_name"], "owner");
    assert_eq!(start["template_version_id"], before["template_version_id"]);
    let moved = wait_build_number(&owner, &always, 3, Duration::from_secs(10)).await;
    assert_eq!(moved["reason"], "autostart");
    assert_eq!(moved["template_version_id"], v2["id"]);
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    // A failed latest build, and a suspended owner's workspace, are left alone; and the
    // started ones are started once.
    assert_eq!(build_count(&owner, &broken).await, 2);
    assert_eq!(build_count(&owner, &theirs).await, 2);
    assert_eq!(build_count(&owner, &plain).await, 3);
    assert_eq!(build_count(&owner, &always).await, 3);
}

#[actix_web::test]
async fn racing_ticks_stop_each_workspace_once() {
    // Two servers on one PostgreSQL database tick at once; with SQLite one server alone.
    let fast = ["--autobuild-poll-interval", "50ms"];
    let a = TestApp::start_with_args(&fast);
    let b = postgres_mode().then(|| TestApp::start_sharing(&a, &fast));
    let owner = a.owner().await;
    let t = template_with_ttl(&owner, "short", quick(), 1000).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let (ws, _) = workspace_for(
            &owner,
            "me",
            json!({"name": format!("w{i}"), "template_id": t}),
        )
        .await;
        ids.push(ws);
    }
    for ws in &ids {
        let stop = wait_build_number(&owner, ws, 2, Duration::from_secs(20)).await;
        assert_eq!(stop["reason"], "autostop");
    }
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    for ws in &ids {
        assert_eq!(build_count(&owner, ws).await, 2, "workspace {ws}");
    }
    if let Some(b) = &b {
        let other = b.client(owner.token());
        assert_eq!(build_count(&other, &ids[0]).await, 2);
    }
}

#[actix_web::test]
async fn autostart_schedules_as_coder_checks_them() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "member", &[]).await;
    let admin = s.user(&owner, "admin", &["template-admin"]).await;
    let t = template_with_ttl(&owner, "base", quick(), 0).await;
    let (ws, _) = workspace_for(&member, "me", json!({"name": "dev", "template_id": t})).await;
    let bad = [
        (
            "30 9 1 * *",
            "validate weekly schedule: expected day-of-month and month to be *",
        ),
        (
            "30 9",
            "validate weekly schedule: expected schedule to consist of 5 fields with an \
             optional CRON_TZ=<timezone> prefix",
        ),
        (
            "CRON_TZ=Nowhere/Town 30 9 * * 1-5",
            "parse schedule: provided bad location Nowhere/Town: unknown time zone Nowhere/Town",
        ),
        (
            "61 9 * * *",
            "parse schedule: end of range (61) above maximum (59): 61",
        ),
    ];
    for (sched, detail) in bad {
        let r = put(&member, &ws, "autostart", json!({"schedule": sched})).await;
        let v = r.expect_error(400, "Invalid autostart schedule.", None);
        validation(&v, "schedule", detail);
    }
    let sched = "CRON_TZ=Europe/Dublin 30 9 * * 1-5";
    let r = put(&member, &ws, "autostart", json!({"schedule": sched})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let w = get_workspace(&member, &ws).await;
    assert_eq!(w["autostart_schedule"], sched);
    // The next start, a weekday at 09:30 in Dublin, is what the workspace and its page show.
    let next = w["next_start_at"].as_str().expect("next_start_at");
    let next =
        time::OffsetDateTime::parse(next, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(next > time::OffsetDateTime::now_utc(), "{next}");
    assert_eq!(next.minute(), 30, "{next}");
    // Others: a template admin reads it but may not change it; an owner may.
    let r = put(&admin, &ws, "autostart", json!({"schedule": "0 8 * * *"})).await;
    r.expect_error(
        403,
        "You do not have permission to update this workspace.",
        None,
    );
    let stranger = s.user(&owner, "stranger", &[]).await;
    let r = put(
        &stranger,
        &ws,
        "autostart",
        json!({"schedule": "0 8 * * *"}),
    )
    .await;
    r.expect_error(404, NOT_FOUND, None);
    let r = put(&owner, &ws, "autostart", json!({"schedule": "0 8 * * *"})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Empty or null clears.
    for clear in [
        json!({"schedule": ""}),
        json!({"schedule": null}),
        json!({}),
    ] {
        put(&member, &ws, "autostart", json!({"schedule": sched})).await;
        let r = put(&member, &ws, "autostart", clear).await;
        assert_eq!(r.status, 204, "{}", r.text());
        let w = get_workspace(&member, &ws).await;
        assert!(w["autostart_schedule"].is_null());
        assert!(w["next_start_at"].is_null(), "{w}");
    }
    // Creating a workspace checks both as Coder does.
    let body = json!({"name": "x", "template_id": t, "autostart_schedule": "0 9 1 * *"});
    let r = member.post("/api/v2/users/me/workspaces", body).await;
    let v = r.expect_error(400, "Invalid Autostart Schedule.", None);
    validation(
        &v,
        "schedule",
        "validate weekly schedule: expected day-of-month and month to be *",
    );
    let body = json!({"name": "x", "template_id": t, "ttl_ms": 30_000});
    let r = member.post("/api/v2/users/me/workspaces", body).await;
    let v = r.expect_error(400, "Invalid Workspace Time To Shutdown.", None);
    validation(
        &v,
        "ttl_ms",
        "time until shutdown must be at least one minute",
    );
    let body =
        json!({"name": "x", "template_id": t, "ttl_ms": 90_500, "autostart_schedule": sched});
    let (x, _) = workspace_for(&member, "me", body).await;
    let w = get_workspace(&member, &x).await;
    assert_eq!(
        (&w["ttl_ms"], &w["autostart_schedule"]),
        (&json!(60_000), &json!(sched))
    );
    let r = put(&member, "nope", "autostart", json!({})).await;
    r.expect_error(400, "Invalid UUID \"nope\".", None);
    let r = put(&member, &ws, "autostart", json!({"schedule": 5})).await;
    r.expect_error(400, "Request body must be valid JSON.", None);

    // resolve-autostart: readable by whoever reads the workspace.
    let r = admin
        .get(&format!("/api/v2/workspaces/{ws}/resolve-autostart"))
        .await;
    let v = r.expect(200, "codersdk.ResolveAutostartResponse");
    assert_eq!(v, json!({"parameter_mismatch": false}));
    let r = stranger
        .get(&format!("/api/v2/workspaces/{ws}/resolve-autostart"))
        .await;
    r.expect_error(404, NOT_FOUND, None);
}

#[actix_web::test]
async fn ttl_as_coder_checks_and_applies_it() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "admin", &["template-admin"]).await;
    let t = template_with_ttl(&owner, "hourly", quick(), 3_600_000).await;
    let (ws, first) = workspace_for(&owner, "me", json!({"name": "dev", "template_id": t})).await;
    let started = finished(&owner, &first).await;
    assert!(!started["deadline"].is_null());
    let msg = "Error updating workspace time until shutdown.";
    for (ttl, detail) in [
        (
            json!(59_999),
            "time until shutdown must be at least one minute",
        ),
        (
            json!(-60_000),
            "time until shutdown must be at least one minute",
        ),
        (
            json!(30i64 * 24 * 3_600_000 + 60_000),
            "time until shutdown must be less than 30 days",
        ),
    ] {
        let r = put(&owner, &ws, "ttl", json!({"ttl_ms": ttl})).await;
        validation(&r.expect_error(400, msg, None), "ttl_ms", detail);
    }
    let r = put(&admin, &ws, "ttl", json!({"ttl_ms": 120_000})).await;
    r.expect_error(
        403,
        "You do not have permission to update this workspace.",
        None,
    );
    // Truncated to whole minutes; a running deadline stays where it was, as in Coder.
    let r = put(&owner, &ws, "ttl", json!({"ttl_ms": 90_500})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let w = get_workspace(&owner, &ws).await;
    assert_eq!(w["ttl_ms"], 60_000);
    assert_eq!(w["latest_build"]["deadline"], started["deadline"]);
    // The next start uses it.
    finished(
        &owner,
        new_build(&owner, &ws, "stop").await["id"].as_str().unwrap(),
    )
    .await;
    let again = new_build(&owner, &ws, "start").await;
    let again = finished(&owner, again["id"].as_str().unwrap()).await;
    let gap = secs_between(&again["job"]["completed_at"], &again["deadline"]);
    assert!((59.9..60.1).contains(&gap), "{gap}");
    // Null turns autostop off and takes the deadline off the started workspace.
    let r = put(&owner, &ws, "ttl", json!({"ttl_ms": null})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let w = get_workspace(&owner, &ws).await;
    assert!(w["ttl_ms"].is_null(), "{w}");
    assert!(w["latest_build"]["deadline"].is_null(), "{w}");
    assert_valid(
        BUILD,
        &get_build(&owner, again["id"].as_str().unwrap()).await,
    );
    // ... and the template's default no longer applies to later starts.
    finished(
        &owner,
        new_build(&owner, &ws, "stop").await["id"].as_str().unwrap(),
    )
    .await;
    let third = new_build(&owner, &ws, "start").await;
    assert!(finished(&owner, third["id"].as_str().unwrap()).await["deadline"].is_null());
}

#[actix_web::test]
async fn extend_as_coder_checks_it() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "admin", &["template-admin"]).await;
    let hourly = template_with_ttl(&owner, "hourly", quick(), 3_600_000).await;
    let manual = template_with_ttl(&owner, "manual", quick(), 0).await;
    let slow = steps(json!([{"sleep_ms": 3000}]), json!([]));
    let slow = template_with_ttl(&owner, "slow", slow, 3_600_000).await;
    let (ws, first) =
        workspace_for(&owner, "me", json!({"name": "dev", "template_id": hourly})).await;
    finished(&owner, &first).await;
    let in_mins = |m: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(m);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let soon = "Cannot extend workspace: new deadline must be at least 30 minutes in the future";
    let r = put(&owner, &ws, "extend", json!({"deadline": in_mins(10)})).await;
    r.expect_error(400, soon, None);
    let r = put(&owner, &ws, "extend", json!({})).await;
    let v = r.expect_error(400, "Validation failed.", None);
    validation(
        &v,
        "deadline",
        "Validation failed for tag \"required\" with value: \"0001-01-01 00:00:00 +0000 UTC\"",
    );
    let r = put(&owner, &ws, "extend", json!({"deadline": "tomorrow"})).await;
    r.expect_error(400, "Request body must be valid JSON.", None);
    let r = put(&admin, &ws, "extend", json!({"deadline": in_mins(120)})).await;
    r.expect_error(
        403,
        "You do not have permission to update this workspace.",
        None,
    );
    let target = "2099-01-02T03:04:05.678Z";
    let r = put(&owner, &ws, "extend", json!({"deadline": target})).await;
    let v = r.expect(200, "codersdk.Response");
    assert_eq!(
        v,
        json!({"message": "Deadline updated to 2099-01-02T03:04:05Z."})
    );
    let w = get_workspace(&owner, &ws).await;
    assert_eq!(w["latest_build"]["deadline"], "2099-01-02T03:04:05.678000Z");
    assert!(w["latest_build"]["max_deadline"].is_null());

    finished(
        &owner,
        new_build(&owner, &ws, "stop").await["id"].as_str().unwrap(),
    )
    .await;
    let r = put(&owner, &ws, "extend", json!({"deadline": in_mins(120)})).await;
    r.expect_error(409, "Workspace must be started, current status: stop", None);

    let (m, first) = workspace_for(
        &owner,
        "me",
        json!({"name": "manual", "template_id": manual}),
    )
    .await;
    finished(&owner, &first).await;
    let r = put(&owner, &m, "extend", json!({"deadline": in_mins(120)})).await;
    r.expect_error(409, "Workspace shutdown is manual.", None);

    let (sl, first) =
        workspace_for(&owner, "me", json!({"name": "slow", "template_id": slow})).await;
    let r = put(&owner, &sl, "extend", json!({"deadline": in_mins(120)})).await;
    r.expect_error(409, "Workspace is still building!", None);
    finished(&owner, &first).await;

    // A deleted workspace answers as GET does.
    let del = post_build(&owner, &m, json!({"transition": "delete"}))
        .await
        .expect(201, BUILD);
    finished(&owner, del["id"].as_str().unwrap()).await;
    let r = put(&owner, &m, "extend", json!({"deadline": in_mins(120)})).await;
    r.expect_error(410, "Workspace was deleted.", None);
}

/// Waits until the workspace's latest build is number `n` and has ended; returns it.
async fn wait_build_number(c: &Client, ws: &str, n: i64, within: Duration) -> Value {
    let until = Instant::now() + within;
    loop {
        let latest = get_workspace(c, ws).await["latest_build"].clone();
        if latest["build_number"] == n {
            return finished(c, latest["id"].as_str().unwrap()).await;
        }
        assert!(
            latest["build_number"].as_i64() < Some(n),
            "past {n}: {latest}"
        );
        assert!(
            Instant::now() < until,
            "no build {n} in {within:?}: {latest}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn secs_between(a: &Value, b: &Value) -> f64 {
    let t = |v: &Value| {
        let s = v.as_str().unwrap();
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp_nanos() as f64
            / 1e9
    };
    t(b) - t(a)
}

/// The next whole minute in UTC (one more when this one is about to end), as a schedule.
fn next_minute_schedule(prefix: &str) -> (String, Instant) {
    let now = time::OffsetDateTime::now_utc();
    let mut at = now
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::minutes(1);
    if (at - now).whole_seconds() < 12 {
        at += time::Duration::minutes(1);
    }
    let wait = Duration::from_secs_f64((at - now).as_seconds_f64());
    (
        format!("{prefix}{} {} * * *", at.minute(), at.hour()),
        Instant::now() + wait,
    )
}

async fn put(c: &Client, ws: &str, what: &str, body: Value) -> Resp {
    c.put(&format!("/api/v2/workspaces/{ws}/{what}"), body)
        .await
}

fn validation(v: &Value, field: &str, detail: &str) {
    assert_eq!(
        v["validations"],
        json!([{"field": field, "detail": detail}]),
        "{v}"
    );
}
