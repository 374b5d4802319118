//! From a URL path to a file of the site, and never anything else.
//!
//! A site comes from one of two backends, behind one [`Files`]:
//!
//! - `disk`: a directory ([`SiteSource::Dir`]), read through a handle on
//!   it, with small files kept in memory;
//! - `builtin`: the files carried in the binary ([`SiteSource::BuiltIn`]),
//!   all in memory from the start.
//!
//! Both answer a cleaned path with the same [`Lookup`], under the same
//! rules: a path in directory form (`""`, `docs/`) asks for that
//! directory's `index.html`, a directory named without its slash is
//! [`Lookup::Directory`] (the client is redirected), a directory without an
//! index is missing (there are no listings), and the types come from
//! [`content_type`].
//!
//! Two guards keep every request inside the site, one behind the other:
//!
//! 1. [`clean_path`] works on the path as text, for both backends: it
//!    decodes `%xx` escapes first (so `%2e%2e` and `%2f` are seen for what
//!    they are), then refuses any `..` segment, backslash or NUL, and hides
//!    dot-files.
//! 2. On disk, what is left is opened *beneath* the root's directory handle
//!    (`openat2` with `RESOLVE_BENEATH` on Linux, a walk one component at a
//!    time elsewhere: see `disk`), so the kernel itself refuses any path
//!    that leaves the root, symlinks included. The file is then described
//!    and read through that same handle, never opened again by name: a
//!    directory swapped for a symlink between a check and an open has no
//!    window to slip through, because there is no separate check. Symlinks
//!    that stay inside the root keep working; one that points out of it (a
//!    symlink in `static/` to `/etc`) is a 404. The built-in site has no
//!    names to follow at all.

mod builtin;
mod disk;

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderValue;
use percent_encoding::percent_decode_str;

use super::SiteSource;
use super::request::Body;

/// How much of a streamed file is read at a time.
const STREAM_CHUNK: usize = 128 * 1024;

/// The file served for a directory.
const INDEX: &str = "index.html";

/// The site's files, from whichever backend its [`SiteSource`] names.
pub(super) struct Files(Backend);

enum Backend {
    Disk(disk::Disk),
    BuiltIn(builtin::BuiltIn),
}

impl Files {
    /// Open the site and check that it can be served: its root is there and
    /// has an `index.html`.
    pub(super) async fn open(source: &SiteSource) -> anyhow::Result<Files> {
        Ok(Files(match source {
            SiteSource::Dir(root) => Backend::Disk(disk::Disk::open(root).await?),
            SiteSource::BuiltIn => Backend::BuiltIn(builtin::BuiltIn::open()?),
        }))
    }

    /// The file a cleaned path (from [`clean_path`]) names.
    pub(super) async fn lookup(&self, key: &str) -> io::Result<Lookup> {
        match &self.0 {
            Backend::Disk(disk) => disk.lookup(key).await,
            Backend::BuiltIn(builtin) => Ok(builtin.lookup(key)),
        }
    }

    /// Where the files come from, for the log.
    pub(super) fn describe(&self) -> String {
        match &self.0 {
            Backend::Disk(disk) => disk.root().display().to_string(),
            Backend::BuiltIn(_) => crate::builtin::BUILT_IN.to_string(),
        }
    }
}

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

/// A file of the site, with the response headers that describe it made
/// once, when it is looked up.
pub(super) struct StaticFile {
    pub(super) len: u64,
    modified: SystemTime,
    contents: Contents,
    pub(super) content_type: HeaderValue,
    pub(super) content_length: HeaderValue,
    pub(super) etag: HeaderValue,
    pub(super) last_modified: HeaderValue,
}

/// Where a file's bytes come from.
enum Contents {
    /// Small files: read once, kept, and sent from memory.
    Memory(Bytes),
    /// A file too large to keep: the handle it was looked up through, read
    /// at an offset per chunk (`pread`), so the bytes sent are those of the
    /// file that was checked, whatever has happened to its name since.
    Open(Arc<fs::File>),
}

impl StaticFile {
    /// `name` is the file as asked for: its extension sets the type, even
    /// when a symlink leads to a file named otherwise. `etag` is the
    /// backend's own (quoted, and made of hex digits and punctuation).
    fn new(
        name: &str,
        len: u64,
        modified: SystemTime,
        etag: String,
        contents: Contents,
    ) -> StaticFile {
        StaticFile {
            content_type: HeaderValue::from_static(content_type(name)),
            content_length: HeaderValue::from(len),
            etag: HeaderValue::try_from(etag).expect("an ETag of hex digits is a header value"),
            last_modified: HeaderValue::try_from(httpdate::fmt_http_date(modified))
                .expect("an HTTP date is a header value"),
            len,
            modified,
            contents,
        }
    }

    /// The modification time in whole seconds, the precision of
    /// `Last-Modified` and `If-Modified-Since`.
    pub(super) fn modified_secs(&self) -> u64 {
        self.modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// The bytes, for a file kept in memory.
    fn in_memory(&self) -> Option<&Bytes> {
        match &self.contents {
            Contents::Memory(bytes) => Some(bytes),
            Contents::Open(_) => None,
        }
    }

    /// The contents as a response body: from memory, or streamed in chunks
    /// from the open handle for a file too large to keep.
    pub(super) fn body(&self) -> Body {
        let file = match &self.contents {
            Contents::Memory(bytes) => return Either::Left(Full::new(bytes.clone())),
            Contents::Open(file) => file.clone(),
        };
        let len = self.len;
        let chunks = stream::try_unfold(0u64, move |offset| {
            let file = file.clone();
            async move {
                if offset == len {
                    return Ok(None);
                }
                let want = (len - offset).min(STREAM_CHUNK as u64) as usize;
                let chunk = tokio::task::spawn_blocking(move || read_chunk(&file, offset, want))
                    .await
                    .map_err(io::Error::other)??;
                Ok(Some((Frame::data(chunk), offset + want as u64)))
            }
        });
        Either::Right(StreamBody::new(chunks).boxed_unsync())
    }
}

/// `want` bytes of `file` from `offset`, on a blocking thread.
fn read_chunk(file: &fs::File, offset: u64, want: usize) -> io::Result<Bytes> {
    let mut chunk = vec![0; want];
    let mut filled = 0;
    while filled < want {
        let n = read_at(file, &mut chunk[filled..], offset + filled as u64)?;
        if n == 0 {
            // Shorter than when it was looked up: the client sees a
            // truncated body rather than made-up bytes.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being sent",
            ));
        }
        filled += n;
    }
    Ok(Bytes::from(chunk))
}

#[cfg(unix)]
fn read_at(file: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// What a cleaned path named.
pub(super) enum Lookup {
    File(Arc<StaticFile>),
    /// A directory asked for without its trailing slash: the client is sent
    /// to the slashed form, so that the index's relative links work.
    Directory,
    Missing,
    /// A symlink (or a path through one) leading outside the root, refused.
    /// The path is where it leads, for the log only.
    Outside(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

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
