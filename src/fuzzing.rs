//! Entry points for the fuzzer (`make fuzz`, `fuzz/`) and for the tests that
//! replay its corpus: each takes arbitrary bytes, runs one of the paths that
//! meet untrusted input, and panics if an invariant breaks.
//!
//! - [`nameserver_request`]: a packet at an authoritative server.
//! - [`resolver_request`]: a packet at the resolver's client side.
//! - [`upstream_response`]: a name server's response reaching the resolver.
//! - [`zone_file`]: a zone file being loaded.
//! - [`web_request`]: bytes on a connection to the web server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

use crate::clock::Clock;
use crate::dns::Transport;
use crate::nameserver::NameServer;
use crate::resolver::cache::Delegation;
use crate::resolver::{Config, Resolver};
use crate::serve::{Pipeline, Responder, ServeOptions};
use crate::topology::Topology;
use crate::zone::Zone;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Run a packet through the DNS front end and a role, as the UDP transport
/// does; any response must parse and echo the request's ID.
fn handle<R: Responder>(pipeline: &Pipeline<R>, data: &[u8]) {
    let client: SocketAddr = "127.0.0.1:5353".parse().expect("literal");
    let Some(answer) = runtime().block_on(pipeline.handle(data, client, Transport::Udp)) else {
        return;
    };
    let response = Message::from_vec(&answer.bytes).expect("our responses parse");
    assert_eq!(response.metadata.id, u16::from_be_bytes([data[0], data[1]]));
}

/// A packet at the example.com name servers.
pub fn nameserver_request(data: &[u8]) {
    static SERVER: OnceLock<Pipeline<NameServer>> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        let topology = Topology::builtin();
        Pipeline::new(NameServer::new(topology.zones), ServeOptions::default())
    });
    handle(server, data);
}

/// A packet at the resolver. Its root hints point at a closed port, so
/// resolutions fail at once instead of waiting on timeouts.
pub fn resolver_request(data: &[u8]) {
    static RESOLVER: OnceLock<Pipeline<Resolver>> = OnceLock::new();
    let resolver = RESOLVER.get_or_init(|| {
        let hints = Delegation {
            zone: Name::root(),
            ns: Vec::new(),
            glue: Vec::new(),
            learned_from: Vec::new(),
        };
        let config = Config {
            upstream_port: 1,
            ..Config::default()
        };
        Pipeline::new(
            Resolver::new(config, hints, Clock::new()),
            ServeOptions::default(),
        )
    });
    handle(resolver, data);
}

/// A response from a server of `com.` to `www.example.com. A`: whatever it
/// says, the resolver classifies it without panicking, and never takes
/// anything outside `com.` from it.
pub fn upstream_response(data: &[u8]) {
    let Ok(response) = Message::from_vec(data) else {
        return;
    };
    let zone = Name::from_ascii("com.").expect("literal");
    let name = Name::from_ascii("www.example.com.").expect("literal");
    for rtype in [RecordType::A, RecordType::NS, RecordType::CNAME] {
        crate::resolver::classify::check_classification(&response, &zone, &name, rtype);
    }
}

/// Zone-file text: loading either succeeds or names a line in the file.
pub fn zone_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Zone::parse(&text, "fuzz.zone") {
        Ok(zone) => assert!(zone.records().count() >= 2, "SOA and NS at least"),
        Err(error) => {
            if let Some(line) = error.line {
                assert!(
                    line >= 1 && line <= text.lines().count().max(1) + 1,
                    "{error}"
                );
            }
        }
    }
}

/// Bytes on a connection to the web server: whatever comes back is HTTP,
/// and nothing outside the site's directory is ever served.
pub fn web_request(data: &[u8]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
    let config = crate::web::WebConfig::new(
        crate::web::SiteSource::Dir(root),
        vec!["www.example.com".to_string()],
    );
    let Ok(out) = runtime().block_on(crate::web::respond_to_raw(config, data)) else {
        return;
    };
    if !out.is_empty() {
        assert!(
            out.starts_with(b"HTTP/1."),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("[package]"), "Cargo.toml leaked");
    assert!(!text.contains("root:x:0:0"), "/etc/passwd leaked");
}
