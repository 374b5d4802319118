//! Questions over TCP (RFC 7766): each message preceded by its two-byte
//! length, several on one connection, answered in order.
//!
//! Connections are bounded in number and in idle time, so that clients who
//! open connections and say nothing, or trickle their bytes, cannot exhaust
//! the server: past the limit, new connections wait in the kernel's backlog
//! until one closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::RequestHandler;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::TCP_IDLE_TIMEOUT;
use super::respond::answer;
use super::udp::can_answer;

/// How many TCP clients, and for how long each may sit idle.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    /// Between messages, and for the bytes of one message to arrive.
    pub idle: Duration,
}

impl Default for TcpLimits {
    fn default() -> TcpLimits {
        TcpLimits {
            max_connections: 256,
            idle: TCP_IDLE_TIMEOUT,
        }
    }
}

/// Accept and serve connections on `listener` until `shutdown`.
pub async fn serve<H: RequestHandler + Clone>(
    handler: H,
    listener: TcpListener,
    limits: TcpLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        // A permit first: at the limit, clients wait in the backlog rather
        // than being accepted and left unserved.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            _ = shutdown.cancelled() => break,
        };
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
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        connections.spawn(async move {
            let _permit = permit;
            connection(&handler, stream, client, limits.idle, shutdown).await;
        });
    }
    // Answers in progress get a moment to finish; then the rest is dropped.
    let drain = async { while connections.join_next().await.is_some() {} };
    if timeout(Duration::from_secs(2), drain).await.is_err() {
        connections.shutdown().await;
    }
}

/// One client's connection: read a message, answer it, until the client
/// closes, goes quiet for `idle`, sends what cannot be framed, or shutdown.
async fn connection(
    handler: &impl RequestHandler,
    mut stream: TcpStream,
    client: SocketAddr,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    loop {
        let length = tokio::select! {
            read = timeout(idle, stream.read_u16()) => match read {
                Ok(Ok(length)) => usize::from(length),
                _ => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let mut message = vec![0u8; length];
        if !matches!(
            timeout(idle, stream.read_exact(&mut message)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(answer) = answer(handler, &message, client, Protocol::Tcp).await else {
            continue;
        };
        let mut framed = Vec::with_capacity(answer.bytes.len() + 2);
        framed.extend_from_slice(&(answer.bytes.len() as u16).to_be_bytes());
        framed.extend_from_slice(&answer.bytes);
        if !matches!(timeout(idle, stream.write_all(&framed)).await, Ok(Ok(()))) {
            return;
        }
    }
}
