//! The shipped systemd units pass `systemd-analyze verify` (with ExecStart pointing at the
//! binary just built, since the packaged path doesn't exist here).

use std::process::Command;

use crate::common::sidecar;

#[test]
fn unit_verifies_clean() {
    let found = Command::new("systemd-analyze").arg("--version").output();
    let missing = found
        .is_err()
        .then(|| "systemd-analyze not installed".into());
    if !crate::common::prerequisite_met("the unit verification", missing) {
        return;
    }
    let out = found.unwrap();
    assert!(out.status.success());
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/mesos-dns-sidecar.service"
    ))
    .unwrap();
    assert!(
        unit.contains("Type=notify") && unit.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE")
    );
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for name in UNITS {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("systemd")
                .join(name),
        )
        .unwrap();
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            text.replace(
                "/usr/bin/mesos-dns-sidecar",
                env!("CARGO_BIN_EXE_mesos-dns-sidecar"),
            )
            .replace(
                "/usr/lib/mesos-dns-sidecar/linklocal",
                concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/hooks/linklocal"),
            ),
        )
        .unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("mesos-dns-sidecar"))
        .collect();
    assert!(ours.is_empty(), "warnings about the units: {ours:?}");
}

/// Every unit the packages ship.
const UNITS: [&str; 5] = [
    "mesos-dns-sidecar.service",
    "mesos-dns-sidecar.socket",
    "mesos-dns-sidecar-guard.service",
    "mesos-dns-sidecar-linklocal.service",
    "mesos-dns-sidecar-linklocal.socket",
];

#[test]
fn the_daemon_takes_its_sockets_from_the_socket_unit() {
    let service = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/mesos-dns-sidecar.service"
    ))
    .unwrap();
    assert!(service.contains("Requires=mesos-dns-sidecar.socket"));
    let socket = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/mesos-dns-sidecar.socket"
    ))
    .unwrap();
    assert!(
        socket.contains("ListenDatagram=127.0.0.1:53")
            && socket.contains("ListenStream=127.0.0.1:53")
    );
}

#[test]
fn packaged_config_is_valid() {
    let out = sidecar(&[
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/config.json"),
        "--check-config",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
