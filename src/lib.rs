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
//! Map of the crate, one module per role or concept.
//!
//! The roles, in the order of the chain:
//!
//! - [`browse`]: the built-in browser (steps 1, 2, 8).
//! - [`resolver`]: the caching recursive resolver (steps 2–7): its cache,
//!   the iteration, server choice, the control endpoint.
//! - [`nameserver`]: the authoritative servers, root, `.com` and
//!   example.com (steps 3–6), answering from [`zone`] files.
//! - [`web`]: the web server of www.example.com (steps 8–9).
//! - [`demo`]: all of them started together, and the story told.
//!
//! What they share:
//!
//! - [`topology`]: which server holds which zone at which address.
//! - [`builtin`]: the demo's zones and site, carried inside the binary.
//! - [`trace`]: the one event type every hop is described with.
//! - [`clock`]: "now", which tests and the demo can move forward.
//! - [`exchange`]: one question and its answer over UDP or TCP, checked
//!   against forgery.
//! - [`serve`]: the DNS front end of every server (hickory-server's
//!   transport, the checks every query gets, the query log);
//!   [`truncate`] decides when a UDP answer must be cut.
//! - [`listen`]: binding sockets first, with errors that say what to do.
//! - [`stack`]: starting several name servers at once, bound before serving.
//! - [`fault`]: name servers that fail on purpose (`demo --fail`).
//! - `fuzzing`: entry points for `make fuzz` (hidden from the docs).
//! - [`cli`]: the command line's types.

pub mod browse;
pub mod builtin;
pub mod cli;
pub mod clock;
pub mod control;
pub mod demo;
pub mod dns;
pub mod exchange;
pub mod fault;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod listen;
pub mod nameserver;
pub mod resolver;
pub mod serve;
pub mod stack;
pub mod story;
pub mod style;
pub mod topology;
pub mod trace;
pub mod web;
pub mod zone;
