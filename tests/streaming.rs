//! The v1 operator API event stream against a fake streaming master: incremental updates
//! answerable within a second, heartbeat watchdog and resubscription.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// A master that serves `/master/state` and a RecordIO event stream on `POST /api/v1`.
struct StreamingMaster {
    addr: SocketAddr,
    subscriptions: Arc<AtomicUsize>,
    /// Senders to the connected streams (one per subscription).
    streams: Arc<Mutex<Vec<Sender<Vec<u8>>>>>,
}

fn recordio(event: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::to_vec(event).unwrap();
    let mut out = format!("{}\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

fn v1_task(id: &str, name: &str, state: &str) -> serde_json::Value {
    json!({"name": name, "task_id": {"value": id}, "framework_id": {"value": "fw-1"},
           "agent_id": {"value": "agent-1"}, "state": state,
           "resources": [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31000}]}}],
           "statuses": [{"task_id": {"value": id}, "state": state, "timestamp": 1.0}]})
}

impl StreamingMaster {
    fn start(heartbeat_s: f64) -> StreamingMaster {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let m = StreamingMaster {
            addr,
            subscriptions: Arc::new(AtomicUsize::new(0)),
            streams: Arc::new(Mutex::new(Vec::new())),
        };
        let (subs, streams) = (m.subscriptions.clone(), m.streams.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (subs, streams) = (subs.clone(), streams.clone());
                std::thread::spawn(move || serve(conn, addr, heartbeat_s, &subs, &streams));
            }
        });
        m
    }

    fn send(&self, event: serde_json::Value) {
        let bytes = recordio(&event);
        self.streams
            .lock()
            .unwrap()
            .retain(|tx| tx.send(bytes.clone()).is_ok());
    }
}

fn serve(
    mut conn: TcpStream,
    me: SocketAddr,
    heartbeat_s: f64,
    subs: &AtomicUsize,
    streams: &Mutex<Vec<Sender<Vec<u8>>>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length];
    let _ = reader.read_exact(&mut body);
    if request_line.starts_with("GET /master/state") {
        let doc = serde_json::to_vec(&json!({
            "leader": format!("master@{me}"),
            "frameworks": [{"id": "fw-1", "name": "marathon", "pid": format!("scheduler(1)@{}", me), "tasks": []}],
            "slaves": [{"id": "agent-1", "pid": "slave(1)@10.0.1.1:5051"}],
        }))
        .unwrap();
        let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", doc.len());
        let _ = conn.write_all(&doc);
        return;
    }
    if !request_line.starts_with("POST /api/v1")
        || !String::from_utf8_lossy(&body).contains("SUBSCRIBE")
    {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    subs.fetch_add(1, Ordering::Relaxed);
    let (tx, rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = channel();
    streams.lock().unwrap().push(tx);
    let _ = conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let subscribed = json!({"type": "SUBSCRIBED", "subscribed": {
        "heartbeat_interval_seconds": heartbeat_s,
        "get_state": {
            "get_frameworks": {"frameworks": [{"framework_info": {"id": {"value": "fw-1"}, "name": "marathon", "hostname": "m"}}]},
            "get_agents": {"agents": [{"agent_info": {"id": {"value": "agent-1"}, "hostname": "a1"}, "pid": "slave(1)@10.0.1.1:5051"}]},
            "get_tasks": {"tasks": [v1_task("web.1", "web", "TASK_RUNNING")]}}}});
    let chunk = |conn: &mut TcpStream, data: &[u8]| -> bool {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        conn.write_all(&out).is_ok() && conn.flush().is_ok()
    };
    if !chunk(&mut conn, &recordio(&subscribed)) {
        return;
    }
    while let Ok(event) = rx.recv() {
        if !chunk(&mut conn, &event) {
            return;
        }
    }
}

fn daemon_for(master: &StreamingMaster) -> (Daemon, tempfile::TempDir) {
    start_with_config(
        json!({"masters": [master.addr.to_string()], "refreshSeconds": 60, "stateFile": "", "recurseon": false}),
        &[],
    )
}

#[test]
fn streamed_task_is_answerable_within_a_second() {
    let master = StreamingMaster::start(15.0);
    let (d, _dir) = daemon_for(&master);
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| {
        answers(m) == ["A 10.0.1.1"]
    });
    assert_eq!(master.subscriptions.load(Ordering::Relaxed), 1);

    let started = Instant::now();
    master.send(json!({"type": "TASK_ADDED", "task_added": {"task": v1_task("api.1", "api", "TASK_STAGING")}}));
    master.send(json!({"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": "fw-1"},
        "state": "TASK_RUNNING", "status": {"task_id": {"value": "api.1"}, "state": "TASK_RUNNING", "timestamp": 2.0}}}));
    loop {
        let m = d.udp("api.marathon.mesos.", RecordType::A, None);
        if !m.answers.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not answerable within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("event-to-answer: {:?}", started.elapsed());
    // The framework's SRV from the state document's PID survives streaming.
    let m = d.udp("_framework._tcp.marathon.mesos.", RecordType::SRV, None);
    assert_eq!(m.answers.len(), 1);

    master.send(json!({"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": "fw-1"},
        "state": "TASK_KILLED", "status": {"task_id": {"value": "web.1"}, "state": "TASK_KILLED", "timestamp": 3.0}}}));
    d.wait_for("web.marathon.mesos.", RecordType::A, |m| {
        m.answers.is_empty()
    });
    master.send(
        json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": "agent-1"}}}),
    );
    d.wait_for("api.marathon.mesos.", RecordType::A, |m| {
        m.answers.is_empty()
    });
}

#[test]
fn a_silent_stream_is_resubscribed() {
    // Heartbeats every 0.3 s promised, none sent: the watchdog drops the stream after ~0.9 s.
    let master = StreamingMaster::start(0.3);
    let (d, _dir) = daemon_for(&master);
    d.wait_answering("web.marathon.mesos.");
    let deadline = Instant::now() + Duration::from_secs(5);
    while master.subscriptions.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "never resubscribed");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.wait_answering("web.marathon.mesos.");
}
