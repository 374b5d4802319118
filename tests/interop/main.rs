//! `make interop`: dnstrail beside real DNS and web software, compared
//! message by message (differential testing, as hickory's `dns-test`
//! does it). No answer is written down or worked out here: where dnstrail,
//! NSD, Knot DNS and Unbound are asked the same question, they check each
//! other.
//!
//! ```text
//!   hierarchy ──► zone files, written leaf first ──► served in turn by
//!   (builder)                                         dnstrail │ NSD │ Knot DNS
//!                                                         ▲ same questions, our `exchange`
//!                                     dnstrail resolver ──┤
//!                                     Unbound ────────────┘ side by side over each
//!   answers compared: rcode, flags, sections as sets, TTLs where they must agree
//! ```
//!
//! - `hierarchy`: the builder, and the hierarchies it writes.
//! - `questions`: which questions a hierarchy calls for.
//! - `subjects`: the implementations, started on the hierarchy's addresses.
//! - `ask`: one question to one server; `compare`: what must agree.
//! - `walk`: the hierarchy walked hop by hop with single questions.
//! - `clients`: dig, kdig, curl and `dnstrail browse` against the servers.
//! - `differential`: the two hierarchies, every implementation (a test each).
//! - `chromium`: headless Chromium on the page of `demo --keep-running`.
//! - `process`, `report`: child processes and their ports; PASS/FAIL lines.
//!
//! The tests are ignored by default (they need root for port 53, and the
//! Debian packages `scripts/interop.sh` installs); `make interop` runs them
//! one at a time, in a private mount namespace whose `/etc/resolv.conf`
//! names our resolver. Each check prints one `PASS`, `FAIL` or `SKIPPED`
//! line; logs, configurations and every DNS message go to `target/interop/`.

mod ask;
mod chromium;
mod clients;
mod compare;
mod differential;
mod dnssec;
mod hierarchy;
mod process;
mod questions;
mod report;
mod subjects;
mod walk;

/// The tests bind the same addresses (port 53 of the zones' servers, of
/// the resolvers): one runs at a time, whatever `--test-threads` says.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
