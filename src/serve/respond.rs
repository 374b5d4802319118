//! From raw bytes to raw bytes: what both transports do with one message.
//!
//! The message is parsed as hickory-server parses it (FORMERR when only the
//! header can be read, nothing when not even that), handed to the role's
//! [`RequestHandler`], and the response it sends is captured, encoded, for
//! the transport to write.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Header, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use tracing::{debug, error};

/// A response ready to send, and what the query log says about it.
pub(crate) struct Answer {
    pub bytes: Vec<u8>,
    pub question: String,
    pub info: ResponseInfo,
    pub cacheable: bool,
}

/// The full path for a question not seen before: what hickory-server does
/// with a datagram, then the role's own answer.
pub(crate) async fn answer(
    handler: &impl RequestHandler,
    packet: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Answer> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    let request = match Request::from_bytes(packet.to_vec(), src, protocol) {
        Ok(request) => request,
        Err(error) => {
            debug!(%src, %error, "FORMERR: the message does not parse");
            let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let (info, bytes) = encode(response, protocol);
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
    let capture = Capture {
        protocol,
        encoded: Arc::default(),
    };
    handler
        .handle_request::<_, TokioTime>(&request, capture.clone())
        .await;
    let (info, bytes) = capture.encoded.lock().expect("capture lock").take()?;
    // Put into words only for the query log, and only when it is on.
    let question = match request.queries.queries().first() {
        Some(q) if super::query_log_enabled() => format!("{} {}", q.name(), q.query_type()),
        Some(_) => String::new(),
        None => "(no question)".into(),
    };
    Some(Answer {
        bytes,
        question,
        info,
        cacheable: true,
    })
}

/// A response handler that keeps the encoded response instead of sending
/// it, so that it can be sent and remembered.
#[derive(Clone)]
struct Capture {
    protocol: Protocol,
    encoded: Arc<Mutex<Option<Encoding>>>,
}

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
        let (info, bytes) = encode(response, self.protocol);
        *self.encoded.lock().expect("capture lock") = Some((info, bytes));
        Ok(info)
    }
}

/// Encode a response exactly as hickory-server does: over UDP no larger than
/// the response's EDNS payload size (512 bytes without EDNS, RFC 1035
/// §4.2.1), over TCP up to 64 KiB; SERVFAIL if it cannot be encoded. (The
/// roles decide truncation themselves beforehand: see [`crate::truncate`].)
fn encode<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    protocol: Protocol,
) -> (ResponseInfo, Vec<u8>) {
    let id = response.metadata().id;
    let max_size = match protocol {
        Protocol::Udp => response.edns().map_or(512, |edns| edns.max_payload()),
        _ => u16::MAX,
    };
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
