//! Process-wide counters: what the daemon served, rejected and failed to load.
//!
//! Plain relaxed atomics, so counting costs the query path nothing measurable; the HTTP API
//! exports them.

use std::sync::atomic::{AtomicU64, Ordering};

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

/// Counters shared by the DNS server and the state sources.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Queries received over UDP.
    pub udp_queries: AtomicU64,
    /// Queries received over TCP.
    pub tcp_queries: AtomicU64,
    /// Queries by type, in the order of `QTYPES` plus a last slot for every other type.
    pub queries_by_type: [AtomicU64; QTYPES.len() + 1],
    /// Responses by response code (index = the 4-bit RCODE; 16 = BADVERS).
    pub responses_by_rcode: [AtomicU64; 17],
    /// Packets that could not be parsed as DNS messages.
    pub malformed_packets: AtomicU64,
    /// UDP responses sent truncated (TC set).
    pub truncated_responses: AtomicU64,
    /// TCP connections refused because the connection limit was reached.
    pub tcp_connections_rejected: AtomicU64,
    /// Forwarded queries answered from a fresh cache entry.
    pub cache_hits: AtomicU64,
    /// Forwarded queries that found only an expired entry.
    pub cache_stale_hits: AtomicU64,
    /// Forwarded queries not in the cache.
    pub cache_misses: AtomicU64,
    /// Background refreshes of cached answers asked for near their expiry.
    pub prefetches: AtomicU64,
    /// Misses answered SERVFAIL at once because the name failed moments ago.
    pub servfail_cache_hits: AtomicU64,
    /// Answers served stale because no upstream answered in time.
    pub stale_answers: AtomicU64,
    /// Misses that joined an identical upstream query already in flight.
    pub coalesced_queries: AtomicU64,
    /// Forwarded queries answered SERVFAIL because no upstream answered.
    pub forward_failures: AtomicU64,
    /// Forwarded queries that found every upstream down (answered after one quick probe).
    pub all_upstreams_down: AtomicU64,
    /// Queries that came back to us through a forwarding loop.
    pub forward_loops: AtomicU64,
    /// Upstream exchanges that produced an answer.
    pub upstream_queries: AtomicU64,
    /// Upstream exchanges that failed (timeout, error, SERVFAIL/REFUSED).
    pub upstream_failures: AtomicU64,
    /// Upstream exchanges that timed out.
    pub upstream_timeouts: AtomicU64,
    /// Forwarded queries dropped because too many were already waiting on upstreams.
    pub forward_overload_drops: AtomicU64,
    /// Queries answered REFUSED because the client is not allowed (`allowClients`).
    pub refused_clients: AtomicU64,
    /// UDP responses dropped by response rate limiting.
    pub rate_limited_responses: AtomicU64,
    /// Rate-limited UDP responses sent as empty truncated answers instead (slip).
    pub rate_limit_slips: AtomicU64,
    /// ANY queries over UDP from non-loopback clients answered with TC (RFC 8482).
    pub any_truncated: AtomicU64,
    /// Cluster answers marked with the Extended DNS Error "Stale Answer" (`staleAfterSeconds`).
    pub stale_cluster_answers: AtomicU64,
    /// UDP A/AAAA answers cut to a random subset of `maxUdpAnswers` records.
    pub capped_answers: AtomicU64,
    /// Upstream answers rejected as malformed (bad names, compression loops).
    pub upstream_bad_answers: AtomicU64,
    /// HTTP connections closed on accept because `httpMaxConnections` were open.
    pub http_connections_rejected: AtomicU64,
    /// HTTP connections from clients outside `allowClients` (answered 403).
    pub http_clients_refused: AtomicU64,
    /// HTTP requests refused for a missing or wrong bearer token.
    pub http_unauthorized: AtomicU64,
    /// Requests for the relay document (`/v1/snapshot`).
    pub relay_requests: AtomicU64,
    /// Relay requests answered 304 Not Modified.
    pub relay_not_modified: AtomicU64,
    /// State documents loaded into a new snapshot.
    pub state_loads: AtomicU64,
    /// Refreshes that failed: documents rejected (unreadable, invalid JSON, no leader) or not
    /// fetched at all (master down, HTTP errors); the last snapshot stays.
    pub state_load_errors: AtomicU64,
}

/// A counter as exported: the field it reads, its Prometheus name and help text.
pub struct Exported<'a> {
    /// The `Metrics` field name.
    pub field: &'static str,
    /// The Prometheus metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// The value.
    pub counter: &'a AtomicU64,
}

impl Metrics {
    /// Every plain counter with its exported name, so `/metrics` renders them all and a test
    /// can check that no field is left out (the per-type and per-rcode arrays are rendered as
    /// labelled series on their own).
    pub fn counters(&self) -> Vec<Exported<'_>> {
        macro_rules! exported {
            ($($field:ident => $name:literal, $help:literal;)*) => {
                vec![$(Exported {
                    field: stringify!($field),
                    name: concat!("mesos_dns_sidecar_", $name),
                    help: $help,
                    counter: &self.$field,
                }),*]
            };
        }
        exported! {
            udp_queries => "udp_queries_total", "Queries received over UDP.";
            tcp_queries => "tcp_queries_total", "Queries received over TCP.";
            malformed_packets => "malformed_packets_total", "Packets that were not DNS queries.";
            truncated_responses => "truncated_responses_total", "Responses sent with TC set.";
            tcp_connections_rejected => "tcp_connections_rejected_total", "TCP connections over the limit.";
            cache_hits => "cache_hits_total", "Forwarded queries answered from the cache.";
            cache_stale_hits => "cache_stale_hits_total", "Forwarded queries that found an expired entry.";
            cache_misses => "cache_misses_total", "Forwarded queries not in the cache.";
            prefetches => "prefetches_total", "Cached answers refreshed before expiry because they were asked for.";
            servfail_cache_hits => "servfail_cache_hits_total", "Misses answered SERVFAIL from the short failure cache, without asking upstream.";
            stale_answers => "stale_answers_total", "Answers served stale.";
            coalesced_queries => "coalesced_queries_total", "Misses that joined a query in flight.";
            forward_failures => "forward_failures_total", "Forwarded queries answered SERVFAIL.";
            all_upstreams_down => "all_upstreams_down_total", "Forwarded queries that found every upstream down.";
            forward_loops => "forward_loops_total", "Queries that looped back to us.";
            upstream_queries => "upstream_answers_total", "Upstream exchanges with an answer.";
            upstream_failures => "upstream_failures_total", "Failed upstream exchanges.";
            upstream_timeouts => "upstream_timeouts_total", "Upstream attempts that got no answer within their attempt timeout.";
            forward_overload_drops => "forward_overload_drops_total", "Forwarded queries dropped at the forwarding cap (or with forwarding off).";
            refused_clients => "refused_clients_total", "Queries refused because the client is not allowed.";
            rate_limited_responses => "rate_limited_responses_total", "UDP responses dropped by rate limiting.";
            rate_limit_slips => "rate_limit_slips_total", "Rate-limited UDP responses sent truncated (slip).";
            any_truncated => "any_truncated_total", "ANY queries over UDP from non-loopback clients answered with TC.";
            stale_cluster_answers => "stale_cluster_answers_total", "Cluster answers marked stale (Extended DNS Error 3) because the state is older than staleAfterSeconds.";
            capped_answers => "capped_udp_answers_total", "UDP A/AAAA answer sets cut to maxUdpAnswers records.";
            upstream_bad_answers => "upstream_bad_answers_total", "Upstream answers rejected as malformed.";
            http_connections_rejected => "http_connections_rejected_total", "HTTP connections over the limit.";
            http_clients_refused => "http_clients_refused_total", "HTTP connections from clients not allowed (403).";
            http_unauthorized => "http_unauthorized_total", "HTTP requests without the bearer token.";
            relay_requests => "relay_requests_total", "Requests for the relay document.";
            relay_not_modified => "relay_not_modified_total", "Relay requests answered 304.";
            state_loads => "state_loads_total", "State documents loaded.";
            state_load_errors => "state_load_errors_total", "State documents rejected (refresh errors).";
        }
    }

    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
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
        let i = (rcode as usize).min(16);
        Self::inc(&self.responses_by_rcode[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Field names of `Metrics` as its derived `Debug` prints them.
    fn fields() -> Vec<String> {
        let text = format!("{:?}", Metrics::default());
        let body = text.trim_start_matches("Metrics {").trim_end_matches('}');
        body.split(", ")
            .filter_map(|part| part.split_once(": ").map(|(k, _)| k.trim().to_string()))
            .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !k.is_empty())
            .collect()
    }

    #[test]
    fn every_counter_field_is_exported() {
        let m = Metrics::default();
        let exported: Vec<&str> = m.counters().iter().map(|e| e.field).collect();
        let fields = fields();
        assert!(fields.len() > 20, "{fields:?}");
        for f in &fields {
            if f == "queries_by_type" || f == "responses_by_rcode" {
                continue;
            }
            assert!(
                exported.contains(&f.as_str()),
                "Metrics::{f} is not exported"
            );
        }
    }
}
