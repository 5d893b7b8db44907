//! `staleAfterSeconds`: once the masters stop answering for longer than that, cluster answers
//! carry the Extended DNS Error "Stale Answer" (RFC 8914) and `/ready` answers 503; a state
//! from the master, or a heartbeat on its event stream, clears both.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::master::{cluster_json, http_get, FakeMaster, Mode};
use crate::common::stream_master::{v1_task, StreamingMaster};
use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::RecordType;
use serde_json::json;

/// The Extended DNS Error option of `m`, as (INFO-CODE, EXTRA-TEXT), if it has one.
fn extended_error(m: &Message) -> Option<(u16, String)> {
    match m.edns.as_ref()?.options().get(EdnsCode::Unknown(15))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        )),
        other => panic!("malformed Extended DNS Error option: {other:?}"),
    }
}

/// Polls `name` with EDNS until `ok` holds, for at most 20 seconds.
fn wait_edns(d: &Daemon, name: &str, ok: impl Fn(&Message) -> bool) -> Message {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = query(name, RecordType::A, Some(1232));
        if let Some(m) = try_udp(d.addr, &q, Duration::from_millis(500)) {
            if ok(&m) {
                return m;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name} never answered as expected"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A daemon polling `master` every second, with `staleAfterSeconds` when given.
fn polling(master: &FakeMaster, stale_after: Option<u64>) -> (Daemon, tempfile::TempDir) {
    let mut config = json!({
        "masters": [master.addr.to_string()],
        "refreshSeconds": 1,
        "stateTimeoutSeconds": 1,
        "stateFile": "",
        "stream": false,
        "externalon": false,
    });
    if let Some(seconds) = stale_after {
        config["staleAfterSeconds"] = seconds.into();
    }
    start_with_config(config, &[])
}

#[test]
fn answers_carry_stale_answer_and_ready_fails_while_the_master_is_gone() {
    let master = FakeMaster::start(&cluster_json());
    let (d, _dir) = polling(&master, Some(3));
    d.wait_answering("nginx.marathon.mesos.");

    // Fresh: no EDE, ready.
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, Some(1232));
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    assert_eq!(extended_error(&m), None);
    assert_eq!(http_get(d.http, "/ready").0, 200);
    assert_eq!(metric(&d, "mesos_dns_sidecar_snapshot_stale"), 0.0);

    // The master stops answering: the same records, now marked stale.
    master.set_mode(Mode::Error);
    let m = wait_edns(&d, "nginx.marathon.mesos.", |m| extended_error(m).is_some());
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    let (code, text) = extended_error(&m).unwrap();
    assert_eq!(code, 3, "INFO-CODE 3 is Stale Answer");
    assert!(text.contains("cluster state"), "{text}");
    // Negative answers and other types too (they take the same path).
    let m = d.udp("nosuch.marathon.mesos.", RecordType::A, Some(1232));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(extended_error(&m).map(|e| e.0), Some(3));
    let m = d.udp("_nginx._tcp.marathon.mesos.", RecordType::SRV, Some(1232));
    assert_eq!(extended_error(&m).map(|e| e.0), Some(3));
    // Without EDNS there is nowhere to put it: a plain answer.
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    assert!(m.edns.is_none());

    let (status, body) = http_get(d.http, "/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stale"), "{body}");
    assert!(body.contains("staleAfterSeconds 3"), "{body}");
    assert_eq!(metric(&d, "mesos_dns_sidecar_snapshot_stale"), 1.0);
    assert!(metric(&d, "mesos_dns_sidecar_snapshot_age_seconds") > 3.0);
    assert!(metric(&d, "mesos_dns_sidecar_stale_cluster_answers_total") >= 3.0);

    // The master is back: the marker goes, readiness returns.
    master.set_mode(Mode::Normal);
    wait_edns(&d, "nginx.marathon.mesos.", |m| {
        extended_error(m).is_none() && answers(m) == ["A 10.44.3.3"]
    });
    assert_eq!(http_get(d.http, "/ready").0, 200);
    assert_eq!(metric(&d, "mesos_dns_sidecar_snapshot_stale"), 0.0);
}

#[test]
fn off_by_default_however_old_the_state() {
    let master = FakeMaster::start(&cluster_json());
    let (d, _dir) = polling(&master, None);
    d.wait_answering("nginx.marathon.mesos.");
    master.set_mode(Mode::Error);
    // Wait until the state is demonstrably older than a short staleAfterSeconds would allow.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&d, "mesos_dns_sidecar_snapshot_age_seconds") <= 3.0 {
        assert!(Instant::now() < deadline, "snapshot age never grew");
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, Some(1232));
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    assert_eq!(extended_error(&m), None);
    assert_eq!(http_get(d.http, "/ready").0, 200);
}

#[test]
fn a_heartbeat_on_the_event_stream_confirms_the_state() {
    let get_state = json!({
        "get_frameworks": {"frameworks": [{"framework_info": {"id": {"value": "fw-1"}, "name": "marathon", "hostname": "m"}}]},
        "get_agents": {"agents": [{"agent_info": {"id": {"value": "agent-1"}, "hostname": "a1"}, "pid": "slave(1)@10.0.1.1:5051"}]},
        "get_tasks": {"tasks": [v1_task("web.1", "web", "agent-1", "TASK_RUNNING")]}});
    let master = StreamingMaster::start(15.0, get_state, |me| {
        json!({
            "leader": format!("master@{me}"),
            "frameworks": [{"id": "fw-1", "name": "marathon", "pid": format!("scheduler(1)@{me}"), "tasks": []}],
            "slaves": [{"id": "agent-1", "pid": "slave(1)@10.0.1.1:5051"}],
        })
    });
    let (d, _dir) = start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 60, "stateFile": "",
               "externalon": false, "staleAfterSeconds": 2}),
        &[],
    );
    d.wait_answering("web.marathon.mesos.");
    // A quiet stream without heartbeats: the state ages past staleAfterSeconds.
    wait_edns(&d, "web.marathon.mesos.", |m| {
        extended_error(m).map(|e| e.0) == Some(3)
    });
    assert_eq!(http_get(d.http, "/ready").0, 503);
    // A heartbeat says the master still stands behind it: fresh again, nothing rebuilt.
    master.send(json!({"type": "HEARTBEAT"}));
    let m = wait_edns(&d, "web.marathon.mesos.", |m| extended_error(m).is_none());
    assert_eq!(answers(&m), ["A 10.0.1.1"]);
    assert_eq!(http_get(d.http, "/ready").0, 200);
    assert_eq!(master.subscriptions.load(Ordering::Relaxed), 1);
}
