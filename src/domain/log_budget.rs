//! The cap on a job's stored log (`kiln server --max-job-log-bytes`, 1 MiB by default as
//! Coder's): one rule for every job's log, whether a built-in worker or a provisioner daemon
//! runs it, applied where lines are stored (`store/sql/logs.rs`), inside the transaction that
//! stores them, from the accounting kept with the job (`LogAccount`).
//!
//! - A line costs its output's bytes plus `LINE_OVERHEAD` (64): what a stored line costs beyond
//!   its text (its row's id, job, time, source, level and stage, its index entry; a stored
//!   empty line takes well over 64 bytes of database), so a flood of empty lines fills the cap
//!   like any other output: 300,000 of them cost 18 MiB.
//! - A log that stays within the cap is kept whole.
//! - A log that goes past it keeps its head (the first lines, up to the cap less the tail and
//!   the marker's room), then one marker line in place of the first line dropped (level
//!   `warn`, source `provisioner_daemon`, that line's stage and time) saying how many lines
//!   and bytes were dropped, then its tail: the latest lines, up to a quarter of the cap. The
//!   tail rolls as lines come (its oldest lines are dropped as new ones arrive) and the marker
//!   counts every line dropped so far, so the stored log is head, marker and tail at every
//!   commit, never more than the cap, and the end of a failed build is always in it.
//! - A line longer than the tail (less its overhead) is cut to it.
//!
//! The decision is `plan`, over the job's accounting, the lines of a batch and what it reads of
//! the stored lines (`StoredLines`); the store applies the plan.

use std::fmt::Write;

/// What a line costs beyond its output's bytes.
pub const LINE_OVERHEAD: i64 = 64;
/// Coder's cap on a job's log (its `max_provisioner_logs_length` constraint).
pub const DEFAULT_CAP: i64 = 1 << 20;
/// The smallest cap: its tail holds a 16 KiB line, the longest a step's line gets.
pub const MIN_CAP: i64 = 128 << 10;
/// The room kept for the marker: its text is at most this less `LINE_OVERHEAD`, and it is
/// counted at this much.
pub const MARKER_ROOM: i64 = 256;
/// The marker's source and level.
pub const MARKER_SOURCE: &str = "provisioner_daemon";
pub const MARKER_LEVEL: &str = "warn";

/// The cap on a job's stored log, in bytes of cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogCap(i64);

impl Default for LogCap {
    fn default() -> LogCap {
        LogCap(DEFAULT_CAP)
    }
}

impl LogCap {
    /// A cap of `bytes`: refused under `MIN_CAP`.
    pub fn new(bytes: i64) -> Result<LogCap, String> {
        if bytes < MIN_CAP {
            return Err(format!(
                "the job log cap must be at least {MIN_CAP} bytes ({}), not {bytes}",
                size(MIN_CAP)
            ));
        }
        Ok(LogCap(bytes))
    }

    pub fn bytes(self) -> i64 {
        self.0
    }

    /// The most the tail of an overflowing log holds: a quarter of the cap.
    pub fn tail(self) -> i64 {
        self.0 / 4
    }

    /// The most the head of an overflowing log holds: the rest, less the marker's room.
    pub fn head(self) -> i64 {
        self.0 - self.tail() - MARKER_ROOM
    }

    /// The longest output a line keeps (longer ones are cut to it): what fits in the tail.
    pub fn longest_line(self) -> usize {
        (self.tail() - LINE_OVERHEAD) as usize
    }

    /// What a line keeps of `output`: all of it, or its first `longest_line` bytes (to a
    /// character's boundary) when it is longer.
    pub fn kept(self, output: &str) -> &str {
        let mut at = self.longest_line();
        if output.len() <= at {
            return output;
        }
        while !output.is_char_boundary(at) {
            at -= 1;
        }
        &output[..at]
    }
}

/// What a line of `len` bytes of output costs.
pub fn cost(len: i64) -> i64 {
    len + LINE_OVERHEAD
}

/// A job's log accounting, stored with the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogAccount {
    /// What the stored lines cost (the marker at `MARKER_ROOM`): at most the cap.
    pub length: i64,
    /// Whether lines were dropped (Coder's `logs_overflowed`): set once, never cleared.
    pub overflowed: bool,
    /// The marker's line, once the log overflowed.
    pub marker_id: Option<i64>,
    /// What the lines after the marker cost.
    pub tail_length: i64,
    /// Lines dropped, and their bytes of output (a line end each, as the log's text has).
    pub dropped_lines: i64,
    pub dropped_bytes: i64,
}

impl LogAccount {
    fn drop_line(&mut self, len: i64) {
        self.dropped_lines += 1;
        self.dropped_bytes += len + 1;
    }
}

/// A stored line as the cap sees it: its id and its output's length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredLine {
    pub id: i64,
    pub len: i64,
}

/// What the cap reads of a job's stored lines, in id order.
pub trait StoredLines {
    type Error;

    /// The first line at which the lines from the log's start (it included) cost more than
    /// `limit`, with what the lines before it cost; `None` when they all fit.
    fn first_past(&mut self, limit: i64) -> Result<Option<(StoredLine, i64)>, Self::Error>;

    /// Up to `n` lines after line `id`.
    fn after(&mut self, id: i64, n: i64) -> Result<Vec<StoredLine>, Self::Error>;
}

/// Where a batch's marker goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Stored line `id` is the first dropped: it becomes the marker.
    Rewrite(i64),
    /// The batch's line of this index is the first dropped: the marker is inserted in its
    /// place (after the head's lines of the batch).
    Insert(usize),
    /// The marker is stored line `id`: its count changes.
    Update(i64),
}

/// What to write for a batch of lines, in this order: the batch's lines `..head`, the marker
/// (rewritten, inserted or updated, with `marker_text`), the batch's lines `tail_from..`; and
/// the stored lines after `delete.0` up to `delete.1` (ids) removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub head: usize,
    pub marker: Option<Marker>,
    pub marker_text: String,
    pub tail_from: usize,
    pub delete: Option<(i64, i64)>,
    /// The job's accounting once written (`marker_id` is the inserted marker's to fill in).
    pub account: LogAccount,
    /// Lines of the batch stored, and lines dropped (of the batch or stored before).
    pub written: usize,
    pub dropped: usize,
}

/// The marker's text: the cap, what was dropped, and what follows.
pub fn marker_text(cap: LogCap, dropped_lines: i64, dropped_bytes: i64) -> String {
    format!(
        "Log output exceeded {}: {} {} ({}) dropped here; the last {} follow.",
        size(cap.bytes()),
        thousands(dropped_lines),
        if dropped_lines == 1 { "line" } else { "lines" },
        size(dropped_bytes),
        size(cap.tail()),
    )
}

/// How a batch of lines of these output lengths (already cut) is stored in a job's log that
/// stands at `account`.
pub fn plan<S: StoredLines>(
    cap: LogCap,
    account: LogAccount,
    lens: &[i64],
    stored: &mut S,
) -> Result<Plan, S::Error> {
    let n = lens.len();
    let total: i64 = lens.iter().map(|&l| cost(l)).sum();
    let all = |account: LogAccount| Plan {
        head: n,
        marker: None,
        marker_text: String::new(),
        tail_from: n,
        delete: None,
        account,
        written: n,
        dropped: 0,
    };
    if !account.overflowed && account.length + total <= cap.bytes() {
        let length = account.length + total;
        return Ok(all(LogAccount { length, ..account }));
    }
    let mut next = account;
    let dropped_before = account.dropped_lines;
    let mut head = 0;
    // What the head costs, where the marker goes, the stored tail (after `tail_after`) and
    // what it costs, and the batch's first line in the tail.
    let (head_cost, marker, tail_after, mut stored_tail, mut tail_from);
    match (account.overflowed, account.marker_id) {
        (true, Some(id)) => {
            head_cost = account.length - MARKER_ROOM - account.tail_length;
            marker = Marker::Update(id);
            (tail_after, stored_tail, tail_from) = (Some(id), account.tail_length, 0);
        }
        _ => match stored.first_past(cap.head())? {
            Some((line, before)) => {
                head_cost = before;
                marker = Marker::Rewrite(line.id);
                next.drop_line(line.len);
                let after = (account.length - before - cost(line.len)).max(0);
                (tail_after, stored_tail, tail_from) = (Some(line.id), after, 0);
            }
            None => {
                // Every stored line is in the head, and so are the batch's first lines.
                let mut cost_so_far = account.length;
                while head < n && cost_so_far + cost(lens[head]) <= cap.head() {
                    cost_so_far += cost(lens[head]);
                    head += 1;
                }
                if head == n {
                    // Only an account that counted more than its lines gets here.
                    return Ok(all(LogAccount {
                        length: cost_so_far,
                        ..account
                    }));
                }
                head_cost = cost_so_far;
                marker = Marker::Insert(head);
                next.drop_line(lens[head]);
                (tail_after, stored_tail, tail_from) = (None, 0, head + 1);
            }
        },
    }
    next.overflowed = true;
    let mut tail = stored_tail + lens[tail_from..].iter().map(|&l| cost(l)).sum::<i64>();
    // The oldest of the tail go: stored ones first, then the batch's.
    let mut delete = None;
    if let Some(after) = tail_after
        && tail > cap.tail()
        && stored_tail > 0
    {
        let need = (tail - cap.tail()).min(stored_tail);
        for line in stored.after(after, (need + LINE_OVERHEAD - 1) / LINE_OVERHEAD)? {
            if tail <= cap.tail() {
                break;
            }
            tail -= cost(line.len);
            stored_tail -= cost(line.len);
            next.drop_line(line.len);
            delete = Some((after, line.id));
        }
        if tail > cap.tail() {
            // The account counted more than is stored: what is left of it is nothing.
            tail -= stored_tail;
        }
    }
    while tail > cap.tail() && tail_from < n {
        tail -= cost(lens[tail_from]);
        next.drop_line(lens[tail_from]);
        tail_from += 1;
    }
    next.tail_length = tail.max(0);
    next.length = head_cost + MARKER_ROOM + next.tail_length;
    next.marker_id = match marker {
        Marker::Rewrite(id) | Marker::Update(id) => Some(id),
        Marker::Insert(_) => None,
    };
    Ok(Plan {
        head,
        marker: Some(marker),
        marker_text: marker_text(cap, next.dropped_lines, next.dropped_bytes),
        tail_from,
        delete,
        account: next,
        written: head + (n - tail_from),
        dropped: (next.dropped_lines - dropped_before) as usize,
    })
}

/// `n` with a comma between each group of three digits.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `bytes` in the largest binary unit it reaches (B, KiB, MiB, GiB, TiB): whole when it is a
/// whole number of them, else with one decimal.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes.abs() < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 1024i64;
    let mut name = UNITS[0];
    for u in &UNITS[1..] {
        if bytes.abs() < unit * 1024 {
            break;
        }
        unit *= 1024;
        name = u;
    }
    let mut out = String::new();
    if bytes % unit == 0 {
        let _ = write!(out, "{} {name}", bytes / unit);
    } else {
        let _ = write!(out, "{:.1} {name}", bytes as f64 / unit as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A job's stored log as the store keeps it, applying plans as `store/sql/logs.rs` does.
    #[derive(Default)]
    struct Log {
        rows: Vec<(i64, String)>,
        next_id: i64,
        account: LogAccount,
        marker: Option<i64>,
    }

    impl StoredLines for Log {
        type Error = Infallible;

        fn first_past(&mut self, limit: i64) -> Result<Option<(StoredLine, i64)>, Infallible> {
            let mut run = 0;
            for (id, out) in &self.rows {
                let c = cost(out.len() as i64);
                if run + c > limit {
                    let line = StoredLine {
                        id: *id,
                        len: out.len() as i64,
                    };
                    return Ok(Some((line, run)));
                }
                run += c;
            }
            Ok(None)
        }

        fn after(&mut self, id: i64, n: i64) -> Result<Vec<StoredLine>, Infallible> {
            Ok(self
                .rows
                .iter()
                .filter(|(i, _)| *i > id)
                .take(n as usize)
                .map(|(id, out)| StoredLine {
                    id: *id,
                    len: out.len() as i64,
                })
                .collect())
        }
    }

    impl Log {
        fn insert(&mut self, output: String) -> i64 {
            self.next_id += 1;
            self.rows.push((self.next_id, output));
            self.next_id
        }

        fn append(&mut self, cap: LogCap, lines: &[String]) -> Plan {
            let lens: Vec<i64> = lines.iter().map(|l| l.len() as i64).collect();
            let Ok(p) = plan(cap, self.account, &lens, self);
            for l in &lines[..p.head] {
                self.insert(l.clone());
            }
            let mut account = p.account;
            match p.marker {
                Some(Marker::Rewrite(id)) | Some(Marker::Update(id)) => {
                    let row = self.rows.iter_mut().find(|(i, _)| *i == id).unwrap();
                    row.1 = p.marker_text.clone();
                    self.marker = Some(id);
                }
                Some(Marker::Insert(_)) => {
                    let id = self.insert(p.marker_text.clone());
                    account.marker_id = Some(id);
                    self.marker = Some(id);
                }
                None => {}
            }
            for l in &lines[p.tail_from..] {
                self.insert(l.clone());
            }
            if let Some((after, through)) = p.delete {
                self.rows.retain(|(id, _)| *id <= after || *id > through);
            }
            self.account = account;
            p
        }

        /// What the stored lines cost, the marker at its room.
        fn stored_cost(&self) -> i64 {
            self.rows
                .iter()
                .map(|(id, out)| match Some(*id) == self.marker {
                    true => MARKER_ROOM,
                    false => cost(out.len() as i64),
                })
                .sum()
        }

        fn outputs(&self) -> Vec<&str> {
            self.rows.iter().map(|(_, o)| o.as_str()).collect()
        }
    }

    fn numbered(from: usize, n: usize, width: usize) -> Vec<String> {
        (from..from + n).map(|i| format!("{i:0width$}")).collect()
    }

    const CAP: i64 = 128 << 10;

    #[test]
    fn a_log_within_the_cap_is_kept_whole() {
        let cap = LogCap::new(CAP).unwrap();
        let mut log = Log::default();
        // 1,000 lines of 60 bytes cost 124,000 bytes, under 131,072.
        for chunk in numbered(0, 1000, 60).chunks(7) {
            log.append(cap, chunk);
        }
        assert_eq!(log.rows.len(), 1000);
        assert!(!log.account.overflowed);
        assert_eq!(log.account.length, 124_000);
        assert_eq!(log.account.length, log.stored_cost());
    }

    #[test]
    fn empty_lines_cost_their_overhead() {
        let cap = LogCap::new(CAP).unwrap();
        let mut log = Log::default();
        let empty = vec![String::new(); 300_000];
        for chunk in empty.chunks(2000) {
            log.append(cap, chunk);
        }
        assert!(log.account.overflowed);
        assert!(log.stored_cost() <= CAP, "{}", log.stored_cost());
        // The head (96 KiB less the marker's room) and the tail (32 KiB) of 64 bytes each.
        let head = ((CAP - CAP / 4 - MARKER_ROOM) / 64) as usize;
        let tail = (CAP / 4 / 64) as usize;
        assert_eq!(log.rows.len(), head + 1 + tail);
        let dropped = 300_000 - head - tail;
        assert_eq!(log.account.dropped_lines, dropped as i64);
        assert_eq!(
            log.outputs()[head],
            format!(
                "Log output exceeded 128 KiB: {} lines ({}) dropped here; the last 32 KiB follow.",
                thousands(dropped as i64),
                size(dropped as i64)
            )
        );
        assert_eq!(log.account.length, log.stored_cost());
    }

    /// However lines come (one at a time, in small or huge batches), the stored log is the
    /// head, one marker and the latest lines, within the cap, after every batch.
    #[test]
    fn head_marker_and_tail_after_every_batch() {
        let cap = LogCap::new(CAP).unwrap();
        for batch in [1, 3, 50, 700, 5000] {
            let mut log = Log::default();
            let lines = numbered(0, 6_000, 30);
            let mut sent = 0;
            let mut dropped = 0;
            for chunk in lines.chunks(batch) {
                let p = log.append(cap, chunk);
                dropped += p.dropped;
                sent += chunk.len();
                assert!(
                    log.stored_cost() <= CAP,
                    "batch {batch}: {}",
                    log.stored_cost()
                );
                assert_eq!(log.account.length, log.stored_cost(), "batch {batch}");
                if !log.account.overflowed {
                    assert_eq!(log.rows.len(), sent);
                    continue;
                }
                let out = log.outputs();
                let at = out
                    .iter()
                    .position(|o| o.starts_with("Log output exceeded"))
                    .expect("the marker");
                let sent_lines: Vec<&str> = lines[..sent].iter().map(String::as_str).collect();
                assert_eq!(out[..at], sent_lines[..at], "batch {batch}: the head");
                let tail = &out[at + 1..];
                assert_eq!(
                    tail,
                    &sent_lines[sent - tail.len()..],
                    "batch {batch}: the tail is the latest lines"
                );
                // The marker stands in place of the first line dropped.
                assert_eq!(
                    at + tail.len() + log.account.dropped_lines as usize,
                    sent,
                    "batch {batch}: every line stored or counted"
                );
                assert_eq!(dropped, log.account.dropped_lines as usize);
                // The tail is full: one more line would not fit.
                let tail_cost: i64 = tail.iter().map(|o| cost(o.len() as i64)).sum();
                assert_eq!(tail_cost, log.account.tail_length);
                assert!(tail_cost <= cap.tail() && tail_cost + cost(30) > cap.tail());
            }
            assert!(log.account.overflowed, "batch {batch}");
        }
    }

    #[test]
    fn the_last_line_of_a_failed_build_is_kept() {
        let cap = LogCap::new(CAP).unwrap();
        let mut log = Log::default();
        log.append(cap, &numbered(0, 10_000, 40));
        log.append(cap, &["error: the build failed".to_string()]);
        assert_eq!(log.outputs().last(), Some(&"error: the build failed"));
        assert!(log.stored_cost() <= CAP);
    }

    #[test]
    fn a_line_longer_than_the_tail_is_cut() {
        let cap = LogCap::new(CAP).unwrap();
        let long = "é".repeat(20_000);
        let kept = cap.kept(&long);
        assert!(kept.len() <= cap.longest_line());
        assert!(kept.len() >= cap.longest_line() - 1);
        assert!(long.starts_with(kept));
        let short = "x".repeat(100);
        assert_eq!(cap.kept(&short), short);
        assert_eq!(cap.longest_line(), 32 * 1024 - 64);
    }

    #[test]
    fn caps_below_the_least_are_refused() {
        assert!(LogCap::new(MIN_CAP).is_ok());
        assert_eq!(
            LogCap::new(1000),
            Err("the job log cap must be at least 131072 bytes (128 KiB), not 1000".into())
        );
        assert_eq!(LogCap::default().bytes(), 1 << 20);
    }

    #[test]
    fn the_marker_fits_its_room() {
        let cap = LogCap::new(i64::MAX / 2).unwrap();
        let text = marker_text(cap, i64::MAX / 2, i64::MAX / 2);
        assert!(cost(text.len() as i64) <= MARKER_ROOM, "{text}");
        assert_eq!(
            marker_text(LogCap::default(), 12_345, 3_355_443),
            "Log output exceeded 1 MiB: 12,345 lines (3.2 MiB) dropped here; the last 256 KiB follow."
        );
        assert_eq!(
            marker_text(LogCap::default(), 1, 1),
            "Log output exceeded 1 MiB: 1 line (1 B) dropped here; the last 256 KiB follow."
        );
    }

    #[test]
    fn sizes_and_counts_read_as_people_write_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3 MiB");
        assert_eq!(size(5 << 30), "5 GiB");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
