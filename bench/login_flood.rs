//! The sign-in flood benchmark; `bench/login_flood.sh` builds and runs it. It starts a release
//! `kiln server` per scenario and prints, asserting nothing, another user's GET (`--path`,
//! `/api/v2/users`: a read of the store on the blocking pool, where the hashes run too; one
//! request at a time: p50, p99, requests) over `--seconds`:
//!
//! 1. with no flood;
//! 2. while `--flood` clients (64) send wrong passwords at once, the sign-in limit off (what a
//!    flood from many addresses meets): only the hashes' turns (`limits::hash_permits`) keep
//!    the server's cores for everyone else;
//! 3. the same flood, from one address, under Coder's sign-in limit (60 a minute per address
//!    and per account): answered 429 before any hash.
//!
//! The API limit is off in every scenario (one client's GETs one at a time would meet it).
//! The flood runs on a thread of its own, so its client work does not delay the measured GETs.
//! `--plain`: pass no rate-limit flag (a kiln from before they existed; scenario 3 is then
//! the same as 2).

#[allow(dead_code)]
mod client;

use clap::Parser;
use client::{Api, percentile, sign_in, start_server_with, wait_ready};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
struct Args {
    /// The kiln binary to benchmark.
    #[arg(long, default_value = "target/release/kiln")]
    kiln: PathBuf,
    /// Seconds each scenario measures.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Clients sending wrong passwords at once.
    #[arg(long, default_value_t = 64)]
    flood: usize,
    /// Pass no rate-limit flag to the server.
    #[arg(long)]
    plain: bool,
    /// What the member GETs.
    #[arg(long, default_value = "/api/v2/users")]
    path: String,
}

const OWNER_EMAIL: &str = "bench@example.com";

/// Wrong sign-ins from `clients` clients at once until `stop`; the answers' statuses counted.
fn flood(base: String, clients: usize, stop: Arc<AtomicBool>) -> BTreeMap<u16, usize> {
    actix_web::rt::System::new().block_on(async move {
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(120))
            .connector(awc::Connector::new().limit(0))
            .finish();
        let body = json!({"email": OWNER_EMAIL, "password": "a-wrong-password"}).to_string();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, body, stop, counts) =
                    (client.clone(), body.clone(), stop.clone(), counts.clone());
                let url = format!("{base}/api/v2/users/login");
                actix_web::rt::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let status = match client
                            .post(&url)
                            .insert_header(("Content-Type", "application/json"))
                            .send_body(body.clone())
                            .await
                        {
                            Ok(mut res) => {
                                let _ = res.body().await;
                                res.status().as_u16()
                            }
                            Err(_) => 0,
                        };
                        *counts.lock().unwrap().entry(status).or_insert(0) += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        counts.lock().unwrap().clone()
    })
}

/// A member's session (the owner makes the member).
async fn member(owner: &Api) -> Api {
    let orgs = owner.get("/api/v2/organizations").await;
    let (status, v) = owner
        .post(
            "/api/v2/users",
            json!({"email": "member@example.com", "username": "member",
                   "password": "member-password-1", "organization_ids": [orgs[0]["id"]]}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = owner
        .post(
            "/api/v2/users/login",
            json!({"email": "member@example.com", "password": "member-password-1"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    Api::with_token(&owner.base, v["session_token"].as_str().unwrap())
}

/// The member's GETs of `path`, one at a time, for `seconds`: sorted times.
async fn gets(member: &Api, path: &str, seconds: u64) -> Vec<Duration> {
    let mut times = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let t = Instant::now();
        let (status, v) = member.send("GET", path, None).await;
        assert_eq!(status, 200, "{v}");
        times.push(t.elapsed());
    }
    times.sort();
    times
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn scenario(args: &Args, title: &str, limits: &[&str], flooded: bool) {
    let extra: Vec<&str> = if args.plain { vec![] } else { limits.to_vec() };
    let server = start_server_with(&args.kiln, 0, "normal", None, &extra);
    wait_ready(&server.base).await;
    let owner = sign_in(&server.base).await;
    let member = member(&owner).await;
    gets(&member, &args.path, 1).await;
    let stop = Arc::new(AtomicBool::new(false));
    let flood = flooded.then(|| {
        let (base, stop, clients) = (server.base.clone(), stop.clone(), args.flood);
        std::thread::spawn(move || flood(base, clients, stop))
    });
    if flooded {
        // The flood under way before the measure.
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    }
    let started = Instant::now();
    let times = gets(&member, &args.path, args.seconds).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let counts = flood.map(|t| t.join().unwrap());
    println!("{title}");
    println!(
        "  member GET {}: p50 {}, p99 {} ({} requests in {:.0} s)",
        args.path,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        times.len(),
        elapsed.as_secs_f64()
    );
    if let Some(counts) = counts {
        let total: usize = counts.values().sum();
        let by_status = counts
            .iter()
            .map(|(s, n)| format!("{n} × {s}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "  flood: {by_status} ({:.0} answers/s)",
            total as f64 / (elapsed.as_secs_f64() + 1.0)
        );
    }
}

fn main() {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "sign-in flood, {} s a scenario, {} flooding clients, {cores} cores{}",
        args.seconds,
        args.flood,
        if args.plain {
            ", no rate-limit flags"
        } else {
            ""
        }
    );
    actix_web::rt::System::new().block_on(async {
        let no_limits = ["--api-rate-limit", "-1", "--login-rate-limit", "-1"];
        scenario(&args, "1. no flood", &no_limits, false).await;
        scenario(
            &args,
            "2. wrong sign-ins at once, sign-in limit off",
            &no_limits,
            true,
        )
        .await;
        scenario(
            &args,
            "3. wrong sign-ins at once, Coder's sign-in limit (60 a minute per address and account)",
            &["--api-rate-limit", "-1"],
            true,
        )
        .await;
    });
}
