//! Questions over UDP. For a name server, the hot path: each answer is
//! encoded once and then sent again with only its ID changed.
//!
//! ```text
//!  datagram ──► rate limit ──► same bytes as an earlier question (ID aside)? ──yes──► its answer, new ID
//!                                   │no
//!                                   ▼
//!                              the pipeline (parse, check, answer, encode) ──► send, and remember it
//! ```
//!
//! A name server's answer depends on nothing but the question's bytes: the
//! zones are fixed until a change bumps the role's version, and the header
//! flags and EDNS the answer echoes are in those bytes. So the bytes after
//! the ID are the key (the name's case and a cookie aside: see
//! [`super::replay`]), and the remembered answer is what the full path
//! would have encoded, truncation (TC=1) included. Each serving task owns
//! its memory: no lock, and no allocation for a question asked before. A
//! server set to fail (see [`crate::fault`]) takes the full path, so its
//! faults show.
//!
//! A resolver's answers change by the second (TTLs count down) and may take
//! a while (a cold walk). What it holds already it answers at once, on the
//! receive path ([`super::Responder::answer_now`]: the resolver's message
//! cache patches the TTLs); everything else is answered in a task of its
//! own, leaving the readers free. Its readers run on threads of their own,
//! so that a cached answer never waits for a turn among the cold walks
//! (under a flood of names that do not exist, they are thousands).
//!
//! Datagrams from port 0 or an unspecified or broadcast address get
//! nothing (a forged source would make us a reflector); so does a message
//! too short for a header, or a response sent to us. TCP is in
//! [`super::tcp`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::batch::{Inbox, Outbox};
use super::querylog::{self, LogEntry};
use super::ratelimit::Verdict;
use super::replay::{Replays, Shape};
use super::{Pipeline, Responder, Transport};

/// The largest datagram read.
const MAX_DATAGRAM: usize = 4096;
/// Serve `pipeline` on `socket` until `shutdown`: `tasks` tasks read the
/// same socket, so that a busy server uses every core it may run on.
pub async fn serve<R: Responder>(
    pipeline: Arc<Pipeline<R>>,
    socket: UdpSocket,
    tasks: usize,
    shutdown: CancellationToken,
) {
    if !pipeline.responder().replayable() {
        return serve_on_threads(pipeline, socket, tasks, shutdown).await;
    }
    let socket = Arc::new(socket);
    let misses = Misses {
        runtime: Handle::current(),
        socket: Outgoing::Shared(socket.clone()),
    };
    keep_reading(pipeline, socket, misses, tasks, shutdown).await;
}

/// Where a question that cannot be answered at once is worked on: a task
/// of `runtime`, answering through `socket`.
#[derive(Clone)]
struct Misses {
    runtime: Handle,
    socket: Outgoing,
}

/// The socket answers worked on elsewhere go out through: the readers' own,
/// or (readers on threads of their own) a handle on it registered with no
/// event loop, since one registered with the main runtime's would wake it
/// for every datagram that arrives.
#[derive(Clone)]
enum Outgoing {
    Shared(Arc<UdpSocket>),
    Unregistered(Arc<std::net::UdpSocket>),
}

impl Outgoing {
    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        match self {
            Outgoing::Shared(socket) => send(socket, bytes, to).await,
            Outgoing::Unregistered(socket) => {
                // Non-blocking: a full send buffer is waited out briefly,
                // then the answer is given up as a lost datagram would be.
                for _ in 0..10 {
                    match socket.send_to(bytes, to) {
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await
                        }
                        Err(error) => {
                            debug!(%error, %to, "sending on UDP");
                            return;
                        }
                        Ok(_) => return,
                    }
                }
                debug!(%to, "sending on UDP: the send buffer stayed full");
            }
        }
    }
}

/// `tasks` readers of `socket` until `shutdown`. A reader that panicked (a
/// bug met by one question) is replaced, so one bad question never takes
/// the server down.
async fn keep_reading<R: Responder>(
    pipeline: Arc<Pipeline<R>>,
    socket: Arc<UdpSocket>,
    misses: Misses,
    tasks: usize,
    shutdown: CancellationToken,
) {
    let mut set = tokio::task::JoinSet::new();
    let spawn = |set: &mut tokio::task::JoinSet<()>| {
        set.spawn(serve_task(
            pipeline.clone(),
            socket.clone(),
            misses.clone(),
            shutdown.clone(),
        ));
    };
    for _ in 0..tasks.max(1) {
        spawn(&mut set);
    }
    while let Some(ended) = set.join_next().await {
        if let Err(error) = ended
            && error.is_panic()
            && !shutdown.is_cancelled()
        {
            tracing::error!(%error, "a UDP reader panicked; starting another");
            spawn(&mut set);
        }
    }
}

/// A resolver's readers, each on a thread of its own with an event loop
/// and a registration of the socket of its own. A cached answer then waits
/// only for the kernel to wake its reader, not for a turn among the cold
/// resolutions the main runtime is busy with (under a flood of names that
/// do not exist, the readers were polled after every one of them, and
/// cached answers waited milliseconds). What cannot be answered at once is
/// still worked on in the main runtime.
async fn serve_on_threads<R: Responder>(
    pipeline: Arc<Pipeline<R>>,
    socket: UdpSocket,
    readers: usize,
    shutdown: CancellationToken,
) {
    let opened = socket.into_std().and_then(|socket| {
        let misses = Misses {
            runtime: Handle::current(),
            socket: Outgoing::Unregistered(Arc::new(socket.try_clone()?)),
        };
        Ok((socket, misses))
    });
    let (socket, misses) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(%error, "UDP: cannot share the socket with its readers");
            return;
        }
    };
    let mut ended = Vec::new();
    for _ in 0..readers.max(1) {
        let (pipeline, misses, shutdown) = (pipeline.clone(), misses.clone(), shutdown.clone());
        let own = socket.try_clone();
        let (done, wait) = tokio::sync::oneshot::channel::<()>();
        let started = std::thread::Builder::new()
            .name("dns-reader".into())
            .spawn(move || {
                let read = || -> std::io::Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async move {
                        let own = Arc::new(UdpSocket::from_std(own?)?);
                        keep_reading(pipeline, own, misses, 1, shutdown).await;
                        Ok(())
                    })
                };
                if let Err(error) = read() {
                    tracing::error!(%error, "UDP reader");
                }
                drop(done);
            });
        match started {
            Ok(_) => ended.push(wait),
            Err(error) => tracing::error!(%error, "starting a UDP reader"),
        }
    }
    for wait in ended {
        let _ = wait.await;
    }
}

async fn serve_task<R: Responder>(
    pipeline: Arc<Pipeline<R>>,
    socket: Arc<UdpSocket>,
    misses: Misses,
    shutdown: CancellationToken,
) {
    let mut replays = Replays::new(pipeline.version());
    let secret = pipeline.cookies.as_ref();
    // Every datagram waiting is read in one call, and the answers made on
    // the way sent in one more (see `batch`).
    let mut inbox = Inbox::new(MAX_DATAGRAM);
    let mut outbox = Outbox::default();
    loop {
        let count = tokio::select! {
            received = inbox.recv(&socket) => match received {
                Ok(count) => count,
                Err(error) => {
                    // ICMP errors for earlier answers surface here; the
                    // socket itself is still good.
                    debug!(%error, "receiving on UDP");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        for i in 0..count {
            let (packet, src) = inbox.get(i);
            let Some(src) = src else { continue };
            if !can_answer(src) || packet.len() < 12 {
                continue;
            }
            let verdict = pipeline.admit(src, Transport::Udp);

            if !pipeline.replays() {
                // What the role holds already is answered here, on the
                // receive path: a cached answer never waits behind a cold
                // resolution.
                let out = outbox.next(src);
                if let Some(log) = pipeline.answer_now(packet, src, Transport::Udp, out) {
                    if let Some(log) = log {
                        querylog::record(log);
                    }
                    continue;
                }
                outbox.discard_last();
                // The rest in a task of its own: a cold resolution (or a
                // delaying fault) must not hold up the questions behind it.
                let (pipeline, socket, packet) =
                    (pipeline.clone(), misses.socket.clone(), packet.to_vec());
                misses.runtime.spawn(async move {
                    if let Some(answer) = pipeline
                        .handle_admitted(&packet, src, Transport::Udp, verdict)
                        .await
                    {
                        socket.send(&answer.bytes, src).await;
                        if let Some(log) = answer.log {
                            querylog::record(log);
                        }
                    }
                });
                continue;
            }

            replays.keep_to(pipeline.version());
            let shape = Shape::of(packet);
            if verdict == Verdict::Send
                && let Some(shape) = &shape
            {
                let out = outbox.next(src);
                if let Some(log) = replays.replay(packet, shape, src, secret, out) {
                    if let Some(log) = log {
                        querylog::record(LogEntry {
                            client: src,
                            ..log.clone()
                        });
                    }
                    continue;
                }
                outbox.discard_last();
            }

            let Some(answer) = pipeline
                .handle_admitted(packet, src, Transport::Udp, verdict)
                .await
            else {
                continue;
            };
            outbox.next(src).extend_from_slice(&answer.bytes);
            if answer.replayable
                && let Some(shape) = &shape
            {
                replays.remember(packet, shape, &answer, secret);
            }
            if let Some(log) = answer.log {
                querylog::record(log);
            }
        }
        outbox.flush(&socket).await;
    }
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to).await {
        debug!(%error, %to, "sending on UDP");
    }
}

/// Never answer port 0, nor an unspecified or broadcast address.
pub(super) fn can_answer(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}
