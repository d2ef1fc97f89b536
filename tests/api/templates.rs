//! Files, template versions (the import job and its failures) and templates.

use crate::common::fixtures::{NOT_FOUND, version};
use crate::common::{Kiln, TestApp, tar_of};
use serde_json::json;

#[actix_web::test]
async fn files_are_content_addressed_and_size_limited() {
    let s = TestApp::start_with_args(&["--max-upload-bytes", "2048"]);
    let owner = s.owner().await;
    let archive = tar_of(&[("kiln.json", "{}")]);
    let r1 = owner
        .post_raw("/api/v2/files", "application/x-tar", archive.clone())
        .await;
    assert_eq!(r1.status, 201, "{}", r1.text());
    let r2 = owner
        .post_raw("/api/v2/files", "application/x-tar", archive.clone())
        .await;
    assert_eq!(r2.status, 200);
    assert_eq!(r1.json()["hash"], r2.json()["hash"]);
    let id = r1.json()["hash"].as_str().unwrap().to_string();
    let got = owner.get(&format!("/api/v2/files/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, archive);
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/x-tar")
    );

    owner
        .post_raw("/api/v2/files", "application/x-tar", vec![0u8; 4096])
        .await
        .assert_error(413, "File is too large: the limit is 2048 bytes.", None);
    owner
        .post_raw("/api/v2/files", "text/plain", b"hi".to_vec())
        .await
        .assert_error(400, "Unsupported content type header \"text/plain\".", None);
    owner.get("/api/v2/files/not-a-uuid").await.assert_error(
        400,
        "Invalid UUID \"not-a-uuid\".",
        None,
    );
    owner
        .get(&format!("/api/v2/files/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(404, NOT_FOUND, None);
    // Deduplicated per uploader, as Coder: the same bytes from another user are a file of
    // their own (the answer never tells a user what others uploaded), which only they and
    // template managers may read.
    let mia = s.user(&owner, "mia", &[]).await;
    let theirs = mia
        .post_raw("/api/v2/files", "application/x-tar", archive.clone())
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.text());
    let their_id = theirs.expect(201, "codersdk.UploadResponse")["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(their_id, id);
    let again = mia
        .post_raw("/api/v2/files", "application/x-tar", archive.clone())
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["hash"], their_id.as_str());
    assert_eq!(
        mia.get(&format!("/api/v2/files/{their_id}")).await.body,
        archive
    );
    mia.get(&format!("/api/v2/files/{id}"))
        .await
        .assert_error(404, NOT_FOUND, None);
    s.anon()
        .post_raw("/api/v2/files", "application/x-tar", archive)
        .await
        .assert_error(
            401,
            "You are signed out or your session has expired. Please sign in again to continue.",
            None,
        );
}

#[actix_web::test]
async fn an_import_reads_parameters_and_a_readme() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let manifest = json!({
        "parameters": [
            {"name": "size", "type": "number", "default_value": "2", "mutable": true, "validation_min": 1, "validation_max": 8},
            {"name": "os", "default_value": "linux", "options": [{"name": "Linux", "value": "linux"}, {"name": "Mac", "value": "mac"}]}
        ],
        "steps": {"start": [{"log": "hi"}]}
    });
    let v = owner
        .import_version(
            tar_of(&[
                ("./kiln.json", &manifest.to_string()),
                ("README.md", "# Hello"),
            ]),
            None,
        )
        .await;
    assert_eq!(v["job"]["status"], "succeeded", "{v}");
    assert_eq!(v["job"]["type"], "template_version_import");
    assert_eq!(v["job"]["input"], json!({"template_version_id": v["id"]}));
    assert_eq!(v["readme"], "# Hello");
    assert_eq!(v["created_by"]["username"], "owner");
    assert_eq!(
        v["created_by"]["avatar_url"], "",
        "Coder's clients read it: {v}"
    );
    let id = v["id"].as_str().unwrap();
    let params = owner
        .get(&format!("/api/v2/templateversions/{id}/rich-parameters"))
        .await
        .json();
    assert_eq!(params.as_array().unwrap().len(), 2);
    assert_eq!(params[0]["name"], "size");
    assert_eq!(params[0]["type"], "number");
    assert_eq!(params[0]["validation_min"], 1);
    assert_eq!(params[1]["options"][1]["value"], "mac");
    assert_eq!(params[1]["form_type"], "radio");
}

/// Imports `archive`; returns the failed job's error after checking it is also its last log
/// line (read through `GET /api/v2/templateversions/{id}/logs`).
async fn failed_import(owner: &crate::common::Client, archive: Vec<u8>) -> String {
    let v = owner.import_version(archive, None).await;
    assert_eq!(v["job"]["status"], "failed", "{v}");
    let error = v["job"]["error"].as_str().unwrap().to_string();
    let logs = owner
        .get(&format!(
            "/api/v2/templateversions/{}/logs",
            v["id"].as_str().unwrap()
        ))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    let last = logs.as_array().unwrap().last().expect("the import logged");
    assert_eq!(
        (&last["log_level"], &last["output"]),
        (&json!("error"), &json!(error)),
        "{logs}"
    );
    // A version that failed to import cannot be built.
    let r = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": format!("t{}", rand_suffix()), "template_version_id": v["id"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let w = owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"name": format!("w{}", rand_suffix()), "template_id": r.json()["id"]}),
        )
        .await;
    w.assert_error(
        400,
        &format!(
            "The provided template version {:?} has failed to import: {:?}. You cannot build workspaces with it!",
            v["name"].as_str().unwrap(),
            error
        ),
        None,
    );
    error
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[actix_web::test]
async fn broken_templates_fail_their_import_with_an_actionable_error() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let prefix = "The template is not valid: ";
    let check = |error: String, needle: &str| {
        assert!(error.starts_with(prefix), "{error}");
        assert!(
            error.contains(needle),
            "{error:?} should mention {needle:?}"
        );
    };
    check(
        failed_import(&owner, tar_of(&[("main.tf", "x")])).await,
        "no kiln.json at its root; found: main.tf",
    );
    check(failed_import(&owner, tar_of(&[("kiln.json", "{\n  \"steps\": {\n    \"start\": [\n      {\"log\": \"a\"}\n      {\"log\": \"b\"}]}}")])).await, "line 5 column");
    check(
        failed_import(
            &owner,
            tar_of(&[("kiln.json", r#"{"steps": {"start": [{"sleeep_ms": 5}]}}"#)]),
        )
        .await,
        "steps.start[0]: unknown step",
    );
    check(
        failed_import(
            &owner,
            tar_of(&[(
                "kiln.json",
                r#"{"parameters": [{"name": "p", "type": "colour"}]}"#,
            )]),
        )
        .await,
        "parameters[0]",
    );
    check(
        failed_import(&owner, tar_of(&[("kiln.json", r#"{"parameters": [{"name": "p", "validation_regex": "([a-z", "validation_error": "no"}]}"#)])).await,
        "does not compile",
    );
    check(
        failed_import(
            &owner,
            tar_of(&[("kiln.json", r#"{"parameters": [{"name": "p", "default_value": "x", "options": [{"name": "A", "value": "a"}, {"name": "B", "value": "b"}]}]}"#)]),
        )
        .await,
        "default value \"x\" of parameter \"p\" must be one of the options: [a, b]",
    );
    // An entry escaping the archive's folder: write the name bytes directly.
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in [("kiln.json", "{}"), ("../evil.sh", "echo")] {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, body.as_bytes()).unwrap();
    }
    check(
        failed_import(&owner, b.into_inner().unwrap()).await,
        "\"../evil.sh\"",
    );
    check(
        failed_import(&owner, b"not a tar at all".repeat(40)).await,
        "the template is not a valid tar archive",
    );
}

#[actix_web::test]
async fn template_versions_reject_what_kiln_cannot_run() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "mary", &[]).await;
    let file = owner
        .post_raw(
            "/api/v2/files",
            "application/x-tar",
            tar_of(&[("kiln.json", "{}")]),
        )
        .await
        .json()["hash"]
        .clone();
    let path = "/api/v2/organizations/coder/templateversions";
    let r = owner
        .post(
            path,
            json!({"storage_method": "file", "file_id": file, "provisioner": "docker"}),
        )
        .await;
    r.assert_error(400, "Validation failed.", None);
    assert_eq!(r.json()["validations"][0]["field"], "provisioner");
    owner
        .post(path, json!({"storage_method": "file", "file_id": uuid::Uuid::new_v4(), "provisioner": "echo"}))
        .await
        .assert_error(404, "File not found.", None);
    member
        .post(
            path,
            json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}),
        )
        .await
        .assert_error(403, "Forbidden.", None);
    owner
        .post("/api/v2/organizations/nope/templateversions", json!({}))
        .await
        .assert_error(404, NOT_FOUND, None);
    owner
        .get("/api/v2/templateversions/123")
        .await
        .assert_error(400, "Invalid UUID \"123\".", None);
}

#[actix_web::test]
async fn templates_are_managed_by_owners_and_template_admins() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "tom", &["template-admin"]).await;
    let member = s.user(&owner, "mary", &[]).await;
    let first_version = version(&admin, &json!({"steps": {"start": [{"log": "v1"}]}})).await;
    let t = admin
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "base", "template_version_id": first_version["id"]}),
        )
        .await
        .expect(201, "codersdk.Template");
    let tid = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["name"], "base");
    assert_eq!(t["allow_user_cancel_workspace_jobs"], true);
    assert_eq!(t["created_by_name"], "tom");
    assert_eq!(t["organization_name"], "coder");

    // Members read templates but do not manage them.
    let list = member
        .get("/api/v2/organizations/coder/templates")
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        member.get(&format!("/api/v2/templates/{tid}")).await.json()["id"],
        tid.as_str()
    );
    let v1 = t["active_version_id"].clone();
    member
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "mine", "template_version_id": v1}),
        )
        .await
        .assert_error(403, "Forbidden.", None);
    admin
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "base", "template_version_id": v1}),
        )
        .await
        .assert_error(
            400,
            "The template version already belongs to a template.",
            None,
        );
    let r = admin
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "bad name!", "template_version_id": v1}),
        )
        .await;
    r.assert_error(400, "Validation failed.", None);

    // A second version, then promote it.
    let v2 = admin
        .import_version(
            tar_of(&[("kiln.json", r#"{"steps": {"start": [{"log": "v2"}]}}"#)]),
            Some(&tid),
        )
        .await;
    assert_eq!(v2["template_id"], tid.as_str());
    let versions = admin
        .get(&format!("/api/v2/templates/{tid}/versions"))
        .await
        .json();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    member
        .patch(
            &format!("/api/v2/templates/{tid}/versions"),
            json!({"id": v2["id"]}),
        )
        .await
        .assert_error(403, "Forbidden.", None);
    let r = admin
        .patch(
            &format!("/api/v2/templates/{tid}/versions"),
            json!({"id": v2["id"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Updated the active template version!");
    assert_eq!(
        admin.get(&format!("/api/v2/templates/{tid}")).await.json()["active_version_id"],
        v2["id"]
    );
    // Duplicate names conflict.
    let other = admin
        .import_version(tar_of(&[("kiln.json", "{}")]), None)
        .await;
    admin
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "base", "template_version_id": other["id"]}),
        )
        .await
        .assert_error(409, "Template with name \"base\" already exists.", None);
}

#[actix_web::test]
async fn the_terraform_provisioner_runs_the_kiln_json_and_is_reported_back() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let path = "/api/v2/organizations/coder/templateversions";
    let upload = |files: Vec<(&'static str, &'static str)>| {
        let owner = owner.clone();
        async move {
            owner
                .post_raw("/api/v2/files", "application/x-tar", tar_of(&files))
                .await
                .json()["hash"]
                .clone()
        }
    };
    // What Coder's dashboard and SDKs send: "terraform". The archive's kiln.json runs.
    let file = upload(vec![("kiln.json", "{}")]).await;
    let r = owner
        .post(
            path,
            json!({"storage_method": "file", "file_id": file, "provisioner": "terraform"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let v = owner
        .wait_for(&format!("/api/v2/templateversions/{id}"), "/job/status")
        .await;
    assert_eq!(v["job"]["status"], "succeeded", "{v}");
    let t = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "tf", "template_version_id": id}),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text());
    assert_eq!(t.json()["provisioner"], "terraform");
    // An echo version says echo.
    let plain = version(&owner, &json!({})).await;
    let echo = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "plain", "template_version_id": plain["id"]}),
        )
        .await
        .expect(201, "codersdk.Template");
    assert_eq!(echo["provisioner"], "echo");
    let listed = owner
        .get("/api/v2/organizations/coder/templates")
        .await
        .json();
    let by_name = |n: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .unwrap()["provisioner"]
            .clone()
    };
    assert_eq!(
        (by_name("tf"), by_name("plain")),
        (json!("terraform"), json!("echo"))
    );

    // A Terraform template (no kiln.json) fails its import with a pointer to the docs.
    let file = upload(vec![("main.tf", "resource \"null_resource\" \"x\" {}")]).await;
    let r = owner
        .post(
            path,
            json!({"storage_method": "file", "file_id": file, "provisioner": "terraform"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let v = owner
        .wait_for(&format!("/api/v2/templateversions/{id}"), "/job/status")
        .await;
    assert_eq!(v["job"]["status"], "failed", "{v}");
    let error = v["job"]["error"].as_str().unwrap();
    assert!(error.contains("main.tf"), "{error}");
    assert!(
        error.contains("kiln runs kiln.json templates, not Terraform files")
            && error.contains("docs/templates.md"),
        "{error}"
    );
}
