//! From a URL path to a file under the site's root, and never outside it.
//!
//! Two guards, one behind the other:
//!
//! 1. [`clean_path`] works on the path as text: it decodes `%xx` escapes
//!    first (so `%2e%2e` and `%2f` are seen for what they are), then refuses
//!    any `..` segment, backslash or NUL, and hides dot-files.
//! 2. [`Files::lookup`] resolves what is left on disk, symlinks and all
//!    (`canonicalize`), and serves it only if the real path is still inside
//!    the real root. A symlink in `static/` pointing at `/etc` ends here.
//!
//! Looking a file up costs a few system calls, done on tokio's blocking
//! threads so that the async workers never wait for the disk. Small files
//! are then kept in memory, keyed by path and checked against the disk
//! (size, modification time, real path) at most once a second, as nginx's
//! `open_file_cache_valid` does: a page edited on disk is served within a
//! second, and a busy server does not `stat` on every request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderValue;
use percent_encoding::percent_decode_str;
use tokio::io::AsyncReadExt;

/// How long a looked-up file is trusted before the disk is asked again.
const REVALIDATE_AFTER: Duration = Duration::from_secs(1);
/// Files up to this size are kept in memory; larger ones are streamed.
const MAX_CACHED_FILE: u64 = 2 * 1024 * 1024;
/// The memory all cached files may take together.
const CACHE_BUDGET: usize = 64 * 1024 * 1024;
/// Cached paths at most, whatever their size.
const MAX_CACHED_PATHS: usize = 4096;
/// How much of a streamed file is read at a time.
const STREAM_CHUNK: usize = 128 * 1024;

/// The file served for a directory.
const INDEX: &str = "index.html";

/// Why a URL path names no file we would serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BadPath {
    /// `..` somewhere, escaped or not: an attempt to climb out of the root.
    Climbs,
    /// A backslash, a NUL, invalid UTF-8 after decoding, or no leading `/`.
    Malformed,
    /// A dot-file or dot-directory (`.git`, `.env`): never published.
    Hidden,
}

/// The path relative to the root, decoded and checked: no leading `/`, no
/// empty or `.` segments, a trailing `/` kept when the request had one (it
/// asks for a directory's index). The root itself is `""`.
///
/// Borrows from `raw` when nothing needed decoding or tidying, which is the
/// common case: `/style.css` becomes `style.css` without an allocation.
pub(super) fn clean_path(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| BadPath::Malformed)?;
    let Some(relative) = decoded.strip_prefix('/') else {
        return Err(BadPath::Malformed);
    };
    if relative.contains(['\\', '\0']) {
        return Err(BadPath::Malformed);
    }
    let mut tidy = true;
    let mut segments = relative.split('/').peekable();
    while let Some(segment) = segments.next() {
        match segment {
            // `a//b` and `a/./b` name `a/b`; a final empty segment is the
            // trailing slash, which is kept.
            "" if segments.peek().is_some() => tidy = false,
            "." => tidy = false,
            ".." => return Err(BadPath::Climbs),
            s if s.starts_with('.') => return Err(BadPath::Hidden),
            _ => {}
        }
    }
    if tidy {
        return Ok(match decoded {
            Cow::Borrowed(s) => Cow::Borrowed(&s[1..]),
            Cow::Owned(s) => Cow::Owned(s[1..].to_owned()),
        });
    }
    let kept: Vec<&str> = relative
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let mut path = kept.join("/");
    if !path.is_empty() && (relative.ends_with('/') || relative.ends_with("/.")) {
        path.push('/');
    }
    Ok(Cow::Owned(path))
}

/// Whether a cleaned path is in directory form (`""`, `docs/`).
fn is_directory_form(key: &str) -> bool {
    key.is_empty() || key.ends_with('/')
}

/// The file a cleaned path asks for: a directory form asks for its index.
fn file_for(key: &str) -> Cow<'_, str> {
    if is_directory_form(key) {
        Cow::Owned(format!("{key}{INDEX}"))
    } else {
        Cow::Borrowed(key)
    }
}

/// The Content-Type for a file name, by extension; anything unknown is
/// plain bytes (and, with `nosniff`, stays that way in the browser).
pub(super) fn content_type(name: &str) -> &'static str {
    const TYPES: &[(&str, &str)] = &[
        ("html", "text/html; charset=utf-8"),
        ("htm", "text/html; charset=utf-8"),
        ("css", "text/css; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"),
        ("mjs", "text/javascript; charset=utf-8"),
        ("json", "application/json"),
        ("map", "application/json"),
        ("webmanifest", "application/manifest+json"),
        ("xml", "application/xml"),
        ("txt", "text/plain; charset=utf-8"),
        ("md", "text/markdown; charset=utf-8"),
        ("csv", "text/csv; charset=utf-8"),
        ("svg", "image/svg+xml"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("avif", "image/avif"),
        ("ico", "image/x-icon"),
        ("woff2", "font/woff2"),
        ("woff", "font/woff"),
        ("ttf", "font/ttf"),
        ("otf", "font/otf"),
        ("wasm", "application/wasm"),
        ("pdf", "application/pdf"),
    ];
    let file = name.rsplit('/').next().unwrap_or(name);
    file.rsplit_once('.')
        .and_then(|(_, ext)| {
            TYPES
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(ext))
        })
        .map_or("application/octet-stream", |(_, mime)| mime)
}

/// A file found under the root, with the response headers that describe it
/// made once, when it is looked up.
pub(super) struct StaticFile {
    /// The real path (symlinks resolved), inside the root.
    path: PathBuf,
    pub(super) len: u64,
    modified: SystemTime,
    /// The contents, for files small enough to keep in memory.
    pub(super) body: Option<Bytes>,
    pub(super) content_type: HeaderValue,
    pub(super) content_length: HeaderValue,
    pub(super) etag: HeaderValue,
    pub(super) last_modified: HeaderValue,
    checked: Instant,
}

impl StaticFile {
    /// `name` is the file as asked for: its extension sets the type, even
    /// when a symlink leads to a file named otherwise.
    fn new(
        path: PathBuf,
        name: &str,
        len: u64,
        modified: SystemTime,
        body: Option<Bytes>,
    ) -> StaticFile {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        // nginx's ETag is mtime-size; nanoseconds tell apart two edits within
        // one second that leave the size unchanged.
        let etag = format!(
            "\"{:x}.{:x}-{:x}\"",
            since_epoch.as_secs(),
            since_epoch.subsec_nanos(),
            len
        );
        StaticFile {
            content_type: HeaderValue::from_static(content_type(name)),
            content_length: HeaderValue::from(len),
            etag: HeaderValue::try_from(etag).expect("an ETag of hex digits is a header value"),
            last_modified: HeaderValue::try_from(httpdate::fmt_http_date(modified))
                .expect("an HTTP date is a header value"),
            path,
            len,
            modified,
            body,
            checked: Instant::now(),
        }
    }

    /// The modification time in whole seconds, the precision of
    /// `Last-Modified` and `If-Modified-Since`.
    pub(super) fn modified_secs(&self) -> u64 {
        self.modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn is_fresh(&self) -> bool {
        self.checked.elapsed() < REVALIDATE_AFTER
    }

    fn unchanged(&self, path: &Path, len: u64, modified: SystemTime) -> bool {
        self.path == path && self.len == len && self.modified == modified
    }

    /// The same file, trusted for another second.
    fn rechecked(&self) -> StaticFile {
        StaticFile {
            path: self.path.clone(),
            body: self.body.clone(),
            content_type: self.content_type.clone(),
            content_length: self.content_length.clone(),
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
            checked: Instant::now(),
            ..*self
        }
    }

    /// The contents as a response body: from memory, or streamed from disk
    /// in chunks for a file too large to keep.
    pub(super) fn stream(&self) -> UnsyncBoxBody<Bytes, io::Error> {
        let path = self.path.clone();
        let chunks = stream::try_unfold(
            (None::<tokio::fs::File>, self.len),
            move |(file, remaining)| {
                let path = path.clone();
                async move {
                    if remaining == 0 {
                        return Ok(None);
                    }
                    let mut file = match file {
                        Some(file) => file,
                        None => tokio::fs::File::open(&path).await?,
                    };
                    let want = remaining.min(STREAM_CHUNK as u64) as usize;
                    let mut chunk = BytesMut::with_capacity(want);
                    while chunk.len() < want {
                        if file.read_buf(&mut chunk).await? == 0 {
                            // Shorter than when it was looked up: the client
                            // sees a truncated body rather than made-up bytes.
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("{} shrank while being sent", path.display()),
                            ));
                        }
                    }
                    chunk.truncate(want);
                    let left = remaining - want as u64;
                    Ok(Some((Frame::data(chunk.freeze()), (Some(file), left))))
                }
            },
        );
        StreamBody::new(chunks).boxed_unsync()
    }
}

/// What a cleaned path named on disk.
pub(super) enum Lookup {
    File(Arc<StaticFile>),
    /// A directory asked for without its trailing slash: the client is sent
    /// to the slashed form, so that the index's relative links work.
    Directory,
    Missing,
    /// A symlink (or a path through one) leading outside the root.
    Outside(PathBuf),
}

/// The site's files: the canonical root and the in-memory cache.
pub(super) struct Files {
    root: PathBuf,
    cache: RwLock<Cache>,
    disk_timeout: Duration,
}

#[derive(Default)]
struct Cache {
    files: HashMap<Box<str>, Arc<StaticFile>>,
    bytes: usize,
}

impl Files {
    /// Files under `root`, which must be a directory.
    pub(super) async fn open(root: &Path, disk_timeout: Duration) -> io::Result<Files> {
        let root = tokio::fs::canonicalize(root).await?;
        if !tokio::fs::metadata(&root).await?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Files {
            root,
            cache: RwLock::default(),
            disk_timeout,
        })
    }

    /// The file a cleaned path (from [`clean_path`]) names.
    pub(super) async fn lookup(&self, key: &str) -> io::Result<Lookup> {
        let cached = self
            .cache
            .read()
            .expect("file cache lock")
            .files
            .get(key)
            .cloned();
        if let Some(file) = &cached
            && file.is_fresh()
        {
            return Ok(Lookup::File(file.clone()));
        }

        let root = self.root.clone();
        let relative = file_for(key).into_owned();
        let index = is_directory_form(key);
        let look = tokio::task::spawn_blocking(move || look_up(&root, &relative, index, cached));
        let found = tokio::time::timeout(self.disk_timeout, look)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the disk took too long"))?
            .map_err(io::Error::other)??;
        if let Lookup::File(file) = &found {
            self.remember(key, file);
        }
        Ok(found)
    }

    fn remember(&self, key: &str, file: &Arc<StaticFile>) {
        let mut cache = self.cache.write().expect("file cache lock");
        let size = file.body.as_ref().map_or(0, Bytes::len);
        let replaced = cache
            .files
            .get(key)
            .and_then(|f| f.body.as_ref())
            .map_or(0, Bytes::len);
        let bytes = cache.bytes - replaced + size;
        let paths = cache.files.len() + usize::from(!cache.files.contains_key(key));
        // Full: the file is still served, just read again next time.
        if bytes <= CACHE_BUDGET && paths <= MAX_CACHED_PATHS {
            cache.files.insert(key.into(), file.clone());
            cache.bytes = bytes;
        }
    }
}

/// The blocking half of a lookup, on tokio's blocking threads. `index`:
/// `relative` is a directory's index, asked for by the directory's path.
fn look_up(
    root: &Path,
    relative: &str,
    index: bool,
    previous: Option<Arc<StaticFile>>,
) -> io::Result<Lookup> {
    let real = match fs::canonicalize(root.join(relative)) {
        Ok(real) => real,
        Err(e) if is_missing(&e) => return Ok(Lookup::Missing),
        Err(e) => return Err(e),
    };
    if !real.starts_with(root) {
        return Ok(Lookup::Outside(real));
    }
    let meta = fs::metadata(&real)?;
    if meta.is_dir() {
        // `docs/` whose index is itself a directory is not a page.
        return Ok(if index {
            Lookup::Missing
        } else {
            Lookup::Directory
        });
    }
    if !meta.is_file() {
        // FIFOs, sockets, devices: reading them could block forever.
        return Ok(Lookup::Missing);
    }
    let modified = meta.modified()?;
    if let Some(previous) = previous
        && previous.unchanged(&real, meta.len(), modified)
    {
        return Ok(Lookup::File(Arc::new(previous.rechecked())));
    }
    if meta.len() > MAX_CACHED_FILE {
        return Ok(Lookup::File(Arc::new(StaticFile::new(
            real,
            relative,
            meta.len(),
            modified,
            None,
        ))));
    }
    let mut file = fs::File::open(&real)?;
    // Size and time from the open file, so that they describe what is read.
    let meta = file.metadata()?;
    let mut contents = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut contents)?;
    Ok(Lookup::File(Arc::new(StaticFile::new(
        real,
        relative,
        contents.len() as u64,
        meta.modified()?,
        Some(Bytes::from(contents)),
    ))))
}

/// Errors that mean "no such page" rather than "the server is broken".
fn is_missing(error: &io::Error) -> bool {
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
    use super::super::scratch::ScratchDir;
    use super::*;

    fn file(found: io::Result<Lookup>) -> Arc<StaticFile> {
        match found.expect("the lookup works") {
            Lookup::File(file) => file,
            _ => panic!("expected a file"),
        }
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_and_a_changed_one_is() {
        let site = ScratchDir::new();
        site.write("a.txt", "one");
        let root = fs::canonicalize(site.path()).unwrap();
        let first = file(look_up(&root, "a.txt", false, None));
        assert_eq!(first.body.as_deref(), Some(&b"one"[..]));

        let again = file(look_up(&root, "a.txt", false, Some(first.clone())));
        assert_eq!(again.etag, first.etag);
        let bytes = |f: &StaticFile| f.body.as_ref().unwrap().as_ptr();
        assert_eq!(
            bytes(&again),
            bytes(&first),
            "the same bytes, not a new read"
        );

        site.write("a.txt", "three");
        let changed = file(look_up(&root, "a.txt", false, Some(again)));
        assert_eq!(changed.body.as_deref(), Some(&b"three"[..]));
        assert_ne!(changed.etag, first.etag);
    }

    #[test]
    fn large_files_are_described_but_not_kept() {
        let site = ScratchDir::new();
        let size = MAX_CACHED_FILE as usize + 1;
        site.write("big.bin", vec![0u8; size]);
        let root = fs::canonicalize(site.path()).unwrap();
        let big = file(look_up(&root, "big.bin", false, None));
        assert!(big.body.is_none());
        assert_eq!(big.len, size as u64);
        assert_eq!(big.content_length, size.to_string().as_str());
    }

    #[test]
    fn what_is_not_a_file_is_told_apart() {
        let site = ScratchDir::new();
        site.write("docs/index.html", "docs");
        site.write("odd/index.html/x", "a directory named like an index");
        let root = fs::canonicalize(site.path()).unwrap();
        assert!(matches!(
            look_up(&root, "docs", false, None),
            Ok(Lookup::Directory)
        ));
        assert_eq!(
            file(look_up(&root, "docs/index.html", true, None))
                .body
                .as_deref(),
            Some(&b"docs"[..])
        );
        assert!(matches!(
            look_up(&root, "odd/index.html", true, None),
            Ok(Lookup::Missing)
        ));
        assert!(matches!(
            look_up(&root, "nowhere.html", false, None),
            Ok(Lookup::Missing)
        ));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
            assert!(matches!(
                look_up(&root, "escape/etc/hostname", false, None),
                Ok(Lookup::Outside(_)) | Ok(Lookup::Missing)
            ));
            assert!(matches!(
                look_up(&root, "escape", false, None),
                Ok(Lookup::Outside(_))
            ));
        }
    }

    #[test]
    fn clean_paths_borrow_and_keep_the_trailing_slash() {
        assert_eq!(clean_path("/").unwrap(), "");
        assert_eq!(clean_path("/style.css").unwrap(), "style.css");
        assert!(matches!(
            clean_path("/style.css").unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(clean_path("/docs/").unwrap(), "docs/");
        assert_eq!(clean_path("/a%20b.txt").unwrap(), "a b.txt");
    }

    #[test]
    fn untidy_paths_are_tidied() {
        assert_eq!(clean_path("//a///b").unwrap(), "a/b");
        assert_eq!(clean_path("/./a/./b/").unwrap(), "a/b/");
        assert_eq!(clean_path("/a/.").unwrap(), "a/");
        assert_eq!(clean_path("/%2fa%2fb").unwrap(), "a/b");
    }

    #[test]
    fn climbing_out_is_refused_however_it_is_spelled() {
        for path in [
            "/..",
            "/../Cargo.toml",
            "/a/../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/%2E%2E/Cargo.toml",
            "/..%2fCargo.toml",
            "/%2e%2e%2fCargo.toml",
            "/a/..",
        ] {
            assert_eq!(clean_path(path), Err(BadPath::Climbs), "{path}");
        }
    }

    #[test]
    fn backslashes_nul_and_bad_utf8_are_malformed() {
        for path in [
            "/..\\Cargo.toml",
            "/..%5cCargo.toml",
            "/index.html%00.txt",
            "/%ff",
            "*",
            "",
        ] {
            assert_eq!(clean_path(path), Err(BadPath::Malformed), "{path}");
        }
    }

    #[test]
    fn dot_files_are_hidden() {
        assert_eq!(clean_path("/.git/config"), Err(BadPath::Hidden));
        assert_eq!(clean_path("/a/.env"), Err(BadPath::Hidden));
        assert_eq!(clean_path("/%2eenv"), Err(BadPath::Hidden));
    }

    #[test]
    fn directories_ask_for_their_index() {
        assert_eq!(file_for(""), "index.html");
        assert_eq!(file_for("docs/"), "docs/index.html");
        assert_eq!(file_for("a.css"), "a.css");
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/x/INDEX.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("a.woff2"), "font/woff2");
        assert_eq!(content_type("a.tar.gz"), "application/octet-stream");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert_eq!(content_type("dir.css/README"), "application/octet-stream");
    }
}
