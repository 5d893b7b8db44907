//! The shipped systemd unit passes `systemd-analyze verify` (with ExecStart pointing at the
//! binary just built, since the packaged path doesn't exist here).

use std::process::Command;

#[test]
fn unit_verifies_clean() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        if std::env::var_os("CI").is_some() {
            panic!("systemd-analyze missing in CI");
        }
        eprintln!("skipping: systemd-analyze not installed");
        return;
    };
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
    let path = dir.path().join("mesos-dns-sidecar.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/bin/mesos-dns-sidecar",
            env!("CARGO_BIN_EXE_mesos-dns-sidecar"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("mesos-dns-sidecar"))
        .collect();
    assert!(ours.is_empty(), "warnings about the unit: {ours:?}");
}

#[test]
fn packaged_config_is_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/config.json"),
            "--check-config",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
