//! An event-stream generator: a fake Mesos master speaking the v1 operator API's event stream
//! (`POST /api/v1` SUBSCRIBE, RecordIO over chunked HTTP), plus `/master/state` for what only
//! the v0 document carries (framework PIDs). Tests and the update-latency bench push events
//! through it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// A running streaming master.
pub struct StreamingMaster {
    pub addr: SocketAddr,
    /// Subscriptions taken so far.
    pub subscriptions: Arc<AtomicUsize>,
    /// Senders to the connected streams (one per subscription).
    streams: Arc<Mutex<Vec<Sender<Vec<u8>>>>>,
}

/// One RecordIO record: the JSON's length, a newline, the JSON.
pub fn recordio(event: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(event).unwrap();
    let mut out = format!("{}\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// A v1 task of framework `fw-1` on `agent`, with one port.
pub fn v1_task(id: &str, name: &str, agent: &str, state: &str) -> Value {
    json!({"name": name, "task_id": {"value": id}, "framework_id": {"value": "fw-1"},
           "agent_id": {"value": agent}, "state": state,
           "resources": [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31000}]}}],
           "statuses": [{"task_id": {"value": id}, "state": state, "timestamp": 1.0}]})
}

/// A TASK_UPDATED event moving task `id` of `fw-1` to `state`.
pub fn v1_update(id: &str, state: &str, timestamp: f64) -> Value {
    json!({"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": "fw-1"},
        "state": state, "status": {"task_id": {"value": id}, "state": state, "timestamp": timestamp}}})
}

impl StreamingMaster {
    /// Starts a master whose SUBSCRIBED event carries `get_state` and promises heartbeats every
    /// `heartbeat_s` (none are sent); `/master/state` answers `state_document(own address)`.
    pub fn start(
        heartbeat_s: f64,
        get_state: Value,
        state_document: impl Fn(SocketAddr) -> Value + Send + 'static,
    ) -> StreamingMaster {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let m = StreamingMaster {
            addr,
            subscriptions: Arc::new(AtomicUsize::new(0)),
            streams: Arc::new(Mutex::new(Vec::new())),
        };
        let subscribed = Arc::new(recordio(&json!({"type": "SUBSCRIBED", "subscribed": {
            "heartbeat_interval_seconds": heartbeat_s, "get_state": get_state}})));
        let document = Arc::new(serde_json::to_vec(&state_document(addr)).unwrap());
        let (subs, streams) = (m.subscriptions.clone(), m.streams.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (subs, streams) = (subs.clone(), streams.clone());
                let (subscribed, document) = (subscribed.clone(), document.clone());
                std::thread::spawn(move || serve(conn, &subscribed, &document, &subs, &streams));
            }
        });
        m
    }

    /// Sends `event` down every open stream.
    pub fn send(&self, event: Value) {
        let bytes = recordio(&event);
        self.streams
            .lock()
            .unwrap()
            .retain(|tx| tx.send(bytes.clone()).is_ok());
    }
}

fn serve(
    mut conn: TcpStream,
    subscribed: &[u8],
    document: &[u8],
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
        let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", document.len());
        let _ = conn.write_all(document);
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
    let chunk = |conn: &mut TcpStream, data: &[u8]| -> bool {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        conn.write_all(&out).is_ok() && conn.flush().is_ok()
    };
    if !chunk(&mut conn, subscribed) {
        return;
    }
    while let Ok(event) = rx.recv() {
        if !chunk(&mut conn, &event) {
            return;
        }
    }
}
