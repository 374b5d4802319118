//! `dnstrail shell`: the chain as the whole internet, for programs that know
//! nothing about it. Inside, `curl http://www.example.com/`, `getent hosts`,
//! `dig +trace` and a browser use the demo's servers with no flags at all.
//!
//! ```text
//!  dnstrail shell                 your namespaces: waits, passes the exit status on
//!   └─ dnstrail shell --inside    new network and mount namespaces (and a user
//!        │                        namespace, unless run as root)
//!        │ lo up: 127.0.0.0/8 is this internet's address space
//!        │ every role bound: name servers and resolver on :53, the site on :80
//!        │ /etc/resolv.conf names the resolver, /etc/hosts holds only localhost
//!        └─ $SHELL or COMMAND     started only once everything is bound
//! ```
//!
//! Why two processes: a process joins new namespaces with `unshare(2)`, and
//! the kernel refuses a user or mount namespace to a process with several
//! threads, which a tokio runtime has. So this process starts a copy of the
//! binary whose `unshare` happens in the child between `fork` and `exec`,
//! while it has one thread, and that copy runs the stack.
//!
//! Nothing outside changes: the addresses exist only in the new network
//! namespace, and the files in /etc are covered by bind mounts that only
//! the new mount namespace sees. When the command ends, whatever it left
//! running in the namespace is stopped, then the stack; the namespaces go
//! with their last process.

use std::net::IpAddr;
use std::process::ExitCode;

use crate::cli::ShellArgs;

/// What to do where namespaces are out of reach: the same chain, on ports
/// and addresses that need no privilege, reached with flags.
const INSTEAD: &str = "instead, run `dnstrail demo --keep-running` and reach it with the flags it prints (dig @ADDR -p PORT, curl --resolve, chromium --host-resolver-rules; see the README)";

/// `dnstrail shell`.
#[cfg(target_os = "linux")]
pub async fn command(args: ShellArgs) -> anyhow::Result<ExitCode> {
    if args.inside {
        linux::inside(args).await
    } else {
        linux::outside().await
    }
}

/// `dnstrail shell`, where there are no Linux namespaces.
#[cfg(not(target_os = "linux"))]
pub async fn command(_args: ShellArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "shell: namespaces are not allowed here (it needs Linux network and mount namespaces); {INSTEAD}"
    )
}

/// The files a host of this internet sees in /etc, as (path, contents):
/// its resolver, no names but localhost, and host names looked up in files
/// and DNS only (an NSS module such as `resolve` would ask a daemon
/// outside, over a Unix socket no network namespace stops).
pub fn etc_files(resolver: IpAddr) -> Vec<(&'static str, String)> {
    let mut files = vec![
        (
            "/etc/resolv.conf",
            format!(
                "# dnstrail: every name is looked up through this resolver\nnameserver {resolver}\n"
            ),
        ),
        (
            "/etc/hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_string(),
        ),
    ];
    if let Ok(nsswitch) = std::fs::read_to_string("/etc/nsswitch.conf") {
        files.push(("/etc/nsswitch.conf", hosts_from_files_and_dns(&nsswitch)));
    }
    files
}

/// `nsswitch.conf` with its `hosts:` line made `files dns`.
fn hosts_from_files_and_dns(nsswitch: &str) -> String {
    let mut out = String::new();
    let mut seen = false;
    for line in nsswitch.lines() {
        if line.trim_start().starts_with("hosts:") {
            if !seen {
                out.push_str("hosts: files dns\n");
            }
            seen = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !seen {
        out.push_str("hosts: files dns\n");
    }
    out
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::{CString, OsString};
    use std::io;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::ExitStatusExt;
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::time::Duration;

    use anyhow::Context;
    use tokio::signal::unix::{SignalKind, signal};

    use super::{INSTEAD, etc_files};
    use crate::cli::{ControlAuth, DemoArgs, ShellArgs};
    use crate::demo::{Demo, Item};
    use crate::topology::DEFAULT_URL;

    /// Every name server and the resolver listen here: the port glue
    /// implies and stub resolvers use.
    const DNS_PORT: u16 = 53;

    /// How long a command that was asked to stop gets before it is killed.
    const GRACE: Duration = Duration::from_secs(2);

    /// The line for a system that will not make the namespaces.
    fn not_allowed(what: &str, error: &io::Error) -> anyhow::Error {
        let who = if is_root() {
            "even for root (a container without CAP_SYS_ADMIN?)"
        } else {
            "for this user (unprivileged user namespaces are off: sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces or an AppArmor policy); run it as root"
        };
        anyhow::anyhow!(
            "shell: namespaces are not allowed here ({what}: {error}), {who}; or {INSTEAD}"
        )
    }

    fn is_root() -> bool {
        // SAFETY: geteuid(2) has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// Start `dnstrail shell --inside …` in new namespaces and wait for it.
    pub async fn outside() -> anyhow::Result<ExitCode> {
        let exe = std::env::current_exe().context("shell: finding this program to start inside")?;
        // The same arguments again (`dnstrail shell ARGS…`), marked inside.
        let mut argv: Vec<OsString> = vec!["shell".into(), "--inside".into()];
        argv.extend(std::env::args_os().skip(2));
        let user_namespace = !is_root();
        let enter = Enter::prepare(user_namespace);
        let mut child = tokio::process::Command::new(exe);
        child.args(&argv);
        // SAFETY: `Enter::run` makes only async-signal-safe system calls, on
        // memory prepared before the fork.
        unsafe {
            child.pre_exec(move || enter.run());
        }
        let mut child = child.spawn().map_err(|e| {
            not_allowed(
                if user_namespace {
                    "unshare(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWNS)"
                } else {
                    "unshare(CLONE_NEWNET|CLONE_NEWNS)"
                },
                &e,
            )
        })?;
        let pid = child.id().context("shell: the process inside")? as libc::pid_t;

        // Ctrl-C reaches the command inside too (one process group): it
        // decides whether to end. A polite stop is passed on.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status?,
                _ = interrupt.recv() => {}
                _ = terminate.recv() => send(pid, libc::SIGTERM),
                _ = hangup.recv() => send(pid, libc::SIGHUP),
            }
        };
        Ok(exit_code(status))
    }

    /// What the child does between `fork` and `exec`: die with its parent,
    /// then enter new namespaces, mapping the user to root in a new user
    /// namespace when not root already.
    struct Enter {
        parent: libc::pid_t,
        /// `/proc/self/uid_map` and `gid_map` lines, for a user namespace.
        maps: Option<(CString, CString)>,
    }

    impl Enter {
        fn prepare(user_namespace: bool) -> Enter {
            // SAFETY: these calls have no preconditions.
            let (parent, uid, gid) = unsafe { (libc::getpid(), libc::geteuid(), libc::getegid()) };
            let maps = user_namespace.then(|| {
                (
                    CString::new(format!("0 {uid} 1")).expect("no NUL"),
                    CString::new(format!("0 {gid} 1")).expect("no NUL"),
                )
            });
            Enter { parent, maps }
        }

        /// Runs in the forked child: system calls only, no allocation.
        fn run(&self) -> io::Result<()> {
            // SAFETY: plain system calls with valid arguments.
            unsafe {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before the line above.
                if libc::getppid() != self.parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                let mut flags = libc::CLONE_NEWNET | libc::CLONE_NEWNS;
                if self.maps.is_some() {
                    flags |= libc::CLONE_NEWUSER;
                }
                if libc::unshare(flags) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some((uid_map, gid_map)) = &self.maps {
                // A process may map only its own IDs, and its groups only
                // once setgroups(2) is denied.
                write_proc(c"/proc/self/setgroups", b"deny")?;
                write_proc(c"/proc/self/uid_map", uid_map.as_bytes())?;
                write_proc(c"/proc/self/gid_map", gid_map.as_bytes())?;
            }
            Ok(())
        }
    }

    /// Write `data` to a /proc file with bare system calls (after fork).
    fn write_proc(path: &std::ffi::CStr, data: &[u8]) -> io::Result<()> {
        // SAFETY: a NUL-terminated path, a buffer of the length given, and a
        // descriptor closed before returning.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let written = libc::write(fd, data.as_ptr().cast(), data.len());
            let error = io::Error::last_os_error();
            libc::close(fd);
            if written != data.len() as isize {
                return Err(error);
            }
        }
        Ok(())
    }

    /// The demo's options, from the shell's: every role on the standard
    /// ports, the site where `--site` says.
    fn demo_args(args: &ShellArgs) -> DemoArgs {
        DemoArgs {
            stack: args.stack.clone(),
            visit: Vec::new(),
            ask: Vec::new(),
            dns_port: DNS_PORT,
            web_port: None,
            control: None,
            control_auth: ControlAuth::default(),
            json: false,
            keep_running: false,
        }
    }

    /// The site's URL: `--site`, or the demo's on its scheme's port.
    fn site_url(args: &ShellArgs) -> anyhow::Result<String> {
        if let Some(site) = &args.site {
            return Ok(site.clone());
        }
        let mut url = reqwest::Url::parse(DEFAULT_URL).context("the default URL")?;
        let _ = url.set_port(None);
        Ok(url.into())
    }

    /// Inside the new namespaces: the network up, the stack bound, /etc
    /// made ours, then the command, then everything stopped.
    pub async fn inside(args: ShellArgs) -> anyhow::Result<ExitCode> {
        // Handlers first: a signal during start-up is then not lost.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;

        // Mounts made here must not spread back to the namespace we came
        // from (with shared propagation, as systemd sets it up, they would).
        mount(None, Path::new("/"), libc::MS_REC | libc::MS_PRIVATE)
            .map_err(|e| not_allowed("making the mounts private", &e))?;
        loopback_up().map_err(|e| not_allowed("bringing up lo", &e))?;

        let site = site_url(&args)?;
        let demo = Demo::start(&demo_args(&args), vec![Item::Visit(site)]).await?;
        let resolver = demo
            .stack
            .resolver_addr
            .context("shell: the stack has no resolver")?;
        private_etc(&etc_files(resolver.ip()))?;

        let interactive = args.command.is_empty();
        if interactive || args.keep {
            print_banner(&demo, &args);
        }
        let (program, rest) = match args.command.split_first() {
            Some((program, rest)) => (OsString::from(program), rest.to_vec()),
            None => (
                std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into()),
                Vec::new(),
            ),
        };
        let mut command = tokio::process::Command::new(&program);
        command.args(&rest);
        // A proxy outside is out of reach, and would take lookups away
        // from the chain.
        for proxy in [
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
        ] {
            command.env_remove(proxy);
        }
        command.env("DNSTRAIL_SHELL", std::process::id().to_string());
        let mut child = command
            .spawn()
            .with_context(|| format!("shell: starting {}", program.to_string_lossy()))?;
        let pid = child.id().context("shell: the command's process")? as libc::pid_t;

        let mut asked_to_stop = false;
        let status = loop {
            let grace = async {
                if asked_to_stop {
                    tokio::time::sleep(GRACE).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                status = child.wait() => break status?,
                // Ctrl-C went to the command too; it decides.
                _ = interrupt.recv() => {}
                _ = terminate.recv() => { ask_to_stop(pid); asked_to_stop = true; }
                _ = hangup.recv() => { ask_to_stop(pid); asked_to_stop = true; }
                _ = grace => send(pid, libc::SIGKILL),
            }
        };

        if args.keep && !asked_to_stop {
            eprintln!(
                "dnstrail shell: the command ended ({}); the stack stays up (--keep) until Ctrl-C",
                describe(status)
            );
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                _ = hangup.recv() => {}
            }
        }
        stop_the_rest().await;
        demo.stack.stop().await;
        Ok(exit_code(status))
    }

    /// A command asked to stop: SIGTERM for programs, SIGHUP for an
    /// interactive shell (which ignores SIGTERM), SIGCONT if it is stopped.
    fn ask_to_stop(pid: libc::pid_t) {
        for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGCONT] {
            send(pid, signal);
        }
    }

    fn send(pid: libc::pid_t, signal: libc::c_int) {
        // SAFETY: kill(2) on a process of ours.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    fn exit_code(status: std::process::ExitStatus) -> ExitCode {
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitCode::from(code as u8),
            (None, Some(signal)) => ExitCode::from(128 + signal as u8),
            (None, None) => ExitCode::FAILURE,
        }
    }

    fn describe(status: std::process::ExitStatus) -> String {
        match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => status.to_string(),
        }
    }

    /// Whatever the command left behind in this network namespace (a
    /// server started with `&`, a shell entered with nsenter) is stopped
    /// too: SIGTERM, then SIGKILL after a grace period. Only processes in
    /// this namespace can be found here, and this process made it.
    async fn stop_the_rest() {
        let mut left = others_in_this_network();
        for pid in &left {
            send(*pid, libc::SIGTERM);
            send(*pid, libc::SIGCONT);
        }
        let deadline = tokio::time::Instant::now() + GRACE;
        while !left.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = others_in_this_network();
        }
        for pid in left {
            send(pid, libc::SIGKILL);
        }
    }

    /// Every process but this one whose network namespace is this one's.
    fn others_in_this_network() -> Vec<libc::pid_t> {
        let Ok(ours) = std::fs::metadata("/proc/self/ns/net") else {
            return Vec::new();
        };
        let me = std::process::id() as libc::pid_t;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
            .filter(|pid| *pid != me)
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|ns| ns.ino() == ours.ino() && ns.dev() == ours.dev())
            })
            .collect()
    }

    /// Whether this process is in a user namespace of its own (its user
    /// IDs map to a part of the outside's, not all of them).
    fn in_user_namespace() -> bool {
        std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| !map.split_whitespace().eq(["0", "0", "4294967295"]))
    }

    /// What the shell says before it starts: where everything is, what to
    /// try, and with `--keep` how to get in from elsewhere.
    fn print_banner(demo: &Demo, args: &ShellArgs) {
        let stack = &demo.stack;
        // (who, where, what), lined up in columns.
        let mut rows: Vec<(String, String, String)> = Vec::new();
        if let Some(r) = stack.resolver_addr {
            rows.push((
                "resolver".into(),
                r.to_string(),
                "named in /etc/resolv.conf; /etc/hosts holds only localhost".into(),
            ));
        }
        for host in stack.servers() {
            let s = &host.server;
            let addrs: Vec<String> = s
                .addrs
                .iter()
                .map(|ip| std::net::SocketAddr::new(*ip, stack.dns_port).to_string())
                .collect();
            let failing = host
                .fault
                .get()
                .map(|f| format!(", failing: {f}"))
                .unwrap_or_default();
            rows.push((
                s.name.trim_end_matches('.').into(),
                addrs.join(" "),
                format!("{}{failing}", s.zones.join(" ")),
            ));
        }
        let url = match demo.items.first() {
            Some(Item::Visit(url)) => url.clone(),
            _ => String::new(),
        };
        for w in &stack.web_addrs {
            rows.push(("web server".into(), w.to_string(), url.clone()));
        }
        if let Some(c) = stack.control_addr {
            // The site serves the control endpoint under /lab/ too.
            let lab = match stack.web_addrs.is_empty() {
                false => format!(", and at {url}lab/"),
                true => String::new(),
            };
            rows.push((
                "control".into(),
                c.to_string(),
                format!("every lookup made here: /traces, /events (live){lab}"),
            ));
        }
        let who = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let at = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let mut lines = vec![format!(
            "dnstrail shell: a private network whose whole internet is {} zones and {} name servers from {}",
            demo.zone_count, demo.server_count, demo.source
        )];
        lines.extend(
            rows.iter()
                .map(|(name, addr, what)| format!("  {name:<who$}  {addr:<at$}  {what}")),
        );
        if let Ok(parsed) = reqwest::Url::parse(&url)
            && let Some(host) = parsed.host_str()
        {
            lines.push(format!(
                "Try: curl {url} · getent hosts {host} · dig +trace {host}"
            ));
        }
        if args.keep {
            let user = if in_user_namespace() { " --user" } else { "" };
            lines.push(format!(
                "Enter from another terminal: nsenter --target {}{user} --net --mount",
                std::process::id()
            ));
        }
        lines.push(if args.command.is_empty() {
            "Leaving the shell (exit) stops everything.".to_string()
        } else {
            "Ctrl-C stops everything once the command has ended.".to_string()
        });
        eprintln!("{}", lines.join("\n"));
    }

    /// Bring up `lo`: in a new network namespace it is down, and once up it
    /// carries all of 127.0.0.0/8 and ::1.
    fn loopback_up() -> io::Result<()> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // SAFETY: a socket for the ioctl, owned (and closed) by `socket`.
        let socket = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        // SAFETY: an all-zero ifreq is valid; the name fits IFNAMSIZ with
        // its NUL; the ioctls read and write only that struct.
        unsafe {
            let mut request: libc::ifreq = std::mem::zeroed();
            for (to, from) in request.ifr_name.iter_mut().zip(b"lo\0") {
                *to = *from as libc::c_char;
            }
            if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) != 0 {
                return Err(io::Error::last_os_error());
            }
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Cover each /etc file with one of ours. The files are written to a
    /// directory of their own, bind-mounted, and the directory removed at
    /// once: the mounts keep the files alive, and nothing is left behind.
    fn private_etc(files: &[(&'static str, String)]) -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("dnstrail-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("shell: creating {}", dir.display()))?;
        let result = files.iter().try_for_each(|(target, contents)| {
            let target = Path::new(target);
            let source: PathBuf = dir.join(target.file_name().unwrap_or_default());
            std::fs::write(&source, contents)
                .with_context(|| format!("shell: writing {}", source.display()))?;
            mount(Some(&source), target, libc::MS_BIND).map_err(|e| {
                anyhow::anyhow!(
                    "shell: cannot cover {} with the shell's own: {e}",
                    target.display()
                )
            })
        });
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// mount(2) of a path, or of nothing (a change of propagation), with no
    /// filesystem type or data.
    fn mount(source: Option<&Path>, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        };
        let source = source.map(|s| c(s.as_os_str().as_bytes())).transpose()?;
        let target = c(target.as_os_str().as_bytes())?;
        // SAFETY: NUL-terminated strings (or null, which mount(2) allows for
        // these arguments), no data argument.
        let done = unsafe {
            libc::mount(
                source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                target.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_come_from_files_and_dns_only() {
        let rewritten = hosts_from_files_and_dns(
            "passwd: files\nhosts:          files mdns4_minimal [NOTFOUND=return] resolve dns\nnetworks: files\n",
        );
        assert_eq!(
            rewritten,
            "passwd: files\nhosts: files dns\nnetworks: files\n"
        );
        assert!(hosts_from_files_and_dns("passwd: files\n").ends_with("hosts: files dns\n"));
    }

    #[test]
    fn the_hosts_files_name_our_resolver_and_only_localhost() {
        let files = etc_files("127.0.0.1".parse().unwrap());
        let (_, resolv) = files
            .iter()
            .find(|(p, _)| *p == "/etc/resolv.conf")
            .unwrap();
        assert!(resolv.contains("\nnameserver 127.0.0.1\n"));
        let (_, hosts) = files.iter().find(|(p, _)| *p == "/etc/hosts").unwrap();
        assert!(hosts.lines().all(|l| l.contains("localhost")));
    }
}
