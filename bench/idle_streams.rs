//! What idle live streams cost builds (`bash bench/run.sh --idle-streams`): the server's CPU
//! time per build (a workspace made, its start build run and waited for) with no stream open,
//! then with `--streams` status-page event streams open and read (as browsers read them), one
//! run after the other on one server. Each build changes the status page's overview, so every
//! stream has something to look at; what matters is how much of that work the streams share.
//! Prints the figures and their ratio; asserts nothing.

#[allow(dead_code)]
mod client;

use clap::Parser;
use client::{sign_in, start_server, wait_ready};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The kiln binary to measure.
    #[arg(long, default_value = "target/release/kiln")]
    kiln: PathBuf,
    /// Event streams held open in the second run.
    #[arg(long, default_value_t = 2000)]
    streams: usize,
    /// Builds in each run.
    #[arg(long, default_value_t = 40)]
    builds: usize,
}

/// The server's CPU time so far (user + system), from /proc.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: a plain query of a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

fn raise_open_files() {
    // SAFETY: plain system calls on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// Opens `n` event streams and reads them all on one thread until `stop`; returns the bytes
/// read so far.
fn open_streams(
    base: &str,
    token: &str,
    n: usize,
    stop: Arc<AtomicBool>,
) -> (std::thread::JoinHandle<()>, Arc<AtomicUsize>) {
    let addr = base.trim_start_matches("http://").to_string();
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "GET /api/v2/kiln/events HTTP/1.1\r\nHost: {addr}\r\nCoder-Session-Token: {token}\r\n\
             Accept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head[9..12], b"200", "a stream was refused");
        s.set_nonblocking(true).unwrap();
        socks.push(s);
    }
    let read = Arc::new(AtomicUsize::new(0));
    let counted = read.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while !stop.load(Ordering::Relaxed) {
            for s in &mut socks {
                while let Ok(k) = s.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    counted.fetch_add(k, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (reader, read)
}

#[actix_web::main]
async fn main() {
    let args = Args::parse();
    raise_open_files();
    // One user holds every stream: the per-user cap is lifted for the measurement.
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe { std::env::set_var("KILN_MAX_STREAMS_PER_USER", "1000000") };
    let server = start_server(&args.kiln, 1, "normal", None);
    wait_ready(&server.base).await;
    let api = sign_in(&server.base).await;
    let manifest = json!({"steps": {"start": [{"log": "up"}], "stop": [], "delete": []}});
    let template = api.template("idle", manifest).await;
    let mut made = 0;
    let mut run = |label: &'static str| {
        let api = &api;
        let template = &template;
        let pid = server.pid();
        let builds = args.builds;
        let first = made;
        made += builds;
        async move {
            let before = cpu(pid);
            let started = Instant::now();
            for n in first..first + builds {
                let (_, build) = api.workspace(template, &format!("w{n}")).await;
                api.wait_build(&build, Duration::from_millis(20)).await;
            }
            let per_build = (cpu(pid) - before) / builds as u32;
            println!(
                "{label:<28} {builds} builds in {:>6.2} s, server CPU {:>8.2} ms a build",
                started.elapsed().as_secs_f64(),
                per_build.as_secs_f64() * 1000.0
            );
            per_build
        }
    };
    let quiet = run("no stream open:").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (reader, read) = open_streams(&server.base, &api.token, args.streams, stop.clone());
    // Let the streams' first overviews go out, then measure the idle cost alone.
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let idle_before = cpu(server.pid());
    actix_web::rt::time::sleep(Duration::from_secs(5)).await;
    let idle = (cpu(server.pid()) - idle_before) / 5;
    let label = format!("{} streams open:", args.streams);
    let busy = run(Box::leak(label.into_boxed_str())).await;
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    println!(
        "idle with {} streams: server CPU {:.1} ms a second; streams read {} KiB in all",
        args.streams,
        idle.as_secs_f64() * 1000.0,
        read.load(Ordering::Relaxed) >> 10
    );
    println!(
        "a build's server CPU with {} streams open / with none: {:.2}",
        args.streams,
        busy.as_secs_f64() / quiet.as_secs_f64().max(1e-9)
    );
}
