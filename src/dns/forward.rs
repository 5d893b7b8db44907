//! Forwarding of names outside the cluster domain to the host's resolvers.
//!
//! The client's query goes upstream as it came (new ID, EDNS payload capped), the upstream's
//! answer comes back as it was sent, and is cached. Identical concurrent misses share one
//! upstream query. When every upstream fails, an expired answer is served for a while with a
//! short TTL (RFC 8767), and otherwise SERVFAIL comes within the configured timeout.

use crate::config::Config;
use crate::resolv::UpstreamPlan;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use super::cache::{AnswerCache, CacheKey, CachePolicy, Cached};
use super::hot::{CountDown, HotAnswers};
use super::request::{Reply, Request, Transport};
use super::upstream::{exchange_tcp, ExchangeError, Upstream, UpstreamSet};
use super::wire::{self, EdnsInfo};
use crate::metrics::{Metrics, Path};

/// EDNS option code (private use range) carrying this process's loop marker.
const LOOP_OPTION: u16 = 65_001;
/// TTL of answers served stale (RFC 8767 recommends 30 seconds).
const STALE_ANSWER_TTL: u32 = 30;
/// How long a client waits for a refresh before it gets the stale answer (RFC 8767's
/// client response timer).
const CLIENT_RESPONSE_TIMER: Duration = Duration::from_millis(1800);
/// How long the single probe waits when every upstream is down.
const ALL_DOWN_PROBE_TIMEOUT: Duration = Duration::from_millis(250);

/// How forwarding behaves.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// Overall bound on answering one query from upstream.
    pub timeout: Duration,
    /// Cap on each attempt's timeout (resolv.conf `options timeout`).
    pub attempt_timeout_cap: Duration,
    /// Rounds over the upstream list (resolv.conf `options attempts`).
    pub attempts: u32,
    /// Ask the first two upstreams at once and take the first answer.
    pub parallel: bool,
    /// Cache policy.
    pub cache: CachePolicy,
    /// How long a name whose resolution failed is answered SERVFAIL without asking upstream
    /// again (RFC 2308 section 7.1), so a failing upstream is not hammered; zero turns it off.
    pub servfail_cache: Duration,
    /// Refresh a cached answer that is asked for in the last tenth of its TTL before it
    /// expires, so names in use never miss.
    pub prefetch: bool,
}

impl ForwardSettings {
    /// Forwarding as the configuration asks (`timeout`, `upstreamParallel`, the cache keys,
    /// `servfailCacheSeconds`, `prefetch`), with the attempt timeout and count of the upstream
    /// plan (resolv.conf's `options`, or their defaults with `resolvers`).
    pub fn from_config(c: &Config, plan: &UpstreamPlan) -> ForwardSettings {
        ForwardSettings {
            timeout: Duration::from_secs(c.timeout),
            attempt_timeout_cap: plan.attempt_timeout,
            attempts: plan.attempts,
            parallel: c.upstream_parallel,
            cache: CachePolicy::from_config(c),
            servfail_cache: Duration::from_secs(c.servfail_cache_seconds),
            prefetch: c.prefetch,
        }
    }
}

/// The configuration's defaults, with upstreams from `resolvers` (no resolv.conf options).
impl Default for ForwardSettings {
    fn default() -> Self {
        let c = Config::default();
        let plan = UpstreamPlan {
            addrs: Vec::new(),
            source: String::new(),
            rotate: false,
            attempt_timeout: Duration::from_secs(c.timeout),
            attempts: crate::resolv::DEFAULT_ATTEMPTS,
            dropped_self: Vec::new(),
        };
        ForwardSettings::from_config(&c, &plan)
    }
}

type FetchResult = Option<Arc<Cached>>;

/// What the cache holds for a query, looked up once on the server's loop so the task that
/// resolves a miss does not look again.
pub enum Lookup {
    /// A fresh answer, ready to send.
    Hit(Reply),
    /// An expired answer, to serve if the refresh does not come in time.
    Stale(CacheKey, Arc<Cached>),
    /// Nothing cached.
    Miss(CacheKey),
    /// The query is our own, come back: forwarding it would loop.
    Loop,
}

/// Names remembered as failed at most (the SERVFAIL cache); more evict the oldest.
const SERVFAIL_CACHE_ENTRIES: u64 = 10_000;

/// Answers with a shorter TTL are not prefetched (a tenth of it is too short to act on).
const PREFETCH_MIN_TTL: Duration = Duration::from_secs(5);

/// Forwards queries with caching, coalescing, failover and serve-stale.
pub struct Forwarder {
    /// Replaced when the host's resolvers change (`set_upstreams`).
    default: ArcSwap<UpstreamSet>,
    /// Per-zone upstreams, by lowercase zone name text with its final dot.
    zones: Vec<(Vec<u8>, Arc<UpstreamSet>)>,
    settings: ForwardSettings,
    cache: AnswerCache,
    inflight: Mutex<HashMap<CacheKey, watch::Receiver<Option<FetchResult>>>>,
    /// Names whose resolution failed recently, until when they are answered SERVFAIL.
    failed: moka::sync::Cache<CacheKey, ()>,
    marker: [u8; 8],
    metrics: Arc<Metrics>,
}

impl Forwarder {
    /// A forwarder to `default` upstreams, with per-zone upstreams taking precedence for names
    /// in their zones (Mesos-DNS's `ZoneResolvers`).
    pub fn new(
        default: UpstreamSet,
        zones: Vec<(Name, UpstreamSet)>,
        settings: ForwardSettings,
        metrics: Arc<Metrics>,
    ) -> Forwarder {
        let zones = zones
            .into_iter()
            .map(|(zone, set)| (zone_text(&zone), Arc::new(set)))
            .collect();
        let failed = moka::sync::Cache::builder()
            .max_capacity(SERVFAIL_CACHE_ENTRIES)
            .time_to_live(settings.servfail_cache.max(Duration::from_millis(1)))
            .build();
        Forwarder {
            default: ArcSwap::from_pointee(default),
            zones,
            cache: AnswerCache::new(settings.cache.clone()),
            settings,
            inflight: Mutex::new(HashMap::new()),
            failed,
            marker: rand::random(),
            metrics,
        }
    }

    /// The default upstreams.
    pub fn upstreams(&self) -> Arc<UpstreamSet> {
        self.default.load_full()
    }

    /// Forwards to `set` from now on (the host's resolvers changed); queries already being
    /// resolved finish with the old set.
    pub fn set_upstreams(&self, set: UpstreamSet) {
        self.default.store(Arc::new(set));
    }

    /// The per-zone upstream sets (`ZoneResolvers`).
    pub fn zone_upstreams(&self) -> impl Iterator<Item = &UpstreamSet> {
        self.zones.iter().map(|(_, set)| set.as_ref())
    }

    /// The answer cache.
    pub fn cache(&self) -> &AnswerCache {
        &self.cache
    }

    /// The upstreams for a lowercase name: those of the longest zone holding it, else the
    /// default ones.
    fn upstreams_for(&self, name: &[u8]) -> Arc<UpstreamSet> {
        self.zones
            .iter()
            .filter(|(zone, _)| wire::in_zone(name, zone))
            .max_by_key(|(zone, _)| zone.len())
            .map_or_else(|| self.default.load_full(), |(_, set)| set.clone())
    }

    /// The answer a UDP reader thread holds ([`HotAnswers`]) for `packet`, a query as it came
    /// to a name this forwarder answers, before anything is parsed; `now` is when it came.
    pub fn answer_held(&self, packet: &[u8], hot: &mut HotAnswers, now: Instant) -> Option<Reply> {
        let reply = hot.get(packet, now, self.counting_down())?;
        Metrics::inc(&self.metrics.cache_hits);
        Some(reply)
    }

    /// Looks `req` up in the cache at `now`: the part of forwarding that never waits, which the
    /// server runs inline so that a fresh hit costs no task. A hit in the last tenth of its
    /// entry's TTL starts a refresh in the background (prefetch). A UDP reader passes its
    /// [`HotAnswers`], which hold a hit for [`Forwarder::answer_held`] to find next time.
    pub fn lookup(
        self: &Arc<Self>,
        req: &Request<'_>,
        hot: Option<&mut HotAnswers>,
        now: Instant,
    ) -> Lookup {
        let query = req.bytes();
        if req.edns.present && wire::has_option(query, req.edns.rdlen_at, LOOP_OPTION, &self.marker)
        {
            return Lookup::Loop;
        }
        let key = key_of(req);
        match self.cache.get(&key) {
            Some(entry) if !entry.is_stale(now) => {
                Metrics::inc(&self.metrics.cache_hits);
                let prefetching = self.settings.prefetch && entry.ttl >= PREFETCH_MIN_TTL;
                // A hit after this is in the last tenth of the TTL, and refreshes the entry.
                let until = entry.stored
                    + if prefetching {
                        entry.ttl - entry.ttl / 10
                    } else {
                        entry.ttl
                    };
                if now < until {
                    if let Some(hot) = hot {
                        hot.put(req, &entry, until, now, self.counting_down());
                    }
                } else if prefetching {
                    self.prefetch(key, req);
                }
                Lookup::Hit(self.serve(req, &entry, None, Path::CacheHit, now))
            }
            Some(stale) => Lookup::Stale(key, stale),
            None => Lookup::Miss(key),
        }
    }

    /// Refreshes `key` in the background, unless a refresh is already on its way.
    fn prefetch(self: &Arc<Self>, key: CacheKey, req: &Request<'_>) {
        let busy = self
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&key);
        if busy {
            return;
        }
        Metrics::inc(&self.metrics.prefetches);
        let this = self.clone();
        let query = req.bytes().to_vec();
        let edns = req.edns;
        tokio::spawn(async move {
            let _ = this
                .fetch_coalesced(key, &query, edns, Transport::Udp)
                .await;
        });
    }

    /// Answers `req` from cache or upstream.
    pub async fn forward(self: &Arc<Self>, req: &Request<'_>) -> Reply {
        let looked = self.lookup(req, None, Instant::now());
        self.resolve(req, looked).await
    }

    /// Answers `req` after `lookup` found no fresh answer for it: from upstream, or from the
    /// stale entry when upstream does not answer in time.
    pub async fn resolve(self: &Arc<Self>, req: &Request<'_>, looked: Lookup) -> Reply {
        let query = req.bytes();
        let servfail = || {
            let bytes = wire::error_response(query, &req.question, &req.edns, 2, true);
            Reply::to(req, bytes, Path::RefusedOrError)
        };
        let key = match looked {
            Lookup::Hit(reply) => return reply,
            Lookup::Loop => {
                // Our own query came back to us: answering it by forwarding would loop forever.
                Metrics::inc(&self.metrics.forward_loops);
                return servfail();
            }
            Lookup::Stale(key, stale) => {
                Metrics::inc(&self.metrics.cache_stale_hits);
                let fetch = self.fetch_coalesced(key, query, req.edns, req.transport);
                match tokio::time::timeout(CLIENT_RESPONSE_TIMER, fetch).await {
                    Ok(Some(fresh)) if wire::rcode(&fresh.bytes) != 2 => {
                        return self.serve(req, &fresh, None, Path::Forwarded, Instant::now());
                    }
                    _ => {
                        Metrics::inc(&self.metrics.stale_answers);
                        return self.serve(
                            req,
                            &stale,
                            Some(STALE_ANSWER_TTL),
                            Path::Stale,
                            Instant::now(),
                        );
                    }
                }
            }
            Lookup::Miss(key) => {
                if self.failed.contains_key(&key) {
                    // It failed moments ago: asking again now would only load a failing
                    // upstream (RFC 2308 section 7.1).
                    Metrics::inc(&self.metrics.servfail_cache_hits);
                    return servfail();
                }
                Metrics::inc(&self.metrics.cache_misses);
                key
            }
        };
        let failed_key = key.clone();
        let fetched = tokio::time::timeout(
            self.settings.timeout,
            self.fetch_coalesced(key, query, req.edns, req.transport),
        )
        .await
        .ok()
        .flatten();
        match fetched {
            Some(entry) => self.serve(req, &entry, None, Path::Forwarded, Instant::now()),
            None => {
                Metrics::inc(&self.metrics.forward_failures);
                if !self.settings.servfail_cache.is_zero() {
                    self.failed.insert(failed_key, ());
                }
                servfail()
            }
        }
    }

    /// Builds the client's answer from a stored upstream answer: the client's ID, RD and CD
    /// bits and question spelling, TTLs counted down (or set to `fixed_ttl`), truncated to
    /// the request's size limit with TC when it doesn't fit; `now` is when it is sent.
    fn serve(
        &self,
        req: &Request<'_>,
        entry: &Cached,
        fixed_ttl: Option<u32>,
        path: Path,
        now: Instant,
    ) -> Reply {
        if entry.bytes.len() > req.max_size {
            let rcode = wire::rcode(&entry.bytes);
            let bytes = wire::truncated_response(req.bytes(), &req.question, &req.edns, rcode);
            return Reply::to(req, bytes, path);
        }
        let mut out = entry.bytes.clone();
        let age = entry.age(now).as_secs().min(u32::MAX as u64) as u32;
        self.count_down(entry, age, fixed_ttl, &mut out);
        let query = req.bytes();
        let answer_name_end = wire::question_name_end(&out);
        wire::address_to(query, req.question.name_end, &mut out, answer_name_end);
        wire::set_id(&mut out, wire::id(query));
        Reply::to(req, out, path)
    }

    /// [`Forwarder::count_down`] as the hot answers apply it: TTLs counted down, not fixed.
    fn counting_down(&self) -> impl CountDown + '_ {
        |entry: &Cached, age: u32, out: &mut [u8]| self.count_down(entry, age, None, out)
    }

    /// Writes `entry`'s TTLs into `out`, a copy of its answer: counted down by `age` seconds
    /// within the cache's TTL bounds, or all set to `fixed_ttl`.
    fn count_down(&self, entry: &Cached, age: u32, fixed_ttl: Option<u32>, out: &mut [u8]) {
        let policy = self.cache.policy();
        if entry.ttl > Duration::ZERO || fixed_ttl.is_some() {
            wire::set_ttls(out, &entry.ttl_offsets, |t| match fixed_ttl {
                Some(f) => f,
                None => t
                    .max(if entry.negative { 0 } else { policy.min_ttl })
                    .min(policy.max_ttl)
                    .saturating_sub(age),
            });
        }
    }

    /// Joins the upstream query in flight for `key`, or starts one. The query runs on its own
    /// task, so it completes (and fills the cache) even when the waiting client gives up.
    async fn fetch_coalesced(
        self: &Arc<Self>,
        key: CacheKey,
        query: &[u8],
        edns: EdnsInfo,
        transport: Transport,
    ) -> FetchResult {
        let mut rx = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key) {
                Some(rx) => {
                    Metrics::inc(&self.metrics.coalesced_queries);
                    rx.clone()
                }
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.clone(), rx.clone());
                    let this = self.clone();
                    let query = query.to_vec();
                    tokio::spawn(async move {
                        let result = tokio::time::timeout(
                            this.settings.timeout,
                            this.fetch(&key, &query, edns, transport),
                        )
                        .await
                        .ok()
                        .flatten();
                        this.inflight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&key);
                        let _ = tx.send(Some(result));
                    });
                    rx
                }
            }
        };
        let result = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().flatten(),
            Err(_) => None,
        };
        result
    }

    /// Asks upstreams in health order until one answers usefully; stores the answer. `edns`
    /// is the query's EDNS record as the request read it.
    async fn fetch(
        &self,
        key: &CacheKey,
        query: &[u8],
        edns: EdnsInfo,
        transport: Transport,
    ) -> FetchResult {
        let set = self.upstreams_for(&key.name);
        if set.is_empty() {
            return None;
        }
        let mut upstream_query = query.to_vec();
        if edns.present {
            // Cap the payload size we invite, and mark the query so a loop back to us shows.
            let class_at = edns.rdlen_at - 6;
            // The same bound as our own answers' (`Transport::max_size`).
            let payload = Transport::Udp.max_size(Some(edns.payload)) as u16;
            upstream_query[class_at..class_at + 2].copy_from_slice(&payload.to_be_bytes());
            wire::append_option(&mut upstream_query, &edns, LOOP_OPTION, &self.marker);
        }
        let deadline = Instant::now() + self.settings.timeout;
        if set.all().iter().all(|u| u.is_down()) {
            // Every upstream failed repeatedly: one quick probe (so recovery is noticed), then
            // SERVFAIL, instead of making every client wait out the full timeout.
            Metrics::inc(&self.metrics.all_upstreams_down);
            let probe = set.order()[0].clone();
            let wait = ALL_DOWN_PROBE_TIMEOUT.min(self.settings.timeout);
            let done = exchange(probe, upstream_query, transport, wait).await;
            return self
                .judge(done)
                .and_then(|bytes| self.cache.store(key.clone(), bytes));
        }
        // Attempts in order: each round over the upstreams in health order. A new attempt
        // starts when the latest one fails or has had its attempt timeout; earlier attempts
        // keep listening until the deadline, so a late answer (a slow name) is still taken.
        let mut schedule: Vec<Arc<Upstream>> = Vec::new();
        for _ in 0..self.settings.attempts.max(1) {
            schedule.extend(set.order());
        }
        // The first attempt runs on this task (most misses need no other); later ones on
        // tasks of their own.
        let now = Instant::now();
        let first = exchange(
            schedule[0].clone(),
            upstream_query.clone(),
            transport,
            self.settings.timeout,
        );
        tokio::pin!(first);
        let mut first_live = true;
        let mut current = Some((schedule[0].clone(), now));
        let mut next = 1;
        let mut pending = JoinSet::new();
        // With `upstreamParallel`, the second attempt goes out at once.
        let mut launch = self.settings.parallel && schedule.len() > 1;
        loop {
            if launch {
                let now = Instant::now();
                let remaining = deadline.saturating_duration_since(now);
                if remaining.is_zero() {
                    return None;
                }
                if let Some(up) = schedule.get(next) {
                    next += 1;
                    pending.spawn(exchange(
                        up.clone(),
                        upstream_query.clone(),
                        transport,
                        remaining,
                    ));
                    current = Some((up.clone(), now));
                }
            }
            let step_end = match &current {
                Some((up, sent)) => {
                    let step = up.attempt_timeout().min(self.settings.attempt_timeout_cap);
                    (*sent + step).min(deadline)
                }
                None => deadline,
            };
            let done = tokio::select! {
                done = &mut first, if first_live => {
                    first_live = false;
                    Some(done)
                }
                joined = pending.join_next(), if !pending.is_empty() => {
                    joined.and_then(Result::ok)
                }
                _ = tokio::time::sleep_until(step_end.into()) => {
                    // The latest attempt had its time: count it against its upstream unless
                    // the upstream answered anything meanwhile (then this name is just slow).
                    if let Some((up, sent)) = current.take() {
                        Metrics::inc(&self.metrics.upstream_timeouts);
                        if !up.answered_since(sent) {
                            up.failure();
                            Metrics::inc(&self.metrics.upstream_failures);
                        }
                    }
                    if Instant::now() >= deadline {
                        return None;
                    }
                    None
                }
            };
            if let Some(done) = done {
                if let Some(bytes) = self.judge(done) {
                    return self.cache.store(key.clone(), bytes);
                }
            }
            // Something failed or ran out of time: the next attempt goes out.
            launch = true;
            if !first_live && pending.is_empty() && next >= schedule.len() {
                return None;
            }
        }
    }

    /// Judges one finished exchange: a useful answer (names checked, TTLs made sane), or
    /// `None` after recording why it was not.
    fn judge(&self, done: Exchanged) -> Option<Vec<u8>> {
        let up = &done.upstream;
        match done.result {
            Ok(mut r) => {
                if let Err(e) = wire::sanitize(&mut r) {
                    // A malformed answer (a compression loop, a name running out of its
                    // record) is neither relayed nor cached; the client gets SERVFAIL unless
                    // another upstream answers properly.
                    debug!(upstream = %up.addr, error = %e, "malformed upstream answer");
                    up.answered();
                    Metrics::inc(&self.metrics.upstream_bad_answers);
                    return None;
                }
                if matches!(wire::rcode(&r), 2 | 4 | 5) {
                    // SERVFAIL, NOTIMP and REFUSED mean "ask someone else".
                    debug!(upstream = %up.addr, rcode = wire::rcode(&r), "upstream refused or failed");
                    up.answered();
                    up.failure();
                    Metrics::inc(&self.metrics.upstream_failures);
                    return None;
                }
                up.success(done.started.elapsed());
                Metrics::inc(&self.metrics.upstream_queries);
                Some(r)
            }
            Err(ExchangeError::Timeout) => None,
            Err(e) => {
                debug!(upstream = %up.addr, error = %e, "upstream exchange failed");
                up.failure();
                Metrics::inc(&self.metrics.upstream_failures);
                None
            }
        }
    }
}

/// One finished exchange with one upstream.
struct Exchanged {
    upstream: Arc<Upstream>,
    started: Instant,
    result: Result<Vec<u8>, ExchangeError>,
}

/// One exchange with one upstream, listening for up to `timeout`: UDP, then TCP when the
/// answer is truncated (or TCP straight away for TCP clients). Runs on its own task, so it
/// keeps listening while later attempts go out.
async fn exchange(
    up: Arc<Upstream>,
    mut query: Vec<u8>,
    transport: Transport,
    timeout: Duration,
) -> Exchanged {
    wire::set_id(&mut query, rand::random());
    let started = Instant::now();
    let result = match transport {
        Transport::Tcp => exchange_tcp(up.addr, &query, timeout).await,
        Transport::Udp => match up.exchange_udp(&query, timeout).await {
            Ok(r) if wire::truncated(&r) => {
                let left = timeout
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(100));
                exchange_tcp(up.addr, &query, left).await
            }
            other => other,
        },
    };
    Exchanged {
        upstream: up,
        started,
        result,
    }
}

/// The cache key of a request: its question and the DO and CD bits.
fn key_of(req: &Request<'_>) -> CacheKey {
    let q = &req.question;
    CacheKey {
        name: q.name_lower.as_slice().into(),
        qtype: q.qtype,
        qclass: q.qclass,
        dnssec_ok: req.edns.dnssec_ok,
        checking_disabled: req.bytes()[3] & 0x10 != 0,
    }
}

/// A zone's name as lowercase text ending in a dot, the spelling of `Question::name_lower`.
fn zone_text(zone: &Name) -> Vec<u8> {
    let mut text = zone.to_ascii().to_ascii_lowercase().into_bytes();
    if text.last() != Some(&b'.') {
        text.push(b'.');
    }
    text
}

/// Parses upstream addresses written as `ip` or `ip:port` (port 53 by default).
pub fn parse_upstream(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::hot::RECHECK_EVERY;

    fn forwarder(default: &[SocketAddr], zones: Vec<(&str, SocketAddr)>) -> Arc<Forwarder> {
        let zones = zones
            .into_iter()
            .map(|(z, a)| (Name::from_ascii(z).unwrap(), UpstreamSet::new(&[a], false)))
            .collect();
        let settings = ForwardSettings {
            timeout: Duration::from_millis(300),
            ..ForwardSettings::default()
        };
        Arc::new(Forwarder::new(
            UpstreamSet::new(default, false),
            zones,
            settings,
            Arc::new(Metrics::default()),
        ))
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn zone_names_are_spelled_like_question_names() {
        assert_eq!(
            zone_text(&Name::from_ascii("Corp.Example").unwrap()),
            b"corp.example."
        );
    }

    #[test]
    fn the_longest_matching_zone_picks_the_upstreams() {
        let f = forwarder(
            &[addr(1)],
            vec![("example.", addr(2)), ("corp.example.", addr(3))],
        );
        let pick = |name: &[u8]| f.upstreams_for(name).all()[0].addr.port();
        assert_eq!(pick(b"db.corp.example."), 3);
        assert_eq!(pick(b"www.example."), 2);
        assert_eq!(pick(b"www.example.org."), 1);
    }

    fn query(name: &str) -> Vec<u8> {
        let mut m = hickory_proto::op::Message::query();
        m.add_query(hickory_proto::op::Query::query(
            Name::from_ascii(name).unwrap(),
            hickory_proto::rr::RecordType::A,
        ));
        m.to_vec().unwrap()
    }

    fn answer_a(name: &str, ip: [u8; 4]) -> Vec<u8> {
        let name = Name::from_ascii(name).unwrap();
        let mut m = hickory_proto::op::Message::query();
        m.metadata.message_type = hickory_proto::op::MessageType::Response;
        m.add_query(hickory_proto::op::Query::query(
            name.clone(),
            hickory_proto::rr::RecordType::A,
        ));
        m.add_answer(hickory_proto::rr::Record::from_rdata(
            name,
            300,
            hickory_proto::rr::RData::A(std::net::Ipv4Addr::from(ip).into()),
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn a_readers_hot_answers_serve_its_hits_and_pick_up_a_replaced_entry() {
        let f = forwarder(&[addr(1)], vec![]);
        let bytes = query("hot.example.");
        let req = Request::parse(&bytes, Transport::Udp, &f.metrics).unwrap();
        let key = key_of(&req);
        f.cache
            .store(key.clone(), answer_a("hot.example.", [192, 0, 2, 1]));
        let address = |reply: Reply| {
            assert_eq!(wire::id(&reply.bytes), wire::id(&bytes));
            reply.bytes[reply.bytes.len() - 4..].to_vec()
        };
        let looked_up = |looked: Lookup| match looked {
            Lookup::Hit(reply) => address(reply),
            _ => panic!("not a hit"),
        };
        let now = Instant::now;
        let mut hot = HotAnswers::default();
        assert!(f.answer_held(&bytes, &mut hot, now()).is_none());
        assert_eq!(
            looked_up(f.lookup(&req, Some(&mut hot), now())),
            [192, 0, 2, 1]
        );
        f.cache.store(key, answer_a("hot.example.", [192, 0, 2, 2]));
        // The held answer is served until moka is asked again.
        for _ in 0..RECHECK_EVERY {
            let held = f.answer_held(&bytes, &mut hot, now()).expect("held");
            assert_eq!(address(held), [192, 0, 2, 1]);
        }
        assert!(f.answer_held(&bytes, &mut hot, now()).is_none());
        assert_eq!(
            looked_up(f.lookup(&req, Some(&mut hot), now())),
            [192, 0, 2, 2]
        );
        let held = f.answer_held(&bytes, &mut hot, now()).expect("held");
        assert_eq!(address(held), [192, 0, 2, 2]);
        // Without hot answers (TCP), moka's entry at once.
        f.cache
            .store(key_of(&req), answer_a("hot.example.", [192, 0, 2, 3]));
        assert_eq!(looked_up(f.lookup(&req, None, now())), [192, 0, 2, 3]);
        assert_eq!(
            Metrics::get(&f.metrics.cache_hits),
            1 + RECHECK_EVERY as u64 + 3
        );
    }

    #[test]
    fn a_held_answer_is_byte_for_byte_what_moka_would_serve_at_every_age() {
        let f = forwarder(&[addr(1)], vec![]);
        let mut bytes = query("HeLd.Example.");
        // The client's ID and flags, none of them the upstream's.
        wire::set_id(&mut bytes, 0xbeef);
        bytes[2] &= !0x01;
        let req = Request::parse(&bytes, Transport::Udp, &f.metrics).unwrap();
        let mut upstream = answer_a("held.example.", [192, 0, 2, 1]);
        wire::set_id(&mut upstream, 0x1234);
        let stored = f
            .cache
            .store(key_of(&req), upstream)
            .expect("cacheable")
            .stored;
        let bytes_of = |looked: Lookup| match looked {
            Lookup::Hit(reply) => reply.bytes,
            _ => panic!("not a hit"),
        };
        let mut hot = HotAnswers::default();
        bytes_of(f.lookup(&req, Some(&mut hot), stored));
        for ms in [0, 400, 999, 1_000, 1_700, 12_300, 12_999, 200_000] {
            let now = stored + Duration::from_millis(ms);
            let from_moka = bytes_of(f.lookup(&req, None, now));
            let held = f.answer_held(&bytes, &mut hot, now).expect("held").bytes;
            assert_eq!(held, from_moka, "at {ms} ms");
            assert_eq!(wire::id(&held), 0xbeef);
            assert_eq!(held[2] & 0x01, 0);
            assert_eq!(&held[12..17], b"\x04HeLd");
            let ttl = u32::from_be_bytes(held[held.len() - 10..held.len() - 6].try_into().unwrap());
            assert_eq!(ttl, 300 - (ms / 1000) as u32, "at {ms} ms");
        }
    }

    #[tokio::test]
    async fn an_upstream_that_never_answers_gives_servfail_and_clears_its_key() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let f = forwarder(&[silent.local_addr().unwrap()], vec![]);
        let bytes = query("slow.example.");
        let req = Request::parse(&bytes, Transport::Udp, &f.metrics).unwrap();
        let reply = f.forward(&req).await;
        assert_eq!(wire::rcode(&reply.bytes), 2);
        assert_eq!((reply.rcode, reply.qtype), (2, Some(1)));
        assert_eq!(reply.path, Path::RefusedOrError);
        // The upstream query's own timeout ends it too, and the next query starts afresh.
        let cleared = async {
            while !f.inflight.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(1), cleared)
            .await
            .expect("in-flight entry cleared");
        assert_eq!(Metrics::get(&f.metrics.forward_failures), 1);
    }
}
