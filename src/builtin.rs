//! The demo's zone files and web site, carried inside the binary.
//!
//! `cargo install --path .` puts one file on the machine; `dnstrail demo`
//! then works from any directory, with the hierarchy of `demo-zones/` and
//! the site of `static/` as they were when it was built. `--zones DIR` and
//! `--static DIR` use files on disk instead, and `dnstrail init DIR` writes
//! the built-in ones out, to edit and then use.

use std::path::{Path, PathBuf};

use anyhow::Context;

mod files {
    include!(concat!(env!("OUT_DIR"), "/builtin_files.rs"));
}

/// How built-in files are named in messages (`<built-in>/com.zone:12: …`).
pub const BUILT_IN: &str = "<built-in>";

/// The zone files (and root hints) of `demo-zones/`: name and contents.
pub fn zone_files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    files::ZONE_FILES.iter().copied()
}

/// The web site of `static/`: path relative to the site's root, and contents.
pub fn site_files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    files::SITE_FILES.iter().copied()
}

/// The built-in site file at `path` (relative, as a URL names it).
pub fn site_file(path: &str) -> Option<&'static [u8]> {
    site_files()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| bytes)
}

/// `dnstrail init DIR`: write the built-in zones to `DIR/zones` and the site
/// to `DIR/site`, refusing to overwrite files that exist. Returns the two
/// directories.
pub fn write_out(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let zones = dir.join("zones");
    let site = dir.join("site");
    for (target, files) in [
        (&zones, zone_files().collect::<Vec<_>>()),
        (&site, site_files().collect::<Vec<_>>()),
    ] {
        std::fs::create_dir_all(target)
            .with_context(|| format!("creating {}", target.display()))?;
        for (name, bytes) in files {
            let path = target.join(name);
            anyhow::ensure!(
                !path.exists(),
                "{} exists already; choose an empty directory",
                path.display()
            );
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok((zones, site))
}
