//! A client for the package install test: resolves names through the C library (getaddrinfo,
//! so /etc/resolv.conf and whatever it points at) in a loop, as the applications on a host do,
//! until a stop file appears; then writes how many lookups were made and every one that failed.
//!
//! `resolve_loop OUT STOP INTERVAL_MS NAME...`

use std::io::Write;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, stop, interval, names @ ..] = args.as_slice() else {
        eprintln!("usage: resolve_loop OUT STOP INTERVAL_MS NAME...");
        std::process::exit(2);
    };
    let interval = Duration::from_millis(interval.parse().expect("interval in ms"));
    let started = Instant::now();
    let mut asked = 0u64;
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for name in names.iter().cycle() {
        if std::path::Path::new(stop).exists() {
            break;
        }
        let t = Instant::now();
        asked += 1;
        let result = (name.as_str(), 0)
            .to_socket_addrs()
            .map(|addrs| addrs.count());
        let took = t.elapsed();
        slowest = slowest.max(took);
        match result {
            Ok(n) if n > 0 => {}
            Ok(_) => failures.push(format!(
                "{:.3} {name} no address",
                started.elapsed().as_secs_f64()
            )),
            Err(e) => failures.push(format!("{:.3} {name} {e}", started.elapsed().as_secs_f64())),
        }
        std::thread::sleep(interval.saturating_sub(took));
    }
    let mut f = std::fs::File::create(out).expect("create output");
    writeln!(
        f,
        "asked {asked} failed {} slowest_ms {} seconds {:.1}",
        failures.len(),
        slowest.as_millis(),
        started.elapsed().as_secs_f64()
    )
    .unwrap();
    for line in failures {
        writeln!(f, "{line}").unwrap();
    }
}
