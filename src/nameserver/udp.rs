//! Questions over UDP, the name servers' hot path: each answer is encoded
//! once and then sent again with only its ID changed.
//!
//! ```text
//!  datagram ──► same bytes as an earlier question (ID aside)? ──yes──► its answer, new ID
//!                    │no
//!                    ▼
//!               parse, answer (NameServer), encode ──► send, and remember it
//! ```
//!
//! A name server's answer depends on nothing but the question's bytes: the
//! zones are fixed once loaded, and the header flags and EDNS the answer
//! echoes are in those bytes. So the bytes after the ID are the key, and the
//! cached answer is exactly what the full path would have encoded, truncation
//! (TC=1) included. Each serving task owns its cache: no lock, and no
//! allocation for a question asked before.
//!
//! What hickory-server's UDP path did, this one does the same way: datagrams
//! from port 0 or an unspecified or broadcast address get nothing; a message
//! too short for a header gets nothing; one that does not parse gets FORMERR;
//! responses sent to us are dropped. TCP stays with hickory-server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Header, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::NameServer;
use crate::serve::{log_query_line, query_log_enabled};

/// The largest datagram read, as hickory-server reads them.
const MAX_DATAGRAM: usize = 4096;
/// Questions longer than this are answered but not remembered.
const MAX_KEY: usize = 512;
/// Answers remembered per task; when full, the cache starts over, so a flood
/// of distinct questions costs memory once and the hot ones come back.
const MAX_ENTRIES: usize = 4096;

/// An answer ready to send again: its bytes (ID aside), and what the query
/// log says about it.
struct Encoded {
    bytes: Box<[u8]>,
    question: Box<str>,
    info: ResponseInfo,
}

/// Serve `server` on `socket` until `shutdown`: `tasks` tasks read the same
/// socket, so that a busy server uses every core it may run on.
pub async fn serve(
    server: NameServer,
    socket: UdpSocket,
    tasks: usize,
    shutdown: CancellationToken,
) {
    let socket = Arc::new(socket);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        set.spawn(serve_task(server.clone(), socket.clone(), shutdown.clone()));
    }
    while set.join_next().await.is_some() {}
}

async fn serve_task(server: NameServer, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
    let mut cache: HashMap<Box<[u8]>, Encoded> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(512);
    loop {
        let (len, src) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(error) => {
                    // ICMP errors for earlier answers surface here; the
                    // socket itself is still good.
                    debug!(%error, "receiving on UDP");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        if !can_answer(src) || len < 12 {
            continue;
        }
        let packet = &buf[..len];

        if let Some(hit) = cache.get(&packet[2..]) {
            out.clear();
            out.extend_from_slice(&packet[..2]);
            out.extend_from_slice(&hit.bytes[2..]);
            send(&socket, &out, src).await;
            if query_log_enabled() {
                log_query_line(src, Protocol::Udp, &hit.question, &hit.info);
            }
            continue;
        }

        let Some(answer) = answer(&server, packet, src).await else {
            continue;
        };
        send(&socket, &answer.bytes, src).await;
        if answer.cacheable && len <= MAX_KEY {
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(
                packet[2..].into(),
                Encoded {
                    bytes: answer.bytes.into(),
                    question: answer.question.into(),
                    info: answer.info,
                },
            );
        }
    }
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to).await {
        debug!(%error, %to, "sending on UDP");
    }
}

/// hickory-server's rule: never answer port 0, nor an unspecified or
/// broadcast address (a forged source would make us a reflector).
fn can_answer(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}

struct Answer {
    bytes: Vec<u8>,
    question: String,
    info: ResponseInfo,
    cacheable: bool,
}

/// The full path for a question not seen before: what hickory-server does
/// with a datagram, then the name server's own answer.
async fn answer(server: &NameServer, packet: &[u8], src: SocketAddr) -> Option<Answer> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    let request = match Request::from_bytes(packet.to_vec(), src, Protocol::Udp) {
        Ok(request) => request,
        Err(error) => {
            debug!(%src, %error, "FORMERR: the message does not parse");
            let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let (info, bytes) = encode_udp(response);
            return Some(Answer {
                bytes,
                question: String::new(),
                info,
                cacheable: false,
            });
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    let capture = Capture::default();
    server
        .handle_request::<_, TokioTime>(&request, capture.clone())
        .await;
    let (info, bytes) = capture.0.lock().expect("capture lock").take()?;
    let question = request
        .queries
        .queries()
        .first()
        .map(|q| format!("{} {}", q.name(), q.query_type()))
        .unwrap_or_else(|| "(no question)".into());
    Some(Answer {
        bytes,
        question,
        info,
        cacheable: true,
    })
}

/// A response handler that keeps the encoded response instead of sending
/// it, so that it can be sent and remembered.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Option<Encoding>>>);

/// What the response said, and its bytes.
type Encoding = (ResponseInfo, Vec<u8>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = encode_udp(response);
        *self.0.lock().expect("capture lock") = Some((info, bytes.clone()));
        Ok(info)
    }
}

/// Encode a response for UDP exactly as hickory-server does: no larger than
/// the response's EDNS payload size (512 bytes without EDNS, RFC 1035
/// §4.2.1), truncated with TC=1 beyond it, SERVFAIL if it cannot be encoded.
fn encode_udp<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> (ResponseInfo, Vec<u8>) {
    let id = response.metadata().id;
    let max_size = response.edns().map_or(512, |edns| edns.max_payload());
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max_size);
    let error = match response.destructive_emit(&mut encoder) {
        Ok(info) => return (info, bytes),
        Err(error) => error,
    };
    error!(%error, "error encoding message");
    bytes.clear();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(512);
    let mut metadata = Metadata::new(id, MessageType::Response, hickory_proto::op::OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    let header = Header {
        metadata,
        counts: Default::default(),
    };
    header
        .emit(&mut encoder)
        .expect("a bare header always fits in 512 bytes");
    (ResponseInfo::from(header), bytes)
}
