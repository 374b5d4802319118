//! Binding sockets before serving, with errors a person can act on.
//!
//! Every role binds all of its sockets first and only then starts serving, so
//! a caller (a test, `demo`) that gets the sockets back knows the servers are
//! ready: queries sent after that are queued by the kernel, never refused.
//!
//! A stack of name servers shares one DNS port across several loopback
//! addresses, because glue records carry addresses and not ports. Asking for
//! port 0 picks a port that is free on *every* address, which is how parallel
//! tests get stacks that do not clash.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpListener, UdpSocket};

/// A UDP socket and a TCP listener on the same address and port: what a DNS
/// server needs on each address it serves (RFC 7766 makes TCP mandatory).
#[derive(Debug)]
pub struct DnsSockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
}

impl DnsSockets {
    /// The address both sockets are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.udp
            .local_addr()
            .expect("bound UDP socket has an address")
    }
}

/// Why a socket could not be bound, with the address and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "cannot bind {proto} {addr}: address in use (another server, or another dnstrail, \
         is already listening there; stop it or choose another port or address)"
    )]
    InUse {
        proto: &'static str,
        addr: SocketAddr,
    },
    #[error("cannot bind {proto} {addr}: address not available on this machine ({hint})")]
    NotAvailable {
        proto: &'static str,
        addr: SocketAddr,
        hint: String,
    },
    #[error(
        "cannot bind {proto} {addr}: permission denied (ports below 1024 need root or \
         CAP_NET_BIND_SERVICE; use a port such as 5300 instead)"
    )]
    Permission {
        proto: &'static str,
        addr: SocketAddr,
    },
    #[error("cannot bind {proto} {addr}: {source}")]
    Other {
        proto: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("found no port free on all of {0}; try again or give an explicit port")]
    NoCommonPort(String),
}

impl BindError {
    fn new(proto: &'static str, addr: SocketAddr, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::AddrInUse => BindError::InUse { proto, addr },
            io::ErrorKind::AddrNotAvailable => BindError::NotAvailable {
                proto,
                addr,
                hint: add_address_hint(addr.ip()),
            },
            io::ErrorKind::PermissionDenied => BindError::Permission { proto, addr },
            _ => BindError::Other {
                proto,
                addr,
                source,
            },
        }
    }

    fn is_in_use(&self) -> bool {
        matches!(self, BindError::InUse { .. })
    }
}

/// How to make a loopback address usable where the OS configures only
/// 127.0.0.1 (macOS, the BSDs); Linux routes all of 127.0.0.0/8 already.
fn add_address_hint(ip: IpAddr) -> String {
    if ip.is_loopback() {
        if cfg!(target_os = "macos") {
            format!("add it with: sudo ifconfig lo0 alias {ip} up")
        } else if ip.is_ipv4() {
            format!("add it with: sudo ip addr add {ip}/8 dev lo")
        } else {
            format!("add it with: sudo ip -6 addr add {ip}/128 dev lo")
        }
    } else {
        "it is not an address of this machine".to_string()
    }
}

/// Bind a UDP socket, naming the address in the error.
pub async fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, BindError> {
    UdpSocket::bind(addr)
        .await
        .map_err(|e| BindError::new("UDP", addr, e))
}

/// Bind a TCP listener, naming the address in the error.
pub async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| BindError::new("TCP", addr, e))
}

/// Bind UDP and TCP on one address and port.
///
/// With port 0 the kernel picks a free UDP port, but that port may be taken
/// for TCP (by an outgoing connection, say): then another is tried.
pub async fn bind_dns(addr: SocketAddr) -> Result<DnsSockets, BindError> {
    const ATTEMPTS: usize = 32;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let udp = bind_udp(addr).await?;
        let port = udp.local_addr().map_or(addr.port(), |a| a.port());
        match bind_tcp(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok(DnsSockets { udp, tcp }),
            Err(e) if e.is_in_use() && addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt was made"))
}

/// Bind UDP and TCP on every address, all on the same port.
///
/// With `port` 0, a port is chosen that is free on every address: the first
/// address picks one and the others follow; if one of them has it in use, the
/// whole set is dropped and another port tried.
pub async fn bind_dns_on_all(ips: &[IpAddr], port: u16) -> Result<Vec<DnsSockets>, BindError> {
    const ATTEMPTS: usize = 32;
    if port != 0 {
        let mut all = Vec::with_capacity(ips.len());
        for ip in ips {
            all.push(bind_dns(SocketAddr::new(*ip, port)).await?);
        }
        return Ok(all);
    }
    let Some((first, rest)) = ips.split_first() else {
        return Ok(Vec::new());
    };
    'attempt: for _ in 0..ATTEMPTS {
        let lead = match bind_dns(SocketAddr::new(*first, 0)).await {
            Ok(s) => s,
            Err(e) if e.is_in_use() => continue,
            Err(e) => return Err(e),
        };
        let chosen = lead.local_addr().port();
        let mut all = vec![lead];
        for ip in rest {
            match bind_dns(SocketAddr::new(*ip, chosen)).await {
                Ok(s) => all.push(s),
                Err(e) if e.is_in_use() => continue 'attempt,
                Err(e) => return Err(e),
            }
        }
        return Ok(all);
    }
    let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
    Err(BindError::NoCommonPort(list.join(", ")))
}

/// Parse a listening address given as `IP` or `IP:PORT` (`[v6]:PORT`),
/// taking `default_port` when none is given.
pub fn parse_listen(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| format!("`{text}` is not an address (expected IP or IP:PORT)"))
}

/// The signal that asked this process to stop, once one has.
static LAST_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The signal number that stopped us (2 for SIGINT, 15 for SIGTERM), if
/// one did: a shell reports 128 plus it as the exit status.
pub fn last_signal() -> Option<i32> {
    match LAST_SIGNAL.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

/// A shutdown signal for a role run from the command line: cancelled on
/// Ctrl-C (SIGINT) or SIGTERM, so that every role stops the same clean way.
/// The handlers are installed before this returns, so a signal that comes
/// right after is not lost (nor does it kill the process outright).
pub fn shutdown_on_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let trigger = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::spawn(async move {
            let number = tokio::select! {
                _ = interrupt.recv() => 2,
                _ = terminate.recv() => 15,
            };
            LAST_SIGNAL.store(number, std::sync::atomic::Ordering::Relaxed);
            trigger.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        LAST_SIGNAL.store(2, std::sync::atomic::Ordering::Relaxed);
        trigger.cancel();
    });
    token
}
