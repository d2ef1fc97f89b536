//! What a user reads of other users' accounts, as Coder's roles have it: a member reads their
//! own account and membership only; template admins and owners read everyone's.

use crate::common::fixtures::NOT_FOUND;
use crate::common::{Client, Kiln, TestApp};
use serde_json::Value;

async fn usernames(c: &Client) -> Vec<String> {
    let r = c
        .get("/api/v2/users")
        .await
        .expect(200, "codersdk.GetUsersResponse");
    let names: Vec<String> = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(r["count"], names.len(), "{r}");
    names
}

async fn member_names(c: &Client) -> Vec<String> {
    let r = c
        .get("/api/v2/organizations/coder/members")
        .await
        .expect(200, "[]codersdk.OrganizationMemberWithUserData");
    r.as_array()
        .unwrap()
        .iter()
        .map(|m: &Value| m["username"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn members_read_no_other_users_account() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let mia = s.user(&owner, "mia", &[]).await;
    let tom = s.user(&owner, "tom", &["template-admin"]).await;
    let owner_name = owner.get("/api/v2/users/me").await.json()["username"]
        .as_str()
        .unwrap()
        .to_string();

    // A member: their own account and membership, nobody else's (not even by name or id).
    assert_eq!(usernames(&mia).await, ["mia"]);
    assert_eq!(member_names(&mia).await, ["mia"]);
    let me = mia
        .get("/api/v2/users/me")
        .await
        .expect(200, "codersdk.User");
    assert_eq!(me["username"], "mia");
    let tom_id = tom.get("/api/v2/users/me").await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for other in [owner_name.as_str(), "tom", tom_id.as_str()] {
        for path in [
            format!("/api/v2/users/{other}"),
            format!("/api/v2/users/{other}/roles"),
            format!("/api/v2/organizations/coder/members/{other}"),
        ] {
            mia.get(&path).await.expect_error(404, NOT_FOUND, None);
        }
    }
    mia.get("/api/v2/organizations/coder/members/mia")
        .await
        .expect(200, "codersdk.OrganizationMemberWithUserData");

    // Template admins and owners read every account.
    for reader in [&tom, &owner] {
        let mut all = usernames(reader).await;
        all.sort();
        let mut want = vec!["mia".to_string(), "tom".to_string(), owner_name.clone()];
        want.sort();
        assert_eq!(all, want);
        assert_eq!(member_names(reader).await.len(), 3);
        let u = reader
            .get("/api/v2/users/mia")
            .await
            .expect(200, "codersdk.User");
        assert_eq!(
            u["email"],
            mia.get("/api/v2/users/me").await.json()["email"]
        );
    }
}
