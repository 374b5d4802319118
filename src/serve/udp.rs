//! Questions over UDP. For a name server, the hot path: each answer is
//! encoded once and then sent again with only its ID changed.
//!
//! ```text
//!  datagram ──► same bytes as an earlier question (ID aside)? ──yes──► its answer, new ID
//!                    │no
//!                    ▼
//!               parse, answer (the role's handler), encode ──► send, and remember it
//! ```
//!
//! A name server's answer depends on nothing but the question's bytes: the
//! zones are fixed once loaded, and the header flags and EDNS the answer
//! echoes are in those bytes. So the bytes after the ID are the key, and the
//! cached answer is exactly what the full path would have encoded, truncation
//! (TC=1) included. Each serving task owns its cache: no lock, and no
//! allocation for a question asked before.
//!
//! A resolver's answers change by the second (TTLs count down) and may take
//! a while (a cold walk), so for it nothing is remembered and each question
//! is answered in a task of its own, leaving the readers free.
//!
//! What hickory-server's UDP path did, this one does the same way: datagrams
//! from port 0 or an unspecified or broadcast address get nothing; a message
//! too short for a header gets nothing; one that does not parse gets FORMERR;
//! responses sent to us are dropped. TCP is in [`super::tcp`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::{RequestHandler, ResponseInfo};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::respond::answer;
use super::rrl::{RateLimiter, Verdict, slip_response};
use super::{log_query_line, query_log_enabled};

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

/// Whether answers may be remembered and replayed (name servers) or must be
/// worked out each time (the resolver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    Remembered,
    Fresh,
}

/// Serve `handler` on `socket` until `shutdown`: `tasks` tasks read the same
/// socket, so that a busy server uses every core it may run on.
pub async fn serve<H: RequestHandler + Clone>(
    handler: H,
    socket: UdpSocket,
    tasks: usize,
    answers: Answers,
    limiter: Option<Arc<RateLimiter>>,
    shutdown: CancellationToken,
) {
    let socket = Arc::new(socket);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        set.spawn(serve_task(
            handler.clone(),
            socket.clone(),
            answers,
            limiter.clone(),
            shutdown.clone(),
        ));
    }
    while set.join_next().await.is_some() {}
}

async fn serve_task<H: RequestHandler + Clone>(
    handler: H,
    socket: Arc<UdpSocket>,
    answers: Answers,
    limiter: Option<Arc<RateLimiter>>,
    shutdown: CancellationToken,
) {
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

        if let Some(limiter) = &limiter {
            match limiter.check(src.ip()) {
                Verdict::Send => {}
                Verdict::Drop => continue,
                Verdict::Slip => {
                    if let Some(reply) = slip_response(packet) {
                        send(&socket, &reply, src).await;
                    }
                    continue;
                }
            }
        }

        if answers == Answers::Fresh {
            // Answered in a task of its own: a cold resolution must not
            // hold up the questions behind it.
            let (handler, socket, packet) = (handler.clone(), socket.clone(), packet.to_vec());
            tokio::spawn(async move {
                if let Some(answer) = answer(&handler, &packet, src, Protocol::Udp).await {
                    send(&socket, &answer.bytes, src).await;
                }
            });
            continue;
        }

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

        let Some(answer) = answer(&handler, packet, src, Protocol::Udp).await else {
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
pub(super) fn can_answer(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}
