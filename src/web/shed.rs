//! Making room: at the connection limit, the connection that has waited
//! longest for a request is closed, so that a newcomer can be served.
//!
//! A slowloris client opens many connections and sends its headers a byte
//! at a time, to hold every connection the server will serve. Leaving
//! newcomers in the kernel's backlog until a slot frees (which takes up to
//! [`super::Limits::header_read`]) let 1,100 such connections make 4 of 40
//! ordinary requests time out. Instead, every connection has an
//! [`Activity`]:
//!
//! ```text
//!   accepted ──► waiting ──head read──► answering ──response sent──► waiting …
//!                   │
//!                   └── at the limit, longest waiting first ──► closed
//! ```
//!
//! A connection waiting for its next request head (trickling one, or idle
//! between keep-alive requests) costs its client nothing to reopen, so it
//! is the one to close; one that is answering is never closed to make room.
//! If every connection is answering, the newcomer waits for one to finish.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};
use tokio::task::{AbortHandle, Id};
use tokio::time::Instant;

/// What one connection is doing, as far as making room is concerned.
pub(super) struct Activity(Mutex<State>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a request head since this moment.
    Waiting(Instant),
    /// A request is being answered: its response is not yet all sent.
    Answering,
    /// Closed, or chosen to be: never a candidate again.
    Closed,
}

impl Activity {
    /// A connection just accepted: waiting for its first request.
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity(Mutex::new(State::Waiting(Instant::now()))))
    }

    /// A request head has been read.
    pub(super) fn answering(&self) {
        self.set(State::Answering);
    }

    /// The response has been sent (or abandoned): waiting for the next.
    fn waiting(&self) {
        self.set(State::Waiting(Instant::now()));
    }

    /// The connection is over.
    pub(super) fn closed(&self) {
        self.set(State::Closed);
    }

    fn set(&self, next: State) {
        let mut state = self.0.lock().expect("activity lock");
        if *state != State::Closed {
            *state = next;
        }
    }

    fn waiting_since(&self) -> Option<Instant> {
        match *self.0.lock().expect("activity lock") {
            State::Waiting(since) => Some(since),
            State::Answering | State::Closed => None,
        }
    }

    /// Mark the connection closed if it is still waiting since `since`;
    /// false if it has moved on (a head came in just now) meanwhile.
    fn close_if_waiting_since(&self, since: Instant) -> bool {
        let mut state = self.0.lock().expect("activity lock");
        if *state == State::Waiting(since) {
            *state = State::Closed;
            true
        } else {
            false
        }
    }
}

/// The connections being served, by task, for the accept loop.
#[derive(Default)]
pub(super) struct Live(HashMap<Id, Connection>);

struct Connection {
    activity: Arc<Activity>,
    task: AbortHandle,
    client: SocketAddr,
}

impl Live {
    pub(super) fn add(&mut self, task: AbortHandle, activity: Arc<Activity>, client: SocketAddr) {
        self.0.insert(
            task.id(),
            Connection {
                activity,
                task,
                client,
            },
        );
    }

    /// The task `id` has ended.
    pub(super) fn remove(&mut self, id: Id) {
        self.0.remove(&id);
    }

    /// Close the connection that has waited longest for a request head, and
    /// say whether there was one (if every connection is answering, none is
    /// closed). Its slot frees once its task has stopped.
    pub(super) fn close_longest_waiting(&self) -> bool {
        // Each miss means a connection started answering between the look
        // and the close; there are only so many connections to try.
        for _ in 0..self.0.len() {
            let Some((since, longest)) = self
                .0
                .values()
                .filter_map(|c| Some((c.activity.waiting_since()?, c)))
                .min_by_key(|(since, _)| *since)
            else {
                return false;
            };
            if longest.activity.close_if_waiting_since(since) {
                tracing::debug!(
                    target: "dnstrail::http",
                    "{}: closed to make room, after waiting {:?} for a request",
                    longest.client,
                    since.elapsed()
                );
                longest.task.abort();
                return true;
            }
        }
        false
    }
}

/// A response body that marks its connection waiting again once it is
/// dropped: hyper drops it when the last byte has gone to the socket, or
/// when the response is abandoned.
pub(super) struct Sent<B> {
    body: B,
    activity: Arc<Activity>,
}

impl<B> Sent<B> {
    pub(super) fn new(body: B, activity: Arc<Activity>) -> Sent<B> {
        Sent { body, activity }
    }
}

impl<B> Drop for Sent<B> {
    fn drop(&mut self) {
        self.activity.waiting();
    }
}

impl<B: Body + Unpin> Body for Sent<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn live(activities: &[Arc<Activity>]) -> (Live, tokio::task::JoinSet<()>) {
        let mut tasks = tokio::task::JoinSet::new();
        let mut live = Live::default();
        for activity in activities {
            let task = tasks.spawn(std::future::pending());
            live.add(task, activity.clone(), "127.0.0.1:1".parse().unwrap());
        }
        (live, tasks)
    }

    fn waiting_since(since: Instant) -> Arc<Activity> {
        Arc::new(Activity(Mutex::new(State::Waiting(since))))
    }

    #[tokio::test]
    async fn the_longest_waiting_is_closed_and_answering_ones_never() {
        let start = Instant::now();
        let oldest = waiting_since(start);
        let answering = waiting_since(start);
        answering.answering();
        let newer = waiting_since(start + Duration::from_secs(1));
        let (live, mut tasks) = live(&[newer.clone(), oldest.clone(), answering.clone()]);

        assert!(live.close_longest_waiting());
        assert_eq!(*oldest.0.lock().unwrap(), State::Closed);
        let cancelled = tasks.join_next().await.unwrap().unwrap_err();
        assert!(cancelled.is_cancelled(), "its task is stopped");

        assert!(live.close_longest_waiting());
        assert_eq!(*newer.0.lock().unwrap(), State::Closed);
        assert!(
            !live.close_longest_waiting(),
            "only an answering one is left"
        );
        assert_eq!(*answering.0.lock().unwrap(), State::Answering);
    }

    #[test]
    fn a_sent_response_makes_its_connection_wait_again() {
        let activity = Activity::new();
        activity.answering();
        assert_eq!(activity.waiting_since(), None);
        let before = Instant::now();
        drop(Sent::new((), activity.clone()));
        assert!(
            activity
                .waiting_since()
                .is_some_and(|since| since >= before)
        );
        activity.closed();
        activity.waiting();
        assert_eq!(activity.waiting_since(), None, "closed stays closed");
    }
}
