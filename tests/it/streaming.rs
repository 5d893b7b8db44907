//! The v1 operator API event stream against a fake streaming master: incremental updates
//! answerable within a second, heartbeat watchdog and resubscription.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::stream_master::{v1_task, v1_update, StreamingMaster};
use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// A master with framework `marathon` (PID on the master itself, for its SRV), one agent and
/// one running task `web`.
fn master(heartbeat_s: f64) -> StreamingMaster {
    let get_state = json!({
        "get_frameworks": {"frameworks": [{"framework_info": {"id": {"value": "fw-1"}, "name": "marathon", "hostname": "m"}}]},
        "get_agents": {"agents": [{"agent_info": {"id": {"value": "agent-1"}, "hostname": "a1"}, "pid": "slave(1)@10.0.1.1:5051"}]},
        "get_tasks": {"tasks": [v1_task("web.1", "web", "agent-1", "TASK_RUNNING")]}});
    StreamingMaster::start(heartbeat_s, get_state, |me| {
        json!({
            "leader": format!("master@{me}"),
            "frameworks": [{"id": "fw-1", "name": "marathon", "pid": format!("scheduler(1)@{me}"), "tasks": []}],
            "slaves": [{"id": "agent-1", "pid": "slave(1)@10.0.1.1:5051"}],
        })
    })
}

fn daemon_for(master: &StreamingMaster) -> (Daemon, tempfile::TempDir) {
    start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 60, "stateFile": "", "externalon": false}),
        &[],
    )
}

#[test]
fn streamed_task_is_answerable_within_a_second() {
    let master = master(15.0);
    let (d, _dir) = daemon_for(&master);
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| {
        answers(m) == ["A 10.0.1.1"]
    });
    assert_eq!(master.subscriptions.load(Ordering::Relaxed), 1);

    let started = Instant::now();
    master.send(json!({"type": "TASK_ADDED", "task_added": {"task": v1_task("api.1", "api", "agent-1", "TASK_STAGING")}}));
    master.send(v1_update("api.1", "TASK_RUNNING", 2.0));
    loop {
        let m = d.udp("api.marathon.mesos.", RecordType::A, None);
        if !m.answers.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not answerable within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("event-to-answer: {:?}", started.elapsed());
    // The framework's SRV from the state document's PID survives streaming.
    let m = d.udp("_framework._tcp.marathon.mesos.", RecordType::SRV, None);
    assert_eq!(m.answers.len(), 1);

    master.send(v1_update("web.1", "TASK_KILLED", 3.0));
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| {
        m.answers.is_empty()
    });
    master.send(
        json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": "agent-1"}}}),
    );
    d.wait_for("api.marathon.mesos.", RecordType::A, |m| {
        m.answers.is_empty()
    });
}

#[test]
fn a_silent_stream_is_resubscribed() {
    // Heartbeats every 0.3 s promised, none sent: the watchdog drops the stream after ~0.9 s.
    let master = master(0.3);
    let (d, _dir) = daemon_for(&master);
    d.wait_answering("web.marathon.mesos.");
    let deadline = Instant::now() + Duration::from_secs(5);
    while master.subscriptions.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "never resubscribed");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.wait_answering("web.marathon.mesos.");
}
