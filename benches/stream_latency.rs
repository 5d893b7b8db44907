//! Update latency on the event stream: how long after the master's event a new task answers.
//!
//! Run with `cargo bench --bench stream_latency`. The event-stream generator of the tests
//! (`tests/it/common/stream_master.rs`, a Mesos master's v1 operator API) subscribes the real
//! binary with a cluster of 1,000 or 10,000 running tasks, then emits TASK_ADDED +
//! TASK_UPDATED(TASK_RUNNING) for new tasks at a fixed rate, and kills tasks once they are two
//! seconds old so the cluster keeps its size. A prober asks the daemon over UDP for each new
//! name until it answers. Reported per cluster size and event rate: p50, p99 and maximum
//! event-to-answer latency. Loopback only, about a minute in all. `FRAMEWORKS=10` spreads the
//! cluster's tasks over ten frameworks (one Marathon by default). `TASKS=1000,100000` and
//! `RATES=100` choose the cluster sizes and event rates (every tenth new task is timed at
//! 1,000 events/s). `DAEMON_LOG=mesos_dns_sidecar::publish=debug` passes a log filter to the
//! daemon, whose log (each publish's `built_ms` and shards `rebuilt`) then goes to stderr.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::stream_master::{v1_task, v1_update, StreamingMaster};
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

const AGENTS: usize = 100;
const RUN: Duration = Duration::from_secs(6);

fn agent_ip(a: usize) -> String {
    format!("10.0.{}.{}", a / 250, a % 250 + 1)
}

/// The SUBSCRIBED state: `tasks` running tasks, ten per app, spread over the agents.
fn get_state(tasks: usize) -> Value {
    let apps = (tasks / 10).max(1);
    let agents: Vec<Value> = (0..AGENTS)
        .map(|a| {
            json!({"agent_info": {"id": {"value": format!("agent-{a}")}, "hostname": agent_ip(a)},
                   "pid": format!("slave(1)@{}:5051", agent_ip(a))})
        })
        .collect();
    let tasks: Vec<Value> = (0..tasks)
        .map(|i| {
            let app = format!("app-{}", i % apps);
            let mut task = v1_task(
                &format!("{app}.{i}"),
                &app,
                &format!("agent-{}", i % AGENTS),
                "TASK_RUNNING",
            );
            task["framework_id"]["value"] = format!("fw-{}", 1 + i % frameworks()).into();
            task
        })
        .collect();
    let frameworks: Vec<Value> = (1..=frameworks())
        .map(|f| {
            let name = if f == 1 { "marathon".to_string() } else { format!("framework-{f}") };
            json!({"framework_info": {"id": {"value": format!("fw-{f}")}, "name": name, "hostname": "m"}})
        })
        .collect();
    json!({
        "get_frameworks": {"frameworks": frameworks},
        "get_agents": {"agents": agents},
        "get_tasks": {"tasks": tasks}})
}

/// How many frameworks share the cluster's tasks (`FRAMEWORKS`, default 1: one Marathon); the
/// new tasks all belong to the first.
fn frameworks() -> usize {
    std::env::var("FRAMEWORKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1)
}

/// Whether `name` has A records at `addr` now.
fn answers(addr: SocketAddr, name: &str) -> bool {
    let q = common::query(name, RecordType::A, None);
    common::try_udp(addr, &q, Duration::from_millis(500)).is_some_and(|m| !m.answers.is_empty())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}

/// One run: `tasks` in the cluster, `rate` new tasks per second; every `probe_every`-th new
/// task is timed.
fn run(tasks: usize, rate: u32, probe_every: usize) -> Vec<Duration> {
    let master = StreamingMaster::start(15.0, get_state(tasks), |me| {
        json!({"leader": format!("master@{me}"),
               "frameworks": [{"id": "fw-1", "name": "marathon", "tasks": []}]})
    });
    let (d, _dir) = common::start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 60, "stateFile": "",
               "externalon": false}),
        &[],
    );
    let ready = Instant::now();
    while !answers(d.addr, "app-0.marathon.mesos.") {
        assert!(ready.elapsed() < Duration::from_secs(30), "never answered");
        std::thread::sleep(Duration::from_millis(20));
    }

    let pending: Arc<Mutex<VecDeque<(String, Instant)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let (pending, done, addr) = (pending.clone(), done.clone(), d.addr);
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            loop {
                let front = pending.lock().unwrap().front().cloned();
                let Some((name, sent)) = front else {
                    if done.load(Ordering::Relaxed) {
                        return latencies;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                if answers(addr, &name) {
                    latencies.push(sent.elapsed());
                    pending.lock().unwrap().pop_front();
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };

    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let window = rate as usize * 2;
    let started = Instant::now();
    let mut k = 0usize;
    while started.elapsed() < RUN {
        let due = started + interval * k as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (id, name) = (format!("ev-{k}.0"), format!("ev-{k}"));
        let sent = Instant::now();
        let agent = format!("agent-{}", k % AGENTS);
        master.send(json!({"type": "TASK_ADDED",
                           "task_added": {"task": v1_task(&id, &name, &agent, "TASK_STAGING")}}));
        master.send(v1_update(&id, "TASK_RUNNING", 2.0));
        if k.is_multiple_of(probe_every) {
            pending
                .lock()
                .unwrap()
                .push_back((format!("{name}.marathon.mesos."), sent));
        }
        if k >= window {
            master.send(v1_update(
                &format!("ev-{}.0", k - window),
                "TASK_KILLED",
                3.0,
            ));
        }
        k += 1;
    }
    done.store(true, Ordering::Relaxed);
    let mut latencies = prober.join().unwrap();
    latencies.sort();
    latencies
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "event-to-answer latency, streaming source ({} s per run, loopback)",
        RUN.as_secs()
    );
    println!("| tasks | events/s | timed | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let list = |var: &str, default: &str| -> Vec<u32> {
        std::env::var(var)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    };
    for tasks in list("TASKS", "1000,10000") {
        for rate in list("RATES", "10,100,1000") {
            let probe_every = (rate as usize / 100).max(1);
            let tasks = tasks as usize;
            let l = run(tasks, rate, probe_every);
            println!(
                "| {tasks} | {rate} | {} | {:.0} | {:.0} | {:.0} |",
                l.len(),
                percentile(&l, 0.5),
                percentile(&l, 0.99),
                percentile(&l, 1.0)
            );
        }
    }
}
