//! # dnstrail: how a name becomes a page
//!
//! Every server a browser's question passes through, running for real on this
//! machine's loopback interface:
//!
//! ```text
//!                    1 www.example.com?
//!   ┌─────────┐ ───────────────────────► ┌───────────────┐ 2,3 ──► root (a.root-servers.net)
//!   │ browser │                          │   resolver    │ ◄── referral to .com
//!   │(browse) │ ◄─────────────────────── │ (caching, the │ 4 ───► .com (a.gtld-servers.net)
//!   └─────────┘    7 127.0.0.44          │  ISP's)       │ ◄── referral to 4 name servers
//!        │                               └───────────────┘ 5 ───► ns-N.awsdns-0N.com
//!        │ 8 GET / Host: www.example.com                   ◄── 6 www = 127.0.0.44 (AA)
//!        ▼
//!   ┌────────────┐
//!   │ web server │ 9 the page
//!   └────────────┘
//! ```
//!
//! (The demo's hierarchy; with `--zones DIR` the same roles play out any
//! hierarchy the zone files describe.)
//!
//! Map of the crate, one module per role or concept.
//!
//! The roles, in the order of the chain:
//!
//! - [`browse`]: the built-in browser (steps 1, 2, 8): a stub resolver asking
//!   A and AAAA, then HTTP, each step told as it happens.
//! - [`resolver`]: the caching recursive resolver (steps 2–7): its cache,
//!   the walk down the hierarchy, server choice.
//! - [`nameserver`]: the authoritative servers (steps 3–6), answering from
//!   [`zone`] files.
//! - [`web`]: the web server (steps 8–9).
//! - [`demo`]: all of them started together, the browser's visits, and the
//!   story told as it happens; [`visit`]: one visit, from start to verdict.
//! - [`shell`]: the same stack as the whole internet of private namespaces,
//!   for unmodified programs, on the standard ports (Linux).
//!
//! What they share:
//!
//! - [`topology`]: the hierarchy the zone files describe: which server holds
//!   which zone at which address.
//! - [`builtin`]: the demo's zones and site, carried inside the binary.
//! - [`serve`]: the one DNS pipeline every server answers through (checks,
//!   rate limits, faults, EDNS, truncation, encoding, the query log).
//! - [`stack`]: starting any set of roles together, bound before serving.
//! - [`control`]: the HTTP window into a running stack (cache, traces,
//!   clock, faults).
//! - [`trace`]: the one event type every hop is described with, and the
//!   sink that carries events, in order, to whoever watches.
//! - [`story`]: events told as the story's numbered steps.
//! - [`exchange`]: one question and its answer over UDP or TCP, checked
//!   against forgery; [`dns`]: what every role shares about messages.
//! - [`clock`]: "now", which tests and the demo can move forward.
//! - [`listen`]: binding sockets first, with errors that say what to do,
//!   and the signals that stop a role.
//! - [`fault`]: name servers that fail on purpose (`--fail`, `--fault`).
//! - [`dnssec`]: keys, signed zones and the trust anchor for the name
//!   servers (`--dnssec`), and the chain-of-trust checks for the resolver
//!   (`--trust-anchor`).
//! - [`style`]: terminal colour, decided once.
//! - [`cli`]: the command line's types and value parsers.
//! - `fuzzing`: entry points for `make fuzz` (the `fuzzing` feature only).

pub mod browse;
pub mod builtin;
pub mod cli;
pub mod clock;
pub mod control;
pub mod demo;
pub mod dns;
pub mod dnssec;
pub mod exchange;
pub mod fault;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod listen;
pub mod nameserver;
pub mod resolver;
pub mod serve;
pub mod shell;
pub mod stack;
pub mod story;
pub mod style;
pub mod topology;
pub mod trace;
pub mod visit;
pub mod web;
pub mod zone;
