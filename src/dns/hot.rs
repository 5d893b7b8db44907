//! A UDP reader thread's own front to the answer cache: the answers it served last, each found
//! by one hash and one comparison.
//!
//! A hit in moka walks its shared table and records the read for its eviction order, which
//! was half of the user-space time of a cache hit. The names a host asks for over and over are
//! few, so each reader thread keeps the entries it served in a small table of its own, with no
//! lock and no bookkeeping. moka stays the cache of record: entries come only from it, and
//! every few hits a slot's name is looked up there again, so moka still sees the name as used
//! (it is not evicted for looking idle) and a refreshed answer replaces the one held here.
//! Each name has two slots to be in, so two hot names that hash alike do not keep pushing each
//! other out. A slot serves only until its entry's prefetch point (or expiry when it will not
//! be prefetched); later hits go to moka, which serves stale answers and starts refreshes as
//! before.

use std::sync::Arc;
use std::time::Instant;

use super::cache::{CacheKey, Cached};

/// Slots per reader thread, a power of two: room for the hot names of a busy host. A name
/// is held in one of the two slots of its pair.
const SLOTS: usize = 4096;

/// Longer answers are not held here. With [`SLOTS`] this bounds what the table can keep alive
/// after moka evicted it to 2 MiB per UDP listener, beyond the cache's byte bound; in practice
/// the entries are moka's own, shared.
pub const MAX_ANSWER_BYTES: usize = 512;

/// A slot's hit after this many served from the slot goes to moka instead.
pub(crate) const RECHECK_EVERY: u32 = 64;

/// A cache key as a request holds it, borrowed, so a hit allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRef<'a> {
    /// Lowercase question name.
    pub name: &'a [u8],
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// DNSSEC OK bit of the query.
    pub dnssec_ok: bool,
    /// Checking Disabled bit of the query.
    pub checking_disabled: bool,
}

impl KeyRef<'_> {
    /// The owned key moka stores the entry under.
    pub fn to_owned_key(&self) -> CacheKey {
        CacheKey {
            name: self.name.into(),
            qtype: self.qtype,
            qclass: self.qclass,
            dnssec_ok: self.dnssec_ok,
            checking_disabled: self.checking_disabled,
        }
    }

    fn is(&self, key: &CacheKey) -> bool {
        self.qtype == key.qtype
            && self.qclass == key.qclass
            && self.dnssec_ok == key.dnssec_ok
            && self.checking_disabled == key.checking_disabled
            && *self.name == *key.name
    }
}

struct Slot {
    hash: u64,
    key: CacheKey,
    entry: Arc<Cached>,
    /// Served from here while `now` is before this.
    until: Instant,
    /// Hits since moka last saw the name.
    served: u32,
}

/// One reader thread's hot answers (see the module documentation).
pub struct HotAnswers {
    slots: Box<[Option<Slot>]>,
    hasher: ahash::RandomState,
}

impl Default for HotAnswers {
    fn default() -> Self {
        HotAnswers {
            slots: (0..SLOTS).map(|_| None).collect(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl HotAnswers {
    /// The hash `key` is found by, for [`HotAnswers::get`] and [`HotAnswers::put`].
    pub fn hash(&self, key: &KeyRef<'_>) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The entry held for `key` when it may be served from here at `now`: before the slot's
    /// limit, and not due to be seen by moka.
    pub fn get(&mut self, hash: u64, key: &KeyRef<'_>, now: Instant) -> Option<&Cached> {
        let slot = self.held(hash, key)?;
        if now >= slot.until || slot.served >= RECHECK_EVERY {
            return None;
        }
        slot.served += 1;
        Some(&slot.entry)
    }

    /// Holds `entry`, just served from moka for `key`, to be served from here until `until`.
    /// A new name takes the first slot of its pair and moves the name there to the second.
    pub fn put(&mut self, hash: u64, key: &KeyRef<'_>, entry: &Arc<Cached>, until: Instant) {
        if entry.bytes.len() > MAX_ANSWER_BYTES {
            return;
        }
        if let Some(slot) = self.held(hash, key) {
            slot.entry = entry.clone();
            slot.until = until;
            slot.served = 0;
            return;
        }
        let pair = Self::pair(hash);
        let slots = &mut self.slots[pair..pair + 2];
        slots.swap(0, 1);
        slots[0] = Some(Slot {
            hash,
            key: key.to_owned_key(),
            entry: entry.clone(),
            until,
            served: 0,
        });
    }

    /// The slot holding `key`, whichever of its pair.
    fn held(&mut self, hash: u64, key: &KeyRef<'_>) -> Option<&mut Slot> {
        let pair = Self::pair(hash);
        self.slots[pair..pair + 2]
            .iter_mut()
            .flatten()
            .find(|slot| slot.hash == hash && key.is(&slot.key))
    }

    /// The first slot of the pair `hash` belongs to.
    fn pair(hash: u64) -> usize {
        hash as usize & (SLOTS - 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(len: usize) -> Arc<Cached> {
        Arc::new(Cached {
            bytes: vec![0; len],
            ttl_offsets: Vec::new(),
            stored: Instant::now(),
            ttl: Duration::from_secs(60),
            negative: false,
        })
    }

    fn key(name: &[u8]) -> KeyRef<'_> {
        KeyRef {
            name,
            qtype: 1,
            qclass: 1,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    #[test]
    fn serves_until_the_limit_and_sends_every_few_hits_to_moka() {
        let mut hot = HotAnswers::default();
        let k = key(b"a.example.");
        let h = hot.hash(&k);
        let now = Instant::now();
        assert!(hot.get(h, &k, now).is_none());
        let e = entry(40);
        hot.put(h, &k, &e, now + Duration::from_secs(54));
        for _ in 0..RECHECK_EVERY {
            assert!(hot.get(h, &k, now).is_some());
        }
        assert!(hot.get(h, &k, now).is_none(), "due for moka");
        hot.put(h, &k, &e, now + Duration::from_secs(54));
        assert!(hot.get(h, &k, now).is_some());
        assert!(hot.get(h, &k, now + Duration::from_secs(54)).is_none());
    }

    #[test]
    fn tells_keys_apart() {
        let mut hot = HotAnswers::default();
        let k = key(b"a.example.");
        let h = hot.hash(&k);
        let until = Instant::now() + Duration::from_secs(60);
        hot.put(h, &k, &entry(40), until);
        let now = Instant::now();
        let aaaa = KeyRef { qtype: 28, ..k };
        let dnssec = KeyRef {
            dnssec_ok: true,
            ..k
        };
        let other = key(b"b.example.");
        // Even a key sharing the slot and hash is told apart by its fields.
        for different in [aaaa, dnssec, other] {
            assert!(hot.get(h, &different, now).is_none());
        }
        assert!(hot.get(h, &k, now).is_some());
    }

    #[test]
    fn two_names_share_a_pair_and_a_third_pushes_out_the_older() {
        let mut hot = HotAnswers::default();
        let names: [&[u8]; 3] = [b"a.example.", b"b.example.", b"c.example."];
        let keys = names.map(key);
        // Hashes chosen to land in one pair, as colliding names would.
        let hashes = [2, 2 + SLOTS as u64, 3 + 2 * SLOTS as u64];
        let now = Instant::now();
        let until = now + Duration::from_secs(60);
        hot.put(hashes[0], &keys[0], &entry(40), until);
        hot.put(hashes[1], &keys[1], &entry(40), until);
        assert!(hot.get(hashes[0], &keys[0], now).is_some());
        assert!(hot.get(hashes[1], &keys[1], now).is_some());
        hot.put(hashes[2], &keys[2], &entry(40), until);
        assert!(hot.get(hashes[0], &keys[0], now).is_none());
        assert!(hot.get(hashes[1], &keys[1], now).is_some());
        assert!(hot.get(hashes[2], &keys[2], now).is_some());
    }

    #[test]
    fn long_answers_are_not_held() {
        let mut hot = HotAnswers::default();
        let k = key(b"a.example.");
        let h = hot.hash(&k);
        let now = Instant::now();
        hot.put(
            h,
            &k,
            &entry(MAX_ANSWER_BYTES + 1),
            now + Duration::from_secs(60),
        );
        assert!(hot.get(h, &k, now).is_none());
    }
}
