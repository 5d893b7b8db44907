//! systemd service notification (`Type=notify`): READY once the daemon can answer, and
//! watchdog keep-alives, over `$NOTIFY_SOCKET`. Without systemd (no `$NOTIFY_SOCKET`), every
//! call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification message (`READY=1`, `WATCHDOG=1`, `STATUS=...`) to systemd.
pub fn notify(message: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        sock.send_to(message.as_bytes(), &path)?;
    }
    Ok(())
}

/// The watchdog interval systemd expects keep-alives within (`$WATCHDOG_USEC`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        // The environment is process-wide: this is the only test touching these variables.
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::env::set_var("WATCHDOG_USEC", "20000000");
        assert_eq!(watchdog_interval(), Some(Duration::from_secs(20)));
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
        notify("READY=1").unwrap();
    }
}
