//! Questions over TCP (RFC 7766): each message preceded by its two-byte
//! length, several on one connection, answered in order.
//!
//! A client that opens connections and says nothing, or trickles its bytes,
//! must not be able to keep everyone else out. So, as NSD and Unbound do
//! (RFC 7766 §6.2):
//!
//! - connections are bounded in number, overall and per client address;
//!   when a bound is reached, the connection that has gone longest without
//!   completing a message is closed to make room, so a new client is always
//!   let in;
//! - the idle time allowed between messages shrinks as the server fills up
//!   (the full timeout below half full, a tenth of it when full);
//! - one message must arrive whole within the idle time of its first byte,
//!   so trickling a byte now and then buys nothing;
//! - a connection serves a bounded number of messages, then is closed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::querylog;
use super::udp::can_answer;
use super::{Pipeline, Responder, TCP_IDLE_TIMEOUT, Transport};
use crate::dns::tcp_frame;

/// How many TCP clients, and for how long each may sit idle.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    /// Connections one client address may hold at once.
    pub max_per_client: usize,
    /// Between messages when the server is not busy, and for the bytes of
    /// one message to arrive.
    pub idle: Duration,
    /// Messages answered on one connection before it is closed.
    pub max_messages: usize,
}

impl Default for TcpLimits {
    fn default() -> TcpLimits {
        TcpLimits {
            max_connections: 256,
            max_per_client: 32,
            idle: TCP_IDLE_TIMEOUT,
            max_messages: 1000,
        }
    }
}

/// What the server knows of one open connection.
struct Open {
    client: IpAddr,
    /// When it last completed a message (or was accepted).
    last_message: Instant,
    close: CancellationToken,
}

/// Every open connection, for the limits.
struct Registry {
    limits: TcpLimits,
    open: Mutex<HashMap<u64, Open>>,
}

impl Registry {
    /// Register a new connection, closing others to make room if a bound
    /// is reached: that client's longest idle one if it holds too many,
    /// else the server's longest idle one.
    fn admit(&self, id: u64, client: IpAddr) -> CancellationToken {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let theirs = open.values().filter(|c| c.client == client).count();
        if theirs >= self.limits.max_per_client.max(1) {
            evict_longest_idle(&mut open, |c| c.client == client);
        } else if open.len() >= self.limits.max_connections.max(1) {
            evict_longest_idle(&mut open, |_| true);
        }
        let close = CancellationToken::new();
        open.insert(
            id,
            Open {
                client,
                last_message: Instant::now(),
                close: close.clone(),
            },
        );
        close
    }

    /// The connection completed a message: it is not idle.
    fn touch(&self, id: u64) {
        if let Some(c) = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            c.last_message = Instant::now();
        }
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// The idle time allowed now: all of it below half full, shrinking to
    /// a tenth of it when full.
    fn idle_allowed(&self) -> Duration {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner()).len();
        let fill = open as f64 / self.limits.max_connections.max(1) as f64;
        let share = if fill <= 0.5 {
            1.0
        } else {
            1.0 - 0.9 * ((fill - 0.5) / 0.5).min(1.0)
        };
        self.limits.idle.mul_f64(share)
    }
}

fn evict_longest_idle(open: &mut HashMap<u64, Open>, which: impl Fn(&Open) -> bool) {
    let victim = open
        .iter()
        .filter(|(_, c)| which(c))
        .min_by_key(|(_, c)| c.last_message)
        .map(|(id, _)| *id);
    if let Some(victim) = victim.and_then(|id| open.remove(&id)) {
        victim.close.cancel();
    }
}

/// Accept and serve connections on `listener` until `shutdown`.
pub async fn serve<R: Responder>(
    pipeline: Arc<Pipeline<R>>,
    listener: TcpListener,
    limits: TcpLimits,
    shutdown: CancellationToken,
) {
    let registry = Arc::new(Registry {
        limits,
        open: Mutex::new(HashMap::new()),
    });
    let mut connections = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, most likely: let some close.
                    debug!(%error, "accepting a TCP connection");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        if !can_answer(client) {
            continue;
        }
        next_id += 1;
        let id = next_id;
        let close = registry.admit(id, client.ip());
        let (pipeline, registry, shutdown) = (pipeline.clone(), registry.clone(), shutdown.clone());
        connections.spawn(async move {
            tokio::select! {
                _ = connection(&pipeline, &registry, id, stream, client) => {}
                _ = close.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
            registry.remove(id);
        });
    }
    // Answers in progress get a moment to finish; then the rest is dropped.
    let drain = async { while connections.join_next().await.is_some() {} };
    if timeout(Duration::from_secs(2), drain).await.is_err() {
        connections.shutdown().await;
    }
}

/// One client's connection: read a message, answer it, until the client
/// closes, goes quiet for too long, sends what cannot be framed, or has
/// had its share of messages.
async fn connection<R: Responder>(
    pipeline: &Pipeline<R>,
    registry: &Registry,
    id: u64,
    mut stream: TcpStream,
    client: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let mut out = Vec::with_capacity(512);
    let mut full;
    let mut more = Vec::new();
    for _ in 0..registry.limits.max_messages.max(1) {
        let idle = registry.idle_allowed();
        let Ok(Ok(length)) = timeout(idle, stream.read_u16()).await else {
            return;
        };
        let mut message = vec![0u8; usize::from(length)];
        if !matches!(
            timeout(idle, stream.read_exact(&mut message)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        registry.touch(id);
        out.clear();
        let (bytes, log) = match pipeline.answer_now(&message, client, Transport::Tcp, &mut out) {
            Some(log) => (&out[..], log),
            None => match pipeline.handle(&message, client, Transport::Tcp).await {
                Some(answer) => {
                    full = answer.bytes;
                    more = answer.more;
                    (&full[..], answer.log)
                }
                None => continue,
            },
        };
        let framed = tcp_frame(bytes);
        if !matches!(
            timeout(registry.limits.idle, stream.write_all(&framed)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        // The rest of a zone transfer, each message framed on its own.
        for message in more.drain(..) {
            registry.touch(id);
            let framed = tcp_frame(&message);
            if !matches!(
                timeout(registry.limits.idle, stream.write_all(&framed)).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
        if let Some(log) = log {
            querylog::record(log);
        }
    }
}
