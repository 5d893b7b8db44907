//! `maxUdpAnswers` (mesos-dns#237): over UDP a large A answer set comes back as a random
//! subset of the cap, complete and without TC; over TCP it comes back whole.

use std::collections::HashSet;

use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

/// Agents in the generated cluster: far more addresses than fit a UDP answer.
const AGENTS: usize = 200;

/// A state with `AGENTS` agents whose hostnames are their addresses (so nothing is resolved).
fn many_agents() -> Value {
    let slaves: Vec<Value> = (0..AGENTS)
        .map(|i| {
            let ip = format!("10.9.{}.{}", i / 250, i % 250 + 1);
            json!({"id": format!("S{i}"), "hostname": ip, "pid": format!("slave(1)@{ip}:5051")})
        })
        .collect();
    json!({"leader": "master@10.0.0.1:5050", "hostname": "10.0.0.1",
           "pid": "master@10.0.0.1:5050", "frameworks": [], "slaves": slaves})
}

/// Starts a daemon serving `many_agents` with `extra` config keys; the daemon and the
/// temporary directories it reads from.
fn daemon(extra: Value) -> (Daemon, tempfile::TempDir, tempfile::TempDir) {
    let states = tempfile::tempdir().unwrap();
    let state = states.path().join("state.json");
    std::fs::write(&state, serde_json::to_vec(&many_agents()).unwrap()).unwrap();
    let mut config = json!({"stateFile": state.to_str().unwrap(), "externalon": false});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            config[k] = v;
        }
    }
    let (d, dir) = start_with_config(config, &[]);
    (d, dir, states)
}

#[test]
fn udp_gets_a_random_subset_of_the_cap_and_tcp_gets_all() {
    let (d, _dir, _states) = daemon(json!({"maxUdpAnswers": 5}));
    let all: HashSet<String> = answers(&d.tcp("slave.mesos.", RecordType::A))
        .into_iter()
        .collect();
    assert_eq!(all.len(), AGENTS, "TCP carries the whole set");

    let mut subsets = HashSet::new();
    for edns in [None, Some(1232), None, Some(4096)]
        .into_iter()
        .cycle()
        .take(20)
    {
        let m = d.udp("slave.mesos.", RecordType::A, edns);
        assert!(!m.metadata.truncation, "a capped answer is complete");
        let got = answers(&m);
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), 5, "{got:?}");
        assert!(got.iter().all(|a| all.contains(a)), "{got:?}");
        subsets.insert(got);
    }
    assert!(subsets.len() > 1, "the subset changes between queries");
    assert!(metric(&d, "mesos_dns_sidecar_capped_udp_answers_total") >= 20.0);

    // Sets within the cap are whole.
    let m = d.udp("leader.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.0.0.1"]);
}

#[test]
fn off_by_default_udp_truncates_the_whole_set() {
    let (d, _dir, _states) = daemon(json!({}));
    let m = d.udp("slave.mesos.", RecordType::A, None);
    assert!(
        m.metadata.truncation,
        "without the cap the set does not fit"
    );
    assert!(m.answers.is_empty());
    assert_eq!(answers(&d.tcp("slave.mesos.", RecordType::A)).len(), AGENTS);
}
