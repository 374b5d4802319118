//! One integration-test binary, one module per area, so it builds once.
//! Every test starts real servers on loopback, in-process, on ports of its
//! own, and asserts on DNS messages and trace events.

mod browse;
mod cli;
mod conformance;
mod control;
mod demo;
mod dnssec;
mod edns;
mod faults;
mod forgery;
mod fuzz_corpus;
mod hardening;
mod hierarchy;
mod lab;
#[cfg(target_os = "linux")]
mod multihost;
mod nameserver;
mod readme;
mod resolver;
mod shell;
mod storm;
mod support;
mod updates;
mod web;
mod zones;
