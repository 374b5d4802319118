//! Asking: one question, one server, one way of asking (UDP or TCP, with
//! or without EDNS), through dnstrail's own client (`exchange`), as `dig`
//! would. Every message asked and received is appended to a transcript
//! under `target/interop/`.
//!
//! When the size of the answer on the wire is what is checked (truncation,
//! RFC 1035 §4.2.1, RFC 6891 §7), the question goes over a plain UDP socket
//! instead, so the bytes can be counted before they are parsed.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dnstrail::exchange::{Transport, exchange, make_query};
use hickory_proto::op::{Edns, Message};

use crate::questions::Question;

/// How long one question may take.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// What the OPT record of a query says, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Opt {
    /// No OPT record: a pre-EDNS client.
    Off,
    /// EDNS version 0 offering this UDP payload size.
    Payload(u16),
    /// An EDNS version this server cannot know (RFC 6891 §6.1.3: BADVERS).
    Version(u8),
}

/// The EDNS payload dnstrail's own client offers (RFC 9715's 1232).
pub const DEFAULT_OPT: Opt = Opt::Payload(dnstrail::serve::EDNS_PAYLOAD);

/// One way of asking one question.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ask {
    pub question: Question,
    pub transport: Transport,
    pub opt: Opt,
    /// RD: a resolver is asked to recurse, a name server is not.
    pub recursion: bool,
}

impl Ask {
    /// As a resolver asks a name server: RD clear, EDNS.
    pub fn norec(question: &Question, transport: Transport) -> Ask {
        Ask {
            question: question.clone(),
            transport,
            opt: DEFAULT_OPT,
            recursion: false,
        }
    }

    /// As a stub asks a resolver: RD set, UDP, EDNS.
    pub fn stub(question: &Question) -> Ask {
        Ask {
            question: question.clone(),
            transport: Transport::Udp,
            opt: DEFAULT_OPT,
            recursion: true,
        }
    }

    pub fn with_opt(mut self, opt: Opt) -> Ask {
        self.opt = opt;
        self
    }

    /// Whether the size on the wire is part of what is checked.
    pub fn size_matters(&self) -> bool {
        self.transport == Transport::Udp && self.opt != DEFAULT_OPT
    }

    fn query(&self) -> Message {
        let mut query = make_query(
            &self.question.name,
            self.question.rtype,
            self.recursion,
            self.opt != Opt::Off,
        );
        match self.opt {
            Opt::Off => {}
            Opt::Payload(size) => {
                let mut edns = Edns::new();
                edns.set_max_payload(size);
                query.set_edns(edns);
            }
            Opt::Version(version) => {
                let mut edns = Edns::new();
                edns.set_version(version);
                query.set_edns(edns);
            }
        }
        query
    }
}

impl fmt::Display for Ask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.question, self.transport)?;
        match self.opt {
            Opt::Off => write!(f, ", no EDNS")?,
            Opt::Payload(size) if self.opt != DEFAULT_OPT => write!(f, ", EDNS {size}")?,
            Opt::Version(v) => write!(f, ", EDNS version {v}")?,
            Opt::Payload(_) => {}
        }
        write!(f, ")")
    }
}

/// Servers that stopped answering: after [`Silence::GIVE_UP_AFTER`]
/// questions in a row without an answer, a server is not asked again, so
/// a hung server costs seconds, not a timeout for every question left.
#[derive(Default)]
pub struct Silence {
    unanswered: std::collections::HashMap<SocketAddr, usize>,
}

impl Silence {
    const GIVE_UP_AFTER: usize = 3;

    /// Ask, unless `server` has stopped answering.
    pub async fn ask(
        &mut self,
        server: SocketAddr,
        question: &Ask,
        transcript: &Path,
    ) -> Result<Reply, String> {
        let unanswered = self.unanswered.entry(server).or_default();
        if *unanswered >= Self::GIVE_UP_AFTER {
            return Err(format!(
                "not asked: {server} left the last {} questions unanswered",
                Self::GIVE_UP_AFTER
            ));
        }
        let outcome = ask(server, question, transcript).await;
        *unanswered = if outcome.is_ok() { 0 } else { *unanswered + 1 };
        outcome
    }
}

/// A response, and its size on the wire when it was counted.
#[derive(Debug, Clone)]
pub struct Reply {
    pub message: Message,
    pub size: Option<usize>,
}

/// Ask `server`, and write the exchange to `transcript`.
pub async fn ask(server: SocketAddr, ask: &Ask, transcript: &Path) -> Result<Reply, String> {
    let query = ask.query();
    let outcome = if ask.size_matters() {
        raw_udp(server, &query).await
    } else {
        exchange(server, &query, ask.transport, ANSWER_WITHIN)
            .await
            .map(|e| Reply {
                message: e.response,
                size: None,
            })
            .map_err(|e| e.to_string())
    };
    record(transcript, server, ask, &outcome);
    outcome
}

/// The question over a plain UDP socket: the reply's bytes counted, then
/// parsed. A reply cut in the middle of a record does not parse.
async fn raw_udp(server: SocketAddr, query: &Message) -> Result<Reply, String> {
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0")
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket
        .send(&bytes)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| format!("no response from {server} within {ANSWER_WITHIN:?}"))?
            .map_err(|e| format!("{server}: {e}"))?;
        let raw = &buf[..n];
        if raw.len() < 2 || raw[..2] != bytes[..2] {
            continue;
        }
        let message = Message::from_vec(raw).map_err(|e| {
            format!(
                "{server} sent a {n}-byte response that does not parse (a record cut in two?): {e}"
            )
        })?;
        return Ok(Reply {
            message,
            size: Some(n),
        });
    }
}

fn record(transcript: &Path, server: SocketAddr, ask: &Ask, outcome: &Result<Reply, String>) {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(transcript)
    else {
        return;
    };
    let _ = writeln!(file, ";; ---- {server}: {ask}, RD={}", ask.recursion as u8);
    match outcome {
        Ok(reply) => {
            if let Some(size) = reply.size {
                let _ = writeln!(file, ";; {size} bytes");
            }
            let _ = writeln!(file, "{}", reply.message);
        }
        Err(why) => {
            let _ = writeln!(file, ";; no answer: {why}\n");
        }
    }
}
