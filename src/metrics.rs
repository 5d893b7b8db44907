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

impl Metrics {
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
