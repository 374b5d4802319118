//! A network of hosts on one Ethernet segment, made of network namespaces:
//!
//! ```text
//!   namespace dt53-PID-sw:   br0 ── p-root ── p-tld ── p-ns-1 … p-web ── p-client
//!                                      │        │         │         │        │
//!   one namespace per host:          eth0     eth0      eth0      eth0     eth0
//!                                 10.53.0.2 10.53.0.3 10.53.0.4 10.53.0.44 10.53.0.10
//! ```
//!
//! The bridge lives in a namespace of its own, so this machine's own
//! network gains no interface. Names carry this process's id: a run
//! killed outright leaves namespaces a later run recognises as orphans
//! (their process is gone) and removes, without touching a run still going.
//!
//! Programs run on a host through `setns(2)` between fork and exec; code of
//! the test runs on a host in a thread that joined its namespace, so its
//! sockets are the host's (a real foreign source address, not a made-up
//! one). Every child dies with the test (`PR_SET_PDEATHSIG`), and dropping
//! the network, by a normal end, a panic or Ctrl-C, kills them and removes the
//! namespaces.

use std::ffi::CString;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// Namespace names start with this, then the owning process's id.
const PREFIX: &str = "dt53-";

/// Networks alive in this process, by namespace prefix: what a Ctrl-C removes.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// One host: a network namespace with one link to the switch.
pub struct Host {
    pub name: String,
    pub namespace: String,
    /// Kept open: what `setns` joins.
    handle: File,
}

pub struct Network {
    prefix: String,
    switch: String,
    hosts: Vec<Host>,
    /// Where every process's output goes, one file each.
    pub logs: PathBuf,
    /// Every process started, for the clean-up.
    pids: Vec<u32>,
}

/// A process started on a host, its output copied to its log.
pub struct Role {
    pub name: String,
    pub child: Child,
    /// Its standard output, when asked for.
    pub stdout: Option<ChildStdout>,
}

/// Run `ip ARGS`; its stderr as the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let output = std::process::Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The namespaces of networks like this one that exist now.
fn namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// Remove the namespaces whose names start with `prefix`, killing what
/// still runs in them (a run killed outright leaves its servers there).
fn remove(prefix: &str) {
    for namespace in namespaces().into_iter().filter(|n| n.starts_with(prefix)) {
        if let Ok(output) = std::process::Command::new("ip")
            .args(["netns", "pids", &namespace])
            .output()
        {
            for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<libc::pid_t>() {
                    // SAFETY: kill(2) on a process found in our own namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = ip(&["netns", "delete", &namespace]);
    }
}

/// The namespaces left by runs whose process is gone.
fn remove_orphans() -> Vec<String> {
    let mut removed = Vec::new();
    for namespace in namespaces() {
        let owner = namespace[PREFIX.len()..]
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            remove(&namespace);
            removed.push(namespace);
        }
    }
    removed
}

impl Network {
    /// A switch of its own, after clearing what killed runs left.
    pub fn new(logs: &Path) -> Result<Network, String> {
        let orphans = remove_orphans();
        if !orphans.is_empty() {
            super::say(&format!(
                "removed namespaces a killed run left: {}",
                orphans.join(" ")
            ));
        }
        let prefix = format!("{PREFIX}{}-", std::process::id());
        remove(&prefix);
        LIVE.lock().unwrap().push(prefix.clone());
        remove_on_signal();
        let switch = format!("{prefix}sw");
        let net = Network {
            prefix,
            switch: switch.clone(),
            hosts: Vec::new(),
            logs: logs.to_path_buf(),
            pids: Vec::new(),
        };
        ip(&["netns", "add", &switch])?;
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        Ok(net)
    }

    /// A host called `name` at `ip`/24, its link plugged into the switch.
    pub fn add_host(&mut self, name: &str, ip_addr: Ipv4Addr) -> Result<(), String> {
        let namespace = format!("{}{name}", self.prefix);
        let port = format!("p-{name}");
        let cidr = format!("{ip_addr}/24");
        ip(&["netns", "add", &namespace])?;
        ip(&[
            "-n",
            &self.switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &namespace,
        ])?;
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ])?;
        ip(&["-n", &namespace, "addr", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", &namespace, "link", "set", "eth0", "up"])?;
        ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        let handle = File::open(format!("/run/netns/{namespace}"))
            .map_err(|e| format!("opening {namespace}: {e}"))?;
        self.hosts.push(Host {
            name: name.to_string(),
            namespace,
            handle,
        });
        Ok(())
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in the network"))
    }

    /// Take a host's link down (or up again), as a cable pulled.
    pub fn set_link(&self, host: &str, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            &self.host(host).namespace,
            "link",
            "set",
            "eth0",
            state,
        ])
    }

    /// Add `delay` to everything a host sends (netem); an error if the
    /// kernel has no netem.
    pub fn add_latency(&self, host: &str, delay: Duration) -> Result<(), String> {
        let namespace = &self.host(host).namespace;
        let delay = format!("{}ms", delay.as_millis());
        let output = std::process::Command::new("tc")
            .args(["-n", namespace, "qdisc", "add", "dev", "eth0", "root"])
            .args(["netem", "delay", &delay])
            .output()
            .map_err(|e| format!("tc: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }

    /// A command that runs on `host`. With `etc` (the resolver's address),
    /// it also gets its own /etc/resolv.conf, /etc/hosts and nsswitch.conf,
    /// as `dnstrail shell` writes them, in a mount namespace of its own.
    pub fn command(&self, host: &str, program: &Path, etc: Option<Ipv4Addr>) -> Command {
        let host = self.host(host);
        let namespace = host.handle.as_raw_fd();
        let mounts: Vec<(CString, CString)> = etc
            .map(|resolver| self.etc_files(&host.name, resolver))
            .unwrap_or_default();
        let mut command = Command::new(program);
        command.stdin(Stdio::null()).kill_on_drop(true);
        // SAFETY: between fork and exec only system calls, on strings made
        // before the fork; the namespace's descriptor stays open in the network.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::setns(namespace, libc::CLONE_NEWNET) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if mounts.is_empty() {
                    return Ok(());
                }
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                for (source, target) in &mounts {
                    if libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        command
    }

    /// A host's /etc files, written under the logs: (source, target).
    fn etc_files(&self, host: &str, resolver: Ipv4Addr) -> Vec<(CString, CString)> {
        let dir = self.logs.join(format!("{host}-etc"));
        std::fs::create_dir_all(&dir).unwrap();
        dnstrail::shell::etc_files(resolver.into())
            .into_iter()
            .map(|(target, contents)| {
                let source = dir.join(Path::new(target).file_name().unwrap());
                std::fs::write(&source, contents).unwrap();
                (
                    CString::new(source.to_str().unwrap()).unwrap(),
                    CString::new(target).unwrap(),
                )
            })
            .collect()
    }

    /// Run a command on `host` to its end (within `bound`), output kept.
    pub async fn run(
        &self,
        host: &str,
        program: &Path,
        args: &[&str],
        etc: Option<Ipv4Addr>,
        bound: Duration,
    ) -> std::process::Output {
        let output = self.command(host, program, etc).args(args).output();
        let what = format!("{} {} (on {host})", program.display(), args.join(" "));
        tokio::time::timeout(bound, output)
            .await
            .unwrap_or_else(|_| panic!("{what} did not end within {bound:?}"))
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Start a long-running role on a host and wait (within 10 s) for the
    /// line on stderr that says it is ready; stderr goes on to its log.
    pub async fn start(
        &mut self,
        name: &str,
        host: &str,
        program: &Path,
        args: &[String],
        ready: &str,
    ) -> Role {
        let mut command = self.command(host, program, None);
        command
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.pids.extend(child.id());
        let log_path = self.logs.join(format!("{name}.log"));
        let mut log = tokio::fs::File::create(&log_path).await.unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(line)) = lines.next_line().await {
                log.write_all(format!("{line}\n").as_bytes()).await.unwrap();
                if line.contains(ready) {
                    return true;
                }
            }
            false
        })
        .await;
        if waited != Ok(true) {
            let _ = child.start_kill();
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!(
                "{name} did not say `{ready}` within 10 s; it said:\n{said}\n(args: {})",
                args.join(" ")
            );
        }
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = log.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        Role {
            name: name.to_string(),
            stdout: child.stdout.take(),
            child,
        }
    }

    /// Run async code on `host`: in a thread that has joined the host's
    /// network namespace, so every socket it opens is the host's.
    pub async fn on<F, Fut, T>(&self, host: &str, make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let namespace = self.host(host).handle.try_clone().unwrap();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            // SAFETY: setns(2) on an open namespace descriptor; it moves only
            // this thread, which ends with the closure.
            let joined = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(joined, 0, "setns: {}", io::Error::last_os_error());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = done.send(runtime.block_on(make()));
        });
        result.await.expect("the code on the host ran to its end")
    }

    /// The namespaces of this network left over.
    pub fn leftovers(prefix: &str) -> Vec<String> {
        namespaces()
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Role {
    /// SIGTERM, and a clean exit (status 0) within 10 s.
    pub async fn stop(mut self) {
        crate::support::stop_cleanly(&mut self.child, &self.name).await;
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for pid in &self.pids {
            // SAFETY: kill(2) on a child this network started (already gone is fine).
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        remove(&self.prefix);
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != &self.prefix);
    }
}

/// On Ctrl-C or SIGTERM, remove every live network before dying: the test's
/// own unwinding never runs then.
fn remove_on_signal() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let mut interrupt = signal(SignalKind::interrupt()).unwrap();
                let mut terminate = signal(SignalKind::terminate()).unwrap();
                let number = tokio::select! {
                    _ = interrupt.recv() => libc::SIGINT,
                    _ = terminate.recv() => libc::SIGTERM,
                };
                let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for prefix in live {
                    remove(&prefix);
                }
                super::say("interrupted: the network's namespaces and processes are removed");
                std::process::exit(128 + number);
            });
        });
    });
}
