//! The relay chain: fake master -> relay daemon -> agent daemon, and `/v1/snapshot` semantics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::master::{cluster_json, cluster_json_with_task, FakeMaster};
use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// GET with extra headers; returns status, raw headers and body bytes.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(70))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[test]
fn a_relay_named_by_hostname_resolves_through_the_original_resolvers() {
    // The name exists only at this upstream (not in /etc/hosts, nor through the C library's
    // resolv.conf): the daemon must ask it directly, as forwarding does.
    let up = crate::common::upstream::FakeUpstream::start();
    let master = FakeMaster::start(&cluster_json());
    let (relay, _r) = start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 1, "stateFile": "", "externalon": false}),
        &[],
    );
    let (agent, _a) = start_with_config(
        json!({
            "relay": format!("http://master.example.com:{}", relay.http.port()),
            "stateFile": "",
            "externalon": false,
            "resolvers": [up.addr.to_string()],
        }),
        &[],
    );
    let m = agent.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    assert!(up.count("master.example.com.") > 0);
}

#[test]
fn a_new_task_reaches_the_agent_through_the_relay() {
    let master = FakeMaster::start(&cluster_json());
    let (relay, _r) = start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 1, "stateFile": "", "externalon": false}),
        &[],
    );
    let (agent, _a) = start_with_config(
        json!({"relay": format!("http://{}", relay.http), "stateFile": "", "externalon": false}),
        &[],
    );
    let m = agent.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);

    let doc = cluster_json_with_task("fresh");
    master.set_state(&doc, master.addr);
    let started = Instant::now();
    agent.wait_for("fresh.marathon.mesos.", RecordType::A, |m| {
        answers(m) == ["A 10.7.7.7"]
    });
    // One master refresh (1 s) plus the long-poll wake-up, not a 30 s poll interval.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn snapshot_endpoint_speaks_http_caching() {
    let d = start(&["--state-file", fixture(CLUSTER).to_str().unwrap()]);
    let (code, head, body) = get(d.http, "/v1/snapshot", &[]);
    assert_eq!(code, 200);
    let etag = header(&head, "etag").expect("etag").to_string();
    assert!(header(&head, "cache-control")
        .unwrap()
        .starts_with("public, max-age="));
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["state"]["leader"], "master@10.40.0.2:5050");
    assert!(
        doc["state"].get("flags").is_none(),
        "compact: only what records need"
    );

    let (code, _, body) = get(d.http, "/v1/snapshot", &[("If-None-Match", &etag)]);
    assert_eq!((code, body.len()), (304, 0));

    let (code, head, gz) = get(d.http, "/v1/snapshot", &[("Accept-Encoding", "gzip")]);
    assert_eq!(code, 200);
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, body_of(&d));
    assert!(
        gz.len() * 3 < plain.len(),
        "gzip {} vs {}",
        gz.len(),
        plain.len()
    );

    // Long-poll: nothing changes, so after `wait` seconds it is a 304.
    let started = Instant::now();
    let (code, _, _) = get(d.http, "/v1/snapshot?wait=2", &[("If-None-Match", &etag)]);
    assert_eq!(code, 304);
    assert!(
        started.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
}

fn body_of(d: &Daemon) -> Vec<u8> {
    get(d.http, "/v1/snapshot", &[]).2
}

/// Like every source, a relay's document over `maxStateBytes` is refused: the agent serves
/// nothing and counts each refusal.
#[test]
fn a_relay_document_over_max_state_bytes_is_refused() {
    let relay = start(&["--state-file", fixture(CLUSTER).to_str().unwrap()]);
    let size = body_of(&relay).len();
    let (agent, _a) = start_with_config_unready(
        json!({"relay": format!("http://{}", relay.http), "stateFile": "", "externalon": false,
            "maxStateBytes": size - 1}),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(agent.http).is_err() {
        assert!(Instant::now() < deadline, "no HTTP API");
        std::thread::sleep(Duration::from_millis(50));
    }
    while metric(&agent, "mesos_dns_sidecar_state_load_errors_total") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the oversized document was never refused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = agent.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert!(m.answers.is_empty(), "{m:?}");
    assert_eq!(metric(&agent, "mesos_dns_sidecar_state_loads_total"), 0.0);
}
