//! The forwarding cache under 10 million distinct names: the configured byte bound holds for the
//! process's real memory, not only for the cache's own accounting.
//!
//! Ten million inserts take seconds optimised and minutes unoptimised, so this runs in release:
//! `scripts/test` runs it with `cargo test --release --test it cache_memory -- --ignored`.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mesos_dns_sidecar::dns::cache::{AnswerCache, CacheKey, CachePolicy};

const NAMES: u32 = 10_000_000;
const MAX_BYTES: u64 = 32 * 1024 * 1024;

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// An upstream answer for a typical name: one A record.
fn answer() -> Vec<u8> {
    let name = Name::from_ascii("host-0000001.service.example.com.").unwrap();
    let mut m = Message::query();
    m.metadata.message_type = MessageType::Response;
    m.add_query(Query::query(name.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(
        name,
        3600,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    m.to_vec().unwrap()
}

#[test]
#[ignore = "10 million inserts: run in release (scripts/test does)"]
fn ten_million_names_stay_under_the_byte_bound() {
    let policy = CachePolicy {
        max_entries: 10_000_000,
        max_bytes: MAX_BYTES,
        stale_max: Duration::from_secs(3600),
        ..CachePolicy::default()
    };
    let cache = AnswerCache::new(policy);
    let answer = answer();
    let baseline = rss();
    let mut peak = 0;
    let started = Instant::now();
    for i in 0..NAMES {
        let key = CacheKey {
            name: format!("host-{i:07}.service.example.com.")
                .into_bytes()
                .into(),
            qtype: 1,
            qclass: 1,
            dnssec_ok: false,
            checking_disabled: false,
        };
        cache.store(key, answer.clone());
        if i % 250_000 == 0 {
            peak = peak.max(rss().saturating_sub(baseline));
        }
    }
    peak = peak.max(rss().saturating_sub(baseline));
    let (entries, weight) = (cache.entry_count(), cache.weighted_size());
    eprintln!(
        "{NAMES} names in {:?}: {entries} entries, weight {weight} bytes, peak RSS growth {} bytes \
         ({:.2}x the {MAX_BYTES}-byte bound)",
        started.elapsed(),
        peak,
        peak as f64 / MAX_BYTES as f64
    );
    assert!(
        weight <= MAX_BYTES,
        "accounted weight {weight} over the bound"
    );
    assert!(entries > 10_000, "the cache kept almost nothing: {entries}");
    assert!(
        peak <= MAX_BYTES * 5 / 4,
        "real memory grew {peak} bytes, over the {MAX_BYTES}-byte bound by more than 25%"
    );
}
