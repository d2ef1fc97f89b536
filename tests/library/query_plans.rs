//! Every hot statement of each store (`SqliteStore::hot_queries`, `PgStore::hot_queries`: the
//! same text the store sends) is planned by the database itself, and no plan reads a whole
//! table: on SQLite no `SCAN <table>` without an index and no automatic (temporary) index; on
//! PostgreSQL no `Seq Scan`, with sequential scans priced out so that one left in a plan means
//! there is no index for it. The recent builds of the status page must also stream in order
//! from an index (no sort of every build; on PostgreSQL an incremental sort of the ties of the
//! index's order is fine). The PostgreSQL case runs with
//! `KILN_TEST_STORE=postgres`.

use kiln::events::Hub;
use kiln::store::HotQuery;
use kiln::store::postgres::PgStore;
use kiln::store::sqlite::SqliteStore;
use std::collections::HashSet;
use std::sync::Arc;

fn sqlite_store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(
        &dir.path().join("kiln.db"),
        kiln::store::Durability::Normal,
        Arc::new(Hub::new()),
    )
    .unwrap()
}

/// What is wrong with an SQLite plan (`EXPLAIN QUERY PLAN` details), if anything.
fn sqlite_faults(plan: &[String]) -> Vec<String> {
    // Subqueries (`CO-ROUTINE q`, `MATERIALIZE q`) are scanned by name: not tables.
    let subqueries: HashSet<String> = plan
        .iter()
        .filter_map(|l| {
            l.strip_prefix("CO-ROUTINE ")
                .or_else(|| l.strip_prefix("MATERIALIZE "))
                .map(|n| n.trim().to_string())
        })
        .collect();
    plan.iter()
        .filter(|l| {
            let full_scan = l.strip_prefix("SCAN ").is_some_and(|rest| {
                let name = rest.split_whitespace().next().unwrap_or("");
                // `json_each` of a parameter (a list of ids) is a virtual table: the list.
                let parameter_list = rest.contains(" VIRTUAL TABLE ");
                !rest.contains(" USING ")
                    && name != "CONSTANT"
                    && !subqueries.contains(name)
                    && !parameter_list
            });
            full_scan || l.contains("AUTOMATIC")
        })
        .cloned()
        .collect()
}

fn pg_faults(plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter(|l| l.contains("Seq Scan"))
        .cloned()
        .collect()
}

fn check(
    store: &str,
    queries: &[HotQuery],
    plan_of: impl Fn(&HotQuery) -> Vec<String>,
    faults: impl Fn(&[String]) -> Vec<String>,
    sorts: impl Fn(&str) -> bool,
) {
    assert!(queries.len() >= 15, "{store}: the hot list lost entries");
    let mut bad = Vec::new();
    for q in queries {
        let plan = plan_of(q);
        assert!(!plan.is_empty(), "{store}: no plan for {}", q.name);
        let f = faults(&plan);
        if !f.is_empty() {
            bad.push(format!("{}: {f:?}\n  plan: {plan:#?}", q.name));
        }
        if q.name == "recent builds" && plan.iter().any(|l| sorts(l)) {
            bad.push(format!(
                "{}: sorts instead of reading the index in order\n  plan: {plan:#?}",
                q.name
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{store}: hot statements that read whole tables:\n{}",
        bad.join("\n")
    );
}

#[test]
fn sqlite_hot_statements_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir);
    let queries = SqliteStore::hot_queries();
    let names: HashSet<&str> = queries.iter().map(|q| q.name).collect();
    assert_eq!(names.len(), queries.len(), "hot statement names are unique");
    check(
        "sqlite",
        &queries,
        |q| store.query_plan(q).unwrap(),
        sqlite_faults,
        |l| l.contains("TEMP B-TREE"),
    );
}

#[test]
fn the_sqlite_check_finds_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir);
    let scan = HotQuery::new(
        "lines by text",
        "SELECT id FROM provisioner_job_logs WHERE output = ?1",
        &[kiln::store::Sample::Text("x")],
    );
    let plan = store.query_plan(&scan).unwrap();
    assert_eq!(sqlite_faults(&plan).len(), 1, "{plan:?}");
    // A join on a column without an index: SQLite builds a temporary index for it.
    let auto = HotQuery::new(
        "builds by initiator",
        "SELECT b.id FROM users u JOIN workspace_builds b ON b.initiator_id = u.id WHERE u.id = ?1",
        &[kiln::store::Sample::Text("x")],
    );
    let plan = store.query_plan(&auto).unwrap();
    assert!(!sqlite_faults(&plan).is_empty(), "{plan:?}");
}

#[test]
fn postgres_hot_statements_use_indexes() {
    if !crate::common::postgres_mode() {
        eprintln!("skipped: the PostgreSQL store runs with KILN_TEST_STORE=postgres");
        return;
    }
    let database = crate::common::pg::fresh_database();
    // The PostgreSQL driver runs a runtime of its own: keep it off the test's threads' way.
    std::thread::spawn(move || {
        let store = PgStore::open(&database, Arc::new(Hub::new())).unwrap();
        let queries = PgStore::hot_queries();
        check(
            "postgres",
            &queries,
            |q| store.query_plan(q).unwrap(),
            pg_faults,
            // A full sort; an incremental one only orders the ties of an index's order.
            |l| {
                l.trim_start()
                    .trim_start_matches("->")
                    .trim_start()
                    .starts_with("Sort  (")
            },
        );
        let scan = HotQuery::new(
            "lines by text",
            "SELECT id FROM provisioner_job_logs WHERE output = $1",
            &[kiln::store::Sample::Text("x")],
        );
        let plan = store.query_plan(&scan).unwrap();
        assert_eq!(pg_faults(&plan).len(), 1, "{plan:?}");
    })
    .join()
    .unwrap();
}

/// A count of one owner's workspaces reads that owner's index entries, not every workspace's
/// (`SCAN ... USING INDEX` passes the check above: an index read in order, which is right for
/// a page with a limit and wrong for a count).
#[test]
fn sqlite_counts_one_owners_workspaces_along_the_owner_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir);
    let q = SqliteStore::hot_queries()
        .into_iter()
        .find(|q| q.name == "an owner's workspace count")
        .expect("the count is a hot statement");
    let plan = store.query_plan(&q).unwrap();
    assert!(plan.iter().all(|l| !l.starts_with("SCAN ")), "{plan:#?}");
}

/// A page of workspaces (one owner's or everyone's) is read in order along the users' name
/// index and `workspaces_owner_name`: it stops after its rows instead of sorting every
/// workspace of the owners it covers.
#[test]
fn sqlite_pages_of_workspaces_stream_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir);
    for name in [
        "a page of an owner's workspaces",
        "a page of everyone's workspaces",
    ] {
        let plan = sqlite_plan(&store, name);
        assert!(
            plan.iter().all(|l| !l.contains("TEMP B-TREE")),
            "{name}: {plan:#?}"
        );
    }
}

/// SQLite's plan of the hot statement named `name`.
fn sqlite_plan(store: &SqliteStore, name: &str) -> Vec<String> {
    let q = SqliteStore::hot_queries()
        .into_iter()
        .find(|q| q.name == name)
        .expect("a hot statement");
    store.query_plan(&q).unwrap()
}

/// A taker walks the pending jobs' tag sets and takes the oldest job of a set it matches, each
/// an index search on the pending-tags index: never a walk along the queue past the jobs it
/// cannot take, however many there are.
#[test]
fn sqlite_takes_search_the_pending_jobs_by_tag_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir);
    for name in [
        "the next tag set of the pending jobs",
        "the oldest pending job of a tag set",
    ] {
        let plan = sqlite_plan(&store, name);
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH ") && l.contains("provisioner_jobs_pending_tags")),
            "{name}: {plan:#?}"
        );
        assert!(
            plan.iter().all(|l| !l.contains("TEMP B-TREE")),
            "{name}: {plan:#?}"
        );
    }
}
