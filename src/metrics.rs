//! Process-wide metrics: what the daemon served, rejected and failed to load, and how long
//! its answers took.
//!
//! Every metric is a `prometheus-client` type or an atomic histogram of ours
//! ([`Histogram`]), so counting on the query path is one relaxed atomic add: no lock, no
//! allocation. [`Metrics::register`] puts each one, with its name and help, into the registry
//! the HTTP API encodes for `/metrics` (OpenMetrics text).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// The prefix of every metric name.
pub const PREFIX: &str = "mesos_dns_sidecar_";

/// Query types counted on their own: (type code, name).
pub const QTYPES: [(u16, &str); 10] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (255, "ANY"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (2, "NS"),
    (6, "SOA"),
    (5, "CNAME"),
];

/// Response codes counted on their own: the 4-bit RCODEs and 16 (BADVERS).
const RCODES: usize = 17;

/// The label of a per-type, per-rcode or per-path series.
type Label = [(&'static str, &'static str); 1];

/// How an answer was produced: the `path` label of the latency histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Answered by the daemon itself with NOERROR or NXDOMAIN: the cluster's names (and the
    /// empty TC answers to ANY over UDP).
    Cluster,
    /// A forwarded name answered from a fresh cache entry.
    CacheHit,
    /// A forwarded name answered by an upstream.
    Forwarded,
    /// A forwarded name answered from an expired entry because no upstream answered in time.
    Stale,
    /// REFUSED, SERVFAIL and every other error answer (refused clients, forwarding off,
    /// upstream failures, malformed queries).
    RefusedOrError,
}

impl Path {
    /// Every path, in the order of [`Metrics::latency`].
    pub const ALL: [Path; 5] = [
        Path::Cluster,
        Path::CacheHit,
        Path::Forwarded,
        Path::Stale,
        Path::RefusedOrError,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Path::Cluster => "cluster",
            Path::CacheHit => "cache_hit",
            Path::Forwarded => "forwarded",
            Path::Stale => "stale",
            Path::RefusedOrError => "refused_error",
        }
    }

    /// The path of an answer the daemon built itself, from its response code: NOERROR and
    /// NXDOMAIN are cluster answers, anything else (BADVERS included) an error.
    pub fn of_rcode(rcode: u16) -> Path {
        match rcode {
            0 | 3 => Path::Cluster,
            _ => Path::RefusedOrError,
        }
    }

    /// [`Path::of_rcode`] for a response whose code is in its header (not BADVERS).
    pub fn of_local_answer(response: &[u8]) -> Path {
        response.get(3).map_or(Path::RefusedOrError, |b| {
            Path::of_rcode(u16::from(b & 0x0f))
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds of the latency buckets, in microseconds: 50 µs to 5 s.
const BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

#[derive(Debug, Default)]
struct HistogramInner {
    /// Per bucket (not cumulative); the last one is +Inf.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

/// A latency histogram with fixed buckets (50 µs to 5 s) made of relaxed atomics, so
/// observing is two atomic adds. Clones share the counts, like `prometheus-client`'s
/// metrics (whose own histogram takes a lock per observation).
#[derive(Debug, Clone, Default)]
pub struct Histogram(Arc<HistogramInner>);

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        self.observe_n(d, 1);
    }

    /// Records `n` observations of the same duration (the inline answers of one UDP batch).
    pub fn observe_n(&self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BOUNDS_US.len());
        self.0.buckets[i].fetch_add(n, Ordering::Relaxed);
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.0
            .sum_ns
            .fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }
}

/// Several histograms encoded as one: their buckets and sums added (the same upstream in the
/// default resolvers and in a zone's).
#[derive(Debug, Clone, Copy)]
pub struct Merged<'a>(pub &'a [&'a Histogram]);

impl Merged<'_> {
    /// Encodes the sum of the histograms as one histogram.
    pub fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut counts = [0u64; BOUNDS_US.len() + 1];
        let mut sum_ns = 0u64;
        for h in self.0 {
            for (c, b) in counts.iter_mut().zip(&h.0.buckets) {
                *c += b.load(Ordering::Relaxed);
            }
            sum_ns = sum_ns.saturating_add(h.0.sum_ns.load(Ordering::Relaxed));
        }
        let buckets: Vec<(f64, u64)> = BOUNDS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain(std::iter::once(f64::INFINITY))
            .zip(counts)
            .collect();
        let count = counts.iter().sum();
        encoder.encode_histogram::<NoLabelSet>(sum_ns as f64 / 1e9, count, &buckets, None)
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        Merged(&[self]).encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The latency histograms by path, encoded as one family.
#[derive(Debug, Clone)]
struct Latency([Histogram; Path::ALL.len()]);

impl Collector for Latency {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let name = format!("{PREFIX}response_seconds");
        let mut family = encoder.encode_descriptor(
            &name,
            "Time from receiving a query to sending its answer, by how it was answered (inline UDP answers: their batch's time).",
            None,
            MetricType::Histogram,
        )?;
        for (path, h) in Path::ALL.iter().zip(&self.0) {
            let label: Label = [("path", path.label())];
            h.encode(family.encode_family(&label)?)?;
        }
        Ok(())
    }
}

/// A counter as exported: the field it is, its Prometheus name and help text.
pub struct Exported<'a> {
    /// The `Metrics` field name.
    pub field: &'static str,
    /// The exported sample name (with `_total`).
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// The counter.
    pub counter: &'a Counter,
}

/// Declares `Metrics` with one `Counter` field per line, and `Metrics::counters` listing
/// them all with their names and help, so no counter can be left out of `/metrics`.
macro_rules! metrics {
    ($($(#[doc = $doc:literal])* $field:ident => $name:literal, $help:literal;)*) => {
        /// Counters and histograms shared by the DNS server, the forwarder, the HTTP API and
        /// the state sources.
        #[derive(Debug)]
        pub struct Metrics {
            $($(#[doc = $doc])* pub $field: Counter,)*
            /// Queries by type, in the order of `QTYPES` plus a last slot for every other
            /// type: handles into `qtype_family`, created once.
            pub queries_by_type: [Counter; QTYPES.len() + 1],
            /// Responses by response code (index = the 4-bit RCODE; 16 = BADVERS): handles
            /// into `rcode_family`, created once.
            pub responses_by_rcode: [Counter; RCODES],
            /// Answer latency by path, in the order of [`Path::ALL`].
            pub latency: [Histogram; Path::ALL.len()],
            qtype_family: Family<Label, Counter>,
            rcode_family: Family<Label, Counter>,
        }

        impl Metrics {
            /// Every plain counter with its exported name, in the order declared.
            pub fn counters(&self) -> Vec<Exported<'_>> {
                vec![$(Exported {
                    field: stringify!($field),
                    name: concat!("mesos_dns_sidecar_", $name),
                    help: $help,
                    counter: &self.$field,
                }),*]
            }

            fn with_families(
                qtype_family: Family<Label, Counter>,
                rcode_family: Family<Label, Counter>,
            ) -> Metrics {
                let qtype = |i: usize| {
                    let name = QTYPES.get(i).map_or("other", |&(_, n)| n);
                    qtype_family.get_or_create(&[("qtype", name)]).clone()
                };
                let rcode = |i: usize| {
                    rcode_family.get_or_create(&[("rcode", RCODE_LABELS[i])]).clone()
                };
                Metrics {
                    $($field: Counter::default(),)*
                    queries_by_type: std::array::from_fn(qtype),
                    responses_by_rcode: std::array::from_fn(rcode),
                    latency: Default::default(),
                    qtype_family: qtype_family.clone(),
                    rcode_family: rcode_family.clone(),
                }
            }
        }
    };
}

/// The `rcode` label values.
const RCODE_LABELS: [&str; RCODES] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

metrics! {
    /// Queries received over UDP.
    udp_queries => "udp_queries_total", "Queries received over UDP.";
    /// Queries received over TCP.
    tcp_queries => "tcp_queries_total", "Queries received over TCP.";
    /// Packets that could not be parsed as DNS messages.
    malformed_packets => "malformed_packets_total", "Packets that were not DNS queries.";
    /// UDP responses sent truncated (TC set).
    truncated_responses => "truncated_responses_total", "Responses sent with TC set.";
    /// TCP connections refused because the connection limit was reached.
    tcp_connections_rejected => "tcp_connections_rejected_total", "TCP connections over the limit.";
    /// Forwarded queries answered from a fresh cache entry.
    cache_hits => "cache_hits_total", "Forwarded queries answered from the cache.";
    /// Forwarded queries that found only an expired entry.
    cache_stale_hits => "cache_stale_hits_total", "Forwarded queries that found an expired entry.";
    /// Forwarded queries not in the cache.
    cache_misses => "cache_misses_total", "Forwarded queries not in the cache.";
    /// Background refreshes of cached answers asked for near their expiry.
    prefetches => "prefetches_total", "Cached answers refreshed before expiry because they were asked for.";
    /// Misses answered SERVFAIL at once because the name failed moments ago.
    servfail_cache_hits => "servfail_cache_hits_total", "Misses answered SERVFAIL from the short failure cache, without asking upstream.";
    /// Answers served stale because no upstream answered in time.
    stale_answers => "stale_answers_total", "Answers served stale.";
    /// Misses that joined an identical upstream query already in flight.
    coalesced_queries => "coalesced_queries_total", "Misses that joined a query in flight.";
    /// Forwarded queries answered SERVFAIL because no upstream answered.
    forward_failures => "forward_failures_total", "Forwarded queries answered SERVFAIL.";
    /// Forwarded queries that found every upstream down (answered after one quick probe).
    all_upstreams_down => "all_upstreams_down_total", "Forwarded queries that found every upstream down.";
    /// Queries that came back to us through a forwarding loop.
    forward_loops => "forward_loops_total", "Queries that looped back to us.";
    /// Upstream exchanges that produced an answer.
    upstream_queries => "upstream_answers_total", "Upstream exchanges with an answer.";
    /// Upstream exchanges that failed (timeout, error, SERVFAIL/REFUSED).
    upstream_failures => "upstream_failures_total", "Failed upstream exchanges.";
    /// Upstream exchanges that timed out.
    upstream_timeouts => "upstream_timeouts_total", "Upstream attempts that got no answer within their attempt timeout.";
    /// Forwarded queries dropped because too many were already waiting on upstreams.
    forward_overload_drops => "forward_overload_drops_total", "Forwarded queries dropped at the forwarding cap.";
    /// Queries answered REFUSED because the client is not allowed (`allowClients`).
    refused_clients => "refused_clients_total", "Queries refused because the client is not allowed.";
    /// UDP responses dropped by response rate limiting.
    rate_limited_responses => "rate_limited_responses_total", "UDP responses dropped by rate limiting.";
    /// Rate-limited UDP responses sent as empty truncated answers instead (slip).
    rate_limit_slips => "rate_limit_slips_total", "Rate-limited UDP responses sent truncated (slip).";
    /// ANY queries over UDP from non-loopback clients answered with TC (RFC 8482).
    any_truncated => "any_truncated_total", "ANY queries over UDP from non-loopback clients answered with TC.";
    /// Cluster answers marked with the Extended DNS Error "Stale Answer" (`staleAfterSeconds`).
    stale_cluster_answers => "stale_cluster_answers_total", "Cluster answers marked stale (Extended DNS Error 3) because the state is older than staleAfterSeconds.";
    /// UDP A/AAAA answers cut to a random subset of `maxUdpAnswers` records.
    capped_answers => "capped_udp_answers_total", "UDP A/AAAA answer sets cut to maxUdpAnswers records.";
    /// Upstream answers rejected as malformed (bad names, compression loops).
    upstream_bad_answers => "upstream_bad_answers_total", "Upstream answers rejected as malformed.";
    /// HTTP connections closed on accept because `httpMaxConnections` were open.
    http_connections_rejected => "http_connections_rejected_total", "HTTP connections over the limit.";
    /// HTTP connections from clients outside `allowClients` (answered 403).
    http_clients_refused => "http_clients_refused_total", "HTTP connections from clients not allowed (403).";
    /// HTTP requests refused for a missing or wrong bearer token.
    http_unauthorized => "http_unauthorized_total", "HTTP requests without the bearer token.";
    /// Requests for the relay document (`/v1/snapshot`).
    relay_requests => "relay_requests_total", "Requests for the relay document.";
    /// Relay requests answered 304 Not Modified.
    relay_not_modified => "relay_not_modified_total", "Relay requests answered 304.";
    /// State documents loaded into a new snapshot.
    state_loads => "state_loads_total", "State documents loaded.";
    /// Refreshes that failed: documents rejected (unreadable, invalid JSON, no leader) or not
    /// fetched at all (master down, HTTP errors); the last snapshot stays.
    state_load_errors => "state_load_errors_total", "State documents rejected (refresh errors).";
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::with_families(Family::default(), Family::default())
    }
}

impl Metrics {
    /// Registers every metric, with its name and help, in `registry` (built once, by the
    /// HTTP API). Counter names are given without `_total`, which the encoder appends.
    pub fn register(&self, registry: &mut Registry) {
        for c in self.counters() {
            let base = c.name.strip_suffix("_total").unwrap_or(c.name);
            // The registry ends every help text with a full stop of its own.
            let help = c.help.strip_suffix('.').unwrap_or(c.help);
            registry.register(base, help, c.counter.clone());
        }
        registry.register(
            format!("{PREFIX}queries"),
            "Queries by type",
            self.qtype_family.clone(),
        );
        registry.register(
            format!("{PREFIX}responses"),
            "Responses by response code",
            self.rcode_family.clone(),
        );
        registry.register_collector(Box::new(Latency(self.latency.clone())));
    }

    /// Adds one to a counter.
    pub fn inc(counter: &Counter) {
        counter.inc();
    }

    /// Reads a counter.
    pub fn get(counter: &Counter) -> u64 {
        counter.get()
    }

    /// Counts a query of type `qtype`.
    pub fn count_qtype(&self, qtype: u16) {
        let i = QTYPES
            .iter()
            .position(|&(t, _)| t == qtype)
            .unwrap_or(QTYPES.len());
        Self::inc(&self.queries_by_type[i]);
    }

    /// Counts a response with the given 12-bit response code.
    pub fn count_rcode(&self, rcode: u16) {
        let i = (rcode as usize).min(RCODES - 1);
        Self::inc(&self.responses_by_rcode[i]);
    }

    /// Counts a response as it is sent: its question's type (when it answers a routed
    /// query), its response code, and whether it has TC set. The one place responses are
    /// counted, whichever part of the daemon built them.
    pub fn count_response(&self, qtype: Option<u16>, rcode: u16, truncated: bool) {
        if let Some(qtype) = qtype {
            self.count_qtype(qtype);
        }
        self.count_rcode(rcode);
        if truncated {
            Self::inc(&self.truncated_responses);
        }
    }

    /// Records `n` answers on `path` that took `d` each.
    pub fn observe(&self, path: Path, d: Duration, n: u64) {
        self.latency[path.index()].observe_n(d, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(m: &Metrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn every_metric_is_registered_and_encoded() {
        let m = Metrics::default();
        let counters = m.counters();
        assert!(counters.len() > 30, "{}", counters.len());
        for (i, c) in counters.iter().enumerate() {
            c.counter.inc_by(1000 + i as u64);
        }
        for (i, c) in m.queries_by_type.iter().enumerate() {
            c.inc_by(2000 + i as u64);
        }
        for (i, c) in m.responses_by_rcode.iter().enumerate() {
            c.inc_by(3000 + i as u64);
        }
        for (i, path) in Path::ALL.iter().enumerate() {
            m.observe(*path, Duration::from_micros(70), 1 + i as u64);
        }
        let text = encoded(&m);
        let has = |line: &str| text.lines().any(|l| l == line);
        for (i, c) in counters.iter().enumerate() {
            assert!(
                has(&format!("{} {}", c.name, 1000 + i)),
                "{} ({}) missing:\n{text}",
                c.name,
                c.field
            );
            let base = c.name.strip_suffix("_total").unwrap();
            assert!(has(&format!("# TYPE {base} counter")), "{base}");
        }
        for i in 0..=QTYPES.len() {
            let name = QTYPES.get(i).map_or("other", |&(_, n)| n);
            let line = format!(
                "mesos_dns_sidecar_queries_total{{qtype=\"{name}\"}} {}",
                2000 + i
            );
            assert!(has(&line), "{line}");
        }
        for i in 0..RCODES {
            let line = format!(
                "mesos_dns_sidecar_responses_total{{rcode=\"{i}\"}} {}",
                3000 + i
            );
            assert!(has(&line), "{line}");
        }
        assert!(has("# TYPE mesos_dns_sidecar_response_seconds histogram"));
        for (i, path) in Path::ALL.iter().enumerate() {
            let p = path.label();
            let n = 1 + i;
            for line in [
                format!("mesos_dns_sidecar_response_seconds_count{{path=\"{p}\"}} {n}"),
                format!(
                    "mesos_dns_sidecar_response_seconds_bucket{{le=\"0.00005\",path=\"{p}\"}} 0"
                ),
                format!(
                    "mesos_dns_sidecar_response_seconds_bucket{{le=\"0.0001\",path=\"{p}\"}} {n}"
                ),
                format!(
                    "mesos_dns_sidecar_response_seconds_bucket{{le=\"+Inf\",path=\"{p}\"}} {n}"
                ),
            ] {
                assert!(has(&line), "{line} missing:\n{text}");
            }
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(has("# HELP mesos_dns_sidecar_queries Queries by type."));
        for help in text.lines().filter(|l| l.starts_with("# HELP")) {
            assert!(!help.ends_with(".."), "{help}");
        }
    }

    #[test]
    fn histogram_buckets_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe_n(Duration::from_millis(3), 2);
        h.observe(Duration::from_secs(60));
        h.observe_n(Duration::from_secs(1), 0);
        assert_eq!(h.count(), 4);
        let counts: Vec<u64> =
            h.0.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
        assert_eq!(counts[0], 1, "50 µs is in the 50 µs bucket");
        assert_eq!(counts[6], 2, "3 ms is in the 5 ms bucket");
        assert_eq!(counts[BOUNDS_US.len()], 1, "60 s is past the last bound");
        assert_eq!(
            h.0.sum_ns.load(Ordering::Relaxed),
            50_000 + 6_000_000 + 60_000_000_000
        );
    }

    #[derive(Debug)]
    struct Two(Histogram, Histogram);

    impl Collector for Two {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            let m = encoder.encode_descriptor("two", "Two merged.", None, MetricType::Histogram)?;
            Merged(&[&self.0, &self.1]).encode(m)
        }
    }

    #[test]
    fn merged_histograms_add_their_buckets_and_sums() {
        let (a, b) = (Histogram::default(), Histogram::default());
        a.observe(Duration::from_millis(1));
        b.observe_n(Duration::from_millis(1), 2);
        b.observe(Duration::from_secs(10));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Two(a, b)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "two_count 4",
            "two_sum 10.003",
            "two_bucket{le=\"0.001\"} 3",
            "two_bucket{le=\"5.0\"} 3",
            "two_bucket{le=\"+Inf\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn local_answers_are_classified_by_rcode() {
        let mut resp = [0u8; 12];
        assert_eq!(Path::of_local_answer(&resp), Path::Cluster);
        resp[3] = 0x83;
        assert_eq!(Path::of_local_answer(&resp), Path::Cluster);
        resp[3] = 0x85;
        assert_eq!(Path::of_local_answer(&resp), Path::RefusedOrError);
        resp[3] = 0x82;
        assert_eq!(Path::of_local_answer(&resp), Path::RefusedOrError);
        assert_eq!(Path::of_local_answer(&[]), Path::RefusedOrError);
    }
}
