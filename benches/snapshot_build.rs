//! Snapshot build time and memory for synthetic states of 1k, 10k and 100k tasks.
//!
//! Run with `cargo bench --bench snapshot_build` (`BENCH_REVERSE_LOOKUPS=false` to leave out the
//! reverse-lookup map). Memory is measured with a counting global
//! allocator: the heap the parsed state holds, the heap the finished snapshot holds, and the
//! peak heap while building it. The last row is the footprint issue's shape
//! (`synthetic::uniform_state_value`, 100,000 tasks). Two more columns time an update from the
//! built snapshot (`records::update`): after one task is renamed (one framework's shard
//! rebuilt) and with nothing changed (only the inputs' digests computed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mesos_dns_sidecar::config::Config;
use mesos_dns_sidecar::mesos::model::State;
use mesos_dns_sidecar::mesos::synthetic;
use mesos_dns_sidecar::records::{build, update, HostAddrs, RecordSettings};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `BENCH_REVERSE_LOOKUPS=false` measures without the reverse-lookup map (on by default).
    let config = Config {
        reverse_lookups: std::env::var("BENCH_REVERSE_LOOKUPS").map_or(true, |v| v != "false"),
        ..Config::default()
    };
    let settings = RecordSettings::from_config(&config, vec!["10.0.0.53".parse().unwrap()]);
    let hosts = HostAddrs::new();
    println!(
        "{:>8} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10} {:>10} {:>12} {:>14} {:>10} {:>10}",
        "tasks",
        "shape",
        "json MiB",
        "parse ms",
        "read ms",
        "state MiB",
        "build ms",
        "names",
        "snap MiB",
        "build peak MiB",
        "update ms",
        "same ms"
    );
    let cases = [
        (1_000usize, "mixed"),
        (10_000, "mixed"),
        (100_000, "mixed"),
        (100_000, "uniform"),
        (100_000, "one"),
    ];
    for (tasks, shape) in cases {
        let doc = match shape {
            "mixed" => synthetic::state_json(tasks),
            // "one": every task in one framework.
            _ => serde_json::to_vec(&synthetic::uniform_state_value(
                tasks,
                if shape == "one" { 1 } else { 10 },
                tasks / 50,
                "renamed",
            ))
            .expect("serialise"),
        };
        let runs = if tasks >= 100_000 { 3 } else { 7 };

        let mut parse = Vec::new();
        let mut state = None;
        let mut state_bytes = 0;
        for _ in 0..runs {
            drop(state.take());
            let before = LIVE.load(Ordering::Relaxed);
            let t = Instant::now();
            let s = State::from_json(&doc).expect("synthetic state parses");
            parse.push(t.elapsed());
            state_bytes = LIVE.load(Ordering::Relaxed) - before;
            state = Some(s);
        }
        let state = state.expect("at least one run");
        let mut read = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let s = State::from_reader(std::io::BufReader::new(&doc[..])).expect("reads");
            read.push(t.elapsed());
            drop(s);
        }

        let mut times = Vec::new();
        let mut snap_bytes = 0;
        let mut peak = 0;
        let mut names = 0;
        for _ in 0..runs {
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let t = Instant::now();
            let snap = build(&state, &settings, &hosts, 1).expect("build");
            times.push(t.elapsed());
            snap_bytes = LIVE.load(Ordering::Relaxed) - before;
            peak = PEAK.load(Ordering::Relaxed) - before;
            names = snap.stats.names;
            drop(snap);
        }

        let built = build(&state, &settings, &hosts, 1).expect("build");
        let mut renamed = state.clone();
        if let Some(task) = renamed
            .frameworks
            .iter_mut()
            .find_map(|f| f.tasks.first_mut())
        {
            let task = std::sync::Arc::make_mut(task);
            task.name = "renamed-again".into();
            task.discovery = None;
        }
        let (mut updates, mut same) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            let next = update(Some(&built), &renamed, &settings, &hosts, 2).expect("update");
            drop(next.finish());
            updates.push(t.elapsed());
            let t = Instant::now();
            let next = update(Some(&built), &state, &settings, &hosts, 2).expect("update");
            drop(next.finish());
            same.push(t.elapsed());
        }
        println!(
            "{:>8} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>10.1} {:>10} {:>12.1} {:>14.1} {:>10.1} {:>10.1}",
            tasks,
            shape,
            mib(doc.len()),
            median(parse).as_secs_f64() * 1e3,
            median(read).as_secs_f64() * 1e3,
            mib(state_bytes),
            median(times).as_secs_f64() * 1e3,
            names,
            mib(snap_bytes),
            mib(peak),
            median(updates).as_secs_f64() * 1e3,
            median(same).as_secs_f64() * 1e3
        );
    }
}
