//! The ceiling of the peer benchmark: a UDP responder that answers every query with one
//! precomputed response, changing only the message ID. It does nothing but the two system
//! calls every server needs per query, so no server on the same socket API can be faster.
//!
//!     ceiling_responder 127.0.0.1:5404

use std::net::UdpSocket;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5404".into());
    let name = Name::from_ascii("web.marathon.mesos.").expect("valid name");
    let mut m = Message::query();
    m.metadata.message_type = hickory_proto::op::MessageType::Response;
    m.metadata.authoritative = true;
    m.add_query(Query::query(name.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(name, 60, RData::A(A::new(10, 0, 0, 1))));
    let mut response = m.to_vec().expect("encodable response");

    let socket = UdpSocket::bind(addr)?;
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = socket.recv_from(&mut buf)?;
        if len < 2 {
            continue;
        }
        response[..2].copy_from_slice(&buf[..2]);
        let _ = socket.send_to(&response, peer);
    }
}
