//! Footprint and update cost of the real daemon serving a large state file.
//!
//! Run with `cargo bench --bench footprint` (`TASKS=10000,100000` picks the sizes,
//! `REPLACEMENTS=10` the number of updates). For each size, a state shaped like the footprint
//! issue's cluster (`synthetic::uniform_state_value`: 10 frameworks, one agent per 50 tasks,
//! every task with a container address, a port range and a named DiscoveryInfo port) is written
//! to a file, the release binary is started with `--state-file`, and the bench reports:
//!
//! - the time from spawning the process to the first answer for a task's name;
//! - peak RSS (`VmHWM`) and RSS once settled (`VmRSS`), from `/proc`;
//! - for each of the replacements (the file replaced by rename, one task renamed): the time
//!   from the rename to the new name answering (the file is polled every second, so this
//!   includes up to a second of waiting), and RSS once settled;
//! - the RSS growth from the middle replacement to the last (growing means fragmentation).
//!
//! The process's environment is passed on, so `MALLOC_ARENA_MAX=2 cargo bench ...` measures
//! the daemon under that allocator setting. `SIDECAR=path1,path2` measures other builds of the
//! binary (a baseline kept from an earlier commit, say) in the same run, one after the other
//! for each size.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use mesos_dns_sidecar::mesos::synthetic;

/// Settle time before a steady RSS reading.
const SETTLE: Duration = Duration::from_millis(1500);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `/proc/PID/status` field in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Whether `name` has an A record at `addr` now.
fn answers(addr: SocketAddr, name: &str) -> bool {
    let q = common::query(name, RecordType::A, None);
    common::try_udp(addr, &q, Duration::from_millis(200))
        .is_some_and(|m| m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty())
}

/// Polls until `name` answers; the time it took from `since`.
fn wait_answer(addr: SocketAddr, name: &str, since: Instant) -> Duration {
    while !answers(addr, name) {
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "{name} never answered"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    since.elapsed()
}

/// Writes the state beside `path` (the slow part at 100,000 tasks: making the document), for
/// [`replace`] to move it into place.
fn prepare_state(path: &Path, tasks: usize, renamed: &str) -> std::path::PathBuf {
    let agents = (tasks / 50).max(1);
    let doc = serde_json::to_vec(&synthetic::uniform_state_value(tasks, 10, agents, renamed))
        .expect("serialise");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, doc).expect("write state");
    tmp
}

/// Replaces the state file with a prepared one, atomically.
fn replace(prepared: &Path, path: &Path) {
    std::fs::rename(prepared, path).expect("rename state");
}

fn write_state(path: &Path, tasks: usize, renamed: &str) {
    replace(&prepare_state(path, tasks, renamed), path);
}

fn run(binary: &str, tasks: usize, replacements: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    write_state(&state, tasks, "renamed-0");
    let doc_mib = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
    let port = common::free_port();
    let http_port = common::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let child = Killed(
        Command::new(binary)
            .args(["--state-file", state.to_str().expect("utf-8 path")])
            .args(["--listener", "127.0.0.1", "--port", &port.to_string()])
            .args(["--http-port", &http_port.to_string(), "--no-forward"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start daemon"),
    );
    let pid = child.0.id();
    let first = wait_answer(addr, "renamed-0.framework-0.mesos.", started);
    let peak_first = status_mib(pid, "VmHWM:");
    std::thread::sleep(SETTLE);
    let steady = status_mib(pid, "VmRSS:");

    let mut update = Vec::new();
    let mut rss = Vec::new();
    for k in 1..=replacements {
        let name = format!("renamed-{k}");
        let prepared = prepare_state(&state, tasks, &name);
        let t = Instant::now();
        replace(&prepared, &state);
        update.push(wait_answer(addr, &format!("{name}.framework-0.mesos."), t));
        std::thread::sleep(SETTLE);
        rss.push(status_mib(pid, "VmRSS:"));
    }
    let peak = status_mib(pid, "VmHWM:");
    let last = rss.last().copied().unwrap_or(steady);
    let mid = rss.get(rss.len() / 2).copied().unwrap_or(steady);
    let mut sorted = update.clone();
    sorted.sort();
    let median_update = sorted
        .get(sorted.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!("{binary}");
    println!(
        "{tasks:>7} {doc_mib:>8.1} {:>9.0} {peak_first:>10.1} {steady:>10.1} {:>11.0} {peak:>9.1} {last:>11.1} {:>+9.1}",
        first.as_secs_f64() * 1e3,
        median_update,
        last - mid,
    );
    let trail: Vec<String> = rss.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "        RSS MiB after each replacement: {}",
        trail.join(" ")
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("TASKS")
        .unwrap_or_else(|_| "10000,50000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let replacements: usize = std::env::var("REPLACEMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "{:>7} {:>8} {:>9} {:>10} {:>10} {:>11} {:>9} {:>11} {:>9}",
        "tasks",
        "doc MiB",
        "first ms",
        "peak1 MiB",
        "rss1 MiB",
        "update ms",
        "peak MiB",
        "rssN MiB",
        "growth"
    );
    let binaries: Vec<String> = std::env::var("SIDECAR")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mesos-dns-sidecar").into())
        .split(',')
        .map(str::to_string)
        .collect();
    for tasks in sizes {
        for binary in &binaries {
            run(binary, tasks, replacements);
        }
    }
}
