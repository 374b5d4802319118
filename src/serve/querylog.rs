//! The one-line query log: who asked what, and what they got.
//!
//! ```text
//! 2026-12-01T14:31:38.123456Z  INFO 127.0.0.1:40112 UDP www.example.com. A -> NOERROR flags=[qr aa] answers=1
//! ```
//!
//! It is on by default (the roles log at `info`) and must cost a busy
//! server little, so a reply never waits for it: the serving task hands a
//! small [`LogEntry`] to a bounded queue and moves on; a thread of its own
//! formats entries and writes them to stderr in batches. A busy writer
//! takes what has queued up every [`PAUSE`] rather than waking for each
//! entry (a wake-up per query cost a server pinned to one core a quarter
//! of its rate); the date and time are formatted once a second, and a
//! question asked again (a replayed answer shares its question) is
//! formatted once. When the queue is full the entry is dropped and
//! counted, and the writer says how many were lost, so nothing is silently
//! missing. With `RUST_LOG=warn` (or in a
//! process that never called [`start`], such as the tests) nothing is
//! queued at all.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::dns::Transport;

/// Entries waiting for the writer before new ones are dropped.
const QUEUE: usize = 64 * 1024;
/// How long a writer that found entries waiting lets more gather before it
/// looks again: lines reach stderr at most this much later, and a busy
/// server wakes the writer a hundred times a second, not once a query.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(10);
/// Bytes formatted before they are written.
const CHUNK: usize = 256 * 1024;
/// Questions whose formatted text is kept.
const QUESTIONS: usize = 256;

/// A question as the log keeps it: shared, so an answer replayed logs it
/// without copying the name.
pub type LoggedQuestion = std::sync::Arc<(Name, RecordType)>;

/// One logged query, as the serving task knows it; formatted later.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub client: SocketAddr,
    pub transport: Transport,
    /// None when the message had no question (or did not parse).
    pub question: Option<LoggedQuestion>,
    pub rcode: ResponseCode,
    pub flags: Flags,
    pub answers: usize,
}

/// The header flags of a reply, as `dig` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u8);

impl Flags {
    const NAMES: [&'static str; 7] = ["qr", "aa", "tc", "rd", "ra", "ad", "cd"];

    /// From the flags of a message header as it is on the wire (RFC 1035
    /// §4.1.1, RFC 4035 §3.2 for AD and CD).
    pub fn from_bits(wire: u16) -> Flags {
        let bits = [0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010];
        Flags(
            bits.iter()
                .enumerate()
                .fold(0, |acc, (i, bit)| acc | (u8::from(wire & bit != 0) << i)),
        )
    }

    pub fn of(metadata: &Metadata) -> Flags {
        let bits = [
            true,
            metadata.authoritative,
            metadata.truncation,
            metadata.recursion_desired,
            metadata.recursion_available,
            metadata.authentic_data,
            metadata.checking_disabled,
        ];
        Flags(
            bits.iter()
                .enumerate()
                .fold(0, |acc, (i, on)| acc | (u8::from(*on) << i)),
        )
    }
}

impl std::fmt::Display for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (i, name) in Flags::NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

struct Writer {
    queue: SyncSender<LogEntry>,
    dropped: AtomicU64,
    /// Entries queued and not yet written.
    pending: AtomicU64,
    /// The writer, woken early from its pause by [`finish`].
    thread: std::thread::Thread,
}

static WRITER: OnceLock<Writer> = OnceLock::new();

/// Start the writer thread, if the query log is enabled by the log filter
/// (`dnstrail::query` at info). Call once, after the logger is set up.
pub fn start(colour: bool) {
    if !tracing::enabled!(target: "dnstrail::query", tracing::Level::INFO) {
        return;
    }
    WRITER.get_or_init(|| {
        let (queue, entries) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("query-log".into())
            .spawn(move || write_forever(entries, colour))
            .expect("spawning the query log writer")
            .thread()
            .clone();
        Writer {
            queue,
            dropped: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            thread,
        }
    });
}

/// Whether queries are being logged: build a [`LogEntry`] only then.
pub fn enabled() -> bool {
    WRITER.get().is_some()
}

/// Queue one entry for the writer; never blocks.
pub fn record(entry: LogEntry) {
    let Some(writer) = WRITER.get() else {
        return;
    };
    writer.pending.fetch_add(1, Ordering::Relaxed);
    if let Err(TrySendError::Full(_)) = writer.queue.try_send(entry) {
        writer.pending.fetch_sub(1, Ordering::Relaxed);
        writer.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Write out what is queued before the process exits (waiting at most a
/// second): a server stopped right after a burst of queries still logs
/// them.
pub fn finish() {
    let Some(writer) = WRITER.get() else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while writer.pending.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
        writer.thread.unpark();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Lines dropped so far because the writer could not keep up.
pub fn dropped() -> u64 {
    WRITER
        .get()
        .map_or(0, |w| w.dropped.load(Ordering::Relaxed))
}

fn write_forever(entries: Receiver<LogEntry>, colour: bool) {
    let mut reported = 0;
    let mut out = Vec::with_capacity(CHUNK + 4096);
    let mut lines = Lines::new(colour);
    let mut written = 0;
    // Wait for an entry when there is none; when there were some, pause to
    // let the next ones gather.
    while let Ok(first) = entries.recv() {
        let mut next = Some(first);
        while let Some(entry) = next {
            lines.format(&mut out, &entry);
            written += 1;
            for entry in entries.try_iter() {
                lines.format(&mut out, &entry);
                written += 1;
                if out.len() >= CHUNK {
                    write_out(&mut out, &mut written);
                }
            }
            let lost = dropped();
            if lost > reported {
                lines.stamp(&mut out);
                let _ = writeln!(
                    out,
                    "  WARN query log: {lost} lines dropped so far (the log could not keep up)"
                );
                reported = lost;
            }
            write_out(&mut out, &mut written);
            std::thread::park_timeout(PAUSE);
            next = entries.try_recv().ok();
        }
    }
}

/// Write what is formatted (`entries` lines) to stderr. A closed stderr is
/// no reason to stop serving; the lines are lost.
fn write_out(out: &mut Vec<u8>, entries: &mut u64) {
    let _ = std::io::stderr().lock().write_all(out);
    out.clear();
    if let Some(writer) = WRITER.get() {
        writer.pending.fetch_sub(*entries, Ordering::Relaxed);
    }
    *entries = 0;
}

/// The writer's formatting state: the current second's date and time, and
/// the questions formatted lately.
struct Lines {
    colour: bool,
    second: u64,
    date_time: String,
    /// Each kept with its question, so that a pointer is never reused for
    /// another question while it is here.
    questions: Vec<(LoggedQuestion, String)>,
}

impl Lines {
    fn new(colour: bool) -> Lines {
        Lines {
            colour,
            second: u64::MAX,
            date_time: String::new(),
            questions: Vec::with_capacity(QUESTIONS),
        }
    }

    /// Now, as RFC 3339 in UTC with microseconds, as the rest of the log
    /// has it.
    fn stamp(&mut self, out: &mut Vec<u8>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        if secs != self.second {
            self.second = secs;
            self.date_time = date_time(secs);
        }
        let _ = write!(out, "{}.{:06}Z", self.date_time, now.subsec_micros());
    }

    fn format(&mut self, out: &mut Vec<u8>, entry: &LogEntry) {
        self.stamp(out);
        let level = if self.colour {
            "\x1b[32m INFO\x1b[0m"
        } else {
            " INFO"
        };
        let _ = write!(out, " {level} {} {} ", entry.client, entry.transport);
        match &entry.question {
            Some(question) => out.extend_from_slice(self.question(question).as_bytes()),
            None => out.extend_from_slice(b"(no question)"),
        }
        let _ = writeln!(
            out,
            " -> {} flags=[{}] answers={}",
            crate::trace::rcode_name(entry.rcode),
            entry.flags,
            entry.answers
        );
    }

    /// `name type`, formatted once for each shared question.
    fn question(&mut self, question: &LoggedQuestion) -> &str {
        let found = self
            .questions
            .iter()
            .position(|(kept, _)| std::sync::Arc::ptr_eq(kept, question));
        let index = match found {
            Some(index) => index,
            None => {
                if self.questions.len() >= QUESTIONS {
                    self.questions.clear();
                }
                let (name, rtype) = question.as_ref();
                self.questions
                    .push((question.clone(), format!("{name} {rtype}")));
                self.questions.len() - 1
            }
        };
        &self.questions[index].1
    }
}

/// The date and time of `secs` since the epoch, to the second, as RFC 3339
/// writes it in UTC.
fn date_time(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
    )
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_flags_read_as_people_write_them() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(date_time(1_796_142_698), "2026-12-01T16:31:38");
        let mut metadata = Metadata::new(
            1,
            hickory_proto::op::MessageType::Response,
            hickory_proto::op::OpCode::Query,
        );
        metadata.authoritative = true;
        metadata.recursion_desired = true;
        assert_eq!(Flags::of(&metadata).to_string(), "qr aa rd");
    }
}
