//! The site as a directory on disk, opened once and read only beneath it.
//!
//! The root is held as a directory handle (`cap_std::fs::Dir`). Every file
//! is opened *relative to that handle* with the kernel checking, component by
//! component, that the path never leaves it: `openat2(RESOLVE_BENEATH)` on
//! Linux 5.6 and later, and elsewhere (or under a seccomp filter that hides
//! `openat2`) cap-std's own walk, which opens one component at a time with
//! `O_NOFOLLOW` and resolves each symlink itself. A symlink that stays inside
//! the root is followed; one that leads out, by `..` or by an absolute
//! target, fails the open. What the open returns is then described (`fstat`)
//! and read through the same handle.
//!
//! This closes a race that checking a path first and opening it afterwards
//! leaves open: swap a directory of the site for a symlink to `/` between
//! the check and the open, and the open follows it out.
//!
//! Looking a file up costs a few system calls, done on tokio's blocking
//! threads so that the async workers never wait for the disk. Small files
//! are then kept in memory, keyed by path and checked against the disk
//! (device, inode, size, modification time) at most once a second, as
//! nginx's `open_file_cache_valid` does: a page edited on disk is served
//! within a second, and a busy server does not open a file on every request.
//! Large files are never kept: each response streams from a handle of its
//! own.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use anyhow::Context;

use super::{Contents, INDEX, Lookup, StaticFile, file_for, is_directory_form};

/// How long a looked-up file is trusted before the disk is asked again.
const REVALIDATE_AFTER: Duration = Duration::from_secs(1);
/// The longest a file may take to come off the disk before the client gets
/// a 503.
const DISK_TIMEOUT: Duration = Duration::from_secs(10);
/// Files up to this size are kept in memory; larger ones are streamed.
const MAX_CACHED_FILE: u64 = 2 * 1024 * 1024;
/// The memory all cached files may take together.
const CACHE_BUDGET: usize = 64 * 1024 * 1024;
/// Cached paths at most, whatever their size.
const MAX_CACHED_PATHS: usize = 4096;

/// A site directory: the root's handle and the in-memory cache.
pub(super) struct Disk {
    root: Arc<Dir>,
    /// The root's canonical path: for messages, and to say where a refused
    /// symlink leads. Never used to open anything.
    shown: PathBuf,
    cache: RwLock<Cache>,
}

#[derive(Default)]
struct Cache {
    files: HashMap<Box<str>, Cached>,
    bytes: usize,
}

/// A file kept in memory, and what it was on disk when last checked.
#[derive(Clone)]
struct Cached {
    file: Arc<StaticFile>,
    identity: Identity,
    checked: Instant,
}

impl Cached {
    fn is_fresh(&self) -> bool {
        self.checked.elapsed() < REVALIDATE_AFTER
    }

    fn size(&self) -> usize {
        self.file.in_memory().map_or(0, Bytes::len)
    }
}

/// What tells one version of a file from another without reading it: the
/// same inode, size and modification time is the same file, unchanged. The
/// inode also catches a symlink re-pointed at a different file of the same
/// size and age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    len: u64,
    modified: SystemTime,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Identity {
    fn of(meta: &fs::Metadata) -> io::Result<Identity> {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Ok(Identity {
            len: meta.len(),
            modified: meta.modified()?,
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        })
    }
}

/// What the blocking half of a lookup found.
enum Found {
    /// A file, and what it is on disk (for the cache).
    File {
        file: Arc<StaticFile>,
        identity: Identity,
    },
    /// Anything else.
    Other(Lookup),
}

impl Disk {
    /// The site in the directory `root`, checked: it exists, is a
    /// directory, and has an `index.html` that is a file.
    pub(super) async fn open(root: &Path) -> anyhow::Result<Disk> {
        let asked = root.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || open_root(&asked)).await?;
        let (root, shown) =
            opened.with_context(|| format!("the site directory {}", root.display()))?;
        Ok(Disk {
            root: Arc::new(root),
            shown,
            cache: RwLock::default(),
        })
    }

    /// The root's canonical path.
    pub(super) fn root(&self) -> &Path {
        &self.shown
    }

    /// The file a cleaned path (from [`super::clean_path`]) names.
    pub(super) async fn lookup(&self, key: &str) -> io::Result<Lookup> {
        let cached = self
            .cache
            .read()
            .expect("file cache lock")
            .files
            .get(key)
            .cloned();
        if let Some(cached) = &cached
            && cached.is_fresh()
        {
            return Ok(Lookup::File(cached.file.clone()));
        }

        let was_cached = cached.is_some();
        let root = self.root.clone();
        let shown = self.shown.clone();
        let relative = file_for(key).into_owned();
        let index = is_directory_form(key);
        let look = tokio::task::spawn_blocking(move || {
            look_up(&root, &shown, &relative, index, cached.as_ref())
        });
        let found = tokio::time::timeout(DISK_TIMEOUT, look)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the disk took too long"))?
            .map_err(io::Error::other)??;
        let (keep, lookup) = match found {
            Found::File { file, identity } => {
                let keep = file.in_memory().is_some().then(|| Cached {
                    file: file.clone(),
                    identity,
                    checked: Instant::now(),
                });
                (keep, Lookup::File(file))
            }
            Found::Other(lookup) => (None, lookup),
        };
        match keep {
            Some(entry) => self.remember(key, entry),
            // Gone, or grown too large to keep: free its memory.
            None if was_cached => self.forget(key),
            None => {}
        }
        Ok(lookup)
    }

    fn forget(&self, key: &str) {
        let mut cache = self.cache.write().expect("file cache lock");
        if let Some(gone) = cache.files.remove(key) {
            cache.bytes -= gone.size();
        }
    }

    fn remember(&self, key: &str, entry: Cached) {
        let mut cache = self.cache.write().expect("file cache lock");
        let replaced = cache.files.get(key).map_or(0, Cached::size);
        let bytes = cache.bytes - replaced + entry.size();
        let paths = cache.files.len() + usize::from(!cache.files.contains_key(key));
        // Full: the file is still served, just read again next time.
        if bytes <= CACHE_BUDGET && paths <= MAX_CACHED_PATHS {
            cache.files.insert(key.into(), entry);
            cache.bytes = bytes;
        }
    }
}

/// The blocking half of [`Disk::open`]: the root's handle and its
/// canonical path, or why it cannot be served.
fn open_root(root: &Path) -> anyhow::Result<(Dir, PathBuf)> {
    let shown = match fs::canonicalize(root) {
        Ok(shown) => shown,
        Err(e) if e.kind() == io::ErrorKind::NotFound => anyhow::bail!("does not exist"),
        Err(e) => return Err(e.into()),
    };
    anyhow::ensure!(fs::metadata(&shown)?.is_dir(), "is not a directory");
    let dir = Dir::open_ambient_dir(&shown, ambient_authority())?;
    let has_index = open_beneath(&dir, INDEX).and_then(|index| index.metadata());
    anyhow::ensure!(
        has_index.is_ok_and(|meta| meta.is_file()),
        "has no {INDEX} (the page served for /), so there is no site to serve"
    );
    Ok((dir, shown))
}

/// The blocking half of a lookup, on tokio's blocking threads. `index`:
/// `relative` is a directory's index, asked for by the directory's path.
fn look_up(
    root: &Dir,
    shown: &Path,
    relative: &str,
    index: bool,
    previous: Option<&Cached>,
) -> io::Result<Found> {
    let file = match open_beneath(root, relative) {
        Ok(file) => file,
        // cap-std's word for "that path leaves the root" (and the kernel's
        // for a file we may not read).
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Ok(Found::Other(why_refused(shown, relative)));
        }
        Err(e) if is_missing(&e) => return Ok(Found::Other(Lookup::Missing)),
        Err(e) => return Err(e),
    };
    // From here on, only the handle: whatever the name now leads to.
    let meta = file.metadata()?;
    if meta.is_dir() {
        // `docs/` whose index is itself a directory is not a page.
        return Ok(Found::Other(if index {
            Lookup::Missing
        } else {
            Lookup::Directory
        }));
    }
    if !meta.is_file() {
        // FIFOs, sockets, devices: reading them could block forever.
        return Ok(Found::Other(Lookup::Missing));
    }
    let identity = Identity::of(&meta)?;
    if let Some(previous) = previous
        && previous.identity == identity
    {
        return Ok(Found::File {
            file: previous.file.clone(),
            identity,
        });
    }
    let contents = if meta.len() > MAX_CACHED_FILE {
        Contents::Open(Arc::new(file))
    } else {
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&file).read_to_end(&mut bytes)?;
        Contents::Memory(Bytes::from(bytes))
    };
    let len = match &contents {
        Contents::Memory(bytes) => bytes.len() as u64,
        Contents::Open(_) => meta.len(),
    };
    Ok(Found::File {
        file: Arc::new(StaticFile::new(
            relative,
            len,
            identity.modified,
            etag(identity.modified, len),
            contents,
        )),
        identity,
    })
}

/// nginx's ETag is mtime-size; nanoseconds tell apart two edits within one
/// second that leave the size unchanged.
fn etag(modified: SystemTime, len: u64) -> String {
    let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "\"{:x}.{:x}-{:x}\"",
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
        len
    )
}

/// Open `relative` for reading, beneath `root` and never outside it.
fn open_beneath(root: &Dir, relative: &str) -> io::Result<fs::File> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer; without waiting, the
    // handle's type is checked just after and the FIFO is a 404.
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    Ok(root.open_with(relative, &options)?.into_std())
}

/// A path that could not be opened for lack of permission: say whether it
/// was a way out of the root. The paths here are resolved only for the log;
/// nothing is ever opened by them.
fn why_refused(shown: &Path, relative: &str) -> Lookup {
    match fs::canonicalize(shown.join(relative)) {
        Ok(real) if !real.starts_with(shown) => Lookup::Outside(real),
        _ => Lookup::Missing,
    }
}

/// Errors that mean "no such page" rather than "the server is broken".
fn is_missing(error: &io::Error) -> bool {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::ELOOP) {
        return true;
    }
    matches!(
        error.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidFilename
    )
}

#[cfg(test)]
mod tests {
    use super::super::super::scratch::ScratchDir;
    use super::*;

    fn root(site: &ScratchDir) -> Dir {
        Dir::open_ambient_dir(site.path(), ambient_authority()).unwrap()
    }

    fn look(site: &ScratchDir, relative: &str, index: bool, previous: Option<&Cached>) -> Found {
        let shown = fs::canonicalize(site.path()).unwrap();
        look_up(&root(site), &shown, relative, index, previous).expect("the lookup works")
    }

    fn file(found: Found) -> Cached {
        match found {
            Found::File { file, identity } => Cached {
                file,
                identity,
                checked: Instant::now(),
            },
            Found::Other(_) => panic!("expected a file"),
        }
    }

    fn other(found: Found) -> Lookup {
        match found {
            Found::Other(lookup) => lookup,
            Found::File { .. } => panic!("expected no file"),
        }
    }

    fn bytes(cached: &Cached) -> &[u8] {
        cached.file.in_memory().expect("kept in memory")
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_and_a_changed_one_is() {
        let site = ScratchDir::new();
        site.write("a.txt", "one");
        let first = file(look(&site, "a.txt", false, None));
        assert_eq!(bytes(&first), b"one");

        let again = file(look(&site, "a.txt", false, Some(&first)));
        assert_eq!(again.file.etag, first.file.etag);
        assert_eq!(
            bytes(&again).as_ptr(),
            bytes(&first).as_ptr(),
            "the same bytes, not a new read"
        );

        site.write("a.txt", "three");
        let changed = file(look(&site, "a.txt", false, Some(&again)));
        assert_eq!(bytes(&changed), b"three");
        assert_ne!(changed.file.etag, first.file.etag);
    }

    #[test]
    fn large_files_are_described_but_not_kept() {
        let site = ScratchDir::new();
        let size = MAX_CACHED_FILE as usize + 1;
        site.write("big.bin", vec![0u8; size]);
        let big = file(look(&site, "big.bin", false, None));
        assert!(big.file.in_memory().is_none());
        assert_eq!(big.file.len, size as u64);
        assert_eq!(big.file.content_length, size.to_string().as_str());
    }

    #[tokio::test]
    async fn a_large_file_is_sent_from_the_handle_it_was_found_by() {
        use http_body_util::BodyExt;
        let site = ScratchDir::new();
        let size = MAX_CACHED_FILE as usize + 1;
        site.write("big.bin", vec![b'a'; size]);
        let big = file(look(&site, "big.bin", false, None));
        // Replaced after the lookup: what is sent is still the file that
        // was checked, not whatever the name leads to now.
        fs::rename(site.path().join("big.bin"), site.path().join("old.bin")).unwrap();
        site.write("big.bin", vec![b'b'; size]);
        let sent = big.file.body().collect().await.unwrap().to_bytes();
        assert_eq!(sent.len(), size);
        assert!(sent.iter().all(|&b| b == b'a'));
    }

    #[test]
    fn what_is_not_a_file_is_told_apart() {
        let site = ScratchDir::new();
        site.write("docs/index.html", "docs");
        site.write("odd/index.html/x", "a directory named like an index");
        assert!(matches!(
            other(look(&site, "docs", false, None)),
            Lookup::Directory
        ));
        assert_eq!(
            bytes(&file(look(&site, "docs/index.html", true, None))),
            b"docs"
        );
        assert!(matches!(
            other(look(&site, "odd/index.html", true, None)),
            Lookup::Missing
        ));
        assert!(matches!(
            other(look(&site, "nowhere.html", false, None)),
            Lookup::Missing
        ));
        #[cfg(unix)]
        {
            let made = std::process::Command::new("mkfifo")
                .arg(site.path().join("pipe"))
                .status();
            if made.is_ok_and(|status| status.success()) {
                // Without O_NONBLOCK this open would wait for a writer forever.
                assert!(matches!(
                    other(look(&site, "pipe", false, None)),
                    Lookup::Missing
                ));
            } else {
                eprintln!("skipped the FIFO case: no mkfifo here");
            }
            std::os::unix::fs::symlink("/", site.path().join("escape")).unwrap();
            assert!(matches!(
                other(look(&site, "escape/etc/hostname", false, None)),
                Lookup::Outside(_) | Lookup::Missing
            ));
            assert!(matches!(
                other(look(&site, "escape", false, None)),
                Lookup::Outside(_)
            ));
            std::os::unix::fs::symlink("../docs", site.path().join("odd/up")).unwrap();
            assert_eq!(
                bytes(&file(look(&site, "odd/up/index.html", false, None))),
                b"docs",
                "a symlink that stays inside is followed"
            );
        }
    }
}
