//! How each request head's lines ended, watched on the bytes hyper reads.
//!
//! HTTP/1.1 ends every line with CRLF, yet RFC 9112 §2.2 lets a recipient
//! take a lone LF for a line end, and hyper (through httparse) does. We
//! refuse such requests: a proxy or cache in front that reads the same bytes
//! differently sees different requests in them, which is how request
//! smuggling works. hyper has no option for this and hands over no raw
//! bytes, so the socket is wrapped in [`HeadWatch`], which sees every byte
//! on its way to hyper and notes, for each head in turn, whether a lone LF
//! was in it. The service takes one note per request, in order
//! ([`Heads::next`]).
//!
//! This is not a parser: it only finds where a head ends (the first empty
//! line, however its line ends are spelled, as hyper finds it too) and looks
//! at line ends on the way. Bodies are not followed, so a request that comes
//! with one is answered and its connection closed (see `request`): nothing
//! after a body is ever read as a head.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How the lines of one request head ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineEnds {
    /// Every one with CRLF, as HTTP/1.1 says.
    Crlf,
    /// At least one with a lone LF.
    BareLf,
}

/// The notes for heads read but not yet answered, oldest first: one per
/// head, shared by a connection's [`HeadWatch`] and its service.
#[derive(Default)]
pub(super) struct Heads(Mutex<VecDeque<LineEnds>>);

impl Heads {
    /// The note for the head of the request about to be answered. hyper
    /// calls the service only for a head it has read through the watch, so
    /// there is always one; if there ever were not, the request is treated
    /// as suspect rather than waved through.
    pub(super) fn next(&self) -> LineEnds {
        let next = self.0.lock().expect("head notes lock").pop_front();
        next.unwrap_or_else(|| {
            tracing::error!(target: "dnstrail::http", "a request head was not seen by the watch");
            LineEnds::BareLf
        })
    }

    fn push(&self, ends: LineEnds) {
        self.0.lock().expect("head notes lock").push_back(ends);
    }
}

/// Where the watch is within the current head.
#[derive(Debug, Default)]
struct Scan {
    /// A byte other than CR or LF has come: the head has begun. (Empty
    /// lines before a request line are skipped, by hyper and here.)
    started: bool,
    /// The last line end came with nothing after it yet.
    at_line_start: bool,
    /// The last byte was a CR.
    after_cr: bool,
    /// A lone LF has been seen in this head.
    bare_lf: bool,
}

impl Scan {
    /// Read `bytes` on from where the last call left off; `done` is told of
    /// each head that ends in them.
    fn feed(&mut self, bytes: &[u8], mut done: impl FnMut(LineEnds)) {
        for &byte in bytes {
            match byte {
                b'\n' => {
                    if !self.after_cr {
                        self.bare_lf = true;
                    }
                    if self.started && self.at_line_start {
                        done(if self.bare_lf {
                            LineEnds::BareLf
                        } else {
                            LineEnds::Crlf
                        });
                        *self = Scan::default();
                        continue;
                    }
                    self.at_line_start = true;
                    self.after_cr = false;
                }
                b'\r' => self.after_cr = true,
                _ => {
                    self.started = true;
                    self.at_line_start = false;
                    self.after_cr = false;
                }
            }
        }
    }
}

/// A socket whose incoming bytes are watched for head ends (see the module
/// docs); writes pass straight through.
pub(super) struct HeadWatch<S> {
    io: S,
    scan: Scan,
    heads: Arc<Heads>,
}

impl<S> HeadWatch<S> {
    pub(super) fn new(io: S, heads: Arc<Heads>) -> Self {
        HeadWatch {
            io,
            scan: Scan::default(),
            heads,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let heads = &this.heads;
            this.scan
                .feed(&buf.filled()[before..], |ends| heads.push(ends));
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadWatch<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notes for `bytes`, fed in pieces of `step` bytes.
    fn notes(bytes: &[u8], step: usize) -> Vec<LineEnds> {
        let mut scan = Scan::default();
        let mut seen = Vec::new();
        for piece in bytes.chunks(step) {
            scan.feed(piece, |ends| seen.push(ends));
        }
        seen
    }

    #[test]
    fn one_note_per_head_however_the_bytes_arrive() {
        use LineEnds::{BareLf, Crlf};
        let cases: &[(&[u8], &[LineEnds])] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &[Crlf]),
            (b"GET / HTTP/1.1\r\n\r\n", &[Crlf]),
            (b"GET / HTTP/1.1\nHost: a\n\n", &[BareLf]),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", &[BareLf]),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", &[BareLf]),
            // Empty lines before the request line are skipped, not a head.
            (b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", &[Crlf]),
            (
                b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\n\nGET /c HTTP/1.1\r\n\r\n",
                &[Crlf, BareLf, Crlf],
            ),
            // Not finished: no note yet.
            (b"GET / HTTP/1.1\r\nHost: a\r\n", &[]),
        ];
        for (bytes, expected) in cases {
            for step in [1, 2, 3, 7, bytes.len().max(1)] {
                assert_eq!(
                    notes(bytes, step),
                    *expected,
                    "{:?} in pieces of {step}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }

    #[test]
    fn a_missing_note_counts_as_suspect() {
        let heads = Heads::default();
        heads.push(LineEnds::Crlf);
        assert_eq!(heads.next(), LineEnds::Crlf);
        assert_eq!(heads.next(), LineEnds::BareLf);
    }
}
