//! glibc's resolver through the daemon: `getent` in a mount namespace whose /etc/resolv.conf
//! points at a daemon on port 53 of a private loopback address. Needs root (port 53, mount
//! namespaces); CI runs as root, where missing prerequisites fail the test instead of skipping.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::common::upstream::FakeUpstream;
use crate::common::*;

fn prerequisites() -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    for tool in ["unshare", "getent", "mount"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(format!("{tool} not installed"));
        }
    }
    Ok(())
}

fn getent_in_namespace(resolv_conf: &std::path::Path, args: &str) -> String {
    let script = format!(
        "mount --bind {} /etc/resolv.conf && getent {args}",
        resolv_conf.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn getent_resolves_cluster_and_forwarded_names() {
    if !prerequisite_met("the glibc test", prerequisites().err()) {
        return;
    }
    let up = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&serde_json::json!({
            "resolvers": [up.addr.to_string()],
            "stateFile": fixture(CLUSTER).to_str().unwrap(),
        }))
        .unwrap(),
    )
    .unwrap();
    let listen = "127.83.83.83";
    let http_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listener",
            listen,
            "--port",
            "53",
        ])
        .args(["--log-level", "warn", "--http-port", &http_port.to_string()])
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        addr: SocketAddr::new(listen.parse().unwrap(), 53),
        http: SocketAddr::from(([127, 0, 0, 1], http_port)),
    };
    d.wait_answering("leader.mesos.");

    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {listen}\noptions timeout:2 attempts:1\n"),
    )
    .unwrap();

    let out = getent_in_namespace(&resolv, "hosts nginx.marathon.mesos");
    assert!(out.contains("10.44.3.3"), "getent hosts (cluster): {out}");
    let out = getent_in_namespace(&resolv, "ahosts cache-tier.marathon.mesos");
    assert!(
        out.contains("10.40.0.11") && out.contains("10.40.0.12"),
        "getent ahosts (cluster): {out}"
    );
    let out = getent_in_namespace(&resolv, "hosts www.example.com");
    assert!(
        out.contains("2001:db8::10") || out.contains("192.0.2.10"),
        "getent hosts (forwarded): {out}"
    );
    let out = getent_in_namespace(&resolv, "ahosts www.example.com");
    assert!(
        out.contains("192.0.2.10") && out.contains("2001:db8::10"),
        "getent ahosts (forwarded): {out}"
    );
    assert!(up.count("www.example.com.") >= 1);
    assert_eq!(up.count("nginx.marathon.mesos."), 0);
}
