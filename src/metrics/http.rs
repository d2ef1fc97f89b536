//! Coder's API metrics (`coderd/httpmw/prometheus.go`): requests by code, method and route
//! pattern, their latency, the requests in flight and the open WebSockets. Every series lives in
//! a table of atomics made once from the router's patterns, so recording takes no lock; the
//! `path` label is always one of those patterns (or `unmatched`), never a raw path.

use super::histogram::AtomicHistogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Coder's buckets for `coderd_api_request_latencies_seconds`.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.010, 0.025, 0.050, 0.100, 0.500, 1.0, 5.0, 10.0, 30.0,
];
/// The `path` of a request no route matched.
pub const UNMATCHED: &str = "unmatched";
/// The methods kept apart; any other is counted as `OTHER`.
pub const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER",
];
/// Distinct status codes kept per route and method (more are counted as `code="other"`).
const CODE_SLOTS: usize = 16;

pub fn method_index(method: &str) -> usize {
    METHODS[..7].iter().position(|m| *m == method).unwrap_or(7)
}

struct CodeSlot {
    code: AtomicU64,
    count: AtomicU64,
}

struct MethodSlot {
    latency: AtomicHistogram,
    codes: [CodeSlot; CODE_SLOTS],
    other_codes: AtomicU64,
}

impl MethodSlot {
    fn new() -> MethodSlot {
        MethodSlot {
            latency: AtomicHistogram::new(LATENCY_BUCKETS),
            codes: std::array::from_fn(|_| CodeSlot {
                code: AtomicU64::new(0),
                count: AtomicU64::new(0),
            }),
            other_codes: AtomicU64::new(0),
        }
    }

    fn count_code(&self, code: u16) {
        let code = u64::from(code);
        for slot in &self.codes {
            let held = slot.code.load(Relaxed);
            if held == code
                || (held == 0
                    && match slot.code.compare_exchange(0, code, Relaxed, Relaxed) {
                        Ok(_) => true,
                        Err(now) => now == code,
                    })
            {
                slot.count.fetch_add(1, Relaxed);
                return;
            }
        }
        self.other_codes.fetch_add(1, Relaxed);
    }
}

struct RouteSlot {
    methods: [MethodSlot; 8],
    websockets: AtomicI64,
    /// Whether a WebSocket was ever open here (its gauge is shown from then on, 0 included).
    websockets_seen: AtomicBool,
}

struct Table {
    names: Vec<String>,
    index: HashMap<String, usize>,
    routes: Vec<RouteSlot>,
}

/// The API's metrics.
pub struct HttpMetrics {
    table: OnceLock<Table>,
    concurrent: AtomicI64,
}

impl HttpMetrics {
    pub const fn new() -> HttpMetrics {
        HttpMetrics {
            table: OnceLock::new(),
            concurrent: AtomicI64::new(0),
        }
    }

    /// The route patterns the labels may take (once, at start-up; later calls are ignored).
    pub fn set_routes(&self, patterns: &[String]) {
        self.table.get_or_init(|| {
            let mut names: Vec<String> = Vec::new();
            for p in patterns.iter().map(String::as_str).chain([UNMATCHED]) {
                if !names.iter().any(|n| n == p) {
                    names.push(p.to_string());
                }
            }
            let index = names.iter().cloned().zip(0..).collect();
            let routes = names
                .iter()
                .map(|_| RouteSlot {
                    methods: std::array::from_fn(|_| MethodSlot::new()),
                    websockets: AtomicI64::new(0),
                    websockets_seen: AtomicBool::new(false),
                })
                .collect();
            Table {
                names,
                index,
                routes,
            }
        });
    }

    fn route(&self, pattern: Option<&str>) -> Option<&RouteSlot> {
        let t = self.table.get()?;
        let i = pattern
            .and_then(|p| t.index.get(p).copied())
            .unwrap_or(t.names.len() - 1);
        Some(&t.routes[i])
    }

    /// A request began (not a WebSocket: those count in `websocket_opened`).
    pub fn request_started(&self) -> InFlight<'_> {
        self.concurrent.fetch_add(1, Relaxed);
        InFlight(&self.concurrent)
    }

    /// A request was answered: its route pattern (None: none matched), method, status and the
    /// time to its response head.
    pub fn record(&self, pattern: Option<&str>, method: usize, code: u16, took: Duration) {
        if let Some(route) = self.route(pattern) {
            let slot = &route.methods[method.min(7)];
            slot.count_code(code);
            slot.latency.observe(took.as_secs_f64());
        }
    }

    /// A WebSocket on the route `pattern` is open until the guard drops.
    pub fn websocket_opened(&self, pattern: Option<&str>) -> Option<InFlight<'_>> {
        let route = self.route(pattern)?;
        route.websockets.fetch_add(1, Relaxed);
        route.websockets_seen.store(true, Relaxed);
        Some(InFlight(&route.websockets))
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics::new()
    }
}

/// Decrements its gauge when dropped.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpMetrics")
    }
}

/// Encodes `HttpMetrics` at each scrape; `&'static` as the registry wants.
#[derive(Debug)]
pub struct HttpCollector(pub &'static HttpMetrics);

impl Collector for HttpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.0;
        {
            let e = encoder.encode_descriptor(
                "coderd_api_concurrent_requests",
                "The number of concurrent API requests.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(m.concurrent.load(Relaxed)).encode(e)?;
        }
        let Some(t) = m.table.get() else {
            return Ok(());
        };
        let series = || {
            t.names.iter().zip(&t.routes).flat_map(|(path, route)| {
                METHODS
                    .iter()
                    .zip(&route.methods)
                    .map(move |(method, slot)| (path.as_str(), *method, slot))
            })
        };
        {
            let mut e = encoder.encode_descriptor(
                "coderd_api_requests_processed",
                "The total number of processed API requests",
                None,
                MetricType::Counter,
            )?;
            for (path, method, slot) in series() {
                let codes = slot.codes.iter().filter_map(|c| {
                    let code = c.code.load(Relaxed);
                    (code != 0).then(|| (code.to_string(), c.count.load(Relaxed)))
                });
                let other = slot.other_codes.load(Relaxed);
                for (code, n) in codes.chain((other > 0).then(|| ("other".to_string(), other))) {
                    let labels = [("code", code.as_str()), ("method", method), ("path", path)];
                    e.encode_family(&labels)?
                        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                            &n, None,
                        )?;
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "coderd_api_request_latencies_seconds",
                "Latency distribution of requests in seconds.",
                None,
                MetricType::Histogram,
            )?;
            for (path, method, slot) in series() {
                let (sum, count, buckets) = slot.latency.snapshot();
                if count == 0 {
                    continue;
                }
                let labels = [("method", method), ("path", path)];
                e.encode_family(&labels)?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        sum, count, &buckets, None,
                    )?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "coderd_api_concurrent_websockets",
            "The total number of concurrent API websockets.",
            None,
            MetricType::Gauge,
        )?;
        for (path, route) in t.names.iter().zip(&t.routes) {
            let n = route.websockets.load(Relaxed);
            if route.websockets_seen.load(Relaxed) {
                let labels = [("path", path.as_str())];
                ConstGauge::new(n).encode(e.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn series_per_pattern_method_and_code() {
        static M: HttpMetrics = HttpMetrics::new();
        M.set_routes(&["/a/{id}".to_string()]);
        let took = Duration::from_millis(3);
        M.record(Some("/a/{id}"), method_index("GET"), 200, took);
        M.record(Some("/a/{id}"), method_index("GET"), 200, took);
        M.record(Some("/a/{id}"), method_index("BREW"), 418, took);
        M.record(Some("/not/a/route"), method_index("GET"), 404, took);
        M.record(None, method_index("POST"), 404, took);
        for code in 100..100 + CODE_SLOTS as u16 + 2 {
            M.record(Some("/a/{id}"), method_index("PUT"), code, took);
        }
        let open = M.websocket_opened(Some("/a/{id}"));
        let mut r = Registry::default();
        r.register_collector(Box::new(HttpCollector(&M)));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &r).unwrap();
        let has = |line: &str| text.lines().any(|l| l == line);
        let total = "coderd_api_requests_processed_total";
        assert!(
            has(&format!(
                r#"{total}{{code="200",method="GET",path="/a/{{id}}"}} 2"#
            )),
            "{text}"
        );
        assert!(has(&format!(
            r#"{total}{{code="418",method="OTHER",path="/a/{{id}}"}} 1"#
        )));
        assert!(has(&format!(
            r#"{total}{{code="404",method="GET",path="unmatched"}} 1"#
        )));
        assert!(has(&format!(
            r#"{total}{{code="404",method="POST",path="unmatched"}} 1"#
        )));
        assert!(has(&format!(
            r#"{total}{{code="other",method="PUT",path="/a/{{id}}"}} 2"#
        )));
        assert!(has(
            r#"coderd_api_request_latencies_seconds_bucket{method="GET",path="/a/{id}",le="0.005"} 2"#
        ));
        assert!(has(r#"coderd_api_concurrent_websockets{path="/a/{id}"} 1"#));
        drop(open);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &r).unwrap();
        assert!(
            text.lines()
                .any(|l| l == r#"coderd_api_concurrent_websockets{path="/a/{id}"} 0"#)
        );
    }
}
