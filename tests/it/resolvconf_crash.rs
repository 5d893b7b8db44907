//! `resolvconf install` and `restore` killed at every file system step (strace fault injection:
//! SIGKILL at the Nth call of each mutating system call) in every starting situation (plain
//! file, symlink, no file): a rerun always completes, and the original comes back byte for byte
//! (or as the same symlink, or as no file).

use std::net::UdpSocket;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The system calls that change files, each killed at its every call in turn.
const MUTATING: &[&str] = &[
    "openat",
    "write",
    "fsync",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "symlink",
    "symlinkat",
    "mkdir",
    "mkdirat",
    "chmod",
    "fchmodat",
];

#[derive(Debug, Clone, Copy)]
enum Start {
    Plain,
    Symlink,
    Missing,
}

struct Host {
    dir: tempfile::TempDir,
    check: String,
}

impl Host {
    fn resolv(&self) -> PathBuf {
        self.dir.path().join("etc/resolv.conf")
    }
    fn saved(&self) -> PathBuf {
        self.dir.path().join("etc/mds/resolv.conf.orig")
    }
    fn target(&self) -> PathBuf {
        self.dir.path().join("run/resolved/stub-resolv.conf")
    }

    fn new(start: Start, check: &str) -> Host {
        let h = Host {
            dir: tempfile::tempdir().unwrap(),
            check: check.to_string(),
        };
        std::fs::create_dir_all(h.resolv().parent().unwrap()).unwrap();
        std::fs::create_dir_all(h.target().parent().unwrap()).unwrap();
        std::fs::write(h.target(), "nameserver 127.0.0.53\n").unwrap();
        match start {
            Start::Plain => std::fs::write(h.resolv(), ORIGINAL).unwrap(),
            Start::Symlink => std::os::unix::fs::symlink(h.target(), h.resolv()).unwrap(),
            Start::Missing => {}
        }
        h
    }

    fn args(&self, op: &str) -> Vec<String> {
        let mut a = vec!["resolvconf".to_string(), op.to_string()];
        if op == "install" {
            a.extend([
                "--check".into(),
                self.check.clone(),
                "--wait".into(),
                "2".into(),
            ]);
        }
        a.extend([
            "--resolv-conf".into(),
            self.resolv().to_str().unwrap().into(),
            "--saved".into(),
            self.saved().to_str().unwrap().into(),
        ]);
        a
    }

    fn run(&self, op: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
            .args(self.args(op))
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{op} after a kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `op` under strace, killed at the `n`th call of `syscall`; whether it was killed.
    fn run_killed(&self, op: &str, syscall: &str, n: u32) -> bool {
        let status = Command::new("strace")
            .args([
                "-qq",
                "-f",
                "-o",
                "/dev/null",
                "-e",
                &format!("trace={syscall}"),
                "-e",
                &format!("inject={syscall}:signal=KILL:when={n}"),
            ])
            .arg(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
            .args(self.args(op))
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        // strace exits with the tracee's signal (or 128 + it) when the tracee was killed.
        status.signal() == Some(9) || status.code() == Some(128 + 9) || status.code() == Some(137)
    }

    /// The host is back as it started.
    fn assert_original(&self, start: Start, what: &str) {
        let p = self.resolv();
        match start {
            Start::Plain => assert_eq!(std::fs::read(&p).unwrap(), ORIGINAL, "{what}"),
            Start::Symlink => assert_eq!(std::fs::read_link(&p).unwrap(), self.target(), "{what}"),
            Start::Missing => assert!(
                std::fs::symlink_metadata(&p).is_err(),
                "{what}: a file appeared"
            ),
        }
        assert!(!self.saved().exists(), "{what}: saved copy left");
        for suffix in [".link", ".absent"] {
            let mut m = self.saved().into_os_string();
            m.push(suffix);
            assert!(!Path::new(&m).exists(), "{what}: {suffix} left");
        }
    }

    fn points_at_daemon(&self) -> bool {
        std::fs::read_to_string(self.resolv()).is_ok_and(|t| t.contains("nameserver 127.0.0.1\n"))
    }
}

const ORIGINAL: &[u8] = b"# plain\nsearch corp.example\nnameserver 10.0.0.2\noptions ndots:2\n";

/// Answers every datagram with itself (any answer counts for the install probe).
fn echo_daemon() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], peer);
        }
    });
    addr
}

fn strace_works() -> bool {
    Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn install_and_restore_survive_a_kill_at_every_step() {
    let missing = (!strace_works()).then(|| "strace not usable (scripts/test installs it)".into());
    if !crate::common::prerequisite_met("the kill-at-every-step test", missing) {
        return;
    }
    let check = echo_daemon();
    let mut kills = 0;
    for start in [Start::Plain, Start::Symlink, Start::Missing] {
        for syscall in MUTATING {
            // install killed at the nth call, then: rerun install, restore -> original;
            // or restore straight away (package removed after the failed install) -> original.
            for n in 1.. {
                let h = Host::new(start, &check);
                if !h.run_killed("install", syscall, n) {
                    assert!(h.points_at_daemon(), "{start:?} install ran through");
                    break;
                }
                kills += 1;
                let what = format!("{start:?} install killed at {syscall} #{n}");
                h.run("install");
                assert!(h.points_at_daemon(), "{what}: rerun did not switch");
                h.run("restore");
                h.assert_original(start, &what);

                let h = Host::new(start, &check);
                h.run_killed("install", syscall, n);
                h.run("restore");
                h.assert_original(start, &format!("{what}, then removed"));
            }
            // restore killed at the nth call, then rerun restore -> original.
            for n in 1.. {
                let h = Host::new(start, &check);
                h.run("install");
                if !h.run_killed("restore", syscall, n) {
                    h.assert_original(start, &format!("{start:?} restore ran through"));
                    break;
                }
                kills += 1;
                let what = format!("{start:?} restore killed at {syscall} #{n}");
                h.run("restore");
                h.assert_original(start, &what);
            }
        }
    }
    eprintln!("{kills} kills, every one recovered");
    assert!(kills > 30, "only {kills} kill points: is strace injecting?");
}
