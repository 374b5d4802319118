//! The programs a test runs (dnstrail's roles, NSD, Knot DNS, Unbound): each
//! in a process group of its own, its output copied line by line to a log
//! under `target/interop/`, killed with its whole group on every way out of
//! the test (a failed assertion included), and killed by the kernel if the
//! test process itself dies.
//!
//! Readiness is never a sleep: a dnstrail role is ready when it prints its
//! `dnstrail: listening …` line; the others when they answer a real DNS
//! question (see `subjects`). Every wait has a deadline.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long a process may take to stop after SIGTERM.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// Lines of output kept to explain a failure.
const RECENT_LINES: usize = 8;

pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    pid: i32,
    lines: mpsc::UnboundedReceiver<String>,
    recent: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    /// Start `command`, its stdout and stderr going to `log`.
    pub fn start(name: &str, mut command: Command, log: &Path) -> Result<Process, String> {
        let file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let file = Arc::new(Mutex::new(file));
        owned(&mut command);
        let shown = format!("{:?}", command.as_std());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {shown}: {e}"))?;
        let pid = child.id().map_or(0, |p| p as i32);
        let (sender, lines) = mpsc::unbounded_channel();
        let recent = Arc::new(Mutex::new(VecDeque::new()));
        if let Ok(mut f) = file.lock() {
            let _ = writeln!(f, "# {shown}");
        }
        if let Some(out) = child.stdout.take() {
            copy_lines(out, file.clone(), recent.clone(), sender.clone());
        }
        if let Some(err) = child.stderr.take() {
            copy_lines(err, file, recent.clone(), sender);
        }
        Ok(Process {
            name: name.to_string(),
            log: log.to_path_buf(),
            child,
            pid,
            lines,
            recent,
        })
    }

    /// The last lines it printed, on one line, for a failure message.
    pub fn last_words(&self) -> String {
        let recent = self.recent.lock().map(|r| r.clone()).unwrap_or_default();
        let text: Vec<String> = recent.into_iter().collect();
        if text.is_empty() {
            "no output".to_string()
        } else {
            text.join(" | ")
        }
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The first line of output (from now on) that `pick` accepts, within
    /// `within`. Fails if the process exits first, saying how and what it
    /// printed last.
    pub async fn wait_for_line<T>(
        &mut self,
        within: Duration,
        what: &str,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(found) = pick(&line) {
                        return Ok(found);
                    }
                }
                Ok(None) => {
                    // Output closed: it has exited (or is about to).
                    let status =
                        tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                    let how = match status {
                        Ok(Ok(s)) => format!("exited ({s})"),
                        _ => "closed its output".to_string(),
                    };
                    return Err(format!(
                        "{} {how} before {what}: {}",
                        self.name,
                        self.last_words()
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "{} did not show {what} within {} s: {}",
                        self.name,
                        within.as_secs_f32(),
                        self.last_words()
                    ));
                }
            }
        }
    }

    /// Every line printed since the last look, without waiting.
    pub fn lines_so_far(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            out.push(line);
        }
        out
    }

    /// Wait for a dnstrail role's `dnstrail: listening KIND ADDR…` line and
    /// return the addresses.
    pub async fn listening(&mut self, kind: &str) -> Result<Vec<SocketAddr>, String> {
        let prefix = format!("dnstrail: listening {kind} ");
        self.wait_for_line(Duration::from_secs(10), &format!("`{prefix}…`"), |line| {
            line.strip_prefix(&prefix).map(|rest| {
                rest.split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect()
            })
        })
        .await
    }

    /// Stop it as a service manager does: SIGTERM, and its exit status
    /// within [`STOP_WITHIN`]; past that, the whole group is killed and
    /// this is an error.
    pub async fn stop(mut self) -> Result<ExitStatus, String> {
        if let Some(status) = self.exited() {
            return Err(format!(
                "{} had already exited ({status}): {}",
                self.name,
                self.last_words()
            ));
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        match tokio::time::timeout(STOP_WITHIN, self.child.wait()).await {
            Ok(Ok(status)) => {
                // Whatever it forked (NSD's server processes) goes with it.
                self.kill_group();
                Ok(status)
            }
            Ok(Err(e)) => Err(format!("waiting for {}: {e}", self.name)),
            Err(_) => {
                self.kill_group();
                Err(format!(
                    "{} still running {} s after SIGTERM; killed",
                    self.name,
                    STOP_WITHIN.as_secs()
                ))
            }
        }
    }

    fn kill_group(&self) {
        if self.pid > 0 {
            // SAFETY: kill(2) on the process group this process leads.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A child of ours: its output piped to us, in a process group of its own
/// (so whatever it forks can be killed with it), killed when dropped, and
/// killed by the kernel if the thread that started it goes away.
fn owned(command: &mut Command) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG only sets a flag of the new
    // process; it allocates nothing and is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn copy_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    log: Arc<Mutex<std::fs::File>>,
    recent: Arc<Mutex<VecDeque<String>>>,
    lines: mpsc::UnboundedSender<String>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "{line}");
            }
            if let Ok(mut r) = recent.lock() {
                if r.len() == RECENT_LINES {
                    r.pop_front();
                }
                r.push_back(line.chars().take(300).collect());
            }
            let _ = lines.send(line);
        }
    });
}

/// Run a program to its end (a client: dig, curl, chromium), within
/// `within`, its output kept in memory and in `log`.
pub async fn run(mut command: Command, within: Duration, log: &Path) -> Result<Output, String> {
    owned(&mut command);
    let shown = format!("{:?}", command.as_std());
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let pid = child.id().map_or(0, |p| p as i32);
    let output = match tokio::time::timeout(within, child.wait_with_output()).await {
        Ok(output) => {
            // Whatever it left behind (Chromium's helpers) goes too.
            // SAFETY: kill(2) on the process group our child led.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            output.map_err(|e| format!("running {shown}: {e}"))?
        }
        Err(_) => {
            // SAFETY: kill(2) on the process group our child leads.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            return Err(format!(
                "{shown} did not finish within {} s; killed",
                within.as_secs()
            ));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let _ = std::fs::write(
        log,
        format!(
            "# {shown}\n# {}\n{stdout}\n# stderr\n{stderr}",
            output.status
        ),
    );
    Ok(Output {
        status: output.status,
        stdout,
        stderr,
    })
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The first line of stderr, for a failure message.
    pub fn complaint(&self) -> String {
        let line = self
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("nothing on stderr");
        format!(
            "{}: {}",
            self.status,
            line.chars().take(200).collect::<String>()
        )
    }
}

/// A port a server is to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// Who already holds any of `wanted` (or the same port on a wildcard
/// address), one line each: `udp 127.0.0.2:53 held by pid 123 (nsd -d -c …)`.
pub fn holders(wanted: &[(Proto, SocketAddr)]) -> Vec<String> {
    let mut found = Vec::new();
    for (proto, table) in [
        (Proto::Udp, "/proc/net/udp"),
        (Proto::Udp, "/proc/net/udp6"),
        (Proto::Tcp, "/proc/net/tcp"),
        (Proto::Tcp, "/proc/net/tcp6"),
    ] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || (proto == Proto::Tcp && fields[3] != "0A") {
                continue;
            }
            let Some(local) = parse_proc_addr(fields[1]) else {
                continue;
            };
            let clash = wanted.iter().any(|(p, addr)| {
                *p == proto
                    && addr.port() == local.port()
                    && (addr.ip() == local.ip() || local.ip().is_unspecified())
            });
            if clash {
                let what = if proto == Proto::Udp { "udp" } else { "tcp" };
                let holder = socket_owner(fields[9]).unwrap_or_else(|| "an unknown process".into());
                let line = format!("{what} {local} held by {holder}");
                if !found.contains(&line) {
                    found.push(line);
                }
            }
        }
    }
    found
}

/// `0100007F:0035` (IPv4, bytes of a host-order word) or the IPv6 form.
fn parse_proc_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip: IpAddr = match ip.len() {
        8 => {
            let word = u32::from_str_radix(ip, 16).ok()?;
            IpAddr::V4(std::net::Ipv4Addr::from(word.swap_bytes()))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.swap_bytes().to_be_bytes());
            }
            IpAddr::V6(std::net::Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `pid 123 (nsd -d -c …)` for the process with the socket inode `inode`.
fn socket_owner(inode: &str) -> Option<String> {
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let owns = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str())
        });
        if owns {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline: String = String::from_utf8_lossy(&cmdline)
                .split(|c: char| c == '\0' || c.is_whitespace())
                .filter(|word| !word.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(120)
                .collect();
            return Some(format!("pid {pid} ({cmdline})"));
        }
    }
    None
}

/// Fail with the holders named if any of `wanted` is taken.
pub fn require_free(wanted: &[(Proto, SocketAddr)]) -> Result<(), String> {
    let taken = holders(wanted);
    if taken.is_empty() {
        Ok(())
    } else {
        Err(format!("in use, stop it first: {}", taken.join("; ")))
    }
}

/// UDP and TCP on each address: what a DNS server listens on.
pub fn dns_ports(addrs: impl IntoIterator<Item = SocketAddr>) -> Vec<(Proto, SocketAddr)> {
    addrs
        .into_iter()
        .flat_map(|a| [(Proto::Udp, a), (Proto::Tcp, a)])
        .collect()
}
