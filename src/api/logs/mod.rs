//! A job's logs, for builds and template versions: the stored answer and the SSE / NDJSON
//! streams (`answer.rs`), the WebSocket (`ws.rs`), and the query they all take (`format.rs`).
//! The followers themselves are `app::logs`.

pub mod answer;
pub mod format;
pub mod ws;
