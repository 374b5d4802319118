//! Embeds the demo zones and the web site in the binary, so an installed
//! `dnstrail` works from any directory. Every file under `demo-zones/` and
//! `static/` is listed, whatever its name; nothing about them is written in
//! the code.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::new();
    for (constant, dir) in [("ZONE_FILES", "demo-zones"), ("SITE_FILES", "static")] {
        println!("cargo:rerun-if-changed={dir}");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        files.sort();
        writeln!(code, "pub const {constant}: &[(&str, &[u8])] = &[").unwrap();
        for name in files {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(&name);
            println!("cargo:rerun-if-changed={}", path.display());
            writeln!(
                code,
                "    ({name:?}, include_bytes!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    std::fs::write(Path::new(&out).join("builtin_files.rs"), code)
        .expect("writing builtin_files.rs");
}
