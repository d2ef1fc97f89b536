//! Coder's autostart schedules (`coderd/schedule/cron`): `CRON_TZ=<IANA zone> <min> <hour> * *
//! <dow>`, or the same without `CRON_TZ=` (UTC). `weekly` checks a schedule with Coder's rules
//! and messages; `Schedule::next` is the first scheduled time strictly after a moment.

use crate::model::Time;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// A parsed weekly schedule: the minutes, hours and days of week (Sunday = 0) it fires on, in
/// its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    doms: u64,
    months: u64,
    dows: u64,
    /// Whether day-of-month or day-of-week was `*` (cron's rule for combining the two).
    day_star: bool,
    tz: TimeZone,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOMS: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOWS: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Coder's `cron.Weekly`: the schedule, or the message Coder gives (the validation detail of
/// `PUT /workspaces/{id}/autostart`).
pub fn weekly(raw: &str) -> Result<Schedule, String> {
    validate_weekly(raw).map_err(|e| format!("validate weekly schedule: {e}"))?;
    parse(raw).map_err(|e| format!("parse schedule: {e}"))
}

/// Day-of-month and month must be `*`.
fn validate_weekly(spec: &str) -> Result<(), String> {
    let mut parts: Vec<&str> = spec.split_whitespace().collect();
    if parts.len() < 5 {
        return Err("expected schedule to consist of 5 fields with an optional \
                    CRON_TZ=<timezone> prefix"
            .into());
    }
    if parts.len() == 6 {
        parts.remove(0);
    }
    if parts[2] != "*" || parts[3] != "*" {
        return Err("expected day-of-month and month to be *".into());
    }
    Ok(())
}

/// The five fields after an optional `CRON_TZ=` (UTC without one), with the standard cron
/// parser's rules and messages.
fn parse(raw: &str) -> Result<Schedule, String> {
    let raw = raw.trim();
    let (tz, spec) = match raw.strip_prefix("CRON_TZ=") {
        Some(rest) => {
            let (name, spec) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (zone(name)?, spec.trim())
        }
        None => (TimeZone::UTC, raw),
    };
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Schedule {
        minutes: field(fields[0], &MINUTES)?,
        hours: field(fields[1], &HOURS)?,
        doms: field(fields[2], &DOMS)?,
        months: field(fields[3], &MONTHS)?,
        dows: field(fields[4], &DOWS)?,
        day_star: is_star(fields[2]) || is_star(fields[4]),
        tz,
    })
}

fn zone(name: &str) -> Result<TimeZone, String> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Err("schedules scoped to time.Local are not supported".into()),
        _ => TimeZone::get(name)
            .map_err(|_| format!("provided bad location {name}: unknown time zone {name}")),
    }
}

fn is_star(field: &str) -> bool {
    field.starts_with('*') || field.starts_with('?')
}

/// A comma-separated list of ranges, as a bit set.
fn field(text: &str, b: &Bounds) -> Result<u64, String> {
    let mut bits = 0;
    for part in text.split(',') {
        bits |= range(part, b)?;
    }
    Ok(bits)
}

/// `*`, `?`, `n`, `a-b`, each optionally `/step`.
fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (b.min, b.max)
    } else {
        let start = int_or_name(low_and_high[0], b.names)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], b.names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok((start..=end)
        .step_by(step as usize)
        .fold(0, |bits, i| bits | 1 << i))
}

fn int_or_name(expr: &str, names: &[&str]) -> Result<u32, String> {
    let lower = expr.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| !n.is_empty() && *n == lower) {
        return Ok(i as u32);
    }
    int(expr)
}

fn int(expr: &str) -> Result<u32, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n.min(u32::MAX as i64) as u32)
}

fn has(bits: u64, i: i8) -> bool {
    i >= 0 && bits & (1 << i) != 0
}

impl Schedule {
    /// The time zone's IANA name (`UTC` without `CRON_TZ=`).
    pub fn zone_name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = has(self.doms, d.day());
        let dow = has(self.dows, d.weekday().to_sunday_zero_offset());
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `t`, in whole minutes; `None` when there is
    /// none within about five years (a schedule that never fires).
    pub fn next(&self, t: Time) -> Option<Time> {
        let ts = Timestamp::from_microsecond(t.micros()).ok()?;
        let mut day = self.tz.to_datetime(ts).date();
        for _ in 0..(366 * 5) {
            if has(self.months, day.month()) && self.day_matches(day) {
                for hour in (0..24).filter(|h| has(self.hours, *h)) {
                    for minute in (0..60).filter(|m| has(self.minutes, *m)) {
                        let civil = day.at(hour, minute, 0, 0);
                        // A time in a gap of a DST change fires after the gap; in a fold, at
                        // its first occurrence.
                        let Ok(at) = self.tz.to_ambiguous_timestamp(civil).compatible() else {
                            continue;
                        };
                        if at.as_microsecond() > t.micros() {
                            return Some(Time(at.as_microsecond()));
                        }
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Time {
        Time::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn parses_coder_schedules() {
        let s = weekly("CRON_TZ=Europe/Dublin 30 9 * * 1-5").unwrap();
        assert_eq!(s.zone_name(), "Europe/Dublin");
        assert_eq!(weekly("30 9 * * *").unwrap().zone_name(), "UTC");
        assert!(weekly("CRON_TZ=US/Central 0 8 * * MON,wed").is_ok());
        assert!(weekly("*/15 9-17 * * 0-6/2").is_ok());
    }

    #[test]
    fn refuses_with_coder_messages() {
        let cases = [
            (
                "30 9 *",
                "validate weekly schedule: expected schedule to consist of 5 fields with an \
                 optional CRON_TZ=<timezone> prefix",
            ),
            (
                "30 9 1 * *",
                "validate weekly schedule: expected day-of-month and month to be *",
            ),
            (
                "CRON_TZ=UTC 30 9 * 2 *",
                "validate weekly schedule: expected day-of-month and month to be *",
            ),
            (
                "CRON_TZ=Mars/Olympus 30 9 * * *",
                "parse schedule: provided bad location Mars/Olympus: unknown time zone \
                 Mars/Olympus",
            ),
            (
                "60 9 * * *",
                "parse schedule: end of range (60) above maximum (59): 60",
            ),
            (
                "30 9 * * 7",
                "parse schedule: end of range (7) above maximum (6): 7",
            ),
            (
                "x 9 * * *",
                "parse schedule: failed to parse int from x: strconv.Atoi: parsing \"x\": \
                 invalid syntax",
            ),
            (
                "CRON_TZ=UTC 1 * * * * *",
                "parse schedule: expected exactly 5 fields, found 6: [1 * * * * *]",
            ),
            (
                "5-3 9 * * *",
                "parse schedule: beginning of range (5) beyond end of range (3): 5-3",
            ),
            (
                "*/0 9 * * *",
                "parse schedule: step of range should be a positive number: */0",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(weekly(raw).unwrap_err(), want, "{raw}");
        }
    }

    #[test]
    fn next_is_strictly_after() {
        let s = weekly("30 9 * * *").unwrap();
        assert_eq!(
            s.next(at("2026-12-01T09:29:59.5Z")),
            Some(at("2026-12-01T09:30:00Z"))
        );
        assert_eq!(
            s.next(at("2026-12-01T09:30:00Z")),
            Some(at("2026-12-02T09:30:00Z"))
        );
    }

    #[test]
    fn next_on_weekdays_in_a_zone() {
        // 2026-12-04 is a Friday; 1-5 is Monday to Friday.
        let s = weekly("CRON_TZ=America/New_York 0 8 * * 1-5").unwrap();
        assert_eq!(
            s.next(at("2026-12-04T14:00:00Z")),
            Some(at("2026-12-07T13:00:00Z"))
        );
        // Summer time: UTC-4.
        assert_eq!(
            s.next(at("2026-07-01T00:00:00Z")),
            Some(at("2026-07-01T12:00:00Z"))
        );
    }

    #[test]
    fn next_across_a_dst_gap() {
        // 2026-03-08 02:30 does not exist in New York: it fires after the gap.
        let s = weekly("CRON_TZ=America/New_York 30 2 * * *").unwrap();
        assert_eq!(
            s.next(at("2026-03-08T05:00:00Z")),
            Some(at("2026-03-08T07:30:00Z"))
        );
    }
}
