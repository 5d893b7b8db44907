//! `resolvconf guard`: the host falls back to its original resolvers within 2 s of the daemon
//! dying, goes back to the daemon when it answers again, and finishes an install that was left
//! pending because the daemon was not answering yet.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const ORIGINAL: &[u8] = b"# the host's own\nsearch corp.example\nnameserver 10.0.0.2\n";

struct Files {
    _dir: tempfile::TempDir,
    resolv: std::path::PathBuf,
    saved: std::path::PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, ORIGINAL).unwrap();
        let saved = dir.path().join("saved/resolv.conf.orig");
        Files {
            _dir: dir,
            resolv,
            saved,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend([
            "--resolv-conf",
            self.resolv.to_str().unwrap(),
            "--saved",
            self.saved.to_str().unwrap(),
        ]);
        sidecar(&all)
    }

    fn status(&self) -> String {
        String::from_utf8_lossy(&self.run(&["resolvconf", "status"]).stdout).into_owned()
    }

    fn guard(&self, check: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
            .args([
                "resolvconf",
                "guard",
                "--check",
                check,
                "--interval-ms",
                "200",
                "--fail-after-ms",
                "1000",
                "--resolv-conf",
                self.resolv.to_str().unwrap(),
                "--saved",
                self.saved.to_str().unwrap(),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Waits until `status` starts with `mode`, for at most 10 s; returns how long it took.
    fn until_mode(&self, mode: &str) -> Duration {
        let start = Instant::now();
        while !self.status().starts_with(mode) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "never reached {mode}: {}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    }
}

fn names_daemon(resolv: &Path) -> bool {
    std::fs::read_to_string(resolv)
        .unwrap()
        .contains("nameserver 127.0.0.1\n")
}

#[test]
fn falls_back_while_the_daemon_is_down_and_switches_back() {
    let files = Files::new();
    let port = free_port();
    let mut daemon = start_on(&["--demo", "--no-forward"], port);
    let check = format!("127.0.0.1:{port}");
    assert!(files
        .run(&["resolvconf", "install", "--check", &check])
        .status
        .success());
    assert!(files.status().starts_with("mode: daemon"));
    let mut guard = files.guard(&check);

    std::thread::sleep(Duration::from_millis(600));
    assert!(files.status().starts_with("mode: daemon"), "alive: stays");
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let took = files.until_mode("mode: fallback");
    eprintln!("fallback after {took:?}");
    assert!(took < Duration::from_secs(2), "fallback took {took:?}");
    let now = std::fs::read(&files.resolv).unwrap();
    assert!(now.ends_with(ORIGINAL), "the original resolvers are in use");

    let _daemon = start_on(&["--demo", "--no-forward"], port);
    let took = files.until_mode("mode: daemon");
    eprintln!("back to the daemon after {took:?}");
    assert!(names_daemon(&files.resolv));

    guard.kill().unwrap();
    guard.wait().unwrap();
    assert!(files.run(&["resolvconf", "restore"]).status.success());
    assert_eq!(std::fs::read(&files.resolv).unwrap(), ORIGINAL);
}

#[test]
fn a_pending_install_is_finished_once_the_daemon_answers() {
    let files = Files::new();
    let port = free_port();
    let check = format!("127.0.0.1:{port}");
    let out = files.run(&["resolvconf", "install", "--check", &check, "--wait", "1"]);
    assert!(!out.status.success(), "nothing answers yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("guard switches"));
    assert_eq!(std::fs::read(&files.resolv).unwrap(), ORIGINAL);
    assert!(files.status().starts_with("mode: pending"));

    let mut guard = files.guard(&check);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        files.status().starts_with("mode: pending"),
        "no daemon: no switch"
    );
    let _daemon = start_on(&["--demo", "--no-forward"], port);
    files.until_mode("mode: daemon");
    assert!(names_daemon(&files.resolv));
    guard.kill().unwrap();
    guard.wait().unwrap();
}
