//! No query is lost when the daemon is replaced (restart, upgrade: socket activation keeps the
//! sockets while the process changes) or reloaded (SIGHUP: the new generation takes over the
//! same sockets before the old one stops reading).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// Sockets held the way systemd holds them for a socket unit.
struct SocketUnit {
    udp: OwnedFd,
    tcp: OwnedFd,
    addr: SocketAddr,
    http_port: u16,
}

impl SocketUnit {
    fn new() -> SocketUnit {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).unwrap();
        // Keep them away from 3 and 4, where the child gets them.
        let high = |fd: OwnedFd| {
            let raw = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(20)).unwrap();
            // SAFETY: fcntl just returned this new descriptor, owned by nobody else.
            unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) }
        };
        SocketUnit {
            udp: high(OwnedFd::from(udp)),
            tcp: high(OwnedFd::from(tcp)),
            addr,
            http_port: free_port(),
        }
    }

    /// Starts the daemon with the sockets passed as systemd does (`LISTEN_FDS`, fds 3 and 4).
    fn activate(&self) -> Child {
        let udp = self.udp.as_raw_fd();
        let tcp = self.tcp.as_raw_fd();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "LISTEN_PID=$$ LISTEN_FDS=2 exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_mesos-dns-sidecar"),
            "--demo",
            "--no-forward",
            "--listener",
            "127.0.0.1",
            "--port",
            &self.addr.port().to_string(),
            "--http-port",
            &self.http_port.to_string(),
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
        // SAFETY: only dup2 between fork and exec, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                for (from, to) in [(udp, 3), (tcp, 4)] {
                    let from = std::os::fd::BorrowedFd::borrow_raw(from);
                    let new = nix::unistd::dup2_raw(from.as_fd(), to)?;
                    std::mem::forget(new);
                }
                Ok(())
            });
        }
        cmd.spawn().expect("start daemon")
    }
}

/// Asks `web.marathon.mesos` over and over (each waiting up to 3 s for its answer, as a stub
/// resolver would) until `stop`; returns (asked, answered with the demo's addresses).
fn query_loop(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u32, u32)> {
    std::thread::spawn(move || {
        let (mut asked, mut good) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            asked += 1;
            let q = query("web.marathon.mesos.", RecordType::A, None);
            if let Some(m) = try_udp(addr, &q, Duration::from_secs(3)) {
                if m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty() {
                    good += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (asked, good)
    })
}

fn answering(addr: SocketAddr) -> bool {
    let q = query("web.marathon.mesos.", RecordType::A, None);
    try_udp(addr, &q, Duration::from_millis(200))
        .is_some_and(|m| m.metadata.response_code == ResponseCode::NoError)
}

fn wait_answering(addr: SocketAddr) {
    for _ in 0..100 {
        if answering(addr) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("daemon never answered");
}

fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}

fn terminate(child: &mut Child) {
    signal(child.id(), "TERM");
    child.wait().unwrap();
}

#[test]
fn a_socket_activated_daemon_replaced_three_times_loses_no_query() {
    let unit = SocketUnit::new();
    let mut daemon = unit.activate();
    wait_answering(unit.addr);

    let stop = Arc::new(AtomicBool::new(false));
    let client = query_loop(unit.addr, stop.clone());
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        terminate(&mut daemon);
        // Nobody reads the sockets now: queries wait in the kernel for the next process.
        std::thread::sleep(Duration::from_millis(100));
        daemon = unit.activate();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (asked, good) = client.join().unwrap();
    terminate(&mut daemon);
    assert!(asked > 50, "the client asked only {asked} queries");
    assert_eq!(good, asked, "queries lost across restarts");

    // TCP too: a connection made while no process runs is served by the next one.
    let mut daemon = unit.activate();
    wait_answering(unit.addr);
    let m = Message::from_vec(&tcp_raw(
        unit.addr,
        &query("web.marathon.mesos.", RecordType::A, None)
            .to_vec()
            .unwrap(),
    ))
    .unwrap();
    assert!(!m.answers.is_empty());
    terminate(&mut daemon);
}

#[test]
fn reloads_lose_no_query() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, br#"{"ttl": 60, "externalon": false}"#).unwrap();
    let d = start_on(
        &["--demo", "--no-forward", "--config", cfg.to_str().unwrap()],
        free_port(),
    );
    d.wait_answering("web.marathon.mesos.");

    let stop = Arc::new(AtomicBool::new(false));
    let client = query_loop(d.addr, stop.clone());
    for ttl in 1..=5 {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::write(&cfg, format!(r#"{{"ttl": {ttl}, "externalon": false}}"#)).unwrap();
        signal(d.child.id(), "HUP");
    }
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| {
        m.answers.first().is_some_and(|r| r.ttl == 5)
    });
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (asked, good) = client.join().unwrap();
    assert!(asked > 50, "the client asked only {asked} queries");
    assert_eq!(good, asked, "queries lost across reloads");
}

#[test]
fn a_daemon_stops_promptly_though_its_udp_reader_is_waiting_on_the_socket() {
    // The UDP reader blocks in recvmmsg; a stop must not wait out the drain's patience (3 s)
    // for it, idle or just after serving.
    let mut d = start_on(&["--demo", "--no-forward"], free_port());
    d.wait_answering("web.marathon.mesos.");
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    signal(d.child.id(), "TERM");
    let status = d.child.wait().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_millis(1500), "stopping took {took:?}");
}
