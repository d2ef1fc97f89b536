//! Job logs followed by followers that fall behind a small tail: every line still arrives, once,
//! in order, then the end.
//!
//! Process: the server runs with a small tail window (`KILN_FOLLOW_WINDOW`), an environment
//! variable kiln reads once per process. The other log tests are in `tests/api/logs.rs`.

use crate::common::fixtures::{finished, steps, template, workspace};
use crate::common::follow::*;
use crate::common::{Kiln, TestServer};
use serde_json::json;
use std::time::Duration;

/// A tail of 50 lines (`KILN_FOLLOW_WINDOW`) for a log of 3,000: followers that fall behind
/// it, or start behind it, read the store a chunk at a time and join the tail again, and still
/// get every line once, in order.
#[actix_web::test]
async fn followers_behind_a_small_tail_get_every_line() {
    let s = TestServer::start_with_env(&[], &[("KILN_FOLLOW_WINDOW", "50")]);
    let owner = s.owner().await;
    let start = json!([{"run": "seq 1500"}, {"sleep_ms": 300}, {"run": "seq 1501 3000"}]);
    let t = template(&owner, "t", steps(start, json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    let path = logs_path(&b);
    let early: Vec<_> = STYLES
        .iter()
        .map(|&style| actix_web::rt::spawn(follow(owner.clone(), path.clone(), style)))
        .collect();
    // Once the first half is stored: from the start (behind the tail), and from an old id.
    let first = loop {
        let so_far = stored(&owner, &path).await;
        if so_far.len() > 1_500 {
            break so_far;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let old = first[100]["id"].as_i64().unwrap();
    let mut late = Vec::new();
    for style in STYLES {
        late.push(actix_web::rt::spawn(follow(
            owner.clone(),
            path.clone(),
            style,
        )));
        let from_old = format!("{path}?after={old}");
        late.push(actix_web::rt::spawn(follow(owner.clone(), from_old, style)));
    }
    finished(&owner, &b).await;
    let all = stored(&owner, &path).await;
    let numbers = all
        .iter()
        .filter(|l| l["log_source"] == "provisioner")
        .count();
    assert_eq!(numbers, 3_000);
    for (style, task) in STYLES.iter().zip(early) {
        assert_complete(&task.await.unwrap(), &all, &format!("early {style:?}"));
    }
    for (i, task) in late.into_iter().enumerate() {
        let f = task.await.unwrap();
        let style = STYLES[i / 2];
        if i % 2 == 0 {
            assert_complete(&f, &all, &format!("late {style:?}"));
        } else {
            assert_complete(&f, &all[101..], &format!("{style:?} after an old id"));
        }
    }
}
