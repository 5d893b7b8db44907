//! Batched UDP I/O: many datagrams per system call (`recvmmsg`, `sendmmsg`).
//!
//! Under load most of a DNS server's time goes to the kernel, one receive and one send per
//! query. Taking every queued query in one call, answering them, and sending the answers in
//! one call halves the system calls per query and lets the client's socket take a burst of
//! answers per wake-up. At low load a batch is one datagram and costs what `recvfrom` does.
//!
//! The listener reads on a thread of its own with a blocking `recvmmsg` ([`Batcher::wait`],
//! `MSG_WAITFORONE`: it returns as soon as one datagram is there, with whatever else is queued
//! by then), so a wake-up costs the floor of two system calls, one receive and one send, where
//! waiting in the async runtime costs an `epoll_wait` on top. The socket's receive timeout
//! bounds each wait, so the thread notices in time that it should stop.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    recvmmsg, sendmmsg, sendto, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};

/// Datagrams taken or sent per system call at most.
pub const BATCH: usize = 32;

/// Receive buffer per datagram. Queries are small; a larger one is cut and flagged.
pub const SLOT: usize = 4096;

/// One received datagram.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Which buffer slot holds it.
    slot: usize,
    /// Bytes in its slot.
    pub len: usize,
    /// Sender.
    pub peer: SocketAddr,
    /// Longer than `SLOT`, so cut.
    pub truncated: bool,
}

/// Reusable buffers and headers for one socket's batches.
pub struct Batcher {
    slots: Box<[[u8; SLOT]; BATCH]>,
    recv_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
}

// SAFETY: the raw pointers inside `MultiHeaders` point at its own boxed address slots (heap,
// so they move with it) and at I/O buffers that every call sets afresh and that don't outlive
// the call. Nothing else holds them, so moving a `Batcher` to another thread is sound; it is
// never shared (`&mut self` everywhere).
unsafe impl Send for Batcher {}

impl Default for Batcher {
    fn default() -> Self {
        Batcher {
            slots: vec![[0u8; SLOT]; BATCH]
                .into_boxed_slice()
                .try_into()
                .expect("BATCH slots"),
            recv_headers: MultiHeaders::preallocate(BATCH, None),
            send_headers: MultiHeaders::preallocate(BATCH, None),
        }
    }
}

impl Batcher {
    /// Takes the datagrams queued on `socket` (at least one, or `WouldBlock`) into `out`,
    /// without waiting; returns how many the kernel handed over (`out` skips those from an
    /// address family we don't serve). Fewer than [`BATCH`] means the queue is now empty.
    pub fn recv(&mut self, socket: &impl AsRawFd, out: &mut Vec<Received>) -> io::Result<usize> {
        self.recv_with(socket, out, MsgFlags::MSG_DONTWAIT)
    }

    /// Waits for a datagram on `socket` (a blocking one) and takes it with whatever else is
    /// queued by then into `out`, in one system call; as [`Batcher::recv`] otherwise. The
    /// wait ends with `WouldBlock` (or `TimedOut`) after the socket's receive timeout, and with
    /// `Interrupted` on a signal.
    pub fn wait(&mut self, socket: &impl AsRawFd, out: &mut Vec<Received>) -> io::Result<usize> {
        self.recv_with(socket, out, MsgFlags::MSG_WAITFORONE)
    }

    fn recv_with(
        &mut self,
        socket: &impl AsRawFd,
        out: &mut Vec<Received>,
        flags: MsgFlags,
    ) -> io::Result<usize> {
        out.clear();
        let mut slots = self.slots.iter_mut();
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(slots.next().expect("BATCH slots"))]);
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.recv_headers,
            iovs.iter_mut(),
            flags,
            None,
        )
        .map_err(io::Error::from)?;
        let mut taken = 0;
        for (slot, r) in results.enumerate() {
            taken += 1;
            // Datagrams from a family we don't serve can't arrive on an IP socket; skip them.
            let Some(peer) = r.address.as_ref().and_then(to_std) else {
                continue;
            };
            out.push(Received {
                slot,
                len: r.bytes.min(SLOT),
                peer,
                truncated: r.flags.contains(MsgFlags::MSG_TRUNC),
            });
        }
        Ok(taken)
    }

    /// The bytes of a datagram of the last `recv`.
    pub fn datagram(&self, r: &Received) -> &[u8] {
        &self.slots[r.slot][..r.len]
    }

    /// Sends as many of `replies` (at most `BATCH`) as the socket takes now, in order; returns
    /// how many went, or `WouldBlock`, or the error of the first one.
    pub fn send(
        &mut self,
        socket: &impl AsRawFd,
        replies: &[(Vec<u8>, SocketAddr)],
    ) -> io::Result<usize> {
        let replies = &replies[..replies.len().min(BATCH)];
        // One reply (a quiet moment's wake-up): `sendto` does without the batch's headers.
        if let [(bytes, peer)] = replies {
            let to = SockaddrStorage::from(*peer);
            sendto(socket.as_raw_fd(), bytes, &to, MsgFlags::MSG_DONTWAIT)
                .map_err(io::Error::from)?;
            return Ok(1);
        }
        let iovs: Vec<[IoSlice<'_>; 1]> = replies.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = replies
            .iter()
            .map(|(_, a)| Some(SockaddrStorage::from(*a)))
            .collect();
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut self.send_headers,
            iovs.iter(),
            addrs,
            no_cmsgs,
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    }
}

/// How long a send waits before trying again when the socket's send buffer is full.
pub const SEND_RETRY: Duration = Duration::from_millis(1);

/// Sends every reply, batches at a time, from a thread that may block; while the send buffer is
/// full it sleeps `SEND_RETRY` and tries again. A reply the kernel refuses outright
/// (unreachable peer) is dropped and reported to `refused`. Clears `replies`.
pub fn send_all(
    socket: &UdpSocket,
    batcher: &mut Batcher,
    replies: &mut Vec<(Vec<u8>, SocketAddr)>,
    mut refused: impl FnMut(&io::Error, SocketAddr),
) {
    let mut done = 0;
    while done < replies.len() {
        match batcher.send(socket, &replies[done..]) {
            Ok(n) => done += n.max(1),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(SEND_RETRY),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                refused(&e, replies[done].1);
                done += 1;
            }
        }
    }
    replies.clear();
}

/// Sends one datagram from an async task without blocking its thread, whether or not the
/// socket is in blocking mode (the listener thread's socket is): while the send buffer is full
/// it waits `SEND_RETRY` on the runtime's timer and tries again.
pub async fn send_one(socket: &UdpSocket, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
    let to = SockaddrStorage::from(peer);
    loop {
        match sendto(socket.as_raw_fd(), bytes, &to, MsgFlags::MSG_DONTWAIT) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {
                tokio::time::sleep(SEND_RETRY).await
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn receives_and_sends_a_batch_in_order() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..40u8 {
            client
                .send_to(&[i; 3], server.local_addr().unwrap())
                .unwrap();
        }
        let mut b = Batcher::default();
        let mut got = Vec::new();
        b.recv(&server, &mut got).unwrap();
        assert_eq!(got.len(), BATCH, "a full batch is taken at once");
        assert_eq!(b.datagram(&got[5]), &[5, 5, 5]);
        assert_eq!(got[0].peer, client.local_addr().unwrap());
        let replies: Vec<(Vec<u8>, SocketAddr)> = got
            .iter()
            .map(|r| (b.datagram(r).to_vec(), r.peer))
            .collect();
        assert_eq!(b.send(&server, &replies).unwrap(), BATCH);
        let mut buf = [0u8; 16];
        for i in 0..BATCH as u8 {
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 3]);
        }
        b.recv(&server, &mut got).unwrap();
        assert_eq!(got.len(), 8, "the rest");
        let err = b.recv(&server, &mut got).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_wait_takes_the_first_datagram_with_the_queued_ones_and_times_out_when_idle() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let to = server.local_addr().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = Batcher::default();
        let mut got = Vec::new();
        for i in 0..3u8 {
            client.send_to(&[i; 2], to).unwrap();
        }
        assert_eq!(
            b.wait(&server, &mut got).unwrap(),
            3,
            "all queued ones at once"
        );
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            client.send_to(&[9; 4], to).unwrap();
            client
        });
        assert_eq!(
            b.wait(&server, &mut got).unwrap(),
            1,
            "returns with the first"
        );
        assert_eq!(b.datagram(&got[0]), &[9; 4]);
        let client = sender.join().unwrap();
        let started = std::time::Instant::now();
        let err = b.wait(&server, &mut got).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut replies = vec![(vec![1u8; 4], client.local_addr().unwrap())];
        send_all(&server, &mut b, &mut replies, |_, _| panic!("refused"));
        assert!(replies.is_empty());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(send_one(&server, &[2u8; 5], client.local_addr().unwrap()))
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(client.recv(&mut buf).unwrap(), 4);
        assert_eq!(client.recv(&mut buf).unwrap(), 5);
    }

    #[test]
    fn an_oversized_datagram_is_flagged() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(&vec![7u8; SLOT + 10], server.local_addr().unwrap())
            .unwrap();
        let mut b = Batcher::default();
        let mut got = Vec::new();
        b.recv(&server, &mut got).unwrap();
        assert!(got[0].truncated);
        assert_eq!(got[0].len, SLOT);
    }
}
