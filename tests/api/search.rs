//! `GET /workspaces?q=`: Coder's search syntax, pagination, and its errors.

use crate::common::fixtures::{quick, template, workspace};
use crate::common::{Kiln, TestApp};
use serde_json::{Value, json};

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{}/{}",
                w["owner_name"].as_str().unwrap(),
                w["name"].as_str().unwrap()
            )
        })
        .collect();
    n.sort();
    n
}

#[actix_web::test]
async fn the_search_syntax_filters_as_coders_does() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let mary = s.user(&owner, "mary", &[]).await;
    let base = template(&owner, "base", quick()).await;
    let other = template(&owner, "other", quick()).await;
    let (dev, _) = workspace(&mary, &base, "dev-box", json!([])).await;
    workspace(&mary, &other, "scratch", json!([])).await;
    workspace(&owner, &base, "devel", json!([])).await;
    for w in owner.get("/api/v2/workspaces").await.json()["workspaces"]
        .as_array()
        .unwrap()
    {
        owner
            .wait_build(w["latest_build"]["id"].as_str().unwrap())
            .await;
    }
    let search = |c: &crate::common::Client, q: &str| {
        let c = c.clone();
        let q = q.to_string();
        async move {
            let path = format!("/api/v2/workspaces?q={}", urlencode(&q));
            c.get(&path)
                .await
                .expect(200, "codersdk.WorkspacesResponse")
        }
    };
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("", vec!["mary/dev-box", "mary/scratch", "owner/devel"]),
        ("owner:mary", vec!["mary/dev-box", "mary/scratch"]),
        ("owner:me", vec!["owner/devel"]),
        ("dev", vec!["mary/dev-box", "owner/devel"]),
        ("mary/dev", vec!["mary/dev-box"]),
        (
            "name:DEV template:base",
            vec!["mary/dev-box", "owner/devel"],
        ),
        ("template:\"other\"", vec!["mary/scratch"]),
        (
            "status:running",
            vec!["mary/dev-box", "mary/scratch", "owner/devel"],
        ),
        ("status:stopped", vec![]),
        (
            "outdated:false owner:mary",
            vec!["mary/dev-box", "mary/scratch"],
        ),
        ("outdated:true", vec![]),
        ("organization:coder name:scratch", vec!["mary/scratch"]),
        ("owner:nobody", vec![]),
    ];
    for (q, want) in cases {
        let v = search(&owner, q).await;
        assert_eq!(names(&v), want, "q={q:?}");
        assert_eq!(v["count"], want.len(), "q={q:?}");
    }
    let v = search(&owner, &format!("id:{dev}")).await;
    assert_eq!(names(&v), ["mary/dev-box"]);
    // A member sees only their own, whatever the search.
    assert_eq!(
        names(&search(&mary, "owner:owner").await),
        Vec::<String>::new()
    );
    assert_eq!(names(&search(&mary, "dev").await), ["mary/dev-box"]);

    // Pages: `count` is every match, the page holds `limit` of them from `offset`.
    let all = owner.get("/api/v2/workspaces").await.json();
    let page = owner
        .get("/api/v2/workspaces?limit=2&offset=1")
        .await
        .json();
    assert_eq!(page["count"], 3);
    assert_eq!(page["workspaces"].as_array().unwrap().len(), 2);
    assert_eq!(page["workspaces"][0], all["workspaces"][1]);
    // A plain page (read by the store page by page) and a filtered list (rendered, then
    // filtered) agree on the order.
    let filtered = search(&owner, "status:running").await;
    for offset in 0..3 {
        let one = owner
            .get(&format!("/api/v2/workspaces?limit=1&offset={offset}"))
            .await
            .expect(200, "codersdk.WorkspacesResponse");
        assert_eq!(one["count"], 3);
        assert_eq!(
            one["workspaces"][0]["id"],
            filtered["workspaces"][offset]["id"]
        );
    }
    let past = owner
        .get("/api/v2/workspaces?offset=1000000000")
        .await
        .json();
    assert_eq!(
        (past["count"].clone(), past["workspaces"].clone()),
        (json!(3), json!([]))
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn a_bad_search_is_refused_with_validations() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let cases = [
        (
            "color:blue",
            "color",
            "\"color\" is not a valid query param",
        ),
        (
            "status:sleeping",
            "status",
            "Query param \"status\" has invalid value: \"sleeping\" is not a valid value",
        ),
        (
            "owner:",
            "q",
            "Query element \"owner:\" cannot start or end with ':'",
        ),
        (
            "a:b:c",
            "q",
            "Query element \"a:b:c\" can only contain 1 ':'",
        ),
    ];
    for (q, field, detail) in cases {
        let r = owner
            .get(&format!("/api/v2/workspaces?q={}", urlencode(q)))
            .await;
        let v = r.expect_error(400, "Invalid workspace search query.", None);
        assert_eq!(
            v["validations"],
            json!([{"field": field, "detail": detail}]),
            "q={q:?}"
        );
    }
    let r = owner.get("/api/v2/workspaces?limit=-1").await;
    let v = r.expect_error(400, "Query parameters have invalid values.", None);
    assert_eq!(v["validations"][0]["field"], "limit");
}

/// Workspaces are listed by owner, then by name compared without case (Coder orders by
/// `LOWER(username), LOWER(name)`), the same on a plain page and on a filtered list.
#[actix_web::test]
async fn workspaces_are_listed_by_owner_then_name_without_case() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let base = template(&owner, "base", quick()).await;
    for name in ["Beta", "alpha", "Gamma", "delta"] {
        workspace(&owner, &base, name, json!([])).await;
    }
    let listed = |v: &Value| -> Vec<String> {
        v["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_string())
            .collect()
    };
    let want = ["alpha", "Beta", "delta", "Gamma"];
    let page = owner
        .get("/api/v2/workspaces?limit=25")
        .await
        .expect(200, "codersdk.WorkspacesResponse");
    assert_eq!(listed(&page), want);
    let mine = owner
        .get("/api/v2/workspaces?q=owner:me&limit=2&offset=1")
        .await
        .expect(200, "codersdk.WorkspacesResponse");
    assert_eq!(listed(&mine), ["Beta", "delta"]);
    assert_eq!(mine["count"], 4);
    // A name filter reads the whole list and filters it: the same order.
    let filtered = owner
        .get("/api/v2/workspaces?q=a")
        .await
        .expect(200, "codersdk.WorkspacesResponse");
    assert_eq!(listed(&filtered), want);
}
