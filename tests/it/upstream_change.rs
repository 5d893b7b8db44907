//! The host's resolvers change (a DHCP renewal rewrites the saved original, or the manager a
//! symlinked original pointed to rewrites its file): the running daemon forwards to the new
//! ones within seconds, without a restart. Needs root (resolv.conf upstreams are on port 53).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::upstream::{loopback, FakeUpstream};
use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;

fn demo_state() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/src/mesos/demo_state.json").to_string()
}

/// Asks for fresh names (`probeN-TAG.example.com`, never cached) until one reaches
/// `upstream`, for at most `limit`; returns how long it took.
fn until_asked(d: &Daemon, upstream: &FakeUpstream, tag: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    for i in 0.. {
        let name = format!("probe{i}-{tag}.example.com.");
        let _ = try_udp(
            d.addr,
            &query(&name, RecordType::A, None),
            Duration::from_millis(500),
        );
        if upstream.count(&name) > 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "no {tag} name reached the new upstream"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!()
}

#[test]
fn a_rewritten_original_or_link_target_is_followed_without_restart() {
    let missing = (!is_root()).then(|| "not root (port 53)".into());
    if !prerequisite_met("the upstream change test", missing) {
        return;
    }
    let first = FakeUpstream::start_on(SocketAddr::from((loopback(201), 53)));
    let second = FakeUpstream::start_on(SocketAddr::from((loopback(202), 53)));
    let third = FakeUpstream::start_on(SocketAddr::from((loopback(203), 53)));
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("resolv.conf.orig");
    std::fs::write(&saved, "search corp.example\nnameserver 127.0.0.201\n").unwrap();
    let system = dir.path().join("resolv.conf");
    std::fs::write(&system, "nameserver 127.0.0.1\n").unwrap();
    let (d, _cfg) = start_with_config(
        json!({
            "stateFile": demo_state(),
            "resolvConf": system.to_str().unwrap(),
            "savedResolvConf": saved.to_str().unwrap(),
        }),
        &[],
    );
    until_asked(&d, &first, "start", Duration::from_secs(3));

    // dhclient's hook writes the new servers into the saved original.
    std::fs::write(&saved, "search corp.example\nnameserver 127.0.0.202\n").unwrap();
    let took = until_asked(&d, &second, "dhcp", Duration::from_secs(10));
    eprintln!("new upstream used after {took:?}");
    // Switched for good: the next new name goes to the new server only.
    until_asked(&d, &second, "after", Duration::from_secs(1));
    assert_eq!(first.count("probe0-after.example.com."), 0);

    // The original was a symlink to a manager's file: that file is followed.
    let live = dir.path().join("run-resolv.conf");
    std::fs::write(&live, "nameserver 127.0.0.203\n").unwrap();
    std::fs::write(
        dir.path().join("resolv.conf.orig.link"),
        live.to_str().unwrap(),
    )
    .unwrap();
    until_asked(&d, &third, "link", Duration::from_secs(10));
    until_asked(&d, &third, "linked", Duration::from_secs(1));
    assert_eq!(second.count("probe0-linked.example.com."), 0);
}
