//! One DNS question and its response, over UDP or TCP.
//!
//! The resolver asks every upstream question through [`exchange_checked`],
//! and tests use [`exchange`] as their `dig`. It carries the resolver's
//! defences against forged responses (RFC 5452):
//!
//! - a fresh UDP socket per question, so a random source port (the kernel's
//!   ephemeral port choice) as well as a random 16-bit ID;
//! - the socket is `connect`ed, so the kernel drops datagrams from any other
//!   address or port;
//! - a datagram whose ID or question differs is ignored (and counted), and
//!   the real answer is still awaited until the deadline;
//! - with [`Checks`], two more things a blind forger must guess: the case
//!   of each letter of the question's name (0x20), and the client cookie
//!   the resolver shares with the server (RFC 7873). A response that gets
//!   either wrong is ignored like one with the wrong ID.
//!
//! ```text
//!  sent:      wWw.ExAMpLe.cOM. A   + COOKIE client cookie [+ server cookie]
//!  response:  same ID, same question ─► same case? ─► our client cookie? ─► taken
//!                     │no                  │no              │no
//!                     └────────────────────┴────────────────┴──► ignored (counted), keep waiting
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

pub use crate::dns::Transport;
use crate::dns::{read_tcp_message, tcp_frame};
use crate::serve::EDNS_PAYLOAD;
use crate::serve::cookies;

/// A response that matched its question.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub response: Message,
    pub rtt: Duration,
    pub transport: Transport,
    /// Responses that arrived before it but were not taken: forgeries or
    /// stale answers.
    pub ignored: Ignored,
}

/// Responses that came for a question but were not taken as its answer,
/// by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ignored {
    /// Another ID or question, or not a response at all: a forgery, or a
    /// late answer to an earlier question.
    pub mismatched: u32,
    /// The question's name in another case than it was sent (0x20).
    pub wrong_case: u32,
    /// A COOKIE option of the wrong length, or with a client cookie that
    /// is not the one sent (RFC 7873 §5.3).
    pub wrong_cookie: u32,
    /// No COOKIE option over UDP, from a server that has sent a server
    /// cookie before (as BIND and c-ares drop it).
    pub missing_cookie: u32,
}

impl Ignored {
    pub fn total(&self) -> u32 {
        self.mismatched + self.wrong_case + self.wrong_cookie + self.missing_cookie
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

/// What a response must show, beyond its ID and question, to be taken as
/// the server's: the defences a resolver adds to the ID and the port.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// 0x20: the query's name was sent in random case, and this is the
    /// name as it was asked. The response must echo the case exactly; the
    /// name as asked is then put back in its bytes, so that every name the
    /// server compressed against the question reads as asked too (Unbound
    /// lowercases the name in the packet for the same reason).
    pub asked_as: Option<Name>,
    /// The client cookie sent (RFC 7873): a COOKIE option in the response
    /// must carry it, with a server cookie.
    pub client_cookie: Option<[u8; 8]>,
    /// The server has sent a server cookie before: over UDP, a response
    /// without any COOKIE option is not its own.
    pub expect_cookie: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("no response from {server} within {timeout:?}")]
    Timeout {
        server: SocketAddr,
        timeout: Duration,
        /// What did arrive, and was not taken.
        ignored: Ignored,
    },
    #[error("{server}: {source}")]
    Io {
        server: SocketAddr,
        source: std::io::Error,
    },
    #[error("{server} sent a response that does not parse: {reason}")]
    Malformed { server: SocketAddr, reason: String },
}

/// Build a query message for `name`/`rtype` with a random ID.
pub fn make_query(name: &Name, rtype: RecordType, recursion_desired: bool, edns: bool) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = recursion_desired;
    message.add_query(Query::query(name.clone(), rtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD);
        message.set_edns(opt);
    }
    message
}

/// Send `query` to `server` and wait up to `timeout` for the matching response.
pub async fn exchange(
    server: SocketAddr,
    query: &Message,
    transport: Transport,
    timeout: Duration,
) -> Result<Exchange, ExchangeError> {
    exchange_from(None, server, query, transport, timeout).await
}

/// [`exchange`], sent from the address `source` (any port) when given: how
/// one name server speaks to another as itself, so the other can tell its
/// primary or secondary by address (BIND's `notify-source`).
pub async fn exchange_from(
    source: Option<IpAddr>,
    server: SocketAddr,
    query: &Message,
    transport: Transport,
    timeout: Duration,
) -> Result<Exchange, ExchangeError> {
    exchange_checked(
        source,
        server,
        query,
        transport,
        timeout,
        &Checks::default(),
    )
    .await
}

/// [`exchange_from`], taking only a response that passes `checks` as well.
pub async fn exchange_checked(
    source: Option<IpAddr>,
    server: SocketAddr,
    query: &Message,
    transport: Transport,
    timeout: Duration,
    checks: &Checks,
) -> Result<Exchange, ExchangeError> {
    let io = |source| ExchangeError::Io { server, source };
    let malformed = |reason: String| ExchangeError::Malformed { server, reason };
    let bytes = query
        .to_vec()
        .map_err(|e| malformed(format!("cannot encode query: {e}")))?;
    let expected = Expected::new(query, checks, transport)
        .map_err(|e| malformed(format!("cannot encode the question's name: {e}")))?;
    let mut ignored = Ignored::default();
    let started = Instant::now();
    let attempt = async {
        match transport {
            Transport::Udp => udp(source, server, &expected, &bytes, &mut ignored).await,
            Transport::Tcp => tcp(source, server, &expected, &bytes, &mut ignored).await,
        }
    };
    let mut raw = match tokio::time::timeout(timeout, attempt).await {
        Ok(received) => received.map_err(io)?,
        Err(_) => {
            return Err(ExchangeError::Timeout {
                server,
                timeout,
                ignored,
            });
        }
    };
    let rtt = started.elapsed();
    expected.restore_case(&mut raw);
    let mut response = Message::from_vec(&raw).map_err(|e| malformed(e.to_string()))?;
    expected.restore_owners(&mut response);
    Ok(Exchange {
        response,
        rtt,
        transport,
        ignored,
    })
}

/// What a response to one query must be, worked out once before it is sent.
struct Expected<'a> {
    query: &'a Message,
    checks: &'a Checks,
    transport: Transport,
    /// With 0x20: the question's name as sent and as asked, in wire form
    /// (the same length: only the case of letters differs).
    names: Option<(Vec<u8>, Vec<u8>)>,
}

/// The question's name starts right after the 12-byte header.
const QUESTION_AT: usize = 12;

impl<'a> Expected<'a> {
    fn new(
        query: &'a Message,
        checks: &'a Checks,
        transport: Transport,
    ) -> Result<Expected<'a>, hickory_proto::ProtoError> {
        let names = match (&checks.asked_as, query.queries.first()) {
            (Some(asked), Some(question)) => Some((question.name().to_bytes()?, asked.to_bytes()?)),
            _ => None,
        };
        Ok(Expected {
            query,
            checks,
            transport,
            names,
        })
    }

    /// Whether raw bytes are the response to the query: same ID, QR set,
    /// the same question (RFC 5452 §3), and whatever else `checks` asks;
    /// else why not. Decoding only what is needed keeps a flood of
    /// forgeries cheap to reject.
    fn judge(&self, raw: &[u8]) -> Result<(), Reason> {
        let Ok(response) = Message::from_vec(raw) else {
            // Undecodable but with the right ID: let the caller report it.
            let id =
                raw.len() >= 2 && u16::from_be_bytes([raw[0], raw[1]]) == self.query.metadata.id;
            return if id { Ok(()) } else { Err(Reason::Mismatched) };
        };
        if response.metadata.id != self.query.metadata.id
            || response.metadata.message_type != MessageType::Response
            || !same_question(&response.queries, &self.query.queries)
        {
            return Err(Reason::Mismatched);
        }
        if let Some((sent, _)) = &self.names
            && raw.get(QUESTION_AT..QUESTION_AT + sent.len()) != Some(&sent[..])
        {
            return Err(Reason::WrongCase);
        }
        let Some(client) = &self.checks.client_cookie else {
            return Ok(());
        };
        match cookies::option_data(&response) {
            // RFC 7873 §5.3: a response's COOKIE carries our client cookie
            // and a server cookie, or it is not an answer to us.
            Some(data) if !(16..=40).contains(&data.len()) || data[..8] != client[..] => {
                Err(Reason::WrongCookie)
            }
            Some(_) => Ok(()),
            // BADCOOKIE without a cookie to retry with is no server's.
            None if response.metadata.response_code == ResponseCode::BADCOOKIE => {
                Err(Reason::MissingCookie)
            }
            None if self.checks.expect_cookie && self.transport == Transport::Udp => {
                Err(Reason::MissingCookie)
            }
            None => Ok(()),
        }
    }

    /// With 0x20, put the name as asked back where the server echoed it.
    fn restore_case(&self, raw: &mut [u8]) {
        if let Some((sent, asked)) = &self.names
            && let Some(echoed) = raw.get_mut(QUESTION_AT..QUESTION_AT + sent.len())
            && echoed == &sent[..]
        {
            echoed.copy_from_slice(asked);
        }
    }

    /// With 0x20, a server that writes the question's name out again as an
    /// owner, instead of pointing to the question, has it in the case sent
    /// too: those owners are put back as asked.
    fn restore_owners(&self, response: &mut Message) {
        let (Some(asked), Some(question)) = (&self.checks.asked_as, self.query.queries.first())
        else {
            return;
        };
        let sections = [
            &mut response.answers,
            &mut response.authorities,
            &mut response.additionals,
        ];
        for record in sections.into_iter().flatten() {
            if record.name.eq_case(question.name()) {
                record.name = asked.clone();
            }
        }
    }
}

/// Why a response was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Mismatched,
    WrongCase,
    WrongCookie,
    MissingCookie,
}

impl Ignored {
    fn count(&mut self, reason: Reason) {
        let counter = match reason {
            Reason::Mismatched => &mut self.mismatched,
            Reason::WrongCase => &mut self.wrong_case,
            Reason::WrongCookie => &mut self.wrong_cookie,
            Reason::MissingCookie => &mut self.missing_cookie,
        };
        *counter += 1;
    }
}

fn same_question(a: &[Query], b: &[Query]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.query_type() == y.query_type()
                && x.query_class() == y.query_class()
                && x.name().eq_ignore_root(y.name())
        })
}

/// The local address to send from: `source` or any, port chosen by the kernel.
fn local_for(source: Option<IpAddr>, server: SocketAddr) -> SocketAddr {
    let any: IpAddr = if server.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(source.unwrap_or(any), 0)
}

async fn udp(
    source: Option<IpAddr>,
    server: SocketAddr,
    expected: &Expected<'_>,
    bytes: &[u8],
    ignored: &mut Ignored,
) -> std::io::Result<Vec<u8>> {
    let socket = UdpSocket::bind(local_for(source, server)).await?;
    socket.connect(server).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        match expected.judge(&buf[..n]) {
            Ok(()) => return Ok(buf[..n].to_vec()),
            Err(reason) => ignored.count(reason),
        }
    }
}

async fn tcp(
    source: Option<IpAddr>,
    server: SocketAddr,
    expected: &Expected<'_>,
    bytes: &[u8],
    ignored: &mut Ignored,
) -> std::io::Result<Vec<u8>> {
    let mut stream: TcpStream = match source {
        None => TcpStream::connect(server).await?,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(local_for(Some(ip), server))?;
            socket.connect(server).await?
        }
    };
    stream.set_nodelay(true)?;
    stream.write_all(&tcp_frame(bytes)).await?;
    loop {
        let buf = read_tcp_message(&mut stream).await?;
        match expected.judge(&buf) {
            Ok(()) => return Ok(buf),
            Err(reason) => ignored.count(reason),
        }
    }
}
