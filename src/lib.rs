//! mesos-dns-sidecar: node-local DNS for Apache Mesos clusters.
//!
//! Keeps a snapshot of the cluster's state, answers the cluster's names from it exactly as
//! Mesos-DNS would, and serves them on every agent host; every other name is forwarded to the
//! host's own resolvers through a cache.
//!
//! # Layout
//!
//! - [`config`]: `config.json` (Mesos-DNS's format plus our keys) read, validated, and the
//!   table of accepted keys ([`config::Key`]).
//! - [`daemon`]: wires a configuration into running parts: state source, publisher, DNS
//!   listeners, HTTP API, systemd notification.
//! - [`mesos`]: the typed master state ([`mesos::model::State`]) and the sources that deliver
//!   it, all of one shape ([`mesos::source`]: built from the config, `run(publisher)`, one
//!   capped reader, backoff and reachability log): a file ([`mesos::file`]), the bundled demo
//!   ([`mesos::demo`]), the masters ([`mesos::masters`]: leader detection with ZooKeeper
//!   [`mesos::zk`], the state over HTTP [`mesos::master`], the event stream
//!   [`mesos::stream`]), another daemon ([`mesos::relay`]: the relay document, its server and
//!   its client), an existing Mesos-DNS ([`mesos::mesos_dns`]); hostname resolution
//!   ([`mesos::hosts`]), HTTP clients ([`mesos::http_client`]) and synthetic states for tests
//!   and benchmarks ([`mesos::synthetic`]).
//! - [`records`]: Mesos-DNS's naming rules: label sanitising ([`records::labels`]), the task
//!   hash ([`records::hash`]), the generator ([`records::generator`]) and the immutable,
//!   query-ready [`records::Snapshot`], split into shards per group of frameworks so that an
//!   update rebuilds only what changed ([`records::shards`]), whose names are stored once per
//!   shard in one buffer ([`records::names::NameTable`]), and the static records file
//!   ([`records::static_records`]).
//! - [`publish`]: state -> snapshot, swapped in atomically; the last good one stays on any
//!   failure; the served state's compact document and its persistence.
//! - [`dns`]: a query parsed once ([`dns::request`]), the UDP/TCP listeners and the one routing
//!   point ([`dns::server`], batched UDP I/O in [`dns::udp_batch`]), the authoritative
//!   responder for the cluster domain ([`dns::answer`], its wire-level fast path
//!   [`dns::fast`]), client access rules ([`dns::access`]), and forwarding ([`dns::forward`],
//!   [`dns::upstream`], the cache [`dns::cache`], raw message handling [`dns::wire`]).
//! - [`http`]: the HTTP API: Mesos-DNS's `/v1/*`, `/v1/snapshot` for relays, `/metrics`,
//!   `/health`, `/ready`.
//! - [`resolv`]: which upstreams forwarding uses (`resolvers`, the saved or the system
//!   resolv.conf).
//! - [`resolvconf`]: taking over `/etc/resolv.conf` at install and restoring it at removal.
//! - [`metrics`]: process-wide counters and latency histograms (prometheus-client) behind
//!   `/metrics`.
//! - [`netif`]: the host's own addresses (the name server record when listening on 0.0.0.0).
//! - [`notify`]: systemd `Type=notify` readiness and watchdog.
//!
//! # How a query flows
//!
//! 1. [`dns::server::Listeners::serve`] runs one UDP reader thread (datagrams read with a
//!    blocking receive and written in batches by [`dns::udp_batch::Batcher`]) and one TCP
//!    accept loop. The client guard ([`dns::access::ClientGuard`]) first decides whether a
//!    client is answered at all; every packet it lets through goes to [`dns::server::Handlers::route`], the one routing point.
//!    A UDP reader first asks the answers it holds itself, keyed by the query's bytes after
//!    its ID, before anything is parsed: cluster answers it wrote
//!    ([`dns::hot_cluster::HotCluster`], shuffled anew) and cache hits it served
//!    ([`dns::hot::HotAnswers`], TTLs counted down), both valid for one snapshot.
//! 2. `route` parses the packet once into a [`dns::Request`] ([`dns::Request::parse`]:
//!    question, EDNS, size limit, transport; packets that are no plain query are decoded with
//!    hickory and get FORMERR, NOTIMP or BADVERS from [`dns::request::error_reply`], or
//!    nothing). One zone test, [`dns::Responder::serves`], then sends the cluster domain to
//!    [`dns::Responder::answer`] and everything else to the forwarder (REFUSED, from the same
//!    helper, when forwarding is off).
//! 3. `Responder::answer` is authoritative only: its fast path answers the common cluster
//!    questions (A, AAAA, SRV, NODATA, NXDOMAIN) straight from the current
//!    [`records::Snapshot`] into wire bytes ([`dns::fast::answer`]); the rest (SOA/NS at the
//!    apex, ANY, stale or capped answers, odd packets) is built with hickory. A name
//!    outside the domain that the snapshot answers ([`records::Snapshot::answers_outside_zone`]:
//!    the PTR of a cluster address, a static record) is routed there too
//!    ([`dns::Responder::answer_outside_zone`]).
//! 4. A forwarded name is first looked up in the cache by [`dns::forward::Forwarder::lookup`]:
//!    a fresh entry ([`dns::cache::AnswerCache`]) is answered at once with its TTLs counted
//!    down. A miss comes back from `route` as [`dns::server::Routed::Forward`] and is resolved
//!    by [`dns::forward::Forwarder::resolve`] (on its own task for UDP): the query goes
//!    upstream (one shared exchange per identical miss; upstreams chosen and timed by
//!    [`dns::upstream`]), the answer is cached and relayed byte for byte, or a stale entry is
//!    served when upstreams fail.
//! 5. Whatever built it, the response is a [`dns::Reply`]; the listener counts it once, where
//!    it is sent ([`metrics::Metrics::count_response`]: query type, response code, TC; and
//!    [`metrics::Metrics::observe`] by path: cluster, cache hit, forwarded, stale, error). UDP
//!    cluster answers and cache hits are answered inline on the receiving loop and sent as one
//!    batch; only misses cost a task.
//!
//! # How state flows
//!
//! 1. [`daemon::start`] builds the one configured source with [`mesos::source::from_config`]:
//!    the demo, a state file ([`mesos::file::Watcher`]), an existing Mesos-DNS
//!    ([`mesos::mesos_dns::MesosDns`]), a relay ([`mesos::relay::Client`]) or the masters
//!    ([`mesos::masters::Masters`]); each builds its own settings from the configuration.
//!    [`mesos::source::Source::load`] publishes what needs no network (the demo, the file, the
//!    persisted state) before the first query is read, then [`mesos::source::Source::run`]
//!    follows the source forever. The networked sources share one body reader capped at
//!    `maxStateBytes` ([`mesos::source::read_capped`]), one retry delay
//!    ([`mesos::source::Backoff`]) and one "unreachable / reachable again" log
//!    ([`mesos::source::Reachability`]).
//! 2. The masters source finds the leader ([`mesos::zk::detect`] with `zk`, else the
//!    `masters` list), takes its state with [`mesos::master::fetch_leader_state`], then
//!    subscribes ([`mesos::master::MasterClient::subscribe`]) and applies the typed events
//!    ([`mesos::stream::Event`]) of [`mesos::stream::follow`] to a
//!    [`mesos::stream::StreamState`], or, when the master has no v1 API, polls every
//!    `refreshSeconds`. A relay's document is read by [`mesos::relay::parse_reader`] as it arrives.
//! 3. A source parses a document once, on the publisher's build thread
//!    ([`publish::Publisher::parse`]), and hands the state to
//!    [`publish::Publisher::publish_state`] (a file, the demo or a seed hand the document to
//!    [`publish::Publisher::publish`], which parses it there with
//!    [`mesos::model::State::from_json`]; a Mesos-DNS zone becomes a snapshot directly,
//!    [`publish::Publisher::publish_snapshot`]). The publisher resolves the hostnames the
//!    state names ([`mesos::hosts::HostResolver::resolve`]), builds the records with
//!    [`records::update`] (Mesos-DNS's generator order and rules; only the shards whose
//!    inputs changed since the served snapshot are rebuilt), and swaps the new
//!    [`records::Snapshot`] into the store the responder reads; parsing, building and freeing
//!    the replaced state all run on one thread ([`publish::BuildThread`]) whose memory is
//!    handed back to the system after each job. A document that fails keeps the previous
//!    snapshot and is counted in `/metrics`, as is every failed fetch
//!    ([`publish::Publisher::fetch_failed`]). The new snapshot is served as soon as its shards
//!    are built; the state behind it is kept parsed ([`publish::Current`]), its lists exactly
//!    sized and its short strings inline, and written out as JSON only when something needs
//!    the document.
//! 4. With `persistFile` the good document is written with [`publish::write_atomically`]
//!    (a streamed state at most once a second, the newest first) and
//!    served at the next start by [`publish::Publisher::load_persisted`]; the HTTP API reads
//!    the same publisher for `/v1/axfr`, `/v1/enumerate` and, through
//!    [`mesos::relay::Server`], the relay document ([`mesos::relay::RelayDoc`]) of
//!    `/v1/snapshot`.

#![warn(missing_docs)]

pub mod config;
pub mod daemon;
pub mod dns;
pub mod guard;
pub mod http;
pub mod lookup;
pub mod mesos;
pub mod metrics;
pub mod netif;
pub mod notify;
pub mod publish;
pub mod records;
pub mod resolv;
pub mod resolvconf;
pub mod sockets;
