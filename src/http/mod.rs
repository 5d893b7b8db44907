//! The HTTP API on `httpport`: Mesos-DNS's `/v1/*` endpoints with the same JSON shapes, plus
//! Prometheus `/metrics` and `/health` / `/ready` probes.
//!
//! The API shares the runtime and the descriptor table with the DNS listeners, so it must not
//! be able to starve them: connections are capped (`httpMaxConnections`) and must send a
//! complete request head within `httpHeaderTimeoutSeconds` (slowloris, idle keep-alive), heads
//! are bounded in size, and the large documents (`/v1/axfr`, `/v1/enumerate`, `/v1/snapshot`)
//! are built once per snapshot on a blocking thread and then served as shared bytes. With
//! `httpToken` set, the endpoints that reveal the whole cluster or the daemon's setup need it
//! as a bearer token.

use std::sync::Arc;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::dns::access::{Access, ClientAcl};
use crate::dns::Forwarder;
use crate::mesos::relay;
use crate::metrics::{Histogram, Merged, Metrics, PREFIX};
use crate::publish::Publisher;
use crate::records::snapshot::Entry;

/// What the handlers read.
#[derive(Clone)]
pub struct Api {
    /// Snapshots and the state behind them.
    pub publisher: Arc<Publisher>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The configuration, for `/v1/config`.
    pub config: Arc<Config>,
    /// The forwarder, for cache and upstream metrics.
    pub forwarder: Option<Arc<Forwarder>>,
    /// The large documents, built once per snapshot.
    pub docs: Arc<Documents>,
    /// Every metric `/metrics` exports, registered once.
    pub registry: Arc<Registry>,
    /// The relay document and `/v1/snapshot`.
    pub relay: Arc<relay::Server>,
}

impl Api {
    /// The API over these parts, with its metrics registry built.
    pub fn new(
        publisher: Arc<Publisher>,
        metrics: Arc<Metrics>,
        config: Arc<Config>,
        forwarder: Option<Arc<Forwarder>>,
    ) -> Api {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        registry.register_collector(Box::new(Gauges {
            publisher: publisher.clone(),
            forwarder: forwarder.clone(),
            stale_after_seconds: config.stale_after_seconds,
        }));
        let relay = Arc::new(relay::Server::new(
            publisher.clone(),
            metrics.clone(),
            &config,
        ));
        Api {
            relay,
            publisher,
            metrics,
            config,
            forwarder,
            docs: Default::default(),
            registry: Arc::new(registry),
        }
    }
}

/// One document built for one snapshot serial.
type Built = tokio::sync::Mutex<Option<(u32, Bytes)>>;

/// `/v1/axfr` and `/v1/enumerate` as built for the served snapshot: many clients re-reading them
/// cost one build per snapshot, not one per request.
#[derive(Default)]
pub struct Documents {
    axfr: Built,
    enumerate: Built,
}

/// Returns the document in `slot` for `serial`, building it with `build` on a blocking thread
/// when the slot holds another serial's. Concurrent requests wait for the one build.
async fn built(
    slot: &Built,
    serial: u32,
    build: impl FnOnce() -> Vec<u8> + Send + 'static,
) -> Option<Bytes> {
    let mut held = slot.lock().await;
    if let Some((s, doc)) = held.as_ref() {
        if *s == serial {
            return Some(doc.clone());
        }
    }
    let doc = Bytes::from(tokio::task::spawn_blocking(build).await.ok()?);
    *held = Some((serial, doc.clone()));
    Some(doc)
}

fn json_bytes(doc: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc).into_response()
}

/// Whether `headers` carry the configured bearer token (always true without `httpToken`).
/// The comparison takes the same time wherever the first difference is.
fn authorized(api: &Api, headers: &HeaderMap) -> bool {
    let Some(token) = &api.config.http_token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        Metrics::inc(&api.metrics.http_unauthorized);
    }
    ok
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "bearer token required\n",
    )
        .into_response()
}

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head (the first or the next one).
    pub header_timeout: Duration,
}

impl HttpLimits {
    /// `httpMaxConnections`, lowered when the descriptor limit `nofile` would not leave
    /// `dns_reserve` descriptors for DNS, and `httpHeaderTimeoutSeconds` (at least 1).
    pub fn from_config(c: &Config, nofile: u64, dns_reserve: u64) -> HttpLimits {
        let room = nofile.saturating_sub(dns_reserve).max(16) as usize;
        let max_connections = c.http_max_connections.min(room);
        if max_connections < c.http_max_connections {
            tracing::warn!(
                configured = c.http_max_connections,
                cap = max_connections,
                nofile,
                "httpMaxConnections lowered to keep descriptors for DNS"
            );
        }
        HttpLimits {
            max_connections,
            header_timeout: Duration::from_secs(c.http_header_timeout_seconds.max(1)),
        }
    }
}

/// Largest request head (and read buffer) per connection: 8 KiB (hyper's minimum; the API's
/// requests are small GETs), so the connection cap bounds the memory unfinished heads can take
/// (4,096 x 8 KiB = 32 MiB at most, and only for `httpHeaderTimeoutSeconds`).
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Serves `router` on `listener` within `limits` on a runtime of its own, on its own thread,
/// until the task running this future is aborted (which stops that runtime and closes every
/// HTTP socket). Writing multi-megabyte documents to many clients then competes with the DNS
/// listeners only as one more thread for the kernel to schedule, not as work queued on the
/// runtime threads that answer queries.
pub async fn serve_apart(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
    acl: Arc<ClientAcl>,
    metrics: Arc<Metrics>,
) {
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "HTTP API cannot start");
            return;
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("http-api".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "HTTP API runtime cannot start");
                    return;
                }
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    _ = serve(listener, router, limits, acl, metrics) => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime here ends every connection task and closes its socket.
        });
    if let Err(e) = thread {
        tracing::error!(error = %e, "HTTP API thread cannot start");
        return;
    }
    // Holding `stop` until this task is aborted; dropping it stops the HTTP runtime.
    let _stop = stop;
    std::future::pending::<()>().await
}

/// What a client outside the client rules gets before the connection is closed.
const FORBIDDEN: &[u8] = b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 38\r\nConnection: close\r\n\r\nclient not allowed (see allowClients)\n";

/// Serves `router` on `listener` within `limits` until the task running it is aborted; clients
/// the access rules refuse get 403 and are disconnected.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
    acl: Arc<ClientAcl>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, peer)) if acl.check(peer.ip()) == Access::Refuse => {
                Metrics::inc(&metrics.http_clients_refused);
                // One attempt, never waiting: the answer fits any socket buffer.
                let _ = stream.try_write(FORBIDDEN);
                drop(stream);
                continue;
            }
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors: back off instead of spinning; DNS keeps its own.
                tracing::debug!(error = %e, "http accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            Metrics::inc(&metrics.http_connections_rejected);
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEAD_BYTES);
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = builder.serve_connection(io, service).await {
                tracing::debug!(error = %e, "http connection ended");
            }
            drop(permit);
        });
    }
}

/// The router with every endpoint.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/version", get(version))
        .route("/v1/config", get(config))
        .route("/v1/hosts/{host}", get(hosts))
        .route("/v1/services/{service}", get(services))
        .route("/v1/enumerate", get(enumerate))
        .route("/v1/axfr", get(axfr))
        .route("/v1/snapshot", get(snapshot))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(api)
}

/// What the documents listing the whole cluster answer when `EnumerationOn` is false: 404, as
/// Mesos-DNS, which does not register them then.
fn enumeration_off() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

async fn version() -> Json<Value> {
    Json(json!({
        "Service": "Mesos-DNS",
        "Version": concat!("mesos-dns-sidecar ", env!("CARGO_PKG_VERSION")),
        "URL": "https://github.com/mesosphere/mesos-dns",
    }))
}

/// The configuration with Mesos-DNS's field names (Go struct names; `HttpPort`, `DnsOn`,
/// `HttpOn` as its JSON tags spell them). Credentials are not echoed.
async fn config(State(api): State<Api>, headers: HeaderMap) -> Response {
    if !authorized(&api, &headers) {
        return unauthorized();
    }
    let c = &api.config;
    Json(json!({
        "RefreshSeconds": c.refresh_seconds,
        "Port": c.port,
        "Timeout": c.timeout,
        "StateTimeoutSeconds": c.state_timeout_seconds,
        "ZkDetectionTimeout": c.zk_detection_timeout,
        "HttpPort": c.http_port,
        "TTL": c.ttl,
        "SOASerial": api.publisher.snapshot().map_or(0, |s| s.soa.serial),
        "SOARefresh": c.soa_refresh,
        "SOARetry": c.soa_retry,
        "SOAExpire": c.soa_expire,
        "SOAMinttl": c.soa_minttl,
        "SOAMname": c.soa_mname,
        "SOARname": c.soa_rname,
        "Masters": c.masters,
        "Resolvers": c.resolvers,
        "IPSources": c.ip_sources.iter().map(|s| format!("{s:?}").to_lowercase()).collect::<Vec<_>>(),
        "Zk": c.zk.as_ref().map_or("", |z| z.as_str()),
        "Domain": c.domain,
        "Listener": c.listener.to_string(),
        "HTTPListener": c.http_listener.to_string(),
        "RecurseOn": c.recurse_on,
        "DnsOn": c.dns_on,
        "HttpOn": c.http_on,
        "ExternalOn": c.external_on,
        "EnforceRFC952": c.enforce_rfc952,
        "SetTruncateBit": c.set_truncate_bit,
        "EnumerationOn": c.enumeration_on,
        "MesosHTTPSOn": c.mesos_https_on,
        "CACertFile": c.ca_cert_file,
        "CertFile": c.cert_file,
        "KeyFile": c.key_file,
        "ZoneResolvers": c.zone_resolvers,
        "MesosAuthentication": c.mesos_authentication,
        "SRVRecordDefaultWeight": c.srv_record_default_weight,
    }))
    .into_response()
}

/// Mesos-DNS lowercases the name and adds the trailing dot.
fn fqdn_key(name: &str) -> String {
    let mut k = name.to_ascii_lowercase();
    if !k.ends_with('.') {
        k.push('.');
    }
    k
}

async fn hosts(State(api): State<Api>, Path(host): Path<String>) -> Json<Value> {
    let key = fqdn_key(&host);
    let snap = api.publisher.snapshot();
    let entry = snap.as_ref().and_then(|s| s.lookup(&key));
    let mut out: Vec<Value> = Vec::new();
    if let Some(e) = entry {
        out.extend(
            e.a.iter()
                .map(|ip| json!({"host": key, "ip": ip.to_string()})),
        );
        out.extend(
            e.aaaa
                .iter()
                .map(|ip| json!({"host": key, "ip": ip.to_string()})),
        );
    }
    if out.is_empty() {
        out.push(json!({"host": "", "ip": ""}));
    }
    Json(Value::Array(out))
}

async fn services(State(api): State<Api>, Path(service): Path<String>) -> Json<Value> {
    let key = fqdn_key(&service);
    let mut out: Vec<Value> = Vec::new();
    if let Some(snap) = api.publisher.snapshot() {
        if let Some(e) = snap.lookup(&key) {
            for r in e.srv {
                let t = e.target(r);
                let ip = snap
                    .target_entry(&e, &t)
                    .and_then(|te| first_address(&te))
                    .unwrap_or_default();
                out.push(json!({"service": service, "host": t.name, "ip": ip, "port": r.port.to_string()}));
            }
        }
    }
    if out.is_empty() {
        out.push(json!({"service": "", "host": "", "ip": "", "port": ""}));
    }
    Json(Value::Array(out))
}

fn first_address(e: &Entry<'_>) -> Option<String> {
    e.a.first()
        .map(|ip| ip.to_string())
        .or_else(|| e.aaaa.first().map(|ip| ip.to_string()))
}

async fn enumerate(State(api): State<Api>, headers: HeaderMap) -> Response {
    if !authorized(&api, &headers) {
        return unauthorized();
    }
    if !api.config.enumeration_on {
        return enumeration_off();
    }
    let serial = api.publisher.snapshot().map_or(0, |s| s.soa.serial);
    let publisher = api.publisher.clone();
    let doc = built(&api.docs.enumerate, serial, move || {
        serde_json::to_vec(&publisher.enumeration()).unwrap_or_default()
    })
    .await;
    match doc {
        Some(doc) => json_bytes(doc),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "enumeration failed\n").into_response(),
    }
}

/// Mesos-DNS's zone transfer model: TTL, serial, refresh, SOA names, domain, and the As,
/// AAAAs and SRVs maps of name -> values.
async fn axfr(State(api): State<Api>, headers: HeaderMap) -> Response {
    if !authorized(&api, &headers) {
        return unauthorized();
    }
    if !api.config.enumeration_on {
        return enumeration_off();
    }
    let Some(snap) = api.publisher.snapshot() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no cluster state yet\n").into_response();
    };
    let config = api.config.clone();
    let serial = snap.soa.serial;
    match built(&api.docs.axfr, serial, move || {
        axfr_document(&snap, &config)
    })
    .await
    {
        Some(doc) => json_bytes(doc),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "axfr failed\n").into_response(),
    }
}

fn axfr_document(snap: &crate::records::Snapshot, config: &Config) -> Vec<u8> {
    let (mut a, mut aaaa, mut srv) = (Map::new(), Map::new(), Map::new());
    for (name, e) in snap.names() {
        if !e.a.is_empty() {
            a.insert(name.into(), e.a.iter().map(|ip| ip.to_string()).collect());
        }
        if !e.aaaa.is_empty() {
            aaaa.insert(
                name.into(),
                e.aaaa.iter().map(|ip| ip.to_string()).collect(),
            );
        }
        if !e.srv.is_empty() {
            let v: Vec<String> = e
                .srv
                .iter()
                .map(|r| format!("{}:{}", e.target(r).name, r.port))
                .collect();
            srv.insert(name.into(), v.into());
        }
    }
    serde_json::to_vec(&json!({
        "TTL": snap.ttl,
        "Serial": snap.soa.serial,
        "RefreshSeconds": config.refresh_seconds,
        "Mname": snap.soa.mname.to_ascii(),
        "Rname": snap.soa.rname.to_ascii(),
        "Domain": config.domain,
        "Records": {"As": a, "AAAAs": aaaa, "SRVs": srv},
    }))
    .unwrap_or_default()
}

/// `/v1/snapshot`: the relay protocol's server side ([`relay::Server`]), behind the token and
/// `EnumerationOn` as the other documents listing the whole cluster.
async fn snapshot(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<relay::SnapshotQuery>,
) -> Response {
    if !authorized(&api, &headers) {
        return unauthorized();
    }
    if !api.config.enumeration_on {
        return enumeration_off();
    }
    api.relay.respond(&headers, q.wait).await
}

async fn ready(State(api): State<Api>) -> Response {
    if api.publisher.snapshot().is_none() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no cluster state yet\n").into_response();
    }
    if let Some(age) = stale_age(&api) {
        let mut reason = format!(
            "cluster state is stale: {}s old (staleAfterSeconds {})",
            age.as_secs(),
            api.config.stale_after_seconds
        );
        if let Some(error) = api.publisher.last_error() {
            reason.push_str(&format!("; last error: {error}"));
        }
        reason.push('\n');
        return (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    }
    "ready\n".into_response()
}

/// The served state's age when `staleAfterSeconds` is on and the state is older than that.
fn stale_age(api: &Api) -> Option<std::time::Duration> {
    let after = api.config.stale_after_seconds;
    let age = api.publisher.age()?;
    (after > 0 && age.as_secs_f64() > after as f64).then_some(age)
}

/// OpenMetrics text of every metric in the registry.
async fn metrics(State(api): State<Api>, headers: HeaderMap) -> Response {
    if !authorized(&api, &headers) {
        return unauthorized();
    }
    match render_metrics(&api) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        )
            .into_response(),
    }
}

/// The `/metrics` text: the encoder's output for the registry.
fn render_metrics(api: &Api) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &api.registry)?;
    Ok(out)
}

/// The gauges read at scrape time from the served snapshot and the forwarder, and the
/// per-upstream RTT histograms (upstreams come and go as resolv.conf changes, so they are
/// read from the current set on each scrape).
struct Gauges {
    publisher: Arc<Publisher>,
    forwarder: Option<Arc<Forwarder>>,
    /// `staleAfterSeconds` (0 = off), for the stale gauge.
    stale_after_seconds: u64,
}

impl std::fmt::Debug for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauges").finish_non_exhaustive()
    }
}

/// Encodes one unlabelled gauge.
fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: V,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(&format!("{PREFIX}{name}"), help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

impl Collector for Gauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(snap) = self.publisher.snapshot() {
            let s = &snap.stats;
            gauge(
                &mut encoder,
                "records",
                "Records in the served snapshot.",
                (s.a + s.aaaa + s.srv) as u64,
            )?;
            gauge(
                &mut encoder,
                "names",
                "Names in the served snapshot.",
                s.names as u64,
            )?;
            gauge(
                &mut encoder,
                "tasks",
                "Running tasks in the served snapshot.",
                s.tasks as u64,
            )?;
        }
        if let Some(age) = self.publisher.age() {
            gauge(
                &mut encoder,
                "snapshot_age_seconds",
                "Age of the served cluster state.",
                age.as_secs_f64(),
            )?;
            let after = self.stale_after_seconds;
            let stale = after > 0 && age.as_secs_f64() > after as f64;
            gauge(
                &mut encoder,
                "snapshot_stale",
                "1 when the served cluster state is older than staleAfterSeconds (answers carry EDE 3)",
                u64::from(stale),
            )?;
        }
        let Some(f) = &self.forwarder else {
            return Ok(());
        };
        gauge(
            &mut encoder,
            "cache_entries",
            "Entries in the forwarding cache.",
            f.cache().entry_count(),
        )?;
        gauge(
            &mut encoder,
            "cache_bytes",
            "Weighted size of the forwarding cache.",
            f.cache().weighted_size(),
        )?;
        let set = f.upstreams();
        let upstreams = set.all();
        let labels: Vec<[(&str, String); 1]> = upstreams
            .iter()
            .map(|u| [("upstream", u.addr.to_string())])
            .collect();
        let name = format!("{PREFIX}upstream_rtt_seconds");
        let mut srtt = encoder.encode_descriptor(
            &name,
            "Smoothed upstream round-trip time.",
            None,
            MetricType::Gauge,
        )?;
        for (u, label) in upstreams.iter().zip(&labels) {
            if let Some(rtt) = u.srtt() {
                srtt.encode_family(label)?
                    .encode_gauge(&rtt.as_secs_f64())?;
            }
        }
        let name = format!("{PREFIX}upstream_rtt_histogram_seconds");
        let mut rtts = encoder.encode_descriptor(
            &name,
            "Round-trip time of each answered upstream exchange, by upstream (default and zone resolvers).",
            None,
            MetricType::Histogram,
        )?;
        // One series per address: an upstream named in the default resolvers and in zones
        // is one server, whose sets' histograms are added together.
        let mut by_addr: Vec<(std::net::SocketAddr, Vec<&Histogram>)> = Vec::new();
        for u in upstreams
            .iter()
            .chain(f.zone_upstreams().flat_map(|z| z.all()))
        {
            match by_addr.iter_mut().find(|(addr, _)| *addr == u.addr) {
                Some((_, hs)) => hs.push(u.rtt_histogram()),
                None => by_addr.push((u.addr, vec![u.rtt_histogram()])),
            }
        }
        for (addr, hs) in &by_addr {
            let label = [("upstream", addr.to_string())];
            Merged(hs).encode(rtts.encode_family(&label)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn api() -> Api {
        let config = Config::default();
        let metrics = Arc::new(Metrics::default());
        let settings = crate::records::RecordSettings::from_config(&config, vec![]);
        Api::new(
            Arc::new(Publisher::new(
                settings,
                Arc::new(arc_swap::ArcSwapOption::empty()),
                metrics.clone(),
                None,
            )),
            metrics,
            Arc::new(config),
            None,
        )
    }

    #[test]
    fn every_metric_appears_in_the_metrics_output() {
        let api = api();
        for (i, c) in api.metrics.counters().iter().enumerate() {
            c.counter.inc_by(1000 + i as u64);
        }
        api.metrics.count_qtype(33);
        api.metrics
            .observe(crate::metrics::Path::Forwarded, Duration::from_millis(2), 3);
        let text = render_metrics(&api).unwrap();
        let has = |line: &str| text.lines().any(|l| l == line);
        for (i, c) in api.metrics.counters().iter().enumerate() {
            assert!(
                has(&format!("{} {}", c.name, 1000 + i)),
                "{} ({}) missing from /metrics:\n{text}",
                c.name,
                c.field
            );
        }
        assert!(has("mesos_dns_sidecar_queries_total{qtype=\"SRV\"} 1"));
        assert!(has("mesos_dns_sidecar_responses_total{rcode=\"0\"} 0"));
        for path in crate::metrics::Path::ALL {
            let n = if path == crate::metrics::Path::Forwarded {
                3
            } else {
                0
            };
            let line = format!(
                "mesos_dns_sidecar_response_seconds_count{{path=\"{}\"}} {n}",
                path.label()
            );
            assert!(has(&line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[tokio::test]
    async fn documents_are_built_once_per_snapshot() {
        let slot = Built::default();
        let builds = Arc::new(AtomicUsize::new(0));
        let build = |n: &Arc<AtomicUsize>| {
            let n = n.clone();
            move || {
                n.fetch_add(1, Ordering::Relaxed);
                b"{}".to_vec()
            }
        };
        let (a, b) = tokio::join!(
            built(&slot, 7, build(&builds)),
            built(&slot, 7, build(&builds))
        );
        assert_eq!(a, b);
        assert_eq!(
            builds.load(Ordering::Relaxed),
            1,
            "concurrent requests share a build"
        );
        built(&slot, 7, build(&builds)).await;
        assert_eq!(builds.load(Ordering::Relaxed), 1);
        built(&slot, 8, build(&builds)).await;
        assert_eq!(
            builds.load(Ordering::Relaxed),
            2,
            "a new snapshot builds anew"
        );
    }
}
