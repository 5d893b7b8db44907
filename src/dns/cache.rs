//! The forwarding cache: upstream answers kept as raw bytes, served with counted-down TTLs.
//!
//! Keyed by name, type, class and the DO and CD bits (a DNSSEC-aware client must not get an
//! answer stripped for a client that isn't, and vice versa). Positive answers live for their
//! smallest answer TTL, negative ones (NXDOMAIN, NODATA) for the SOA-derived time of RFC 2308,
//! both clamped. Entries stay a while past expiry for serve-stale (RFC 8767). The cache is
//! bounded in entries and in bytes at once: each entry weighs at least `max_bytes /
//! max_entries`, so neither bound can be exceeded. UDP reader threads answer repeat hits from
//! a few slots of their own, filled from this cache (`super::hot`).

use crate::config::Config;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache as Moka;
use moka::Expiry;

use super::wire::{self, Layout};

/// Cache sizing and TTL policy.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    /// At most this many entries.
    pub max_entries: u64,
    /// At most this many bytes of answers and keys.
    pub max_bytes: u64,
    /// Positive TTLs are raised to at least this.
    pub min_ttl: u32,
    /// TTLs are capped at this.
    pub max_ttl: u32,
    /// Negative answers are cached at most this long.
    pub negative_max_ttl: u32,
    /// How long past expiry an entry may still be served when upstreams fail (0 = never).
    pub stale_max: Duration,
}

impl CachePolicy {
    /// The cache keys of the configuration (`cacheMaxEntries`, `cacheMaxBytes`, the TTL bounds,
    /// `serveStaleSeconds`).
    pub fn from_config(c: &Config) -> CachePolicy {
        CachePolicy {
            max_entries: c.cache_max_entries,
            max_bytes: c.cache_max_bytes,
            min_ttl: c.cache_min_ttl,
            max_ttl: c.cache_max_ttl,
            negative_max_ttl: c.cache_negative_max_ttl,
            stale_max: Duration::from_secs(c.serve_stale_seconds),
        }
    }
}

/// The configuration's defaults (written once, in [`Config::default`]).
impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy::from_config(&Config::default())
    }
}

/// What a cached answer is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Lowercase question name.
    pub name: Box<[u8]>,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// DNSSEC OK bit of the query.
    pub dnssec_ok: bool,
    /// Checking Disabled bit of the query.
    pub checking_disabled: bool,
}

/// One upstream answer, ready to be served again.
#[derive(Debug)]
pub struct Cached {
    /// The answer as the upstream sent it.
    pub bytes: Vec<u8>,
    /// Where its TTL fields are.
    pub ttl_offsets: Vec<usize>,
    /// When it was stored.
    pub stored: Instant,
    /// How long it is fresh.
    pub ttl: Duration,
    /// Whether it is NXDOMAIN or NODATA.
    pub negative: bool,
}

impl Cached {
    /// Age of the entry.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored)
    }

    /// Whether the entry is past its TTL.
    pub fn is_stale(&self, now: Instant) -> bool {
        self.age(now) >= self.ttl
    }
}

/// How long an upstream answer may be cached, or `None` when it must not be: errors other than
/// NXDOMAIN, truncated answers, negative answers without an SOA, and zero TTLs.
pub fn cache_ttl(bytes: &[u8], layout: &Layout, policy: &CachePolicy) -> Option<(u32, bool)> {
    if wire::truncated(bytes) {
        return None;
    }
    let rcode = wire::rcode(bytes);
    let negative = rcode == 3 || (rcode == 0 && layout.answers == 0);
    if rcode != 0 && rcode != 3 {
        return None;
    }
    let ttl = if negative {
        let (soa_ttl, minimum) = layout.authority_soa?;
        soa_ttl
            .min(minimum)
            .min(policy.negative_max_ttl)
            .min(policy.max_ttl)
    } else {
        layout
            .min_answer_ttl?
            .max(policy.min_ttl)
            .min(policy.max_ttl)
    };
    (ttl > 0).then_some((ttl, negative))
}

/// Memory an entry costs beyond its name, answer and TTL offsets: allocator headers, the
/// `Cached` and key structs, and moka's own per-entry bookkeeping (hash table slot, access and
/// write order nodes, timer wheel node, frequency sketch). Measured at about 470 bytes on
/// x86_64 with glibc (10 million distinct names, `tests/it/cache_memory.rs`); counting 600 leaves
/// room for allocator rounding, so the byte bound holds for the process's resident memory, not
/// only for the cache's accounting.
const ENTRY_OVERHEAD: usize = 600;

struct StaleExpiry(Duration);

impl Expiry<CacheKey, Arc<Cached>> for StaleExpiry {
    fn expire_after_create(&self, _: &CacheKey, v: &Arc<Cached>, _: Instant) -> Option<Duration> {
        Some(v.ttl + self.0)
    }
    fn expire_after_update(
        &self,
        _: &CacheKey,
        v: &Arc<Cached>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl + self.0)
    }
}

/// The bounded answer cache.
pub struct AnswerCache {
    inner: Moka<CacheKey, Arc<Cached>, ahash::RandomState>,
    policy: CachePolicy,
}

impl AnswerCache {
    /// An empty cache with `policy`.
    pub fn new(policy: CachePolicy) -> AnswerCache {
        let floor = (policy.max_bytes / policy.max_entries.max(1)).max(1);
        let inner = Moka::builder()
            .max_capacity(policy.max_bytes)
            .weigher(move |k: &CacheKey, v: &Arc<Cached>| {
                let bytes = (k.name.len()
                    + v.bytes.capacity()
                    + v.ttl_offsets.capacity() * 8
                    + ENTRY_OVERHEAD) as u64;
                bytes.max(floor).min(u32::MAX as u64) as u32
            })
            .expire_after(StaleExpiry(policy.stale_max))
            // Every lookup hashes a key; SipHash's flood resistance is kept by ahash's random
            // keys at a fraction of the cost.
            .build_with_hasher(ahash::RandomState::new());
        AnswerCache { inner, policy }
    }

    /// The policy in force.
    pub fn policy(&self) -> &CachePolicy {
        &self.policy
    }

    /// The entry for `key`, fresh or stale.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<Cached>> {
        self.inner.get(key)
    }

    /// Stores an upstream answer if it may be cached; returns the entry either way when it
    /// parses, so the caller can serve it.
    pub fn store(&self, key: CacheKey, bytes: Vec<u8>) -> Option<Arc<Cached>> {
        let layout = wire::layout(&bytes).ok()?;
        let now = Instant::now();
        match cache_ttl(&bytes, &layout, &self.policy) {
            Some((ttl, negative)) => {
                let entry = Arc::new(Cached {
                    bytes,
                    ttl_offsets: layout.ttl_offsets,
                    stored: now,
                    ttl: Duration::from_secs(ttl as u64),
                    negative,
                });
                self.inner.insert(key, entry.clone());
                Some(entry)
            }
            None => Some(Arc::new(Cached {
                bytes,
                ttl_offsets: layout.ttl_offsets,
                stored: now,
                ttl: Duration::ZERO,
                negative: false,
            })),
        }
    }

    /// Number of entries (approximate, as moka counts lazily).
    pub fn entry_count(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }

    /// Total weight in bytes (approximate).
    pub fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn msg(rcode: ResponseCode, answer_ttls: &[u32], soa: Option<(u32, u32)>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.message_type = hickory_proto::op::MessageType::Response;
        m.metadata.response_code = rcode;
        let n = Name::from_ascii("a.example.").unwrap();
        m.add_query(Query::query(n.clone(), RecordType::A));
        for &t in answer_ttls {
            m.add_answer(Record::from_rdata(
                n.clone(),
                t,
                RData::A(A::new(1, 1, 1, 1)),
            ));
        }
        if let Some((ttl, min)) = soa {
            let z = Name::from_ascii("example.").unwrap();
            m.add_authority(Record::from_rdata(
                z.clone(),
                ttl,
                RData::SOA(SOA::new(z.clone(), z, 1, 1, 1, 1, min)),
            ));
        }
        m.to_vec().unwrap()
    }

    fn ttl_of(b: &[u8], p: &CachePolicy) -> Option<(u32, bool)> {
        cache_ttl(b, &wire::layout(b).unwrap(), p)
    }

    #[test]
    fn ttl_rules() {
        let p = CachePolicy::default();
        assert_eq!(
            ttl_of(&msg(ResponseCode::NoError, &[300, 60], None), &p),
            Some((60, false))
        );
        // NXDOMAIN and NODATA: min(SOA TTL, SOA MINIMUM).
        assert_eq!(
            ttl_of(&msg(ResponseCode::NXDomain, &[], Some((900, 30))), &p),
            Some((30, true))
        );
        assert_eq!(
            ttl_of(&msg(ResponseCode::NoError, &[], Some((20, 300))), &p),
            Some((20, true))
        );
        // Negative without SOA, SERVFAIL, zero TTL: not cached.
        assert_eq!(ttl_of(&msg(ResponseCode::NXDomain, &[], None), &p), None);
        assert_eq!(ttl_of(&msg(ResponseCode::ServFail, &[], None), &p), None);
        assert_eq!(ttl_of(&msg(ResponseCode::NoError, &[0], None), &p), None);
        // Clamps.
        let clamp = CachePolicy {
            min_ttl: 10,
            max_ttl: 100,
            negative_max_ttl: 5,
            ..CachePolicy::default()
        };
        assert_eq!(
            ttl_of(&msg(ResponseCode::NoError, &[1], None), &clamp),
            Some((10, false))
        );
        assert_eq!(
            ttl_of(&msg(ResponseCode::NoError, &[1000], None), &clamp),
            Some((100, false))
        );
        assert_eq!(
            ttl_of(&msg(ResponseCode::NXDomain, &[], Some((900, 900))), &clamp),
            Some((5, true))
        );
    }

    #[test]
    fn bounded_by_entries_and_bytes() {
        let policy = CachePolicy {
            max_entries: 100,
            max_bytes: 1_000_000,
            ..CachePolicy::default()
        };
        let cache = AnswerCache::new(policy);
        let answer = msg(ResponseCode::NoError, &[300], None);
        for i in 0..1000u32 {
            let key = CacheKey {
                name: format!("n{i}.example.").into_bytes().into(),
                qtype: 1,
                qclass: 1,
                dnssec_ok: false,
                checking_disabled: false,
            };
            cache.store(key, answer.clone());
        }
        assert!(cache.entry_count() <= 100, "{}", cache.entry_count());
        assert!(cache.weighted_size() <= 1_000_000);
    }
}
