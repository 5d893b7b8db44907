//! UDP and TCP listeners feeding the responder.
//!
//! UDP answers inline on the receiving task: the responder only reads memory, so handing each
//! packet to another task would cost more than answering it. TCP serves each connection on its
//! own task with a connection cap and an idle timeout, so idle or slow clients cannot pin the
//! daemon's memory or file descriptors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::answer::{Responder, Transport};
use crate::metrics::Metrics;

/// Limits for the TCP side.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// How long a connection may sit without sending a complete query.
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 512,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Bound sockets of one listen address, ready to serve.
pub struct Listeners {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Listeners {
    /// Binds UDP and TCP on `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listeners> {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(addr).await?;
        Ok(Listeners { udp, tcp })
    }

    /// The bound UDP address (useful when binding port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Serves both transports until the process ends.
    pub async fn serve(self, responder: Arc<Responder>, metrics: Arc<Metrics>, limits: TcpLimits) {
        let udp = tokio::spawn(serve_udp(self.udp, responder.clone(), metrics.clone()));
        let tcp = tokio::spawn(serve_tcp(self.tcp, responder, metrics, limits));
        let _ = tokio::join!(udp, tcp);
    }
}

async fn serve_udp(socket: UdpSocket, responder: Arc<Responder>, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                debug!(error = %e, "udp receive error");
                continue;
            }
        };
        Metrics::inc(&metrics.udp_queries);
        if let Some(resp) = responder.respond(&buf[..len], Transport::Udp) {
            if let Err(e) = socket.send_to(&resp, peer).await {
                debug!(error = %e, %peer, "udp send error");
            }
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    responder: Arc<Responder>,
    metrics: Arc<Metrics>,
    limits: TcpLimits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, "tcp accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            Metrics::inc(&metrics.tcp_connections_rejected);
            drop(stream);
            continue;
        };
        let responder = responder.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) =
                serve_connection(stream, &responder, &metrics, limits.idle_timeout).await
            {
                debug!(error = %e, %peer, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// Serves length-prefixed queries on one connection until EOF, error or idle timeout.
async fn serve_connection(
    mut stream: TcpStream,
    responder: &Responder,
    metrics: &Metrics,
    idle: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let len = u16::from_be_bytes(len) as usize;
        buf.resize(len, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        Metrics::inc(&metrics.tcp_queries);
        let Some(resp) = responder.respond(&buf, Transport::Tcp) else {
            continue;
        };
        let mut out = Vec::with_capacity(resp.len() + 2);
        out.extend_from_slice(&(resp.len() as u16).to_be_bytes());
        out.extend_from_slice(&resp);
        tokio::time::timeout(idle, stream.write_all(&out))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))??;
    }
}
