//! Who may ask, and how fast: client access control and response rate limiting.
//!
//! Access control follows unbound's `access-control` and dnsmasq's `--local-service`: by default
//! the daemon answers loopback and every subnet directly attached to one of the host's
//! interfaces (containers on docker0 or a CNI bridge, a link-local listen address), and refuses
//! everyone else, so a listener on a public address is not an open resolver. The rules are
//! prefix lists matched longest prefix first, precomputed, and checked per query without
//! allocating; a loopback source costs two comparisons. Attached subnets are re-read
//! periodically, since interfaces come and go.
//!
//! Rate limiting follows BIND's RRL: responses per second per client prefix (/24 for IPv4, /56
//! for IPv6), counted in a fixed-size table; over the limit, every `slip`th response goes out as
//! an empty truncated answer (a real client retries over TCP, which cannot be spoofed) and the
//! others are dropped. Loopback clients are never limited (their source cannot be spoofed from
//! off the host).

use crate::config::Config;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

/// Why a client rule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Not `ip`, `ip/len` or `local`.
    #[error("`{0}` is not an address, a CIDR prefix or `local`")]
    Syntax(String),
    /// The prefix length is larger than the address.
    #[error("`{0}`: prefix length out of range")]
    Length(String),
}

/// One address prefix, e.g. `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The address with its host bits cleared.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

impl Prefix {
    /// The prefix of `len` bits holding `addr` (host bits cleared).
    pub fn new(addr: IpAddr, len: u8) -> Prefix {
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(u32::from(a).mask(len.min(32)).into()),
            IpAddr::V6(a) => IpAddr::V6(u128::from(a).mask(len.min(128)).into()),
        };
        Prefix {
            addr,
            len: len.min(max_len(&addr)),
        }
    }

    /// Whether `ip` lies in this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) => u32::from(a).mask(self.len) == u32::from(p),
            (IpAddr::V6(p), IpAddr::V6(a)) => u128::from(a).mask(self.len) == u128::from(p),
            _ => false,
        }
    }
}

fn max_len(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// Clearing host bits for both address widths.
trait Mask: Sized {
    fn mask(self, len: u8) -> Self;
}

impl Mask for u32 {
    fn mask(self, len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len)))
        }
    }
}

impl Mask for u128 {
    fn mask(self, len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len)))
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Prefix, RuleError> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| RuleError::Syntax(s.into()))?;
        let len = match len {
            None => max_len(&ip),
            Some(l) => l.parse().map_err(|_| RuleError::Syntax(s.into()))?,
        };
        if len > max_len(&ip) {
            return Err(RuleError::Length(s.into()));
        }
        Ok(Prefix::new(ip, len))
    }
}

/// One entry of `allowClients` / `refuseClients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRule {
    /// Every subnet directly attached to a local interface (re-read periodically).
    LocalSubnets,
    /// A fixed prefix.
    Prefix(Prefix),
}

impl FromStr for ClientRule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<ClientRule, RuleError> {
        if s.eq_ignore_ascii_case("local") {
            Ok(ClientRule::LocalSubnets)
        } else {
            s.parse().map(ClientRule::Prefix)
        }
    }
}

impl fmt::Display for ClientRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientRule::LocalSubnets => f.write_str("local"),
            ClientRule::Prefix(p) => p.fmt(f),
        }
    }
}

/// What the access rules say about a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Answer it.
    Allow,
    /// Answer REFUSED.
    Refuse,
}

/// The rules as matched: prefixes longest first, each with its verdict.
#[derive(Debug, Default)]
struct Table {
    v4: Vec<(u32, u8, Access)>,
    v6: Vec<(u128, u8, Access)>,
}

impl Table {
    fn build(allow: &[Prefix], refuse: &[Prefix]) -> Table {
        let mut t = Table::default();
        // Refusals first, so that a stable sort puts them ahead of an allow of equal length.
        let all = refuse
            .iter()
            .map(|p| (p, Access::Refuse))
            .chain(allow.iter().map(|p| (p, Access::Allow)));
        for (p, access) in all {
            match p.addr {
                IpAddr::V4(a) => t.v4.push((u32::from(a), p.len, access)),
                IpAddr::V6(a) => t.v6.push((u128::from(a), p.len, access)),
            }
        }
        t.v4.sort_by_key(|r| std::cmp::Reverse(r.1));
        t.v6.sort_by_key(|r| std::cmp::Reverse(r.1));
        t.v4.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        t.v6.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        t
    }

    fn check(&self, ip: IpAddr) -> Access {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find(|(net, len, _)| a.mask(*len) == *net)
                    .map_or(Access::Refuse, |r| r.2)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find(|(net, len, _)| a.mask(*len) == *net)
                    .map_or(Access::Refuse, |r| r.2)
            }
        }
    }
}

/// Loopback prefixes, always allowed unless a refusal covers them.
fn loopback() -> [Prefix; 2] {
    [
        Prefix::new(IpAddr::from([127, 0, 0, 0]), 8),
        Prefix::new(IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
    ]
}

/// How often the attached subnets are re-read.
pub const LOCAL_SUBNETS_REFRESH: Duration = Duration::from_secs(30);

/// The client access rules in force: fixed prefixes plus, when `local` is listed, the host's
/// attached subnets as last read.
#[derive(Debug)]
pub struct ClientAcl {
    allow: Vec<ClientRule>,
    refuse: Vec<ClientRule>,
    table: ArcSwap<Table>,
    /// Loopback is allowed and no refusal overlaps it: answer without looking at the table.
    loopback_fast: bool,
}

impl ClientAcl {
    /// Rules allowing loopback and `allow`, refusing `refuse` (the longest matching prefix
    /// wins; a refusal wins a tie; what matches nothing is refused).
    pub fn new(allow: &[ClientRule], refuse: &[ClientRule]) -> ClientAcl {
        let overlaps_loopback = |r: &ClientRule| match r {
            ClientRule::LocalSubnets => false,
            ClientRule::Prefix(p) => loopback()
                .iter()
                .any(|l| p.contains(l.addr) || l.contains(p.addr)),
        };
        let acl = ClientAcl {
            allow: allow.to_vec(),
            refuse: refuse.to_vec(),
            table: ArcSwap::from_pointee(Table::default()),
            loopback_fast: !refuse.iter().any(overlaps_loopback),
        };
        acl.refresh();
        acl
    }

    /// Rules that allow every client (for tests and tools).
    pub fn open() -> ClientAcl {
        let all = [
            ClientRule::Prefix("0.0.0.0/0".parse().expect("valid")),
            ClientRule::Prefix("::/0".parse().expect("valid")),
        ];
        ClientAcl::new(&all, &[])
    }

    /// Recomputes the table, re-reading the attached subnets when `local` is used.
    pub fn refresh(&self) {
        let local = if self
            .allow
            .iter()
            .chain(&self.refuse)
            .any(|r| *r == ClientRule::LocalSubnets)
        {
            crate::netif::attached_subnets()
        } else {
            Vec::new()
        };
        let expand = |rules: &[ClientRule]| -> Vec<Prefix> {
            rules
                .iter()
                .flat_map(|r| match r {
                    ClientRule::LocalSubnets => local.clone(),
                    ClientRule::Prefix(p) => vec![*p],
                })
                .collect()
        };
        let mut allow = expand(&self.allow);
        allow.extend(loopback());
        let refuse = expand(&self.refuse);
        self.table.store(Arc::new(Table::build(&allow, &refuse)));
    }

    /// The verdict for a client address.
    #[inline]
    pub fn check(&self, ip: IpAddr) -> Access {
        let ip = canonical(ip);
        if self.loopback_fast && is_loopback(ip) {
            return Access::Allow;
        }
        self.table.load().check(ip)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
#[inline]
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Loopback, after `canonical`.
#[inline]
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.octets()[0] == 127,
        IpAddr::V6(a) => a == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// Re-reads the attached subnets every `LOCAL_SUBNETS_REFRESH` until the task is aborted.
pub async fn refresh_periodically(acl: Arc<ClientAcl>) {
    let mut tick = tokio::time::interval(LOCAL_SUBNETS_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let acl = acl.clone();
        // getifaddrs is a netlink round trip: keep it off the threads that answer queries.
        let _ = tokio::task::spawn_blocking(move || acl.refresh()).await;
    }
}

/// Response rate limiting settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Responses per second per client prefix; 0 turns limiting off.
    pub per_second: u32,
    /// Every `slip`th limited response is sent as an empty truncated answer; 0 drops them all.
    pub slip: u32,
}

impl RateLimit {
    /// `rateLimit` and `rateLimitSlip`.
    pub fn from_config(c: &Config) -> RateLimit {
        RateLimit {
            per_second: c.rate_limit,
            slip: c.rate_limit_slip,
        }
    }
}

/// The configuration's defaults (written once, in [`Config::default`]).
impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::from_config(&Config::default())
    }
}

/// What to do with one UDP response under rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Send an empty answer with TC set instead.
    Slip,
    /// Send nothing.
    Drop,
}

/// Slots in the limiter's table: a fixed bound on its memory (32 bytes each), enough for
/// tens of thousands of active prefixes before collisions matter.
const SLOTS: usize = 16_384;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u128,
    /// Seconds since the limiter's epoch of the counting window.
    second: u32,
    count: u32,
}

/// BIND-style response rate limiter over client prefixes (/24 for IPv4, /56 for IPv6).
///
/// The table is direct-mapped with a random hash, so its memory is fixed: a prefix whose slot
/// is taken by another active prefix takes the slot over (its count restarts), which can only
/// let a little more through, never block a client that is under the limit.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    epoch: Instant,
    hasher: ahash::RandomState,
    table: Mutex<Vec<Slot>>,
}

impl RateLimiter {
    /// A limiter with `limit`.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            epoch: Instant::now(),
            hasher: ahash::RandomState::new(),
            table: Mutex::new(Vec::new()),
        }
    }

    /// Whether limiting is on.
    pub fn enabled(&self) -> bool {
        self.limit.per_second > 0
    }

    /// Counts one response to `ip` now and says whether to send it.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        self.check_at(ip, self.epoch.elapsed())
    }

    /// `check` at a given time since the limiter's epoch (for tests).
    pub fn check_at(&self, ip: IpAddr, since_epoch: Duration) -> Verdict {
        if !self.enabled() {
            return Verdict::Send;
        }
        let ip = canonical(ip);
        if is_loopback(ip) {
            return Verdict::Send;
        }
        let key = match ip {
            IpAddr::V4(a) => (1u128 << 127) | u128::from(u32::from(a) >> 8),
            IpAddr::V6(a) => u128::from(a) >> 72,
        };
        let second = since_epoch.as_secs() as u32;
        let i = (self.hasher.hash_one(key) as usize) % SLOTS;
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.is_empty() {
            table.resize(SLOTS, Slot::default());
        }
        let slot = &mut table[i];
        if slot.key != key || slot.second != second {
            *slot = Slot {
                key,
                second,
                count: 0,
            };
        }
        slot.count = slot.count.saturating_add(1);
        if slot.count <= self.limit.per_second {
            return Verdict::Send;
        }
        let over = slot.count - self.limit.per_second;
        if self.limit.slip > 0 && over.is_multiple_of(self.limit.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

/// Query type ANY.
const TYPE_ANY: u16 = 255;

/// What the listeners consult before answering a client: the access rules, the rate limiter,
/// and the counters of what they turned away.
#[derive(Debug)]
pub struct ClientGuard {
    /// Who is answered.
    pub acl: Arc<ClientAcl>,
    /// How fast non-loopback clients are answered over UDP.
    pub limiter: RateLimiter,
    metrics: Arc<crate::metrics::Metrics>,
}

/// What a UDP listener does with a query before looking at its name.
#[derive(Debug)]
pub enum Admission {
    /// Answer it normally.
    Serve,
    /// Send this response (REFUSED, or TC for ANY) instead, through `limit`.
    Reply(Vec<u8>),
    /// Send nothing.
    Drop,
}

impl ClientGuard {
    /// A guard with `acl` and `limit`, counting into `metrics`.
    pub fn new(
        acl: Arc<ClientAcl>,
        limit: RateLimit,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> ClientGuard {
        ClientGuard {
            acl,
            limiter: RateLimiter::new(limit),
            metrics,
        }
    }

    /// Decides on a UDP query from `peer` before it is answered. Loopback costs two
    /// comparisons. A refused client gets REFUSED (no larger than its query, and rate limited
    /// like any answer), which tells a misconfigured client why rather than letting it time
    /// out. ANY over UDP from a non-loopback client gets an empty truncated answer (RFC 8482
    /// allows it; PowerDNS's `any-to-tcp` does the same), so ANY cannot amplify toward a
    /// spoofed source while a real client still gets its answer over TCP.
    #[inline]
    pub fn admit_udp(&self, peer: IpAddr, packet: &[u8]) -> Admission {
        if self.acl.loopback_fast && is_loopback(peer) {
            return Admission::Serve;
        }
        if self.acl.check(peer) == Access::Refuse {
            crate::metrics::Metrics::inc(&self.metrics.refused_clients);
            return match super::wire::empty_response(packet, 5, false) {
                Some(r) => Admission::Reply(r),
                None => Admission::Drop,
            };
        }
        if !is_loopback(canonical(peer)) && super::wire::query_type(packet) == Some(TYPE_ANY) {
            crate::metrics::Metrics::inc(&self.metrics.any_truncated);
            return match super::wire::empty_response(packet, 0, true) {
                Some(r) => Admission::Reply(r),
                None => Admission::Drop,
            };
        }
        Admission::Serve
    }

    /// Whether a TCP connection from `peer` is served (otherwise its queries get REFUSED).
    #[inline]
    pub fn admit_tcp(&self, peer: IpAddr) -> bool {
        (self.acl.loopback_fast && is_loopback(peer)) || self.acl.check(peer) == Access::Allow
    }

    /// Counts a REFUSED answer to a TCP client.
    pub fn refused_tcp(&self) {
        crate::metrics::Metrics::inc(&self.metrics.refused_clients);
    }

    /// Passes one UDP response to `peer` through the rate limiter: the response itself, an
    /// empty truncated answer in its place (slip), or nothing.
    #[inline]
    pub fn limit(&self, peer: IpAddr, resp: Vec<u8>) -> Option<Vec<u8>> {
        if is_loopback(peer) || !self.limiter.enabled() {
            return Some(resp);
        }
        match self.limiter.check(peer) {
            Verdict::Send => Some(resp),
            Verdict::Slip => {
                crate::metrics::Metrics::inc(&self.metrics.rate_limit_slips);
                super::wire::empty_response(&resp, super::wire::rcode(&resp), true)
            }
            Verdict::Drop => {
                crate::metrics::Metrics::inc(&self.metrics.rate_limited_responses);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rules(list: &[&str]) -> Vec<ClientRule> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn rules_parse_and_reject_garbage() {
        assert_eq!(
            "10.1.2.3/8".parse::<ClientRule>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("LOCAL".parse::<ClientRule>(), Ok(ClientRule::LocalSubnets));
        assert_eq!(
            "fd00::1".parse::<ClientRule>().unwrap().to_string(),
            "fd00::1/128"
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<ClientRule>(),
            Err(RuleError::Length(_))
        ));
        assert!(matches!(
            "example.com".parse::<ClientRule>(),
            Err(RuleError::Syntax(_))
        ));
    }

    #[test]
    fn longest_prefix_wins_and_refusal_wins_ties() {
        let acl = ClientAcl::new(
            &rules(&["10.0.0.0/8", "10.1.2.0/24", "2001:db8::/32"]),
            &rules(&["10.1.0.0/16", "10.9.0.0/16"]),
        );
        assert_eq!(acl.check(ip("10.5.5.5")), Access::Allow);
        assert_eq!(acl.check(ip("10.1.5.5")), Access::Refuse);
        assert_eq!(acl.check(ip("10.1.2.9")), Access::Allow);
        assert_eq!(acl.check(ip("192.0.2.1")), Access::Refuse);
        assert_eq!(acl.check(ip("2001:db8::5")), Access::Allow);
        assert_eq!(acl.check(ip("2001:db9::5")), Access::Refuse);
        assert_eq!(acl.check(ip("::ffff:10.5.5.5")), Access::Allow, "mapped");
        let tie = ClientAcl::new(&rules(&["10.0.0.0/8"]), &rules(&["10.0.0.0/8"]));
        assert_eq!(tie.check(ip("10.0.0.1")), Access::Refuse);
    }

    #[test]
    fn loopback_is_allowed_unless_refused() {
        let acl = ClientAcl::new(&[], &[]);
        assert!(acl.loopback_fast);
        assert_eq!(acl.check(ip("127.0.0.1")), Access::Allow);
        assert_eq!(acl.check(ip("127.9.9.9")), Access::Allow);
        assert_eq!(acl.check(ip("::1")), Access::Allow);
        assert_eq!(acl.check(ip("192.0.2.1")), Access::Refuse);
        let acl = ClientAcl::new(&[], &rules(&["127.0.0.2"]));
        assert!(!acl.loopback_fast);
        assert_eq!(acl.check(ip("127.0.0.1")), Access::Allow);
        assert_eq!(acl.check(ip("127.0.0.2")), Access::Refuse);
    }

    #[test]
    fn local_subnets_are_the_attached_ones() {
        let acl = ClientAcl::new(&[ClientRule::LocalSubnets], &[]);
        for p in crate::netif::attached_subnets() {
            assert_eq!(acl.check(p.addr), Access::Allow, "{p}");
        }
        // A documentation address outside every attached subnet.
        if !crate::netif::attached_subnets()
            .iter()
            .any(|p| p.contains(ip("203.0.113.7")))
        {
            assert_eq!(acl.check(ip("203.0.113.7")), Access::Refuse);
        }
    }

    #[test]
    fn rate_limiter_memory_is_fixed() {
        assert_eq!(std::mem::size_of::<Slot>() * SLOTS, 512 * 1024);
        let rl = RateLimiter::new(RateLimit::default());
        for i in 0..100_000u32 {
            rl.check_at(
                IpAddr::from((0x0a00_0000 + (i << 8)).to_be_bytes()),
                Duration::ZERO,
            );
        }
        assert_eq!(rl.table.lock().unwrap().len(), SLOTS);
    }

    #[test]
    fn rate_limiter_limits_per_prefix_and_slips() {
        let rl = RateLimiter::new(RateLimit {
            per_second: 10,
            slip: 2,
        });
        let t = Duration::from_millis(100);
        let verdicts: Vec<Verdict> = (0..20).map(|_| rl.check_at(ip("192.0.2.1"), t)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Send));
        let slips = verdicts[10..]
            .iter()
            .filter(|v| **v == Verdict::Slip)
            .count();
        let drops = verdicts[10..]
            .iter()
            .filter(|v| **v == Verdict::Drop)
            .count();
        assert_eq!((slips, drops), (5, 5));
        // The same /24 shares the budget; another prefix has its own.
        assert_ne!(rl.check_at(ip("192.0.2.200"), t), Verdict::Send);
        assert_eq!(rl.check_at(ip("192.0.3.1"), t), Verdict::Send);
        // The next second starts afresh.
        assert_eq!(
            rl.check_at(ip("192.0.2.1"), Duration::from_millis(1100)),
            Verdict::Send
        );
        // IPv6 by /56.
        for _ in 0..10 {
            assert_eq!(rl.check_at(ip("2001:db8:0:1::1"), t), Verdict::Send);
        }
        assert_ne!(rl.check_at(ip("2001:db8:0:ff::2"), t), Verdict::Send);
        assert_eq!(rl.check_at(ip("2001:db8:0:100::1"), t), Verdict::Send);
        // Loopback is never limited; slip 0 drops everything over the limit.
        for _ in 0..100 {
            assert_eq!(rl.check_at(ip("127.0.0.1"), t), Verdict::Send);
        }
        let strict = RateLimiter::new(RateLimit {
            per_second: 1,
            slip: 0,
        });
        assert_eq!(strict.check_at(ip("198.51.100.1"), t), Verdict::Send);
        assert_eq!(strict.check_at(ip("198.51.100.1"), t), Verdict::Drop);
        assert_eq!(strict.check_at(ip("198.51.100.1"), t), Verdict::Drop);
        let off = RateLimiter::new(RateLimit {
            per_second: 0,
            slip: 2,
        });
        for _ in 0..100 {
            assert_eq!(off.check_at(ip("198.51.100.1"), t), Verdict::Send);
        }
    }
}
