//! One log line as its followers send it: the JSON encoded once, and the bytes of each
//! transport (a Server-Sent Event, a WebSocket text frame) made the first time a follower of
//! that transport asks, then shared by all of them. A follower's chunk is these bytes joined
//! into one buffer of the exact size: one copy per follower, no formatting, no regrowth.

use crate::model::ProvisionerJobLog;
use crate::store::LogRow;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::OnceLock;

pub struct Line {
    pub row: LogRow,
    pub json: String,
    sse: OnceLock<Bytes>,
    ws: OnceLock<Bytes>,
}

impl Line {
    pub fn new(row: LogRow) -> Line {
        Line {
            json: json_text(&row),
            row,
            sse: OnceLock::new(),
            ws: OnceLock::new(),
        }
    }

    /// `event: log`, `id: <id>`, `data: <json>` and the blank line that ends the event.
    pub fn sse(&self) -> &[u8] {
        self.sse.get_or_init(|| {
            Bytes::from(format!(
                "event: log\nid: {}\ndata: {}\n\n",
                self.row.id, self.json
            ))
        })
    }

    /// The JSON as one WebSocket text frame from the server (unmasked).
    pub fn ws_frame(&self) -> &[u8] {
        self.ws.get_or_init(|| {
            let mut out = BytesMut::new();
            ws_text(&mut out, &self.json);
            out.freeze()
        })
    }
}

/// Appends one WebSocket text frame from the server holding `text` (RFC 6455 section 5.2:
/// FIN and the text opcode, the length in 7, 7+16 or 7+64 bits, no mask from a server).
pub fn ws_text(out: &mut BytesMut, text: &str) {
    let len = text.len();
    out.reserve(len + 10);
    out.put_u8(0x81);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
    out.extend_from_slice(text.as_bytes());
}

/// A stored line in Coder's `ProvisionerJobLog` shape.
pub fn log_json(r: &LogRow) -> ProvisionerJobLog {
    ProvisionerJobLog {
        id: r.id,
        created_at: r.created_at,
        log_source: r.source.clone(),
        log_level: r.level.clone(),
        stage: r.stage.clone(),
        output: r.output.clone(),
    }
}

/// That shape's JSON text.
pub fn json_text(r: &LogRow) -> String {
    serde_json::to_string(&log_json(r)).unwrap_or_default()
}

/// The parts joined into one buffer of the exact size, each followed by `sep`.
pub fn join<'a>(parts: impl Iterator<Item = &'a [u8]> + Clone, sep: &[u8]) -> Bytes {
    let len = parts.clone().map(|p| p.len() + sep.len()).sum();
    let mut out = BytesMut::with_capacity(len);
    for p in parts {
        out.extend_from_slice(p);
        out.extend_from_slice(sep);
    }
    out.freeze()
}

/// A line of the provisioner's for tests.
#[cfg(test)]
pub(crate) fn line(id: i64, output: &str) -> Line {
    Line::new(LogRow {
        id,
        created_at: crate::model::Time(0),
        source: "provisioner".into(),
        level: "info".into(),
        stage: "Starting".into(),
        output: output.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_carry_the_json_once_each() {
        let l = line(7, "héllo");
        let sse = String::from_utf8(l.sse().to_vec()).unwrap();
        assert_eq!(sse, format!("event: log\nid: 7\ndata: {}\n\n", l.json));
        // An unmasked text frame: FIN + text opcode, then the length (a log's JSON is over
        // 125 bytes: 126 and 16 bits of length), then the JSON itself.
        let frame = l.ws_frame();
        assert_eq!(frame[0], 0x81);
        assert_eq!(frame[1], 126);
        assert_eq!(
            u16::from_be_bytes([frame[2], frame[3]]) as usize,
            l.json.len()
        );
        assert_eq!(&frame[4..], l.json.as_bytes());
        // Under 126 bytes: the length in the second byte.
        let mut short = BytesMut::new();
        ws_text(&mut short, "done");
        assert_eq!(&short[..], b"\x81\x04done");
        // 64 KiB or more: 127 and 64 bits of length.
        let long = line(8, &"x".repeat(70_000));
        let frame = long.ws_frame();
        assert_eq!(frame[1], 127);
        let len: [u8; 8] = frame[2..10].try_into().unwrap();
        assert_eq!(u64::from_be_bytes(len) as usize, long.json.len());
        assert_eq!(&frame[10..], long.json.as_bytes());
    }

    #[test]
    fn join_is_exact() {
        let ls = [line(1, "a"), line(2, "b")];
        let out = join(ls.iter().map(|l| l.json.as_bytes()), b"\n");
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(text, format!("{}\n{}\n", ls[0].json, ls[1].json));
    }
}
