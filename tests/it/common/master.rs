//! An in-process fake Mesos master: serves a state document over HTTP on 127.0.0.1, and can be
//! switched into the faults a real master shows (errors, hangs, garbage, redirects).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// How the fake master answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// 200 with the document.
    Normal,
    /// 200 with the document gzip-encoded.
    Gzip,
    /// Only `/master/state.json` exists (Mesos < 1.0).
    OldOnly,
    /// 500.
    Error,
    /// Accepts and never answers.
    Hang,
    /// 200 with half the document.
    Truncated,
    /// 200 with bytes that aren't JSON.
    Garbage,
    /// 307 to another master.
    RedirectTo(SocketAddr),
    /// 401 unless HTTP basic credentials `user:secret` are sent.
    RequireAuth,
}

struct Inner {
    body: Vec<u8>,
    mode: Mode,
}

/// A running fake master.
#[derive(Clone)]
pub struct FakeMaster {
    /// Its address.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    /// Requests served.
    pub requests: Arc<AtomicUsize>,
}

async fn state(
    State(m): State<FakeMaster>,
    path: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    m.requests.fetch_add(1, Ordering::Relaxed);
    let (body, mode) = {
        let i = m.inner.lock().unwrap();
        (i.body.clone(), i.mode.clone())
    };
    let old_path = path.path().ends_with(".json");
    match mode {
        Mode::OldOnly if !old_path => StatusCode::NOT_FOUND.into_response(),
        Mode::Normal | Mode::OldOnly => {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Mode::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&body).unwrap();
            let gz = enc.finish().unwrap();
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                gz,
            )
                .into_response()
        }
        Mode::Error => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::RequireAuth => {
            // base64("user:secret")
            let ok = headers
                .get(header::AUTHORIZATION)
                .is_some_and(|v| v == "Basic dXNlcjpzZWNyZXQ=");
            if ok {
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::Truncated => Body::from(body[..body.len() / 2].to_vec()).into_response(),
        Mode::Garbage => Body::from("<html>not json</html>").into_response(),
        Mode::RedirectTo(to) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{to}{}", path.path()))],
        )
            .into_response(),
    }
}

impl FakeMaster {
    /// Starts a master serving `doc`, with its `leader` field set to itself.
    pub fn start(doc: &serde_json::Value) -> FakeMaster {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let m = FakeMaster {
            addr,
            inner: Arc::new(Mutex::new(Inner {
                body: Vec::new(),
                mode: Mode::Normal,
            })),
            requests: Arc::new(AtomicUsize::new(0)),
        };
        m.set_state(doc, addr);
        let app = Router::new()
            .route("/master/state", get(state))
            .route("/master/state.json", get(state))
            .with_state(m.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let _ = axum::serve(listener, app).await;
            });
        });
        m
    }

    /// Serves `doc` with its leader set to `leader`.
    pub fn set_state(&self, doc: &serde_json::Value, leader: SocketAddr) {
        let mut doc = doc.clone();
        doc["leader"] = format!("master@{leader}").into();
        self.inner.lock().unwrap().body = serde_json::to_vec(&doc).unwrap();
    }

    /// Switches the answer mode.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }
}

/// The cluster fixture (`tests/fixtures/cluster.json`) as a JSON value.
pub fn cluster_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(super::fixture(super::CLUSTER)).unwrap()).unwrap()
}

/// The cluster fixture plus one more running task `name` on agent 10.40.0.11, with the
/// container address 10.7.7.7, to see a change land.
pub fn cluster_json_with_task(name: &str) -> serde_json::Value {
    let mut doc = cluster_json();
    let task = serde_json::json!({"id": format!("{name}.1"), "name": name,
        "slave_id": "5d2c9a14-3e7f-4b1a-9c6d-2f8e0a7b4c31-S11", "state": "TASK_RUNNING",
        "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0,
            "labels": [{"key": "MesosContainerizer.NetworkSettings.IPAddress", "value": "10.7.7.7"}]}]});
    let frameworks = doc["frameworks"].as_array_mut().unwrap();
    let marathon = frameworks
        .iter_mut()
        .find(|f| f["name"] == "marathon")
        .unwrap();
    marathon["tasks"].as_array_mut().unwrap().push(task);
    doc
}

/// A plain HTTP GET; returns the status and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}
