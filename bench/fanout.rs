//! Fan-out of live log followers (`bash bench/run.sh --fanout`): one build whose step writes
//! `--rate` lines a second for `--seconds`, followed by `--followers` clients (a third each
//! WebSocket, SSE and NDJSON) plus two that connect and never read. Each line carries its
//! sequence number and the time it was written (µs), so every follower checks that it got
//! every line once and in order, and measures written-to-received latency. Prints those next
//! to the goals, with the server's RSS and another request's p99 before and during the run.
//! It asserts nothing.

#[allow(dead_code)]
mod client;

use awc::ws::{Frame, Message};
use clap::Parser;
use client::{Api, sign_in, start_server, wait_ready};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Parser, Clone)]
struct Args {
    /// The kiln binary to benchmark.
    #[arg(long, default_value = "target/release/kiln")]
    kiln: PathBuf,
    /// Followers of the build (a third each WebSocket, SSE, NDJSON).
    #[arg(long, default_value_t = 1000)]
    followers: usize,
    /// Lines the step writes per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// For how long it writes (a job's log is capped at 1 MiB: about 45,000 such lines).
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Client threads, each with its own event loop.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Leave out the two followers that never read.
    #[arg(long)]
    no_slow: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ws,
    Sse,
    Ndjson,
}
const KINDS: [Kind; 3] = [Kind::Ws, Kind::Sse, Kind::Ndjson];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ws => "WebSocket",
            Kind::Sse => "SSE",
            Kind::Ndjson => "NDJSON",
        }
    }
}

/// Latency histogram: 100 µs buckets up to 60 s.
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 600_000;

#[derive(Default)]
struct Stats {
    followers: [usize; 3],
    exact: [usize; 3],
    lines: [u64; 3],
    wrong: [u64; 3],
    hist: Vec<u64>,
}

impl Stats {
    fn merge(&mut self, o: &Stats) {
        for i in 0..3 {
            self.followers[i] += o.followers[i];
            self.exact[i] += o.exact[i];
            self.lines[i] += o.lines[i];
            self.wrong[i] += o.wrong[i];
        }
        if self.hist.is_empty() {
            self.hist = vec![0; BUCKETS];
        }
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }

    fn percentile(&self, p: f64) -> Duration {
        let total: u64 = self.hist.iter().sum();
        let target = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return Duration::from_micros((i as u64 + 1) * BUCKET_US);
            }
        }
        Duration::ZERO
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// One follower's check of what it receives.
struct Check {
    next_seq: u64,
    last_id: i64,
    lines: u64,
    wrong: u64,
}

impl Check {
    fn new() -> Check {
        Check {
            next_seq: 1,
            last_id: 0,
            lines: 0,
            wrong: 0,
        }
    }

    /// One log's JSON, received at `now` (µs): `{"id":N,...,"output":"<seq> <µs>"}` (kiln
    /// writes `output` last); the step's other lines are checked for order only. Byte scans,
    /// not string searches: the clients share the server's two cores.
    fn line(&mut self, json: &[u8], now: u64, hist: &RefCell<Vec<u64>>) {
        let id = json
            .strip_prefix(b"{\"id\":")
            .and_then(|t| digits(t).map(|(n, _)| n as i64))
            .unwrap_or(-1);
        if id <= self.last_id {
            self.wrong += 1;
        }
        self.last_id = id;
        // The output: between the last quote before the closing `"}` and that quote.
        let Some(body) = json.strip_suffix(b"\"}") else {
            return;
        };
        let Some(open) = body.iter().rposition(|&b| b == b'"') else {
            return;
        };
        let output = &body[open + 1..];
        let Some((seq, rest)) = digits(output) else {
            return;
        };
        let Some((us, [])) = rest.strip_prefix(b" ").and_then(digits) else {
            return;
        };
        if seq != self.next_seq {
            self.wrong += 1;
        }
        self.next_seq = seq + 1;
        self.lines += 1;
        let lat = now.saturating_sub(us) / BUCKET_US;
        hist.borrow_mut()[(lat as usize).min(BUCKETS - 1)] += 1;
    }
}

/// The decimal number at the start of `b` and what follows it.
fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    Some((v, &b[n..]))
}

async fn follow(api: &Api, kind: Kind, path: &str, hist: &RefCell<Vec<u64>>) -> (Check, bool) {
    let mut c = Check::new();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(600))
        .finish();
    let url = format!("{}{path}?follow", api.base);
    match kind {
        Kind::Ws => {
            let url = url.replacen("http://", "ws://", 1);
            let Ok((_, mut conn)) = client
                .ws(url)
                .max_frame_size(1 << 20)
                .header("Coder-Session-Token", api.token.as_str())
                .connect()
                .await
            else {
                return (c, false);
            };
            while let Some(Ok(frame)) = conn.next().await {
                match frame {
                    Frame::Text(b) => c.line(&b, now_us(), hist),
                    Frame::Ping(p) => {
                        let _ = conn.send(Message::Pong(p)).await;
                    }
                    Frame::Close(r) => {
                        let done = r.is_some_and(|r| r.description.as_deref() == Some("done"));
                        return (c, done);
                    }
                    _ => {}
                }
            }
            (c, false)
        }
        Kind::Sse | Kind::Ndjson => {
            let mut req = client
                .get(url)
                .insert_header(("Coder-Session-Token", api.token.as_str()));
            if kind == Kind::Sse {
                req = req.insert_header(("Accept", "text/event-stream"));
            }
            let Ok(mut res) = req.send().await else {
                return (c, false);
            };
            let mut buf: Vec<u8> = Vec::new();
            let mut ended = kind == Kind::Ndjson;
            while let Some(chunk) = res.next().await {
                let Ok(chunk) = chunk else {
                    return (c, false);
                };
                buf.extend_from_slice(&chunk);
                let now = now_us();
                let mut start = 0;
                while let Some(at) = buf[start..].iter().position(|&b| b == b'\n') {
                    let line = &buf[start..start + at];
                    start += at + 1;
                    match kind {
                        Kind::Ndjson => c.line(line, now, hist),
                        _ => {
                            if let Some(data) = line.strip_prefix(b"data: ") {
                                if data == b"done" {
                                    ended = true;
                                } else {
                                    c.line(data, now, hist);
                                }
                            }
                        }
                    }
                }
                buf.drain(..start);
            }
            (c, ended && buf.is_empty())
        }
    }
}

/// A follower that sends its request and reads nothing until told, then reads what comes
/// (until nothing comes for 30 s: after a long zero window the server's TCP may take a
/// while to probe it again); returns the bytes it got and how the reading ended.
fn never_reads(
    base: &str,
    token: &str,
    path: &str,
    ws: bool,
    read_now: Arc<AtomicBool>,
) -> (Vec<u8>, &'static str) {
    let addr = base.trim_start_matches("http://");
    let s = std::net::TcpStream::connect(addr).unwrap();
    // A small receive buffer, so the server's writes back up soon.
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt reads `size` for its length.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let upgrade = if ws {
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    } else {
        ""
    };
    let req = format!(
        "GET {path}?follow HTTP/1.1\r\nHost: {addr}\r\nCoder-Session-Token: {token}\r\n{upgrade}\r\n"
    );
    let mut s = s;
    s.write_all(req.as_bytes()).unwrap();
    while !read_now.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, "closed"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, "reset"),
            Err(_) => return (got, "open"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used so far (`self` for this one).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
}

fn main() {
    let args = Args::parse();
    raise_fd_limit();
    let total = args.rate * args.seconds;
    let server = start_server(&args.kiln, 2, "normal", None);
    let pid = server.pid();
    let base = server.base.clone();
    let go = server.dir.path().join("go");
    let (token, build, other) = actix_web::rt::System::new().block_on(async {
        wait_ready(&base).await;
        let api = sign_in(&base).await;
        let step = format!(
            "while [ ! -e {go} ]; do sleep 0.01; done; R={rate}; T={total}; n=0; \
             s=${{EPOCHREALTIME/./}}; while [ $n -lt $T ]; do now=${{EPOCHREALTIME/./}}; \
             due=$(( (now - s) * R / 1000000 )); [ $due -gt $T ] && due=$T; \
             while [ $n -lt $due ]; do n=$((n+1)); printf \"%d %s\\n\" $n ${{EPOCHREALTIME/./}}; done; \
             sleep 0.002; done",
            go = go.display(),
            rate = args.rate,
        );
        let manifest = json!({"steps": {"start": [{"run": format!("/bin/bash -c '{step}'"), "timeout_s": 600}], "stop": [], "delete": []}});
        let t = api.template("fanout", manifest).await;
        let quiet = json!({"steps": {"start": [{"log": "hello"}], "stop": [], "delete": []}});
        let q = api.template("quiet", quiet).await;
        let (_, other) = api.workspace(&q, "other").await;
        api.wait_build(&other, Duration::from_millis(20)).await;
        let (_, build) = api.workspace(&t, "fan").await;
        (api.token.clone(), build, other)
    });
    let path = format!("/api/v2/workspacebuilds/{build}/logs");
    println!(
        "== fan-out: {} followers (a third each WebSocket, SSE, NDJSON) of one build writing {} lines/s for {} s ({total} lines); {} client threads",
        args.followers, args.rate, args.seconds, args.threads
    );

    // Another request, timed one at a time all along: (when, latency).
    let probe: Arc<Mutex<Vec<(Instant, Duration)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let probe_thread = {
        let (probe, stop, base, token) = (probe.clone(), stop.clone(), base.clone(), token.clone());
        let url = format!("/api/v2/workspacebuilds/{other}");
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let api = Api::with_token(&base, &token);
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    api.get(&url).await;
                    probe.lock().unwrap().push((t, t.elapsed()));
                    actix_web::rt::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
    };
    let probe_p99 = |from: Instant, to: Instant| {
        let mut v: Vec<Duration> = probe
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, d)| *d)
            .collect();
        v.sort();
        (client::percentile(&v, 0.99), v.len())
    };
    let quiet_from = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let quiet_to = Instant::now();
    let rss_before = rss_kb(pid, "VmRSS:");

    // The followers, spread over the client threads.
    let connected = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..args.threads)
        .map(|t| {
            let (base, token, path, connected) =
                (base.clone(), token.clone(), path.clone(), connected.clone());
            let args = args.clone();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let api = Api::with_token(&base, &token);
                    let mut tasks = Vec::new();
                    let hist = Rc::new(RefCell::new(vec![0u64; BUCKETS]));
                    for i in (t..args.followers).step_by(args.threads) {
                        let kind = KINDS[i % 3];
                        let (api, path, connected) = (api.clone(), path.clone(), connected.clone());
                        let hist = hist.clone();
                        tasks.push(actix_web::rt::spawn(async move {
                            connected.fetch_add(1, Ordering::SeqCst);
                            let (c, ended) = follow(&api, kind, &path, &hist).await;
                            (kind, c, ended)
                        }));
                    }
                    let mut s = Stats::default();
                    for task in tasks {
                        let (kind, c, ended) = task.await.unwrap();
                        let k = kind as usize;
                        s.followers[k] += 1;
                        s.lines[k] += c.lines;
                        s.wrong[k] += c.wrong;
                        if ended && c.wrong == 0 && c.lines == total {
                            s.exact[k] += 1;
                        }
                    }
                    s.hist = hist.take();
                    s
                })
            })
        })
        .collect();
    let read_now = Arc::new(AtomicBool::new(false));
    let slow: Vec<_> = if args.no_slow {
        Vec::new()
    } else {
        [false, true]
            .into_iter()
            .map(|ws| {
                let (base, token, path, read_now) =
                    (base.clone(), token.clone(), path.clone(), read_now.clone());
                std::thread::spawn(move || never_reads(&base, &token, &path, ws, read_now))
            })
            .collect()
    };
    while connected.load(Ordering::SeqCst) < args.followers {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the last connections finish their handshakes.
    std::thread::sleep(Duration::from_secs(2));
    let rss_connected = rss_kb(pid, "VmRSS:");

    // Sample RSS while the step writes and the followers read.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(Ordering::SeqCst) {
                peak = peak.max(rss_kb(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let run_from = Instant::now();
    let cpu_from = (cpu_secs(&pid.to_string()), cpu_secs("self"));
    std::fs::write(&go, b"").unwrap();
    let mut all = Stats::default();
    for t in threads {
        all.merge(&t.join().unwrap());
    }
    let run_to = Instant::now();
    let cpu_to = (cpu_secs(&pid.to_string()), cpu_secs("self"));
    sampling.store(false, Ordering::SeqCst);
    let rss_peak = sampler.join().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let rss_after = rss_kb(pid, "VmRSS:");
    let fds_after = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let hwm = rss_kb(pid, "VmHWM:");
    let (anon_after, threads_after) = (rss_kb(pid, "RssAnon:"), rss_kb(pid, "Threads:"));
    // The never-reading followers start reading past the server's stall limit (10 s),
    // and the RSS is read again once the blocking pool's idle threads (10 s) have gone.
    let past_stall =
        (run_from + Duration::from_secs(15)).max(Instant::now() + Duration::from_secs(8));
    std::thread::sleep(past_stall.saturating_duration_since(Instant::now()));
    let (rss_later, threads_later) = (rss_kb(pid, "VmRSS:"), rss_kb(pid, "Threads:"));
    read_now.store(true, Ordering::SeqCst);
    let slow: Vec<(Vec<u8>, &str)> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    probe_thread.join().unwrap();

    let secs = run_to.duration_since(run_from).as_secs_f64();
    println!("  all followers done {secs:.1} s after the step began writing");
    println!(
        "  CPU used meanwhile: server {:.1} s, bench clients {:.1} s (of {:.1} s on {} cores)",
        cpu_to.0 - cpu_from.0,
        cpu_to.1 - cpu_from.1,
        secs * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for k in KINDS {
        let i = k as usize;
        println!(
            "  {:<9} {:>4} followers: {:>4} got all {total} lines once, in order, then the end; lines received {} of {} expected; out of order / repeated / missing {}   (goal: all)",
            k.name(),
            all.followers[i],
            all.exact[i],
            all.lines[i],
            total * all.followers[i] as u64,
            all.wrong[i]
        );
    }
    println!(
        "  line written -> received: p50 {:.1} ms, p99 {:.1} ms (60000 is the histogram's top: 60 s or more)   (goal: p99 < 100 ms)",
        all.percentile(0.5).as_secs_f64() * 1e3,
        all.percentile(0.99).as_secs_f64() * 1e3
    );
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "  server RSS: {:.1} MB idle, {:.1} MB with the followers connected, peak {:.1} MB during the run (goal < 200), {:.1} MB 3 s after they closed (goal < 30; the server then had {fds_after} files open); VmHWM {:.1} MB",
        mb(rss_before),
        mb(rss_connected),
        mb(rss_peak),
        mb(rss_after),
        mb(hwm)
    );
    println!(
        "  of the RSS after: {:.1} MB anonymous, {threads_after} threads; 11 s after they closed: {:.1} MB, {threads_later} threads",
        mb(anon_after),
        mb(rss_later)
    );
    let (p_before, n_before) = probe_p99(quiet_from, quiet_to);
    let (p_during, n_during) = probe_p99(run_from, run_to);
    println!(
        "  GET /api/v2/workspacebuilds/{{other}} one at a time: p99 {:.2} ms before ({n_before}), {:.2} ms during the run ({n_during}): {:.1}x   (goal: <= 2x)",
        p_before.as_secs_f64() * 1e3,
        p_during.as_secs_f64() * 1e3,
        p_during.as_secs_f64() / p_before.as_secs_f64().max(1e-9)
    );
    for ((bytes, how), what) in slow.iter().zip(["NDJSON", "WebSocket"]) {
        let text = String::from_utf8_lossy(bytes);
        let lines = text.matches("\"output\":\"").count();
        let verdict = if *how == "open" {
            "NOT cut off: still open (nothing came for 30 s)"
        } else if *how == "reset" {
            "cut off: the connection was reset"
        } else if what == "NDJSON" {
            if text.ends_with("0\r\n\r\n") {
                "NOT cut off: it got the whole stream"
            } else {
                "cut off: the stream broke off before its end"
            }
        } else if text.contains("cut off") {
            "cut off: close 1008 \"cut off: too far behind the live log\""
        } else if text.contains("done") {
            "NOT cut off: it got the whole stream and close 1000 done"
        } else {
            "cut off: the connection ended without a close frame"
        };
        println!(
            "  a {what} follower that read nothing until the others were done (and 15 s): {verdict}; it got {lines} of {total} lines   (goal: cut off, others unaffected)"
        );
    }
    drop(server);
}
