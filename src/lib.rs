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
//! Map of the crate, one module per role or concept:
//!
//! - [`topology`]: which server holds which zone at which address.
//! - [`zone`]: zone files, read and checked (errors name file and line).
//! - [`nameserver`]: the authoritative servers (root, `.com`, example.com).
//! - [`exchange`]: one question and its answer over UDP or TCP, checked
//!   against forgery.
//! - [`stack`]: starting several roles at once, bound before serving.
//! - [`trace`]: the one event type every hop is described with.
//! - [`web`]: the web server of www.example.com.
//! - [`browse`]: the built-in browser.
//! - [`listen`]: binding sockets first, with errors that say what to do.

pub mod browse;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod exchange;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
pub mod listen;
pub mod nameserver;
pub mod resolver;
pub mod serve;
pub mod stack;
pub mod topology;
pub mod trace;
pub mod truncate;
pub mod web;
pub mod zone;
