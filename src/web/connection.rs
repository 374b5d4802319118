//! Accepting connections and keeping them in bounds.
//!
//! Each connection is a task of its own (tasks are tokio's green threads: a
//! thousand idle ones cost a little memory, not a thousand OS threads), and
//! hyper speaks HTTP/1.1 on it, keep-alive included. What a client may take
//! is bounded four ways:
//!
//! - how many: a semaphore of [`Limits::max_connections`] permits; when they
//!   are all taken, a newcomer takes the slot of the connection that has
//!   waited longest for a request (see `shed`), or, if every one is
//!   answering, waits for one to finish while the kernel's backlog holds
//!   those behind it;
//! - header size: hyper answers 431 beyond [`Limits::max_header_bytes`];
//! - header time: hyper drops a connection whose next request head is not
//!   complete within [`Limits::header_read`], which covers both slowloris
//!   clients and idle keep-alive connections;
//! - silence: [`IdleTimeout`] fails the socket once no byte has moved either
//!   way for [`Limits::idle`], e.g. a client that never reads its response.
//!
//! On shutdown the listeners are dropped (new connections are refused), idle
//! connections are closed, and requests in flight get [`Limits::drain`] to
//! finish before their tasks are aborted.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::heads::{HeadWatch, Heads};
use super::shed::{Activity, Live, Sent};
use super::{Limits, Website};

/// Accept and serve connections on every listener until `shutdown` is
/// cancelled, then drain.
pub(super) async fn serve(
    site: Arc<Website>,
    limits: Limits,
    listeners: Vec<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // One stream of connections from every listener. Each listener's
    // accept() lives inside the stream, not in the select! below, so one
    // that is under way survives the loop taking another branch.
    let mut incoming = stream::select_all(listeners.into_iter().map(|listener| {
        Box::pin(stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await;
            Some((accepted, listener))
        }))
    }));
    let http = http(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Told to every connection at shutdown: finish the request in hand, then
    // close instead of waiting for another.
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut live = Live::default();

    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            // Reap finished connections, so the set holds only live ones.
            Some(finished) = connections.join_next_with_id() => {
                match finished {
                    Ok((id, ())) => live.remove(id),
                    Err(error) => {
                        live.remove(error.id());
                        if error.is_panic() {
                            tracing::error!(target: "dnstrail::http", "a connection task panicked: {error}");
                        }
                    }
                }
                continue;
            }
            Some(accepted) = incoming.next() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: pause rather than
                // spin, and let closing connections free some.
                tracing::warn!(target: "dnstrail::http", "accepting a connection: {error}");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Full: close the connection that has waited longest for a
                // request, and take its slot once its task has stopped. If
                // every one is answering, this one waits for the first to
                // finish (and the backlog holds those behind it).
                live.close_longest_waiting();
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = permits.clone().acquire_owned() => {
                        permit.expect("the connection semaphore is never closed")
                    }
                }
            }
        };
        // Responses are written whole; don't let Nagle hold back the tail.
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let connection = serve_one(
            &http,
            site.clone(),
            stream,
            client,
            limits,
            closing.clone(),
            activity.clone(),
        );
        let task = connections.spawn({
            let activity = activity.clone();
            async move {
                let _permit = permit;
                if let Err(error) = connection.await {
                    tracing::debug!(target: "dnstrail::http", "{client}: connection ended: {error}");
                }
                activity.closed();
            }
        });
        live.add(task, activity, client);
    }

    drop(incoming);
    closing.cancel();
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            target: "dnstrail::http",
            "{} connection(s) still busy after {:?}; closing them",
            connections.len(),
            limits.drain
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// hyper's HTTP/1.1 settings, from our limits.
pub(super) fn http(limits: Limits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    http
}

/// One client's connection, request after request, until it closes, fails,
/// or (once `closing` is cancelled) finishes the request in hand.
///
/// The socket is wrapped twice on its way to hyper: [`IdleTimeout`] fails
/// it when nothing moves, and [`HeadWatch`] notes how each request head's
/// lines end, for the service to refuse lone LFs. `activity` follows the
/// connection from request to request, for [`Live::close_longest_waiting`].
pub(super) fn serve_one<S>(
    http: &http1::Builder,
    site: Arc<Website>,
    io: S,
    client: SocketAddr,
    limits: Limits,
    closing: CancellationToken,
    activity: Arc<Activity>,
) -> impl Future<Output = hyper::Result<()>> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let heads = Arc::new(Heads::default());
    let io = TokioIo::new(HeadWatch::new(
        IdleTimeout::new(io, limits.idle),
        heads.clone(),
    ));
    let service = service_fn(move |request| {
        // hyper calls this once a head is read: the request is in hand.
        activity.answering();
        let site = site.clone();
        let activity = activity.clone();
        let line_ends = heads.next();
        async move {
            let response = site.respond(request, client, line_ends).await;
            Ok::<_, Infallible>(response.map(|body| Sent::new(body, activity)))
        }
    });
    let connection = http.serve_connection(io, service);
    async move {
        let mut connection = pin!(connection);
        let mut told = false;
        loop {
            tokio::select! {
                outcome = connection.as_mut() => return outcome,
                () = closing.cancelled(), if !told => {
                    told = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A socket that fails with `TimedOut` once no byte has moved, in either
/// direction, for `limit`.
///
/// Reads and writes share one deadline, pushed back by every byte that
/// moves: a long download to a client that keeps reading never times out,
/// a client that stops reading (or never sends) does.
pub(super) struct IdleTimeout<S> {
    io: S,
    limit: Duration,
    last_progress: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    pub(super) fn new(io: S, limit: Duration) -> Self {
        let now = Instant::now();
        IdleTimeout {
            io,
            limit,
            last_progress: now,
            timer: Box::pin(tokio::time::sleep_until(now + limit)),
        }
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Called when the socket is not ready: arm the timer for the current
    /// deadline (so the task wakes when it passes) and say whether it has.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.last_progress + self.limit;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx).map(|()| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing sent or received for {:?}", self.limit),
            )
        })
    }

    /// The outcome of an I/O call: progress pushes the deadline back, a
    /// pending call checks it.
    fn account<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => self.poll_expired(cx).map(Err),
            ready => {
                self.progressed();
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        this.account(cx, poll)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.account(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.account(cx, poll)
    }

    /// Kept from the socket: hyper then hands headers and body to the
    /// kernel in one `writev`, without copying the body.
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.account(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.account(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_reader_that_hears_nothing_times_out() {
        let started = std::time::Instant::now();
        let (_peer, ours) = tokio::io::duplex(64);
        let mut ours = IdleTimeout::new(ours, LIMIT);
        let error = ours.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= LIMIT);
    }

    #[tokio::test]
    async fn a_writer_whose_peer_stops_reading_times_out() {
        let (_peer, ours) = tokio::io::duplex(64);
        let mut ours = IdleTimeout::new(ours, LIMIT);
        // The first 64 bytes fit in the pipe; the rest never will.
        let error = ours.write_all(&[7; 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn steady_traffic_outlives_the_limit() {
        // A slow but steady peer: a byte every 50 ms for 3 × the limit. The
        // limit is generous so that a busy machine cannot fail the test.
        let limit = Duration::from_millis(400);
        let (mut peer, ours) = tokio::io::duplex(64);
        let mut ours = IdleTimeout::new(ours, limit);
        let sender = tokio::spawn(async move {
            for _ in 0..24 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                peer.write_all(b"x").await.unwrap();
            }
            peer
        });
        let mut received = 0;
        while received < 24 {
            received += ours.read(&mut [0; 8]).await.expect("still alive");
        }
        let _peer = sender.await.unwrap();
    }
}
