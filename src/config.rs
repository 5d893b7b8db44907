//! Configuration: Mesos-DNS's `config.json` read as is, plus this daemon's own keys.
//!
//! Mesos-DNS decodes its config with Go's `encoding/json`, which matches keys without regard to
//! case (`refreshSeconds`, `RefreshSeconds` and `refreshseconds` are one key) and ignores keys it
//! doesn't know. This reader matches keys the same way, so existing files load unchanged, but it
//! reports unknown keys as warnings instead of ignoring them silently, and rejects a value of the
//! wrong type or range with an error that names the key.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use reqwest::Url;
use serde_json::{Map, Value};

use crate::dns::access::{ClientRule, RuleError};
use crate::mesos::model::split_host_port;
use crate::mesos::zk::ZkUrl;
use crate::records::labels::LabelSpec;
use crate::records::static_records::StaticRecords;

/// Where task addresses come from, in the priority order of `IPSources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSource {
    /// `container_status.network_infos` of the latest running status.
    NetInfo,
    /// The `Docker.NetworkSettings.IPAddress` status label.
    Docker,
    /// The `MesosContainerizer.NetworkSettings.IPAddress` status label.
    Mesos,
    /// The address of the agent the task runs on.
    Host,
    /// Ours: the container address (`netinfo`) when the task is reachable on it, else the
    /// agent's; a Docker `BRIDGE` or port-mapped task is reachable only on the agent.
    Routable,
}

impl IpSource {
    /// Parses a source name as written in `IPSources`.
    pub fn parse(name: &str) -> Option<IpSource> {
        match name {
            "netinfo" => Some(IpSource::NetInfo),
            "docker" => Some(IpSource::Docker),
            "mesos" => Some(IpSource::Mesos),
            "host" => Some(IpSource::Host),
            "routable" => Some(IpSource::Routable),
            _ => None,
        }
    }
}

/// An upstream resolver address, parsed when the configuration is read: `ip` (port 53) or
/// `ip:port`. Shown (in `/v1/config`) as written, as Mesos-DNS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The address queries go to.
    pub addr: SocketAddr,
    text: String,
}

impl std::str::FromStr for Upstream {
    type Err = String;

    fn from_str(text: &str) -> Result<Upstream, String> {
        let addr = match text.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, 53),
            Err(_) => text
                .parse()
                .map_err(|_| format!("`{text}` is not an ip or ip:port"))?,
        };
        Ok(Upstream {
            addr,
            text: text.to_string(),
        })
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Upstream {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// HTTP basic credentials for the Mesos master (`mesosCredentials`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Principal (user name).
    pub principal: String,
    /// Secret (password).
    pub secret: String,
}

/// Where the install saves the host's original resolv.conf: `savedResolvConf`'s default, and
/// the `resolvconf` command's.
pub const SAVED_RESOLV_CONF: &str = "/etc/mesos-dns-sidecar/resolv.conf.orig";

/// The system resolv.conf: `resolvConf`'s default, and the file the `resolvconf` command
/// manages by default.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The daemon's whole configuration, with Mesos-DNS's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seconds between state refreshes (`refreshSeconds`, default 60).
    pub refresh_seconds: u64,
    /// DNS port (`port`, default 53).
    pub port: u16,
    /// Upstream query timeout in seconds (`timeout`, default 5).
    pub timeout: u64,
    /// Timeout for fetching the master state, seconds (`stateTimeoutSeconds`, default 300).
    pub state_timeout_seconds: u64,
    /// How long to wait for ZooKeeper at start, seconds (`zkDetectionTimeout`, default 30).
    pub zk_detection_timeout: u64,
    /// HTTP API port (`httpport`, default 8123).
    pub http_port: u16,
    /// TTL of every record (`ttl`, default 60).
    pub ttl: u32,
    /// SOA refresh (`SOARefresh`, default 60).
    pub soa_refresh: u32,
    /// SOA retry (`SOARetry`, default 600).
    pub soa_retry: u32,
    /// SOA expire (`SOAExpire`, default 86400).
    pub soa_expire: u32,
    /// SOA minimum TTL (`SOAMinttl`, default 60).
    pub soa_minttl: u32,
    /// Primary name server, fully qualified (`SOAMname`, default `ns1.mesos.`).
    pub soa_mname: String,
    /// Admin mailbox as a name, fully qualified (`SOARname`, default `root.ns1.mesos.`).
    pub soa_rname: String,
    /// Static Mesos masters, `ip:port` (`masters`).
    pub masters: Vec<String>,
    /// Upstream resolvers, `ip` or `ip:port` (`resolvers`); empty means the host's own.
    pub resolvers: Vec<Upstream>,
    /// Task address sources in priority order (`IPSources`).
    pub ip_sources: Vec<IpSource>,
    /// ZooKeeper URL for master detection (`zk`), parsed; `None` when unused.
    pub zk: Option<ZkUrl>,
    /// The cluster domain, lowercase, without trailing dot (`domain`, default `mesos`).
    pub domain: String,
    /// DNS listen address (`listener`; default 127.0.0.1, where Mesos-DNS says 0.0.0.0: a
    /// node-local resolver has no business on every interface unless told so).
    pub listener: IpAddr,
    /// HTTP listen address (`HTTPListener`; default 127.0.0.1, as `listener`).
    pub http_listener: IpAddr,
    /// Whether answers say recursion is available (`recurseon`, default true): Mesos-DNS's
    /// meaning, the RA bit only.
    pub recurse_on: bool,
    /// Whether the DNS server runs (`dnson`, default true).
    pub dns_on: bool,
    /// Whether the HTTP API runs (`httpon`, default true).
    pub http_on: bool,
    /// Whether names outside the domain are forwarded (`externalon`, default true), as in
    /// Mesos-DNS, where it decides whether there are forwarders at all.
    pub external_on: bool,
    /// RFC 952 labels instead of RFC 1123 (`EnforceRFC952`, default false).
    pub enforce_rfc952: bool,
    /// Whether `/v1/enumerate` answers (`EnumerationOn`, default true).
    pub enumeration_on: bool,
    /// HTTPS to the master (`MesosHTTPSOn`).
    pub mesos_https_on: bool,
    /// CA bundle for the master's certificate (`CACertFile`).
    pub ca_cert_file: String,
    /// Client certificate (PEM) presented to masters that ask for one (`CertFile`).
    pub cert_file: String,
    /// The client certificate's private key (PEM) (`KeyFile`).
    pub key_file: String,
    /// Basic credentials for the master (`mesosCredentials`).
    pub mesos_credentials: Option<Credentials>,
    /// Authentication mechanism toward the master: "", "basic" or "iam" (`mesosAuthentication`).
    pub mesos_authentication: String,
    /// Whether a response cut to fit the client's size says so with TC (`SetTruncateBit`;
    /// default true, the DNS standard and DC/OS's setting; Mesos-DNS's own default is false).
    /// False answers cluster names as Mesos-DNS does: as many records as fit, without TC.
    pub set_truncate_bit: bool,
    /// Weight of generated SRV records (`SRVRecordDefaultWeight`, default 1).
    pub srv_record_default_weight: u16,
    /// Per-zone resolvers (`ZoneResolvers`): zone -> upstreams.
    pub zone_resolvers: BTreeMap<String, Vec<Upstream>>,
    /// Our key `stateFile`: serve the state document at this path, re-read when it changes.
    pub state_file: Option<PathBuf>,
    /// Our key `savedResolvConf`: the host's original resolv.conf, saved at install; its
    /// nameservers are the upstreams when `resolvers` is empty.
    pub saved_resolv_conf: PathBuf,
    /// Our key `resolvConf`: the system resolv.conf, read for upstreams when there is neither
    /// `resolvers` nor a saved copy.
    pub resolv_conf: PathBuf,
    /// Our key `extraListeners`: more DNS listen addresses (`ip` or `ip:port`), e.g. a
    /// link-local address reachable from containers in their own network namespace.
    pub extra_listeners: Vec<SocketAddr>,
    /// Our key `cacheMaxEntries`: forwarding cache bound in entries.
    pub cache_max_entries: u64,
    /// Our key `cacheMaxBytes`: forwarding cache bound in bytes.
    pub cache_max_bytes: u64,
    /// Our key `cacheMinTtl`: positive answers are cached at least this many seconds.
    pub cache_min_ttl: u32,
    /// Our key `cacheMaxTtl`: answers are cached at most this many seconds.
    pub cache_max_ttl: u32,
    /// Our key `cacheNegativeMaxTtl`: NXDOMAIN/NODATA are cached at most this many seconds.
    pub cache_negative_max_ttl: u32,
    /// Our key `serveStaleSeconds`: how long past expiry an answer may be served when every
    /// upstream fails (0 turns serve-stale off).
    pub serve_stale_seconds: u64,
    /// Our key `upstreamParallel`: ask the two best upstreams at once.
    pub upstream_parallel: bool,
    /// Our key `servfailCacheSeconds`: how long a name whose resolution failed is answered
    /// SERVFAIL without asking upstream again (0 = off).
    pub servfail_cache_seconds: u64,
    /// Our key `prefetch`: refresh cached answers asked for in the last tenth of their TTL.
    pub prefetch: bool,
    /// Our key `persistFile`: where the last good state document is saved, so a restarted
    /// daemon serves names before the master answers (empty = off).
    pub persist_file: Option<PathBuf>,
    /// Our key `mesosDns`: copy the zone of an existing Mesos-DNS server from its `/v1/axfr`
    /// at this base URL (`http://mesos-dns:8123`).
    pub mesos_dns: Option<Url>,
    /// Our key `stream`: follow the master's v1 event stream when it has one (default true);
    /// false polls every `refreshSeconds`.
    pub stream: bool,
    /// Our key `relay`: follow another daemon's `/v1/snapshot` at this base URL
    /// (`http://relay:8123`) instead of polling the masters.
    pub relay: Option<Url>,
    /// Our key `tcpMaxConnections`: DNS-over-TCP connections served at once.
    pub tcp_max_connections: usize,
    /// Our key `tcpIdleTimeoutSeconds`: a TCP connection idle this long is closed.
    pub tcp_idle_timeout_seconds: u64,
    /// Our key `readyAfterSeconds`: how long to wait for cluster state before telling systemd
    /// the daemon is ready anyway.
    pub ready_after_seconds: u64,
    /// Our key `staleAfterSeconds`: when the served cluster state is older than this, answers
    /// for cluster names carry the Extended DNS Error "Stale Answer" and `/ready` answers 503
    /// (0, the default, never signals staleness).
    pub stale_after_seconds: u64,
    /// Our key `maxUdpAnswers`: over UDP, an A or AAAA answer set larger than this is answered
    /// with a random subset of this size; TCP gets the whole set (0, the default, never caps).
    pub max_udp_answers: usize,
    /// Our key `omitUnhealthy`: leave out of answers the task instances whose latest status
    /// says `healthy: false`, unless that would leave the name's answer empty (default false).
    pub omit_unhealthy: bool,
    /// Our key `reverseLookups`: answer PTR queries for task and agent addresses that map to
    /// exactly one name (default true); every other reverse name is forwarded.
    pub reverse_lookups: bool,
    /// Our key `agentHostnames`: `HOSTNAME.slave.DOMAIN` A/AAAA records for every agent, from
    /// the hostname it registered with (default false).
    pub agent_hostnames: bool,
    /// Our key `staticRecordsFile`: fixed records in `/etc/hosts` format served beside the
    /// cluster's, re-read on SIGHUP.
    pub static_records_file: Option<PathBuf>,
    /// Our key `maxStateBytes`: state documents larger than this are rejected.
    pub max_state_bytes: u64,
    /// Our key `allowClients`: DNS and HTTP clients answered, besides loopback (default `["local"]`: every
    /// subnet attached to a local interface). The longest matching prefix of `allowClients`
    /// and `refuseClients` decides; what matches neither is refused.
    pub allow_clients: Vec<ClientRule>,
    /// Our key `refuseClients`: clients answered REFUSED (wins over an equally long allow).
    pub refuse_clients: Vec<ClientRule>,
    /// Our key `rateLimit`: UDP responses per second per client /24 (IPv4) or /56 (IPv6),
    /// loopback exempt; 0 turns rate limiting off.
    pub rate_limit: u32,
    /// Our key `rateLimitSlip`: every Nth rate-limited response is sent as an empty truncated
    /// answer (so real clients retry over TCP), the others are dropped; 0 drops them all.
    pub rate_limit_slip: u32,
    /// Our key `httpToken`: when set, `/v1/snapshot`, `/v1/axfr`, `/v1/enumerate`,
    /// `/v1/config` and `/metrics` need `Authorization: Bearer <token>`; a `relay` source
    /// sends it.
    pub http_token: Option<String>,
    /// Our key `httpMaxConnections`: HTTP connections served at once; more are closed on
    /// accept, so HTTP clients cannot take the descriptors DNS needs.
    pub http_max_connections: usize,
    /// Our key `httpHeaderTimeoutSeconds`: a connection that does not send a complete request
    /// head within this time (slowloris, or idle between requests) is closed.
    pub http_header_timeout_seconds: u64,
    /// Set by `--demo`: serve the bundled example cluster.
    pub demo: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            refresh_seconds: 60,
            port: 53,
            timeout: 5,
            state_timeout_seconds: 300,
            zk_detection_timeout: 30,
            http_port: 8123,
            ttl: 60,
            soa_refresh: 60,
            soa_retry: 600,
            soa_expire: 86400,
            soa_minttl: 60,
            soa_mname: "ns1.mesos.".into(),
            soa_rname: "root.ns1.mesos.".into(),
            masters: Vec::new(),
            resolvers: Vec::new(),
            ip_sources: vec![IpSource::NetInfo, IpSource::Mesos, IpSource::Host],
            zk: None,
            domain: "mesos".into(),
            listener: IpAddr::from([127, 0, 0, 1]),
            http_listener: IpAddr::from([127, 0, 0, 1]),
            recurse_on: true,
            dns_on: true,
            http_on: true,
            external_on: true,
            enforce_rfc952: false,
            enumeration_on: true,
            mesos_https_on: false,
            ca_cert_file: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            mesos_credentials: None,
            mesos_authentication: String::new(),
            set_truncate_bit: true,
            srv_record_default_weight: 1,
            zone_resolvers: BTreeMap::new(),
            state_file: None,
            saved_resolv_conf: PathBuf::from(SAVED_RESOLV_CONF),
            resolv_conf: PathBuf::from(RESOLV_CONF),
            extra_listeners: Vec::new(),
            cache_max_entries: 100_000,
            cache_max_bytes: 64 * 1024 * 1024,
            cache_min_ttl: 0,
            cache_max_ttl: 86_400,
            cache_negative_max_ttl: 3_600,
            serve_stale_seconds: 3_600,
            upstream_parallel: false,
            servfail_cache_seconds: 5,
            prefetch: true,
            persist_file: None,
            relay: None,
            mesos_dns: None,
            stream: true,
            max_state_bytes: 256 * 1024 * 1024,
            ready_after_seconds: 30,
            stale_after_seconds: 0,
            max_udp_answers: 0,
            omit_unhealthy: false,
            reverse_lookups: true,
            agent_hostnames: false,
            static_records_file: None,
            tcp_max_connections: 512,
            tcp_idle_timeout_seconds: 10,
            allow_clients: vec![ClientRule::LocalSubnets],
            refuse_clients: Vec::new(),
            rate_limit: 1000,
            rate_limit_slip: 2,
            http_token: None,
            http_max_connections: 4096,
            http_header_timeout_seconds: 10,
            demo: false,
        }
    }
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("config file {path} is not valid JSON: {source}")]
    Json {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// The JSON is not an object.
    #[error("config must be a JSON object")]
    NotObject,
    /// A key has a value of the wrong type or out of range.
    #[error("config key `{key}`: {reason}")]
    Key {
        /// The key as written in the file.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn key_err(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// How `/v1/config` shows a Mesos-DNS key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Config {
    /// Under this field, Mesos-DNS's Go field name (its JSON spelling).
    Field(&'static str),
    /// Not shown, for the reason given (Mesos-DNS shows it; this daemon deliberately doesn't).
    Withheld(&'static str),
}

/// Where a configuration key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A key of Mesos-DNS's `config.json`, and how `/v1/config` shows it.
    MesosDns(V1Config),
    /// A key of this daemon only (marked "(ours)" in the README).
    Ours,
}

/// Declares [`Key`] and its tables from one list, so the parser, the README check and the
/// `/v1/config` check can never disagree about which keys exist.
macro_rules! config_keys {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal $(| $alias:literal)*, $origin:expr;)+) => {
        /// Every key the configuration file accepts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Key {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Key {
            /// Every key, in the README's order.
            pub const ALL: &'static [Key] = &[$(Key::$variant,)+];

            /// The key's spelling in the README and in Mesos-DNS's samples (any case is accepted).
            pub fn name(self) -> &'static str {
                match self {
                    $(Key::$variant => $name,)+
                }
            }

            /// Other spellings accepted for the same key.
            pub fn aliases(self) -> &'static [&'static str] {
                match self {
                    $(Key::$variant => &[$($alias),*],)+
                }
            }

            /// Whether Mesos-DNS has the key, and how `/v1/config` shows it.
            pub fn origin(self) -> Origin {
                match self {
                    $(Key::$variant => $origin,)+
                }
            }
        }
    };
}

use V1Config::{Field, Withheld};

config_keys! {
    /// Cluster domain.
    Domain = "domain", Origin::MesosDns(Field("Domain"));
    /// DNS port.
    Port = "port", Origin::MesosDns(Field("Port"));
    /// DNS listen address.
    Listener = "listener", Origin::MesosDns(Field("Listener"));
    /// TTL of every record.
    Ttl = "ttl", Origin::MesosDns(Field("TTL"));
    /// SOA primary name server.
    SoaMname = "SOAMname", Origin::MesosDns(Field("SOAMname"));
    /// SOA admin mailbox.
    SoaRname = "SOARname", Origin::MesosDns(Field("SOARname"));
    /// SOA refresh.
    SoaRefresh = "SOARefresh", Origin::MesosDns(Field("SOARefresh"));
    /// SOA retry.
    SoaRetry = "SOARetry", Origin::MesosDns(Field("SOARetry"));
    /// SOA expire.
    SoaExpire = "SOAExpire", Origin::MesosDns(Field("SOAExpire"));
    /// SOA minimum TTL.
    SoaMinttl = "SOAMinttl", Origin::MesosDns(Field("SOAMinttl"));
    /// Task address sources.
    IpSources = "IPSources", Origin::MesosDns(Field("IPSources"));
    /// RFC 952 labels.
    EnforceRfc952 = "EnforceRFC952", Origin::MesosDns(Field("EnforceRFC952"));
    /// TC on responses cut to fit.
    SetTruncateBit = "SetTruncateBit", Origin::MesosDns(Field("SetTruncateBit"));
    /// SRV weight.
    SrvRecordDefaultWeight = "SRVRecordDefaultWeight", Origin::MesosDns(Field("SRVRecordDefaultWeight"));
    /// Masters, `ip:port`.
    Masters = "masters", Origin::MesosDns(Field("Masters"));
    /// ZooKeeper URL.
    Zk = "zk", Origin::MesosDns(Field("Zk"));
    /// State refresh interval.
    RefreshSeconds = "refreshSeconds", Origin::MesosDns(Field("RefreshSeconds"));
    /// State fetch timeout.
    StateTimeoutSeconds = "stateTimeoutSeconds", Origin::MesosDns(Field("StateTimeoutSeconds"));
    /// ZooKeeper start timeout.
    ZkDetectionTimeout = "zkDetectionTimeout", Origin::MesosDns(Field("ZkDetectionTimeout"));
    /// Upstream resolvers.
    Resolvers = "resolvers", Origin::MesosDns(Field("Resolvers"));
    /// Upstream timeout.
    Timeout = "timeout", Origin::MesosDns(Field("Timeout"));
    /// RA bit in answers.
    RecurseOn = "recurseon", Origin::MesosDns(Field("RecurseOn"));
    /// Forwarding on.
    ExternalOn = "externalon", Origin::MesosDns(Field("ExternalOn"));
    /// DNS server on.
    DnsOn = "dnson", Origin::MesosDns(Field("DnsOn"));
    /// HTTP server on.
    HttpOn = "httpon", Origin::MesosDns(Field("HttpOn"));
    /// HTTP port.
    HttpPort = "httpport", Origin::MesosDns(Field("HttpPort"));
    /// HTTP listen address.
    HttpListener = "HTTPListener", Origin::MesosDns(Field("HTTPListener"));
    /// HTTP enumeration API on.
    EnumerationOn = "EnumerationOn" | "enumerateOn", Origin::MesosDns(Field("EnumerationOn"));
    /// HTTPS to the masters.
    MesosHttpsOn = "MesosHTTPSOn", Origin::MesosDns(Field("MesosHTTPSOn"));
    /// CA certificate for the masters.
    CaCertFile = "CACertFile", Origin::MesosDns(Field("CACertFile"));
    /// Client certificate for the masters.
    CertFile = "CertFile", Origin::MesosDns(Field("CertFile"));
    /// Client key for the masters.
    KeyFile = "KeyFile", Origin::MesosDns(Field("KeyFile"));
    /// Basic-auth credentials for the masters.
    MesosCredentials = "mesosCredentials", Origin::MesosDns(Withheld("a secret: never echoed over HTTP"));
    /// Authentication mechanism for the masters.
    MesosAuthentication = "mesosAuthentication", Origin::MesosDns(Field("MesosAuthentication"));
    /// Per-zone upstreams.
    ZoneResolvers = "ZoneResolvers", Origin::MesosDns(Field("ZoneResolvers"));
    /// Serve a state document from disk.
    StateFile = "stateFile", Origin::Ours;
    /// The host's original resolv.conf, saved at install.
    SavedResolvConf = "savedResolvConf", Origin::Ours;
    /// The resolv.conf read when there is no saved copy.
    ResolvConf = "resolvConf", Origin::Ours;
    /// More DNS listen addresses.
    ExtraListeners = "extraListeners", Origin::Ours;
    /// Forwarding cache entry bound.
    CacheMaxEntries = "cacheMaxEntries", Origin::Ours;
    /// Forwarding cache byte bound.
    CacheMaxBytes = "cacheMaxBytes", Origin::Ours;
    /// Smallest cached TTL.
    CacheMinTtl = "cacheMinTtl", Origin::Ours;
    /// Largest cached TTL.
    CacheMaxTtl = "cacheMaxTtl", Origin::Ours;
    /// Largest cached negative TTL.
    CacheNegativeMaxTtl = "cacheNegativeMaxTtl", Origin::Ours;
    /// Serve-stale window.
    ServeStaleSeconds = "serveStaleSeconds", Origin::Ours;
    /// Ask two upstreams at once.
    UpstreamParallel = "upstreamParallel", Origin::Ours;
    /// Failure cache time.
    ServfailCacheSeconds = "servfailCacheSeconds", Origin::Ours;
    /// Refresh popular answers before they expire.
    Prefetch = "prefetch", Origin::Ours;
    /// Follow the master's event stream.
    Stream = "stream", Origin::Ours;
    /// Follow another daemon's snapshot.
    Relay = "relay", Origin::Ours;
    /// Copy an existing Mesos-DNS zone.
    MesosDnsSource = "mesosDns", Origin::Ours;
    /// Save the last good state here.
    PersistFile = "persistFile", Origin::Ours;
    /// Largest accepted state document.
    MaxStateBytes = "maxStateBytes", Origin::Ours;
    /// Ready without a snapshot after this long.
    ReadyAfterSeconds = "readyAfterSeconds", Origin::Ours;
    /// Signal answers from a state older than this as stale.
    StaleAfterSeconds = "staleAfterSeconds", Origin::Ours;
    /// Largest A/AAAA answer set sent over UDP.
    MaxUdpAnswers = "maxUdpAnswers", Origin::Ours;
    /// Leave unhealthy task instances out of answers.
    OmitUnhealthy = "omitUnhealthy", Origin::Ours;
    /// PTR answers for cluster addresses.
    ReverseLookups = "reverseLookups", Origin::Ours;
    /// Agent hostname records.
    AgentHostnames = "agentHostnames", Origin::Ours;
    /// Fixed records in hosts format.
    StaticRecordsFile = "staticRecordsFile", Origin::Ours;
    /// Open TCP connection cap.
    TcpMaxConnections = "tcpMaxConnections", Origin::Ours;
    /// Idle TCP connection timeout.
    TcpIdleTimeoutSeconds = "tcpIdleTimeoutSeconds", Origin::Ours;
    /// Clients answered besides loopback.
    AllowClients = "allowClients", Origin::Ours;
    /// Clients refused.
    RefuseClients = "refuseClients", Origin::Ours;
    /// UDP responses per second per client prefix.
    RateLimit = "rateLimit", Origin::Ours;
    /// Every Nth rate-limited response goes out truncated.
    RateLimitSlip = "rateLimitSlip", Origin::Ours;
    /// Bearer token for the state-revealing HTTP endpoints.
    HttpToken = "httpToken", Origin::Ours;
    /// HTTP connection cap.
    HttpMaxConnections = "httpMaxConnections", Origin::Ours;
    /// HTTP request head timeout.
    HttpHeaderTimeoutSeconds = "httpHeaderTimeoutSeconds", Origin::Ours;
}

impl Key {
    /// The key a file's key names, matched without regard to case as Go's JSON decoder does.
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| {
            k.name().eq_ignore_ascii_case(name)
                || k.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }
}

/// Keys of old Mesos-DNS versions that its own samples still carry; accepted and ignored.
const OBSOLETE_KEYS: &[&str] = &["ns", "soaserial", "file"];

/// A loaded configuration with the warnings found while reading it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Unknown or obsolete keys, one message each.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads a config file (Mesos-DNS `config.json` format plus our keys) over the defaults.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|source| ConfigError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let mut loaded = Config::from_json(&value)?;
        // A relative stateFile (or staticRecordsFile) is relative to the config file, as an
        // operator would expect.
        for file in [
            &mut loaded.config.state_file,
            &mut loaded.config.static_records_file,
        ] {
            if let Some(f) = file.as_ref().filter(|f| f.is_relative()) {
                if let Some(dir) = path.parent() {
                    *file = Some(dir.join(f));
                }
            }
        }
        Ok(loaded)
    }

    /// Reads a parsed config document over the defaults.
    pub fn from_json(value: &Value) -> Result<Loaded, ConfigError> {
        let obj = value.as_object().ok_or(ConfigError::NotObject)?;
        let mut config = Config::default();
        let mut warnings = Vec::new();
        for (key, v) in obj {
            if !config.set(key, v)? {
                if OBSOLETE_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                    warnings.push(format!("config key `{key}` is obsolete and ignored"));
                } else {
                    warnings.push(format!("unknown config key `{key}` ignored"));
                }
            }
        }
        config.normalize();
        Ok(Loaded { config, warnings })
    }

    /// Sets one key; returns false when the key is unknown.
    fn set(&mut self, key: &str, v: &Value) -> Result<bool, ConfigError> {
        let Some(k) = Key::from_name(key) else {
            return Ok(false);
        };
        match k {
            Key::RefreshSeconds => self.refresh_seconds = uint(key, v)?,
            Key::Port => self.port = uint(key, v)?,
            Key::Timeout => self.timeout = uint(key, v)?,
            Key::StateTimeoutSeconds => self.state_timeout_seconds = uint(key, v)?,
            Key::ZkDetectionTimeout => self.zk_detection_timeout = uint(key, v)?,
            Key::HttpPort => self.http_port = uint(key, v)?,
            Key::Ttl => self.ttl = uint(key, v)?,
            Key::SoaRefresh => self.soa_refresh = uint(key, v)?,
            Key::SoaRetry => self.soa_retry = uint(key, v)?,
            Key::SoaExpire => self.soa_expire = uint(key, v)?,
            Key::SoaMinttl => self.soa_minttl = uint(key, v)?,
            Key::SoaMname => self.soa_mname = string(key, v)?,
            Key::SoaRname => self.soa_rname = string(key, v)?,
            Key::Masters => self.masters = masters(key, v)?,
            Key::Resolvers => self.resolvers = upstreams(key, v)?,
            Key::IpSources => self.ip_sources = ip_sources(key, v)?,
            Key::Zk => self.zk = zk_url(key, v)?,
            Key::Domain => self.domain = string(key, v)?,
            Key::Listener => self.listener = ip(key, v)?,
            Key::HttpListener => self.http_listener = ip(key, v)?,
            Key::RecurseOn => self.recurse_on = boolean(key, v)?,
            Key::DnsOn => self.dns_on = boolean(key, v)?,
            Key::HttpOn => self.http_on = boolean(key, v)?,
            Key::ExternalOn => self.external_on = boolean(key, v)?,
            Key::EnforceRfc952 => self.enforce_rfc952 = boolean(key, v)?,
            Key::EnumerationOn => self.enumeration_on = boolean(key, v)?,
            Key::MesosHttpsOn => self.mesos_https_on = boolean(key, v)?,
            Key::CaCertFile => self.ca_cert_file = string(key, v)?,
            Key::CertFile => self.cert_file = string(key, v)?,
            Key::KeyFile => self.key_file = string(key, v)?,
            Key::MesosCredentials => self.mesos_credentials = credentials(key, v)?,
            Key::MesosAuthentication => self.mesos_authentication = string(key, v)?,
            Key::SrvRecordDefaultWeight => self.srv_record_default_weight = uint(key, v)?,
            Key::SetTruncateBit => self.set_truncate_bit = boolean(key, v)?,
            Key::ZoneResolvers => self.zone_resolvers = zone_resolvers(key, v)?,
            Key::StateFile => {
                let s = string(key, v)?;
                self.state_file = (!s.is_empty()).then(|| PathBuf::from(s));
            }
            Key::SavedResolvConf => self.saved_resolv_conf = string(key, v)?.into(),
            Key::ResolvConf => self.resolv_conf = string(key, v)?.into(),
            Key::ExtraListeners => self.extra_listeners = listen_addrs(key, v)?,
            Key::CacheMaxEntries => self.cache_max_entries = uint(key, v)?,
            Key::CacheMaxBytes => self.cache_max_bytes = uint(key, v)?,
            Key::CacheMinTtl => self.cache_min_ttl = uint(key, v)?,
            Key::CacheMaxTtl => self.cache_max_ttl = uint(key, v)?,
            Key::CacheNegativeMaxTtl => self.cache_negative_max_ttl = uint(key, v)?,
            Key::ServeStaleSeconds => self.serve_stale_seconds = uint(key, v)?,
            Key::UpstreamParallel => self.upstream_parallel = boolean(key, v)?,
            Key::ServfailCacheSeconds => self.servfail_cache_seconds = uint(key, v)?,
            Key::Prefetch => self.prefetch = boolean(key, v)?,
            Key::PersistFile => {
                let s = string(key, v)?;
                self.persist_file = (!s.is_empty()).then(|| PathBuf::from(s));
            }
            Key::MaxStateBytes => self.max_state_bytes = uint(key, v)?,
            Key::ReadyAfterSeconds => self.ready_after_seconds = uint(key, v)?,
            Key::StaleAfterSeconds => self.stale_after_seconds = uint(key, v)?,
            Key::MaxUdpAnswers => self.max_udp_answers = uint(key, v)?,
            Key::OmitUnhealthy => self.omit_unhealthy = boolean(key, v)?,
            Key::ReverseLookups => self.reverse_lookups = boolean(key, v)?,
            Key::AgentHostnames => self.agent_hostnames = boolean(key, v)?,
            Key::StaticRecordsFile => {
                let s = string(key, v)?;
                self.static_records_file = (!s.is_empty()).then(|| PathBuf::from(s));
            }
            Key::TcpMaxConnections => self.tcp_max_connections = uint(key, v)?,
            Key::TcpIdleTimeoutSeconds => self.tcp_idle_timeout_seconds = uint(key, v)?,
            Key::Stream => self.stream = boolean(key, v)?,
            Key::AllowClients => self.allow_clients = client_rules(key, v)?,
            Key::RefuseClients => self.refuse_clients = client_rules(key, v)?,
            Key::RateLimit => self.rate_limit = uint(key, v)?,
            Key::RateLimitSlip => self.rate_limit_slip = uint(key, v)?,
            Key::HttpToken => {
                let s = string(key, v)?;
                self.http_token = (!s.is_empty()).then_some(s);
            }
            Key::HttpMaxConnections => self.http_max_connections = uint(key, v)?,
            Key::HttpHeaderTimeoutSeconds => self.http_header_timeout_seconds = uint(key, v)?,
            Key::MesosDnsSource => self.mesos_dns = http_url(key, v)?,
            Key::Relay => self.relay = http_url(key, v)?,
        }
        Ok(true)
    }

    /// Brings names to their canonical form, as Mesos-DNS does after loading.
    pub fn normalize(&mut self) {
        self.domain = self.domain.trim_end_matches('.').to_ascii_lowercase();
        self.soa_rname = fqdn(&self.soa_rname.replace('@', "."));
        self.soa_mname = fqdn(&self.soa_mname);
    }

    /// Checks the whole configuration for consistency; the error names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.dns_on && !self.http_on {
            return Err(key_err("dnson", "either dnson or httpon must be true"));
        }
        if self.port == 0 {
            return Err(key_err("port", "must be between 1 and 65535"));
        }
        if self.http_on && self.http_port == 0 {
            return Err(key_err("httpport", "must be between 1 and 65535"));
        }
        if self.refresh_seconds == 0 {
            return Err(key_err("refreshSeconds", "must be positive"));
        }
        if self.state_timeout_seconds == 0 {
            return Err(key_err("stateTimeoutSeconds", "must be positive"));
        }
        if self.timeout == 0 {
            return Err(key_err("timeout", "must be positive"));
        }
        if self.domain.is_empty() || !is_valid_name(&self.domain) {
            return Err(key_err(
                "domain",
                format!("`{}` is not a valid domain name", self.domain),
            ));
        }
        for (key, name) in [("SOAMname", &self.soa_mname), ("SOARname", &self.soa_rname)] {
            if !is_valid_name(name) {
                return Err(key_err(key, format!("`{name}` is not a valid domain name")));
            }
        }
        if self.cache_max_entries == 0 || self.cache_max_bytes == 0 {
            return Err(key_err("cacheMaxEntries", "cache bounds must be positive"));
        }
        if self.cache_min_ttl > self.cache_max_ttl {
            return Err(key_err("cacheMinTtl", "must not exceed cacheMaxTtl"));
        }
        if self.ip_sources.is_empty() {
            return Err(key_err("IPSources", "must list at least one source"));
        }
        if let Some(path) = &self.static_records_file {
            StaticRecords::load(path).map_err(|e| key_err("staticRecordsFile", e.to_string()))?;
        }
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            let key = if self.cert_file.is_empty() {
                "CertFile"
            } else {
                "KeyFile"
            };
            return Err(key_err(
                key,
                "CertFile and KeyFile go together (the client certificate and its key)",
            ));
        }
        for (key, path) in [
            ("CACertFile", &self.ca_cert_file),
            ("CertFile", &self.cert_file),
            ("KeyFile", &self.key_file),
        ] {
            if !path.is_empty() {
                if let Err(e) = std::fs::metadata(path) {
                    return Err(key_err(key, format!("`{path}`: {e}")));
                }
            }
        }
        match self.mesos_authentication.as_str() {
            "" | "basic" => {}
            "iam" => {
                return Err(key_err(
                    "mesosAuthentication",
                    "`iam` (DC/OS service-account login with IAMConfigFile) is not supported: this daemon cannot sign IAM login tokens, and talking to the master without them would fail at every refresh; use `basic` with mesosCredentials, or follow a relay or a Mesos-DNS server that can",
                ))
            }
            other => {
                return Err(key_err(
                    "mesosAuthentication",
                    format!("`{other}` is not one of \"\", basic"),
                ))
            }
        }
        if self.http_on && self.http_max_connections == 0 {
            return Err(key_err("httpMaxConnections", "must be positive"));
        }
        if self.http_on && self.http_header_timeout_seconds == 0 {
            return Err(key_err("httpHeaderTimeoutSeconds", "must be positive"));
        }
        if let Some(t) = &self.http_token {
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(key_err(
                    "httpToken",
                    "must be printable ASCII without spaces (it travels in an HTTP header)",
                ));
            }
        }
        if self.masters.is_empty()
            && self.zk.is_none()
            && self.state_file.is_none()
            && self.relay.is_none()
            && self.mesos_dns.is_none()
            && !self.demo
        {
            return Err(key_err(
                "masters",
                "no cluster state source: set masters, zk, relay, mesosDns or stateFile (or run with --demo)",
            ));
        }
        Ok(())
    }

    /// Every DNS listen address: the main one and the extra ones (port 0 = the DNS port).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let mut out = vec![SocketAddr::new(self.listener, self.port)];
        for a in &self.extra_listeners {
            let a = if a.port() == 0 {
                SocketAddr::new(a.ip(), self.port)
            } else {
                *a
            };
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// The label rules in force (`EnforceRFC952`).
    pub fn label_spec(&self) -> LabelSpec {
        if self.enforce_rfc952 {
            LabelSpec::Rfc952
        } else {
            LabelSpec::Rfc1123
        }
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn is_valid_name(name: &str) -> bool {
    Name::from_ascii(name).is_ok() && !name.trim_end_matches('.').is_empty()
}

/// An `http://` or `https://` base URL with a host, parsed once here; empty means unset.
fn http_url(key: &str, v: &Value) -> Result<Option<Url>, ConfigError> {
    let s = string(key, v)?;
    if s.is_empty() {
        return Ok(None);
    }
    match Url::parse(&s) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(Some(url)),
        _ => Err(key_err(key, format!("`{s}` is not an http(s) URL"))),
    }
}

/// Master addresses, checked once here: `ip:port`, each once. They are kept as written, since
/// Mesos-DNS names them in records and compares them with the leader's as text.
fn masters(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    let masters = strings(key, v)?;
    for (i, m) in masters.iter().enumerate() {
        if split_host_port(m).is_none_or(|(h, _)| h.parse::<IpAddr>().is_err()) {
            return Err(key_err(key, format!("`{m}` is not an ip:port address")));
        }
        if masters[..i].contains(m) {
            return Err(key_err(key, format!("`{m}` is listed twice")));
        }
    }
    Ok(masters)
}

/// Upstream resolver addresses, parsed once here.
fn upstreams(key: &str, v: &Value) -> Result<Vec<Upstream>, ConfigError> {
    strings(key, v)?
        .iter()
        .map(|s| s.parse().map_err(|e: String| key_err(key, e)))
        .collect()
}

fn uint<T: TryFrom<u64>>(key: &str, v: &Value) -> Result<T, ConfigError> {
    let n = v
        .as_u64()
        .ok_or_else(|| key_err(key, format!("expected a non-negative integer, got {v}")))?;
    T::try_from(n).map_err(|_| key_err(key, format!("{n} is out of range")))
}

fn boolean(key: &str, v: &Value) -> Result<bool, ConfigError> {
    v.as_bool()
        .ok_or_else(|| key_err(key, format!("expected true or false, got {v}")))
}

fn string(key: &str, v: &Value) -> Result<String, ConfigError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(key_err(key, format!("expected a string, got {v}"))),
    }
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(|i| string(key, i)).collect(),
        _ => Err(key_err(key, format!("expected a list of strings, got {v}"))),
    }
}

fn ip(key: &str, v: &Value) -> Result<IpAddr, ConfigError> {
    let s = string(key, v)?;
    s.parse()
        .map_err(|_| key_err(key, format!("`{s}` is not an IP address")))
}

/// Listen addresses as `ip` or `ip:port`. A port of 0 (or none) stands for the
/// DNS port, resolved when the daemon starts (the port key may come later in the file).
fn listen_addrs(key: &str, v: &Value) -> Result<Vec<SocketAddr>, ConfigError> {
    strings(key, v)?
        .iter()
        .map(|s| {
            s.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, 0))
                .or_else(|_| s.parse::<SocketAddr>())
                .map_err(|_| key_err(key, format!("`{s}` is not an ip or ip:port")))
        })
        .collect()
}

/// A `zk://` URL, parsed once here; empty means no ZooKeeper.
fn zk_url(key: &str, v: &Value) -> Result<Option<ZkUrl>, ConfigError> {
    let s = string(key, v)?;
    if s.is_empty() {
        return Ok(None);
    }
    ZkUrl::parse(&s).map(Some).ok_or_else(|| {
        key_err(
            key,
            format!("`{s}` is not a zk://host:port[,host:port]/path URL"),
        )
    })
}

fn client_rules(key: &str, v: &Value) -> Result<Vec<ClientRule>, ConfigError> {
    strings(key, v)?
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e: RuleError| key_err(key, e.to_string()))
        })
        .collect()
}

fn ip_sources(key: &str, v: &Value) -> Result<Vec<IpSource>, ConfigError> {
    let mut out = Vec::new();
    for name in strings(key, v)? {
        let src = IpSource::parse(&name).ok_or_else(|| {
            key_err(
                key,
                format!(
                    "unknown source `{name}` (expected netinfo, docker, mesos, host or routable)"
                ),
            )
        })?;
        if out.contains(&src) {
            return Err(key_err(key, format!("source `{name}` is listed twice")));
        }
        out.push(src);
    }
    Ok(out)
}

fn credentials(key: &str, v: &Value) -> Result<Option<Credentials>, ConfigError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => {
            let get = |field: &str| -> Result<String, ConfigError> {
                match find_ci(m, field) {
                    Some(x) => string(key, x),
                    None => Ok(String::new()),
                }
            };
            Ok(Some(Credentials {
                principal: get("principal")?,
                secret: get("secret")?,
            }))
        }
        _ => Err(key_err(key, "expected an object with principal and secret")),
    }
}

fn zone_resolvers(key: &str, v: &Value) -> Result<BTreeMap<String, Vec<Upstream>>, ConfigError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(zone, r)| {
                let resolvers = strings(key, r)?
                    .iter()
                    .map(|s| {
                        s.parse()
                            .map_err(|e: String| key_err(key, format!("zone `{zone}`: {e}")))
                    })
                    .collect::<Result<_, _>>()?;
                Ok((zone.to_ascii_lowercase(), resolvers))
            })
            .collect(),
        _ => Err(key_err(key, "expected an object of zone -> resolver list")),
    }
}

fn find_ci<'a>(m: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(field))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A configuration in Mesos-DNS's `config.json.sample` format, with the project's values.
    fn sample_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config.json.sample")
    }

    #[test]
    fn reads_mesos_dns_sample_format_unchanged() {
        let loaded = Config::load(&sample_path()).unwrap();
        let c = &loaded.config;
        let zk = c.zk.as_ref().unwrap();
        assert_eq!(zk.as_str(), "zk://10.40.0.2:2181,10.40.0.3:2181/mesos");
        assert_eq!(
            (zk.servers.as_str(), zk.path.as_str()),
            ("10.40.0.2:2181,10.40.0.3:2181", "/mesos")
        );
        assert_eq!(c.masters, vec!["10.40.0.2:5050", "10.40.0.3:5050"]);
        assert_eq!(c.refresh_seconds, 30);
        assert_eq!(c.ttl, 45);
        assert_eq!(c.port, 8053);
        assert_eq!(c.http_port, 8124);
        assert_eq!(c.timeout, 4);
        let resolvers: Vec<String> = c.resolvers.iter().map(|r| r.to_string()).collect();
        assert_eq!(resolvers, ["192.0.2.53", "192.0.2.54"]);
        assert_eq!(c.resolvers[0].addr, "192.0.2.53:53".parse().unwrap());
        assert_eq!(c.soa_mname, "ns1.mesos.");
        assert_eq!(c.soa_rname, "root.ns1.mesos.");
        assert_eq!(
            c.ip_sources,
            vec![IpSource::Docker, IpSource::Mesos, IpSource::Host]
        );
        assert!(c.enumeration_on && c.recurse_on && c.external_on);
        assert_eq!(c.srv_record_default_weight, 2);
        c.validate().unwrap();
        // "ns" is an old Mesos-DNS key: accepted with a warning, not an error.
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("`ns`"));
    }

    #[test]
    fn keys_match_case_insensitively_like_go() {
        let c = Config::from_json(&json!({"REFRESHSECONDS": 5, "dnsOn": false, "HttpOn": true,
            "ipsources": ["host"], "Domain": "Cluster.Example.", "soarname": "admin@example.com"}))
        .unwrap()
        .config;
        assert_eq!(c.refresh_seconds, 5);
        assert!(!c.dns_on && c.http_on);
        assert_eq!(c.ip_sources, vec![IpSource::Host]);
        assert_eq!(c.domain, "cluster.example");
        assert_eq!(c.soa_rname, "admin.example.com.");
    }

    #[test]
    fn safe_defaults_and_client_keys() {
        let c = Config::default();
        assert_eq!(c.listener, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.http_listener, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.allow_clients, vec![ClientRule::LocalSubnets]);
        assert!(c.refuse_clients.is_empty() && c.http_token.is_none());
        let c = Config::from_json(&json!({"allowClients": ["local", "10.0.0.0/8"],
            "refuseClients": ["10.9.0.0/16"], "rateLimit": 0, "httpToken": "s3cret"}))
        .unwrap()
        .config;
        assert_eq!(c.allow_clients.len(), 2);
        assert_eq!(c.refuse_clients[0].to_string(), "10.9.0.0/16");
        assert_eq!(c.rate_limit, 0);
        assert_eq!(c.http_token.as_deref(), Some("s3cret"));
        // Mesos-DNS's own config saying 0.0.0.0 keeps the default client rules.
        let c = Config::from_json(&json!({"listener": "0.0.0.0"}))
            .unwrap()
            .config;
        assert!(c.listener.is_unspecified());
        assert_eq!(c.allow_clients, vec![ClientRule::LocalSubnets]);
    }

    #[test]
    fn unknown_keys_warn() {
        let l = Config::from_json(&json!({"colour": "blue"})).unwrap();
        assert_eq!(l.warnings, vec!["unknown config key `colour` ignored"]);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            (json!({"port": "53"}), "port"),
            (json!({"port": 70000}), "port"),
            (json!({"ttl": -1}), "ttl"),
            (json!({"listener": "localhost"}), "listener"),
            (json!({"IPSources": ["host", "rkt"]}), "IPSources"),
            (json!({"IPSources": ["host", "host"]}), "IPSources"),
            (json!({"recurseon": "yes"}), "recurseon"),
            (json!({"masters": "1.2.3.4:5050"}), "masters"),
            (json!({"masters": ["nohost"]}), "masters"),
            (
                json!({"masters": ["1.2.3.4:5050", "1.2.3.4:5050"]}),
                "masters",
            ),
            (json!({"allowClients": ["10.0.0.0/33"]}), "allowClients"),
            (json!({"refuseClients": ["example.com"]}), "refuseClients"),
            (json!({"rateLimit": -5}), "rateLimit"),
            (json!({"zk": "http://10.0.0.1:2181/mesos"}), "zk"),
            (json!({"zk": "zk:///mesos"}), "zk"),
            (json!({"resolvers": ["dns.google"]}), "resolvers"),
            (json!({"relay": "relay:8123"}), "relay"),
            (json!({"mesosDns": "ftp://mesos-dns"}), "mesosDns"),
            (json!({"mesosDns": "http://"}), "mesosDns"),
            (
                json!({"ZoneResolvers": {"corp": ["10.0.0.1", "dns.corp"]}}),
                "ZoneResolvers",
            ),
        ];
        for (doc, key) in cases {
            let err = Config::from_json(&doc).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{doc}: {err}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let with = |doc: Value| {
            let mut c = Config::from_json(&doc).unwrap().config;
            c.demo = true;
            c.validate().unwrap_err().to_string()
        };
        assert!(with(json!({"dnson": false, "httpon": false})).contains("`dnson`"));
        assert!(with(json!({"domain": "bad..name"})).contains("`domain`"));
        assert!(with(json!({"stateTimeoutSeconds": 0})).contains("`stateTimeoutSeconds`"));
        assert!(with(json!({"IPSources": []})).contains("`IPSources`"));
        assert!(with(json!({"httpMaxConnections": 0})).contains("`httpMaxConnections`"));
        assert!(with(json!({"httpToken": "a b"})).contains("`httpToken`"));
        let mut c = Config::default();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("no cluster state source"));
        c.state_file = Some("state.json".into());
        c.validate().unwrap();
    }

    /// The configuration section of the README: every backticked key in the first column of
    /// its table, with whether the row is marked "(ours)".
    fn readme_keys() -> Vec<(String, bool)> {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Configuration\n"))
            .expect("README has a Configuration section");
        let mut keys = Vec::new();
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let first = row.split('|').nth(1).unwrap();
            let ours = first.contains("(ours)");
            for (i, token) in first.split('`').enumerate() {
                if i % 2 == 1 {
                    keys.push((token.to_string(), ours));
                }
            }
        }
        keys
    }

    /// `/v1/config` as the HTTP API serves it for the default configuration.
    fn v1_config() -> Value {
        use std::io::{Read, Write};
        use std::sync::Arc;

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config::default();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let settings = crate::records::RecordSettings::from_config(&config, Vec::new());
        let publisher = crate::publish::Publisher::new(
            settings,
            Arc::new(arc_swap::ArcSwapOption::empty()),
            metrics.clone(),
            None,
        );
        let api = crate::http::Api::new(Arc::new(publisher), metrics, Arc::new(config), None);
        let server = std::thread::spawn(move || {
            rt.block_on(async move {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    axum::serve(listener, crate::http::router(api)),
                )
                .await;
            })
        });
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /v1/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        drop(server);
        let body = raw.split_once("\r\n\r\n").expect("HTTP answer").1;
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"))
    }

    /// Every key the parser accepts is in the README's configuration table (marked "(ours)"
    /// exactly when Mesos-DNS doesn't have it), the table names no key the parser rejects, and
    /// every Mesos-DNS key is in `/v1/config` under Mesos-DNS's field name unless deliberately
    /// withheld.
    #[test]
    fn every_key_is_documented_and_shown_like_mesos_dns() {
        let documented = readme_keys();
        let find = |name: &str| {
            documented
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, ours)| *ours)
        };
        let mut problems = Vec::new();
        for &key in Key::ALL {
            for name in std::iter::once(key.name()).chain(key.aliases().iter().copied()) {
                match find(name) {
                    None => problems.push(format!(
                        "`{name}` is accepted but missing from the README's configuration table"
                    )),
                    Some(ours) if ours != (key.origin() == Origin::Ours) => {
                        problems.push(format!("`{name}`: the README's \"(ours)\" mark is wrong"))
                    }
                    Some(_) => {}
                }
            }
        }
        for (name, _) in &documented {
            if Key::from_name(name).is_none() {
                problems.push(format!(
                    "the README documents `{name}`, which the parser does not accept"
                ));
            }
        }
        let shown = v1_config();
        for &key in Key::ALL {
            if let Origin::MesosDns(V1Config::Field(field)) = key.origin() {
                if shown.get(field).is_none() {
                    problems.push(format!(
                        "`{}` is a Mesos-DNS key but /v1/config has no `{field}`",
                        key.name()
                    ));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Every Mesos-DNS key is a row of the README's table of Mesos-DNS keys and flags, which
    /// says whether and how it is honoured.
    #[test]
    fn every_mesos_dns_key_is_in_the_compatibility_table() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Mesos-DNS keys and flags\n"))
            .expect("README has a Mesos-DNS keys and flags section");
        let listed: Vec<String> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|row| {
                let first = row.split('|').nth(1).unwrap_or("");
                first
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(|k| {
                        k.split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_ascii_lowercase()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let missing: Vec<&str> = Key::ALL
            .iter()
            .filter(|k| matches!(k.origin(), Origin::MesosDns(_)))
            .map(|k| k.name())
            .filter(|name| !listed.contains(&name.to_ascii_lowercase()))
            .collect();
        assert!(missing.is_empty(), "not in the table: {missing:?}");
    }

    #[test]
    fn key_names_match_without_regard_to_case() {
        assert_eq!(Key::from_name("REFRESHSECONDS"), Some(Key::RefreshSeconds));
        assert_eq!(Key::from_name("enumerateon"), Some(Key::EnumerationOn));
        assert_eq!(Key::from_name("mesosdns"), Some(Key::MesosDnsSource));
        assert_eq!(Key::from_name("colour"), None);
        for &k in Key::ALL {
            assert_eq!(Key::from_name(&k.name().to_uppercase()), Some(k));
        }
    }
}
