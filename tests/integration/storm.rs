//! A packet storm at every DNS listener, over UDP and TCP: random, mutated
//! and hand-made malformed packets. Afterwards each listener must still
//! answer a correct question correctly.

use std::net::SocketAddr;

use dnstrail::dns::addresses;
use dnstrail::exchange::Transport;
use hickory_proto::rr::RecordType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::fuzz_corpus::corpus;
use crate::support::*;

const UDP_PER_LISTENER: usize = 1500;
const TCP_CONNECTIONS_PER_LISTENER: usize = 20;

/// Packets no parser should trust.
fn crafted() -> Vec<Vec<u8>> {
    let header = |flags: u16, qd: u16, an: u16| {
        let mut h = vec![0x42, 0x42];
        h.extend_from_slice(&flags.to_be_bytes());
        h.extend_from_slice(&qd.to_be_bytes());
        h.extend_from_slice(&an.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    };
    let question = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01";
    let mut out = vec![
        vec![],
        vec![0x42],
        header(0x0100, 1, 0)[..7].to_vec(), // truncated header
        header(0x0100, 65535, 65535),       // huge counts, nothing behind them
    ];
    // A compression pointer to itself, and two pointing at each other.
    let mut looped = header(0x0100, 1, 0);
    looped.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    out.push(looped);
    let mut pingpong = header(0x0100, 1, 0);
    pingpong.extend_from_slice(&[0x01, b'a', 0xc0, 0x10, 0xc0, 0x0c, 0, 1, 0, 1]);
    out.push(pingpong);
    // Every opcode, and responses (QR=1) sent as if they were queries.
    for opcode in 0..16u16 {
        let mut p = header(0x0100 | (opcode << 11), 1, 0);
        p.extend_from_slice(question);
        out.push(p);
        let mut r = header(0x8100 | (opcode << 11), 1, 0);
        r.extend_from_slice(question);
        out.push(r);
    }
    // A label longer than 63, a name longer than 255.
    let mut long_label = header(0x0100, 1, 0);
    long_label.push(64);
    long_label.extend_from_slice(&[b'a'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    out.push(long_label);
    let mut long_name = header(0x0100, 1, 0);
    for _ in 0..60 {
        long_name.extend_from_slice(b"\x05abcde");
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    out.push(long_name);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_storm_leaves_every_listener_answering() {
    let chain = start_chain().await;
    let port = chain.stack.dns_port;
    let mut listeners: Vec<SocketAddr> = chain
        .stack
        .topology
        .server_addrs()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    listeners.push(chain.addr);

    let mut seeds: Vec<Vec<u8>> = corpus("nameserver_request")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    seeds.extend(
        corpus("upstream_response")
            .into_iter()
            .take(50)
            .map(|(_, b)| b),
    );
    let crafted = crafted();
    let mut rng = StdRng::seed_from_u64(7);
    let (mut udp_sent, mut tcp_sent) = (0usize, 0usize);

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for listener in &listeners {
        for i in 0..UDP_PER_LISTENER {
            let packet = match i % 3 {
                0 => crafted[i / 3 % crafted.len()].clone(),
                1 => {
                    let base = &seeds[rng.random_range(0..seeds.len())];
                    let other = &seeds[rng.random_range(0..seeds.len())];
                    mutate(&mut rng, base, other)
                }
                _ => (0..rng.random_range(0..600))
                    .map(|_| rng.random())
                    .collect(),
            };
            if socket.send_to(&packet, listener).await.is_ok() {
                udp_sent += 1;
            }
            if i % 200 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for i in 0..TCP_CONNECTIONS_PER_LISTENER {
            let Ok(mut stream) = TcpStream::connect(listener).await else {
                continue;
            };
            let packet = &crafted[i % crafted.len()];
            // A length prefix that lies (too long, too short, zero), then bytes.
            let claimed: u16 = match i % 3 {
                0 => packet.len() as u16,
                1 => 0xffff,
                _ => 0,
            };
            let _ = stream.write_all(&claimed.to_be_bytes()).await;
            let _ = stream.write_all(packet).await;
            drop(stream);
            tcp_sent += 1;
        }
    }
    eprintln!(
        "storm: {udp_sent} UDP packets and {tcp_sent} TCP connections at {} listeners",
        listeners.len()
    );
    assert_eq!(udp_sent, UDP_PER_LISTENER * listeners.len());

    // Every name server still answers, over UDP and TCP.
    for listener in &listeners[..listeners.len() - 1] {
        for transport in [Transport::Udp, Transport::Tcp] {
            let response = ask_with(
                *listener,
                "www.example.com.",
                RecordType::A,
                transport,
                true,
            )
            .await;
            assert_eq!(
                response.metadata.response_code,
                hickory_proto::op::ResponseCode::NoError,
                "{listener}"
            );
        }
    }
    // And the resolver still resolves.
    let (response, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(
        addresses(&response.answers),
        ["127.0.0.44".parse::<std::net::IpAddr>().unwrap()]
    );
    let (response, _) = chain
        .ask_over("blog.example.com.", RecordType::A, Transport::Tcp)
        .await;
    assert_eq!(response.answers.len(), 2);
    chain.stop().await;
}
