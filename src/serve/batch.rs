//! Many datagrams per system call (Linux `recvmmsg` and `sendmmsg`), as
//! NSD and Knot DNS read and answer.
//!
//! Under load most of a name server's time goes to the kernel crossing, one
//! `recvfrom` and one `sendto` per question. A reader that wakes up takes
//! every datagram waiting, up to [`BATCH`], in one call, and sends every
//! answer it made in one more. When one question at a time arrives, it
//! costs what it did before: one call to read it, one to answer it.
//!
//! The buffers and headers are allocated once per reader and reused; the
//! kernel's pointers into them are set again before each call, so nothing
//! points into memory that moved.

#[cfg(target_os = "linux")]
pub use mmsg::{BATCH, Inbox, Outbox};
#[cfg(not(target_os = "linux"))]
pub use single::{BATCH, Inbox, Outbox};

/// Answers gathered while a batch is worked through: each one's bytes
/// (buffers kept from batch to batch) and where it goes; the first `count`
/// are to send.
#[derive(Default)]
struct Replies {
    list: Vec<(Vec<u8>, std::net::SocketAddr)>,
    count: usize,
}

impl Replies {
    fn next(&mut self, to: std::net::SocketAddr) -> &mut Vec<u8> {
        if self.count == self.list.len() {
            self.list.push((Vec::with_capacity(512), to));
        }
        let (buf, dest) = &mut self.list[self.count];
        buf.clear();
        *dest = to;
        self.count += 1;
        buf
    }

    fn discard_last(&mut self) {
        self.count = self.count.saturating_sub(1);
    }

    fn pending(&self) -> &[(Vec<u8>, std::net::SocketAddr)] {
        &self.list[..self.count]
    }

    fn clear(&mut self) {
        self.count = 0;
    }
}

/// Linux: `recvmmsg` and `sendmmsg`.
#[cfg(target_os = "linux")]
mod mmsg {
    use std::io;
    use std::mem::{MaybeUninit, size_of};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use tokio::io::Interest;
    use tokio::net::UdpSocket;

    /// Datagrams read or answers sent per call.
    pub const BATCH: usize = 32;

    /// Datagrams read in one call.
    pub struct Inbox {
        bufs: Vec<Box<[u8]>>,
        addrs: Vec<libc::sockaddr_storage>,
        iovecs: Vec<libc::iovec>,
        headers: Vec<libc::mmsghdr>,
        /// How many the last read took.
        count: usize,
    }

    // SAFETY: the raw pointers in `iovecs` and `headers` point only into this
    // value's own heap buffers, and are rewritten before every use.
    unsafe impl Send for Inbox {}

    impl Inbox {
        /// Room for [`BATCH`] datagrams of up to `size` bytes each.
        pub fn new(size: usize) -> Inbox {
            Inbox {
                bufs: (0..BATCH)
                    .map(|_| vec![0u8; size].into_boxed_slice())
                    .collect(),
                addrs: vec![zeroed_storage(); BATCH],
                iovecs: vec![
                    libc::iovec {
                        iov_base: std::ptr::null_mut(),
                        iov_len: 0,
                    };
                    BATCH
                ],
                headers: (0..BATCH).map(|_| zeroed_header()).collect(),
                count: 0,
            }
        }

        /// Read every datagram waiting on `socket`, up to [`BATCH`], waiting
        /// for the first. Errors the kernel reports for earlier sends (ICMP
        /// unreachable) come back as `Err`; the socket is still good.
        pub async fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
            loop {
                socket.readable().await?;
                match socket.try_io(Interest::READABLE, || self.recv_now(socket)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    other => return other,
                }
            }
        }

        fn recv_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
            for i in 0..BATCH {
                self.iovecs[i] = libc::iovec {
                    iov_base: self.bufs[i].as_mut_ptr().cast(),
                    iov_len: self.bufs[i].len(),
                };
                let header = &mut self.headers[i];
                *header = zeroed_header();
                header.msg_hdr.msg_name =
                    (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                header.msg_hdr.msg_iov = &mut self.iovecs[i];
                header.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every header points at a buffer, an iovec and an address
            // of this inbox, all alive and sized as the headers say.
            let got = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    self.headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if got < 0 {
                self.count = 0;
                return Err(io::Error::last_os_error());
            }
            self.count = got as usize;
            Ok(self.count)
        }

        /// Datagram `i` of the last read and who sent it (`None` for an address
        /// family that is not IP).
        pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
            let len = (self.headers[i].msg_len as usize).min(self.bufs[i].len());
            (&self.bufs[i][..len], from_storage(&self.addrs[i]))
        }
    }

    /// Answers gathered while a batch is worked through, sent in one call.
    pub struct Outbox {
        replies: super::Replies,
        addrs: Vec<libc::sockaddr_storage>,
        iovecs: Vec<libc::iovec>,
        headers: Vec<libc::mmsghdr>,
    }

    // SAFETY: as for `Inbox`: the pointers are into this value's own buffers.
    unsafe impl Send for Outbox {}

    impl Default for Outbox {
        fn default() -> Outbox {
            Outbox {
                replies: super::Replies::default(),
                addrs: vec![zeroed_storage(); BATCH],
                iovecs: vec![
                    libc::iovec {
                        iov_base: std::ptr::null_mut(),
                        iov_len: 0,
                    };
                    BATCH
                ],
                headers: (0..BATCH).map(|_| zeroed_header()).collect(),
            }
        }
    }

    impl Outbox {
        /// An empty buffer for the next answer, to `to`; fill it, it is sent by
        /// [`Outbox::flush`].
        pub fn next(&mut self, to: SocketAddr) -> &mut Vec<u8> {
            self.replies.next(to)
        }

        /// Take back the last buffer handed out: no answer goes there.
        pub fn discard_last(&mut self) {
            self.replies.discard_last();
        }

        /// Send every answer gathered, as few calls as the kernel takes them
        /// in; an answer the kernel refuses (a full buffer, an unreachable
        /// address) is dropped, as a lost datagram would be.
        pub async fn flush(&mut self, socket: &UdpSocket) {
            let mut sent = 0;
            while sent < self.replies.pending().len() {
                let result = match socket.try_io(Interest::WRITABLE, || self.send_now(socket, sent))
                {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if socket.writable().await.is_err() {
                            break;
                        }
                        continue;
                    }
                    other => other,
                };
                match result {
                    Ok(n) if n > 0 => sent += n,
                    // The first answer left cannot go: skip it, keep the rest.
                    Ok(_) | Err(_) => {
                        tracing::debug!(to = %self.replies.pending()[sent].1, "sending on UDP failed");
                        sent += 1;
                    }
                }
            }
            self.replies.clear();
        }

        fn send_now(&mut self, socket: &UdpSocket, from: usize) -> io::Result<usize> {
            let pending = self.replies.pending();
            let n = pending.len() - from;
            for i in 0..n {
                let (buf, to) = &pending[from + i];
                let len = to_storage(to, &mut self.addrs[i]);
                self.iovecs[i] = libc::iovec {
                    iov_base: buf.as_ptr() as *mut libc::c_void,
                    iov_len: buf.len(),
                };
                let header = &mut self.headers[i];
                *header = zeroed_header();
                header.msg_hdr.msg_name =
                    (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                header.msg_hdr.msg_namelen = len;
                header.msg_hdr.msg_iov = &mut self.iovecs[i];
                header.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first `n` headers point at live answers, iovecs and
            // addresses of this outbox; the kernel only reads them.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(sent as usize)
        }
    }

    pub(super) fn zeroed_storage() -> libc::sockaddr_storage {
        // SAFETY: all-zero bytes are a valid sockaddr_storage (family AF_UNSPEC).
        unsafe { MaybeUninit::zeroed().assume_init() }
    }

    fn zeroed_header() -> libc::mmsghdr {
        // SAFETY: all-zero bytes are a valid mmsghdr: null pointers, zero lengths.
        unsafe { MaybeUninit::zeroed().assume_init() }
    }

    /// The socket address the kernel wrote, if it is IPv4 or IPv6.
    pub(super) fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in, which
                // fits in it and has no stricter alignment.
                let v4 = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                    u16::from_be(v4.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let v6 = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(v6.sin6_addr.s6_addr),
                    u16::from_be(v6.sin6_port),
                    u32::from_be(v6.sin6_flowinfo),
                    v6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// Write `addr` into `storage` as the kernel wants it; its length.
    pub(super) fn to_storage(
        addr: &SocketAddr,
        storage: &mut libc::sockaddr_storage,
    ) -> libc::socklen_t {
        *storage = zeroed_storage();
        match addr {
            SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_in fits in sockaddr_storage, alignment included.
                let out = unsafe {
                    &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                out.sin_family = libc::AF_INET as libc::sa_family_t;
                out.sin_port = v4.port().to_be();
                out.sin_addr = libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(v6) => {
                // SAFETY: as above, for sockaddr_in6.
                let out = unsafe {
                    &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                out.sin6_port = v6.port().to_be();
                out.sin6_flowinfo = v6.flowinfo().to_be();
                out.sin6_addr = libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                };
                out.sin6_scope_id = v6.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

/// Elsewhere, one datagram per call, behind the same interface.
#[cfg(not(target_os = "linux"))]
mod single {
    use std::io;
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    /// Datagrams read or answers sent per call.
    pub const BATCH: usize = 1;

    pub struct Inbox {
        buf: Box<[u8]>,
        len: usize,
        from: Option<SocketAddr>,
    }

    impl Inbox {
        pub fn new(size: usize) -> Inbox {
            Inbox {
                buf: vec![0u8; size].into_boxed_slice(),
                len: 0,
                from: None,
            }
        }

        pub async fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
            let (len, from) = socket.recv_from(&mut self.buf).await?;
            (self.len, self.from) = (len, Some(from));
            Ok(1)
        }

        pub fn get(&self, _: usize) -> (&[u8], Option<SocketAddr>) {
            (&self.buf[..self.len], self.from)
        }
    }

    #[derive(Default)]
    pub struct Outbox {
        replies: super::Replies,
    }

    impl Outbox {
        pub fn next(&mut self, to: SocketAddr) -> &mut Vec<u8> {
            self.replies.next(to)
        }

        pub fn discard_last(&mut self) {
            self.replies.discard_last();
        }

        pub async fn flush(&mut self, socket: &UdpSocket) {
            for (buf, to) in self.replies.pending() {
                if let Err(error) = socket.send_to(buf, to).await {
                    tracing::debug!(%error, %to, "sending on UDP");
                }
            }
            self.replies.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn addresses_go_to_the_kernel_and_back_unchanged() {
        use super::mmsg::{from_storage, to_storage, zeroed_storage};
        for addr in ["192.0.2.7:53", "[2001:db8::1]:5300", "127.0.0.1:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut storage = zeroed_storage();
            to_storage(&addr, &mut storage);
            assert_eq!(from_storage(&storage), Some(addr));
        }
    }

    #[tokio::test]
    async fn a_batch_is_read_and_answered_in_order() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..40u8 {
            client
                .send_to(&[i; 20], server.local_addr().unwrap())
                .await
                .unwrap();
        }
        let mut inbox = Inbox::new(512);
        let mut outbox = Outbox::default();
        let mut seen = Vec::new();
        while seen.len() < 40 {
            let n = inbox.recv(&server).await.unwrap();
            assert!(n <= BATCH);
            for i in 0..n {
                let (bytes, from) = inbox.get(i);
                assert_eq!(from, Some(client.local_addr().unwrap()));
                seen.push(bytes[0]);
                outbox.next(from.unwrap()).extend_from_slice(bytes);
            }
            outbox.flush(&server).await;
        }
        assert_eq!(seen, (0..40).collect::<Vec<u8>>());
        let mut buf = [0u8; 64];
        for i in 0..40u8 {
            let (len, _) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..len], &[i; 20]);
        }
    }
}
