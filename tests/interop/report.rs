//! What a person reads: one `PASS`, `FAIL` or `SKIPPED` line per check on
//! the terminal (written to stderr directly, past the test harness's
//! capture), the same lines in `target/interop/<test>/checks.txt`, and a
//! last line with the counts. A test with a failed check fails.

use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where every test writes its logs, configuration and DNS messages.
pub fn out_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop")
}

/// Whether a missing tool (or root) is a failure rather than a skip: CI
/// sets `DNSTRAIL_REQUIRE_TOOLS=1`.
pub fn tools_required() -> bool {
    std::env::var_os("DNSTRAIL_REQUIRE_TOOLS").is_some_and(|v| v == "1")
}

/// The checks of one test, and where its files go.
pub struct Report {
    test: String,
    dir: PathBuf,
    checks: File,
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Report {
    /// A fresh `target/interop/<test>/` (the last run's files removed).
    pub fn new(test: &str) -> Report {
        let dir = out_root().join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create target/interop/<test>");
        let checks = File::create(dir.join("checks.txt")).expect("create checks.txt");
        let mut report = Report {
            test: test.to_string(),
            dir,
            checks,
            passed: 0,
            failed: 0,
            skipped: 0,
        };
        report.say(&format!("== {test} (files in {})", report.shown_dir()));
        report
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A directory of its own under the test's, created.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).expect("create a directory under target/interop");
        dir
    }

    /// A path under the test's directory as a person finds it from the
    /// repository (`target/interop/demo/logs/nsd-ns-1.log`).
    pub fn shown(&self, path: &Path) -> String {
        path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn shown_dir(&self) -> String {
        self.shown(&self.dir.clone())
    }

    fn say(&mut self, line: &str) {
        let _ = writeln!(std::io::stderr(), "{line}");
        let _ = writeln!(self.checks, "{line}");
    }

    pub fn pass(&mut self, check: impl Display, detail: impl Display) {
        self.passed += 1;
        self.say(&format!("PASS  {check}: {detail}"));
    }

    pub fn fail(&mut self, check: impl Display, why: impl Display) {
        self.failed += 1;
        self.say(&format!("FAIL  {check}: {why}"));
    }

    /// PASS with the detail, or FAIL with the reason.
    pub fn check(&mut self, check: impl Display, outcome: Result<String, String>) -> bool {
        match outcome {
            Ok(detail) => {
                self.pass(check, detail);
                true
            }
            Err(why) => {
                self.fail(check, why);
                false
            }
        }
    }

    /// A check that cannot run here (a tool missing, not root): SKIPPED,
    /// or FAIL when `DNSTRAIL_REQUIRE_TOOLS=1`.
    pub fn skip(&mut self, check: impl Display, why: impl Display) {
        if tools_required() {
            self.fail(
                check,
                format!("{why} (and DNSTRAIL_REQUIRE_TOOLS=1 requires it)"),
            );
        } else {
            self.skipped += 1;
            self.say(&format!(
                "SKIPPED  {check}: {why} (DNSTRAIL_REQUIRE_TOOLS=1 makes this a failure)"
            ));
        }
    }

    /// The counts, and the test's verdict: it fails if any check did.
    pub fn finish(mut self) {
        let summary = format!(
            "== {}: {} passed, {} failed, {} skipped (files in {})",
            self.test,
            self.passed,
            self.failed,
            self.skipped,
            self.shown_dir()
        );
        self.say(&summary);
        assert_eq!(self.failed, 0, "{summary}");
    }
}

/// The path of a program, looked up in `PATH` and the sbin directories
/// (where Debian puts `nsd`, `knotd` and `unbound`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether this process may bind port 53 (and mount, and read every
/// process's sockets): the interop run needs root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}
