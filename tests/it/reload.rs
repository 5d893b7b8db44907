//! SIGHUP re-reads the configuration; a bad one is rejected and the running one stays.

use std::process::Command;

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

fn hup(d: &Daemon) {
    let ok = Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn sighup_applies_a_new_config_and_rejects_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let write =
        |v: serde_json::Value| std::fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
    let base =
        json!({"stateFile": fixture(CLUSTER).to_str().unwrap(), "externalon": false, "ttl": 60});
    write(base.clone());
    let d = start_on(&["--config", cfg.to_str().unwrap()], free_port());
    assert_eq!(
        d.udp("nginx.marathon.mesos.", RecordType::A, None).answers[0].ttl,
        60
    );

    let mut changed = base.clone();
    changed["ttl"] = 7.into();
    write(changed);
    hup(&d);
    let m = d.wait_for("nginx.marathon.mesos.", RecordType::A, |m| {
        m.answers.first().is_some_and(|r| r.ttl == 7)
    });
    assert_eq!(answers(&m), ["A 10.44.3.3"]);

    // A broken file: the reload is refused, the daemon keeps serving with ttl 7.
    std::fs::write(&cfg, b"{ not json").unwrap();
    hup(&d);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers[0].ttl, 7);
    assert!(d.child.try_wait_ok());
}

trait StillRunning {
    fn try_wait_ok(&self) -> bool;
}

impl StillRunning for std::process::Child {
    fn try_wait_ok(&self) -> bool {
        // /proc/PID exists while the process has not been reaped.
        std::path::Path::new(&format!("/proc/{}", self.id())).exists()
    }
}
