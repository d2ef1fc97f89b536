//! `GET /organizations/{organization}/provisionerjobs` and `…/{job}`: every job of the
//! organization, newest first, with Coder's filters, for owners and template admins.

use crate::common::fixtures::{NOT_FOUND, quick, template, workspace};
use crate::common::{Kiln, TestApp};
use serde_json::json;

const JOBS: &str = "[]codersdk.ProvisionerJob";

#[actix_web::test]
async fn jobs_are_listed_newest_first_and_filtered() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "tadmin", &["template-admin"]).await;
    let member = s.user(&owner, "mia", &[]).await;
    let t = template(&owner, "base", quick()).await;
    let (_, first) = workspace(&member, &t, "dev", json!([])).await;
    let build = owner.wait_build(&first).await;
    let path = "/api/v2/organizations/coder/provisionerjobs";

    let jobs = admin.get(path).await.expect(200, JOBS);
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0]["id"], build["job"]["id"], "newest first");
    assert_eq!(jobs[0]["type"], "workspace_build");
    assert_eq!(jobs[0]["metadata"]["workspace_name"], "dev");
    assert_eq!(jobs[0]["metadata"]["template_name"], "base");
    assert_eq!(jobs[1]["type"], "template_version_import");
    assert_eq!(jobs[1]["metadata"]["template_name"], "base");
    assert_eq!(
        jobs[0]["tags"],
        json!({"scope": "organization", "owner": ""})
    );

    let only = |q: &str| {
        let admin = admin.clone();
        let q = q.to_string();
        async move {
            admin
                .get(&format!("{path}?{q}"))
                .await
                .expect(200, JOBS)
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(only("limit=1").await, 1);
    assert_eq!(only("status=succeeded").await, 2);
    assert_eq!(only("status=pending,running").await, 0);
    let id = build["job"]["id"].as_str().unwrap();
    assert_eq!(only(&format!("ids={id}")).await, 1);
    assert_eq!(only("tags=%7B%22scope%22%3A%22organization%22%7D").await, 2);
    assert_eq!(only("tags=%7B%22scope%22%3A%22user%22%7D").await, 0);

    let one = admin
        .get(&format!("{path}/{id}"))
        .await
        .expect(200, "codersdk.ProvisionerJob");
    assert_eq!(one, jobs[0]);

    // Members do not see the queue's jobs: the generic 404, as Coder answers.
    member.get(path).await.expect_error(404, NOT_FOUND, None);
    member
        .get(&format!("{path}/{id}"))
        .await
        .expect_error(404, NOT_FOUND, None);
    admin
        .get(&format!("{path}/{}", uuid::Uuid::new_v4()))
        .await
        .expect_error(404, NOT_FOUND, None);
    admin
        .get(&format!("{path}/nope"))
        .await
        .expect_error(400, "Invalid UUID \"nope\".", None);

    let v = admin
        .get(&format!("{path}?ids=nope&color=blue"))
        .await
        .expect_error(400, "Invalid query parameters.", None);
    assert_eq!(
        v["validations"],
        json!([
            {"field": "ids", "detail": "Query param \"ids\" has invalid values: invalid UUID length: 4"},
            {"field": "color", "detail": "\"color\" is not a valid query param"}
        ])
    );
    admin.get(&format!("{path}?tags=nope")).await.expect_error(
        400,
        "Invalid tags query parameter",
        None,
    );
}
