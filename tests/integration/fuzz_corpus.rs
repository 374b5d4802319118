//! The fuzzer's corpus, replayed: every input that ever mattered (seeds and
//! anything `make fuzz` found) runs through its target on every `make test`.
//! A short, seeded mutation run follows, so the targets are exercised
//! beyond the corpus even where cargo-fuzz is not installed.

use std::path::PathBuf;

use dnstrail::fuzzing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::mutate;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("nameserver_request", fuzzing::nameserver_request),
    ("resolver_request", fuzzing::resolver_request),
    ("upstream_response", fuzzing::upstream_response),
    ("zone_file", fuzzing::zone_file),
    ("web_request", fuzzing::web_request),
];

pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn every_corpus_input_passes_its_target() {
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "{name} has no corpus");
        for (path, bytes) in inputs {
            let result = std::panic::catch_unwind(|| target(&bytes));
            assert!(result.is_ok(), "{name}: {} fails", path.display());
        }
    }
}

#[test]
fn seeded_mutations_pass_every_target() {
    let mut rng = StdRng::seed_from_u64(0x646e_7374);
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        let rounds = if name == "web_request" { 150 } else { 600 };
        for _ in 0..rounds {
            let (_, base) = &inputs[rng.random_range(0..inputs.len())];
            let (_, other) = &inputs[rng.random_range(0..inputs.len())];
            let input = mutate(&mut rng, base, other);
            let result = std::panic::catch_unwind(|| target(&input));
            assert!(result.is_ok(), "{name} fails on {input:?}");
        }
    }
}

/// The web target really talks HTTP to the site (so its checks mean something).
#[tokio::test]
async fn the_web_target_reaches_the_site() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
    let config = dnstrail::web::WebConfig::new(
        dnstrail::web::SiteSource::Dir(root.clone()),
        vec!["www.example.com".into()],
    );
    let out =
        dnstrail::web::respond_to_raw(config, b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            .await
            .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("How a name becomes a page"));
    let config = dnstrail::web::WebConfig::new(
        dnstrail::web::SiteSource::Dir(root),
        vec!["www.example.com".into()],
    );
    let out = dnstrail::web::respond_to_raw(
        config,
        b"GET /../Cargo.toml HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 400") || text.starts_with("HTTP/1.1 404"),
        "{text}"
    );
}
