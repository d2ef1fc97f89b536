//! Times are stored as microseconds since the Unix epoch and sent as RFC 3339 UTC with
//! fractional seconds, e.g. `2026-11-28T10:15:22.123456Z`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// A point in time, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

impl Time {
    pub fn now() -> Time {
        let now = OffsetDateTime::now_utc();
        Time((now.unix_timestamp_nanos() / 1000) as i64)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn plus_millis(self, ms: i64) -> Time {
        Time(self.0.saturating_add(ms.saturating_mul(1000)))
    }

    /// Parses RFC 3339 (any offset); `None` when it is not.
    pub fn parse_rfc3339(s: &str) -> Option<Time> {
        let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        Some(Time((t.unix_timestamp_nanos() / 1000) as i64))
    }

    pub fn rfc3339(self) -> String {
        let t = OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.microsecond()
        )
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let text = String::deserialize(d)?;
        Time::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds_in_utc() {
        assert_eq!(Time(0).rfc3339(), "1970-01-01T00:00:00.000000Z");
        let t = Time::parse_rfc3339("2026-11-28T10:15:22.123456+01:00").unwrap();
        assert_eq!(t.rfc3339(), "2026-11-28T09:15:22.123456Z");
        assert!(Time::parse_rfc3339("yesterday").is_none());
        let back: Time = serde_json::from_str("\"2026-11-28T09:15:22.123456Z\"").unwrap();
        assert_eq!(back, t);
    }
}
