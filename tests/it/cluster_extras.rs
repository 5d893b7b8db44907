//! The answers Mesos-DNS users asked for and never got, through real DNS queries: health-aware
//! answers (on a state file and on the event stream), the `routable` IP source, reverse
//! lookups, agent hostname records and the static records file, and `SetTruncateBit`.

use crate::common::stream_master::StreamingMaster;
use crate::common::upstream::FakeUpstream;
use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

/// A running task of `marathon` on agent `S<agent>`, with a status as given (`extra` merged
/// into the latest running status) and `container` settings.
fn task(id: &str, name: &str, agent: u8, status: Value, container: Value) -> Value {
    let mut st = json!({"state": "TASK_RUNNING", "timestamp": 2.0});
    for (k, v) in status.as_object().unwrap() {
        st[k] = v.clone();
    }
    let mut t = json!({"id": id, "name": name, "slave_id": format!("agent-S{agent}"),
        "state": "TASK_RUNNING", "resources": {"ports": "[31000-31000]"},
        "statuses": [{"state": "TASK_STAGING", "timestamp": 1.0}, st]});
    if !container.is_null() {
        t["container"] = container;
    }
    t
}

/// Container addresses of a status.
fn netinfo(ip: &str) -> Value {
    json!({"network_infos": [{"ip_addresses": [{"ip_address": ip}]}]})
}

/// Two agents (10.0.1.1 `agent1.example.internal`, 10.0.1.2 `agent2`) and these tasks.
fn cluster(tasks: Vec<Value>) -> Value {
    json!({"leader": "master@10.0.0.1:5050",
        "frameworks": [{"id": "fw-1", "name": "marathon", "pid": "scheduler(1)@10.0.0.1:8080", "tasks": tasks}],
        "slaves": [
            {"id": "agent-S1", "hostname": "agent1.example.internal", "pid": "slave(1)@10.0.1.1:5051"},
            {"id": "agent-S2", "hostname": "agent2", "pid": "slave(1)@10.0.1.2:5051"}]})
}

/// Starts the daemon on `state` with `config` merged over the test defaults.
fn daemon(state: &Value, config: Value) -> (Daemon, [tempfile::TempDir; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, serde_json::to_vec(state).unwrap()).unwrap();
    let mut c = json!({"stateFile": path.to_str().unwrap(), "externalon": false});
    for (k, v) in config.as_object().unwrap() {
        c[k] = v.clone();
    }
    let (d, cfg_dir) = start_with_config(c, &[]);
    (d, [dir, cfg_dir])
}

fn a(d: &Daemon, name: &str) -> Vec<String> {
    answers(&d.udp(name, RecordType::A, None))
}

/// Web has a healthy and an unhealthy instance, solo only an unhealthy one, plain has no
/// health checks.
fn health_cluster() -> Value {
    cluster(vec![
        task(
            "web.1",
            "web",
            1,
            json!({"healthy": true, "container_status": netinfo("10.9.0.1")}),
            Value::Null,
        ),
        task(
            "web.2",
            "web",
            2,
            json!({"healthy": false, "container_status": netinfo("10.9.0.2")}),
            Value::Null,
        ),
        task(
            "solo.1",
            "solo",
            1,
            json!({"healthy": false, "container_status": netinfo("10.9.0.3")}),
            Value::Null,
        ),
        task(
            "plain.1",
            "plain",
            2,
            json!({"container_status": netinfo("10.9.0.4")}),
            Value::Null,
        ),
    ])
}

#[test]
fn unhealthy_instances_are_left_out_unless_that_empties_the_answer() {
    let state = health_cluster();
    let (d, _dir) = daemon(&state, json!({"omitUnhealthy": true}));
    assert_eq!(a(&d, "web.marathon.mesos."), ["A 10.9.0.1"]);
    assert_eq!(a(&d, "web.marathon.slave.mesos."), ["A 10.0.1.1"]);
    // Only unhealthy instances: all of them, rather than nothing.
    assert_eq!(a(&d, "solo.marathon.mesos."), ["A 10.9.0.3"]);
    assert_eq!(a(&d, "plain.marathon.mesos."), ["A 10.9.0.4"]);
    let srv = d.udp("_web._tcp.marathon.mesos.", RecordType::SRV, None);
    assert_eq!(srv.answers.len(), 1, "{:?}", answers(&srv));
    assert!(answers(&srv)[0].contains("web-"));
    // The unhealthy instance's own name still resolves.
    let all = d.tcp("_web._tcp.marathon.slave.mesos.", RecordType::SRV);
    assert_eq!(all.answers.len(), 1);

    // Off (the default): every instance, as Mesos-DNS answers.
    let (d, _dir) = daemon(&state, json!({}));
    assert_eq!(a(&d, "web.marathon.mesos."), ["A 10.9.0.1", "A 10.9.0.2"]);
    let srv = d.udp("_web._tcp.marathon.mesos.", RecordType::SRV, None);
    assert_eq!(srv.answers.len(), 2);
}

/// A v1 task on `agent` with one port, running.
fn v1_task(id: &str, agent: &str) -> Value {
    json!({"name": "web", "task_id": {"value": id}, "framework_id": {"value": "fw-1"},
           "agent_id": {"value": agent}, "state": "TASK_RUNNING",
           "statuses": [{"task_id": {"value": id}, "state": "TASK_RUNNING", "timestamp": 1.0}]})
}

/// A health check's status update for task `id`.
fn health_update(id: &str, healthy: bool, timestamp: f64) -> Value {
    json!({"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": "fw-1"},
        "state": "TASK_RUNNING", "status": {"task_id": {"value": id}, "state": "TASK_RUNNING",
        "timestamp": timestamp, "healthy": healthy, "reason": "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"}}})
}

#[test]
fn health_changes_on_the_event_stream_change_the_answers() {
    let get_state = json!({
        "get_frameworks": {"frameworks": [{"framework_info": {"id": {"value": "fw-1"}, "name": "marathon", "hostname": "m"}}]},
        "get_agents": {"agents": [
            {"agent_info": {"id": {"value": "agent-1"}, "hostname": "a1"}, "pid": "slave(1)@10.0.1.1:5051"},
            {"agent_info": {"id": {"value": "agent-2"}, "hostname": "a2"}, "pid": "slave(1)@10.0.1.2:5051"}]},
        "get_tasks": {"tasks": [v1_task("web.1", "agent-1"), v1_task("web.2", "agent-2")]}});
    let master = StreamingMaster::start(15.0, get_state, |me| {
        json!({"leader": format!("master@{me}"),
            "frameworks": [{"id": "fw-1", "name": "marathon", "tasks": []}],
            "slaves": [{"id": "agent-1", "pid": "slave(1)@10.0.1.1:5051"}, {"id": "agent-2", "pid": "slave(1)@10.0.1.2:5051"}]})
    });
    let (d, _dir) = start_with_config(
        json!({"masters": [master.addr.to_string()], "stateFile": "", "externalon": false, "omitUnhealthy": true}),
        &[],
    );
    let both = ["A 10.0.1.1", "A 10.0.1.2"];
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| answers(m) == both);

    master.send(health_update("web.2", false, 2.0));
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| {
        answers(m) == ["A 10.0.1.1"]
    });
    // Both failing: both answered, never nothing.
    master.send(health_update("web.1", false, 3.0));
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| answers(m) == both);
    // web.2 recovers: only it.
    master.send(health_update("web.2", true, 4.0));
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| {
        answers(m) == ["A 10.0.1.2"]
    });
}

#[test]
fn the_routable_source_takes_container_addresses_only_when_reachable() {
    let state = cluster(vec![
        task(
            "bridged.1",
            "bridged",
            2,
            json!({"container_status": netinfo("172.17.0.5")}),
            json!({"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE"}}),
        ),
        task(
            "mapped.1",
            "mapped",
            1,
            json!({"container_status": netinfo("172.31.0.2")}),
            json!({"type": "MESOS", "network_infos": [{"name": "mesos-bridge",
                "port_mappings": [{"host_port": 31000, "container_port": 80}]}]}),
        ),
        task(
            "overlay.1",
            "overlay",
            1,
            json!({"container_status": netinfo("9.0.0.9")}),
            json!({"type": "DOCKER", "docker": {"image": "nginx", "network": "USER"}}),
        ),
        task(
            "hostnet.1",
            "hostnet",
            1,
            json!({}),
            json!({"type": "DOCKER", "docker": {"image": "nginx", "network": "HOST"}}),
        ),
    ]);
    let (d, _dir) = daemon(&state, json!({"IPSources": ["routable"]}));
    assert_eq!(a(&d, "bridged.marathon.mesos."), ["A 10.0.1.2"]);
    assert_eq!(a(&d, "mapped.marathon.mesos."), ["A 10.0.1.1"]);
    assert_eq!(a(&d, "overlay.marathon.mesos."), ["A 9.0.0.9"]);
    assert_eq!(a(&d, "hostnet.marathon.mesos."), ["A 10.0.1.1"]);
    // Mesos-DNS's netinfo source answers the unroutable bridge address.
    let (d, _dir) = daemon(&state, json!({"IPSources": ["netinfo", "host"]}));
    assert_eq!(a(&d, "bridged.marathon.mesos."), ["A 172.17.0.5"]);
    assert_eq!(a(&d, "mapped.marathon.mesos."), ["A 172.31.0.2"]);
}

/// The PTR target of a reverse name, or `None` for an answer without one.
fn ptr(d: &Daemon, name: &str) -> Option<String> {
    let m = d.udp(name, RecordType::PTR, None);
    m.answers.first().map(|r| r.data.to_string())
}

#[test]
fn reverse_lookups_answer_addresses_with_exactly_one_name_and_forward_the_rest() {
    let up = FakeUpstream::start();
    let state = cluster(vec![
        task(
            "web.1",
            "web",
            1,
            json!({"container_status": netinfo("10.9.0.1")}),
            Value::Null,
        ),
        task(
            "web.2",
            "web",
            2,
            json!({"container_status": netinfo("10.9.0.2")}),
            Value::Null,
        ),
        task(
            "twin.1",
            "twin",
            1,
            json!({"container_status": netinfo("10.9.0.9")}),
            Value::Null,
        ),
        task(
            "twin.2",
            "twin",
            2,
            json!({"container_status": netinfo("10.9.0.9")}),
            Value::Null,
        ),
        task("hostnet.1", "hostnet", 1, json!({}), Value::Null),
    ]);
    let resolvers = json!([up.addr.to_string()]);
    let (d, _dir) = daemon(&state, json!({"externalon": true, "resolvers": resolvers}));
    let web1 = ptr(&d, "1.0.9.10.in-addr.arpa.").expect("task PTR");
    assert!(
        web1.starts_with("web-") && web1.ends_with("-s1.marathon.mesos."),
        "{web1}"
    );
    // The name points back at the address.
    assert_eq!(a(&d, &web1), ["A 10.9.0.1"]);
    let web2 = ptr(&d, "2.0.9.10.IN-ADDR.ARPA.").unwrap();
    assert!(web2.ends_with("-s2.marathon.mesos."), "{web2}");
    // Agents by the hostname they registered with; a host-network task doesn't share it.
    assert_eq!(
        ptr(&d, "1.1.0.10.in-addr.arpa.").as_deref(),
        Some("agent1.example.internal.")
    );
    assert_eq!(
        ptr(&d, "2.1.0.10.in-addr.arpa.").as_deref(),
        Some("agent2.")
    );
    assert_eq!(up.count("1.1.0.10.in-addr.arpa."), 0);
    // Two tasks on one address, an unknown address and other types: forwarded (the fake
    // upstream refuses what it doesn't know).
    let twin = d.udp("9.0.9.10.in-addr.arpa.", RecordType::PTR, None);
    assert!(twin.answers.is_empty());
    assert!(up.count("9.0.9.10.in-addr.arpa.") > 0);
    assert_eq!(
        ptr(&d, "10.2.0.192.in-addr.arpa.").as_deref(),
        Some("www.example.com.")
    );
    d.udp("1.0.9.10.in-addr.arpa.", RecordType::TXT, None);
    assert!(up.count("1.0.9.10.in-addr.arpa.") > 0);
    // Off: every reverse name is forwarded, as by Mesos-DNS.
    let (d, _dir) = daemon(
        &state,
        json!({"externalon": true, "resolvers": resolvers, "reverseLookups": false}),
    );
    assert_eq!(ptr(&d, "2.0.9.10.in-addr.arpa."), None);
    assert!(up.count("2.0.9.10.in-addr.arpa.") > 0);
}

#[test]
fn a_held_cache_hit_gives_way_to_the_reverse_name_of_a_new_task() {
    let up = FakeUpstream::start();
    let web = || {
        task(
            "web.1",
            "web",
            1,
            json!({"container_status": netinfo("10.9.0.1")}),
            Value::Null,
        )
    };
    let resolvers = json!([up.addr.to_string()]);
    let (d, dirs) = daemon(
        &cluster(vec![web()]),
        json!({"externalon": true, "resolvers": resolvers}),
    );
    // Forwarded, then held by the UDP reader and answered from there.
    for _ in 0..4 {
        assert_eq!(
            ptr(&d, "10.2.0.192.in-addr.arpa.").as_deref(),
            Some("www.example.com.")
        );
    }
    assert_eq!(up.count("10.2.0.192.in-addr.arpa."), 1);
    // A task on that address: the new snapshot answers its reverse name itself.
    let newcomer = task(
        "new.1",
        "new",
        1,
        json!({"container_status": netinfo("192.0.2.10")}),
        Value::Null,
    );
    let path = dirs[0].path().join("state.json");
    let tmp = dirs[0].path().join("state.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(&cluster(vec![web(), newcomer])).unwrap(),
    )
    .unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    d.wait_for("new.marathon.mesos.", RecordType::A, |m| {
        answers(m) == ["A 192.0.2.10"]
    });
    let name = ptr(&d, "10.2.0.192.in-addr.arpa.").expect("task PTR");
    assert!(name.starts_with("new-"), "{name}");
    assert_eq!(up.count("10.2.0.192.in-addr.arpa."), 1);
}

#[test]
fn agent_hostnames_and_static_records_resolve_and_reload_on_sighup() {
    let state = cluster(vec![task(
        "web.1",
        "web",
        1,
        json!({"container_status": netinfo("10.9.0.1")}),
        Value::Null,
    )]);
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("static-hosts");
    std::fs::write(
        &hosts,
        "# legacy\n10.5.5.5 legacy-db.corp.example db.mesos\n2001:db8::5 monitor.corp.example.\n",
    )
    .unwrap();
    let (d, dirs) = daemon(
        &state,
        json!({"agentHostnames": true, "staticRecordsFile": hosts.to_str().unwrap()}),
    );
    assert_eq!(
        a(&d, "agent1.example.internal.slave.mesos."),
        ["A 10.0.1.1"]
    );
    assert_eq!(a(&d, "agent2.slave.mesos."), ["A 10.0.1.2"]);
    // Mesos-DNS's own names are unchanged.
    assert_eq!(a(&d, "slave.mesos."), ["A 10.0.1.1", "A 10.0.1.2"]);
    // Outside the domain, answered with forwarding off; inside, part of the zone.
    assert_eq!(a(&d, "Legacy-DB.corp.example."), ["A 10.5.5.5"]);
    assert_eq!(a(&d, "db.mesos."), ["A 10.5.5.5"]);
    let m = d.udp("monitor.corp.example.", RecordType::AAAA, None);
    assert_eq!(answers(&m), ["AAAA 2001:db8::5"]);
    let nodata = d.udp("monitor.corp.example.", RecordType::A, None);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    // Other types of a static name are not ours: forwarded (here refused, forwarding off).
    let mx = d.udp("legacy-db.corp.example.", RecordType::MX, None);
    assert_eq!(mx.metadata.response_code, ResponseCode::Refused);
    assert_eq!(
        ptr(&d, "5.5.5.10.in-addr.arpa.").as_deref(),
        Some("legacy-db.corp.example.")
    );

    // SIGHUP re-reads the file.
    std::fs::write(&hosts, "10.5.5.6 legacy-db.corp.example\n").unwrap();
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    d.wait_for("legacy-db.corp.example.", RecordType::A, |m| {
        answers(m) == ["A 10.5.5.6"]
    });
    let gone = d.udp("db.mesos.", RecordType::A, None);
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);

    // --check-config validates the file, naming the key and the line.
    std::fs::write(&hosts, "10.5.5.6 legacy-db.corp.example\nlegacy 10.0.0.1\n").unwrap();
    let cfg = dirs[1].path().join("config.json");
    let out = sidecar(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("staticRecordsFile") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn set_truncate_bit_false_cuts_cluster_answers_to_fit_without_tc_as_mesos_dns_does() {
    let tasks = (0..60)
        .map(|i| {
            let ip = format!("10.9.1.{i}");
            task(
                &format!("big.{i}"),
                "big",
                1 + i % 2,
                json!({"container_status": netinfo(&ip)}),
                Value::Null,
            )
        })
        .collect();
    let state = cluster(tasks);
    // Absent (and true): too large for 512 bytes, so TC and nothing, complete over TCP.
    for config in [json!({}), json!({"SetTruncateBit": true})] {
        let (d, _dir) = daemon(&state, config);
        let m = d.udp("big.marathon.mesos.", RecordType::A, None);
        assert!(m.metadata.truncation && m.answers.is_empty());
        assert_eq!(
            d.tcp("big.marathon.mesos.", RecordType::A).answers.len(),
            60
        );
    }
    let (d, _dir) = daemon(&state, json!({"SetTruncateBit": false}));
    let all = answers(&d.tcp("big.marathon.mesos.", RecordType::A));
    assert_eq!(all.len(), 60);
    for edns in [None, Some(1232)] {
        let m = d.udp("big.marathon.mesos.", RecordType::A, edns);
        assert!(!m.metadata.truncation);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let limit = edns.unwrap_or(512) as usize;
        assert!(m.answers.len() > 10, "{}", m.answers.len());
        assert!(m.to_vec().unwrap().len() <= limit);
        assert!(answers(&m).iter().all(|a| all.contains(a)));
    }
    // The SRV set too (Mesos-DNS cuts every type).
    let srv = d.udp("_big._tcp.marathon.mesos.", RecordType::SRV, None);
    assert!(!srv.metadata.truncation && !srv.answers.is_empty());
    // Small answers are untouched.
    assert_eq!(a(&d, "leader.mesos."), ["A 10.0.0.1"]);
}
