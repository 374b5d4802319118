//! The site carried in the binary ([`crate::builtin::site_files`]): every
//! file described once, when the site is opened, and served from memory.
//!
//! Nothing here touches the disk, so there is nothing to revalidate and no
//! name to follow out of the site. The validators are chosen so that a
//! client's copy is current exactly when its bytes are:
//!
//! - `ETag` is a hash of the contents: the same bytes keep the same tag
//!   across restarts, and new bytes get a new one.
//! - `Last-Modified` is the binary's build time, as the modification time
//!   of the running executable says (`cargo build` and `cargo install` both
//!   write it); if that cannot be read, the time the site was opened. The
//!   bytes cannot have changed after either.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::{Contents, INDEX, Lookup, StaticFile, file_for, is_directory_form};

/// The built-in site: each file by its path, and every directory holding
/// one.
pub(super) struct BuiltIn {
    files: HashMap<&'static str, Arc<StaticFile>>,
    /// `docs/` for every directory with a file somewhere under it.
    directories: HashSet<String>,
}

impl BuiltIn {
    /// The site of `static/` as it was when the binary was built.
    pub(super) fn open() -> anyhow::Result<BuiltIn> {
        let site = BuiltIn::new(crate::builtin::site_files(), build_time());
        anyhow::ensure!(
            site.files.contains_key(INDEX),
            "the built-in site has no {INDEX}"
        );
        Ok(site)
    }

    /// `files` (path relative to the root, contents), all last modified at
    /// `modified`.
    fn new(
        files: impl Iterator<Item = (&'static str, &'static [u8])>,
        modified: SystemTime,
    ) -> BuiltIn {
        let mut site = BuiltIn {
            files: HashMap::new(),
            directories: HashSet::new(),
        };
        for (path, bytes) in files {
            let mut hash = DefaultHasher::new();
            bytes.hash(&mut hash);
            let etag = format!("\"{:016x}\"", hash.finish());
            let contents = Contents::Memory(Bytes::from_static(bytes));
            let file = StaticFile::new(path, bytes.len() as u64, modified, etag, contents);
            site.files.insert(path, Arc::new(file));
            for (end, _) in path.match_indices('/') {
                site.directories.insert(path[..=end].to_string());
            }
        }
        site
    }

    /// The file a cleaned path (from [`super::clean_path`]) names, under
    /// the same rules as a directory on disk.
    pub(super) fn lookup(&self, key: &str) -> Lookup {
        if let Some(file) = self.files.get(file_for(key).as_ref()) {
            return Lookup::File(file.clone());
        }
        if !is_directory_form(key) && self.directories.contains(&format!("{key}/")) {
            return Lookup::Directory;
        }
        Lookup::Missing
    }
}

/// When the running binary was built (see the module docs).
fn build_time() -> SystemTime {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|_| SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: &[(&str, &[u8])] = &[
        ("index.html", b"home"),
        ("style.css", b"body {}"),
        ("docs/index.html", b"docs"),
        ("docs/guide.txt", b"guide"),
        ("empty/deeper/note.txt", b"note"),
    ];

    fn site() -> BuiltIn {
        BuiltIn::new(FILES.iter().copied(), SystemTime::UNIX_EPOCH)
    }

    fn bytes(lookup: Lookup) -> Bytes {
        match lookup {
            Lookup::File(file) => file.in_memory().expect("in memory").clone(),
            _ => panic!("expected a file"),
        }
    }

    #[test]
    fn paths_and_directories_follow_the_rules_of_a_directory_on_disk() {
        let site = site();
        assert_eq!(bytes(site.lookup("")), "home");
        assert_eq!(bytes(site.lookup("docs/")), "docs");
        assert_eq!(bytes(site.lookup("docs/guide.txt")), "guide");
        assert!(matches!(site.lookup("docs"), Lookup::Directory));
        assert!(matches!(site.lookup("empty"), Lookup::Directory));
        assert!(matches!(site.lookup("empty/deeper"), Lookup::Directory));
        // No index, no listing.
        assert!(matches!(site.lookup("empty/"), Lookup::Missing));
        assert!(matches!(site.lookup("style.css/"), Lookup::Missing));
        assert!(matches!(site.lookup("nowhere.html"), Lookup::Missing));
        assert!(matches!(site.lookup("doc"), Lookup::Missing));
    }

    #[test]
    fn each_file_has_its_type_and_a_tag_from_its_bytes() {
        let site = site();
        let Lookup::File(css) = site.lookup("style.css") else {
            panic!("style.css is there");
        };
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        assert_eq!(css.content_length, "7");
        assert_eq!(css.last_modified, "Thu, 01 Jan 1970 00:00:00 GMT");

        let same = BuiltIn::new(
            [("other/name.css", &b"body {}"[..])].into_iter(),
            SystemTime::now(),
        );
        let Lookup::File(copy) = same.lookup("other/name.css") else {
            panic!("name.css is there");
        };
        assert_eq!(copy.etag, css.etag, "the same bytes, the same tag");
        let Lookup::File(index) = site.lookup("") else {
            panic!("the index is there");
        };
        assert_ne!(index.etag, css.etag);
    }

    #[test]
    fn the_real_built_in_site_opens() {
        let site = BuiltIn::open().expect("static/ has an index.html");
        assert_eq!(
            bytes(site.lookup("")),
            crate::builtin::site_file("index.html").unwrap()
        );
    }
}
