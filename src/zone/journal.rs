//! The journal of a zone file: every change a dynamic update made, written
//! beside the zone file (`example.com.zone.jnl`) before the update is
//! answered, and replayed on top of the file whenever the zone is loaded.
//! So an accepted change survives `kill -9` and a restart, and the zone
//! file itself, comments and all, is never rewritten.
//!
//! ```text
//! ; change 1 of example.com., serial 2
//! - 03777777076578616d706c6503636f6d00000100010000012c00047f00002c ; www.example.com. 300 IN A 127.0.0.44
//! + 03777777076578616d706c6503636f6d00000100010000012c00047f00002e ; www.example.com. 300 IN A 127.0.0.46
//! ; ok
//! ```
//!
//! Each record is written in DNS wire form (hex, encoded and decoded by
//! hickory), so it comes back exactly, whatever its type; the zone-file
//! form after `;` is for people. A change counts only once its `; ok` line
//! is on disk: one cut short by a crash is ignored when replayed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

use super::{Zone, ZoneError};

/// Where the journal of a zone file is.
pub fn path_of(zone_file: &Path) -> PathBuf {
    let mut name = zone_file.as_os_str().to_owned();
    name.push(".jnl");
    PathBuf::from(name)
}

/// Whether a zone came from a file that can have a journal (the built-in
/// zones did not).
pub fn can_have_journal(zone: &Zone) -> bool {
    zone.file().is_file()
}

/// Append one change to the zone's journal and wait until it is on disk.
pub fn append(zone: &Zone, deleted: &[Record], added: &[Record]) -> std::io::Result<()> {
    let path = path_of(zone.file());
    let mut text = format!("; change of {}, serial {}\n", zone.origin(), zone.serial());
    for (sign, records) in [('-', deleted), ('+', added)] {
        for record in records {
            let wire = record
                .to_bytes()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
            text.push_str(&format!("{sign} {hex} ; {record}\n"));
        }
    }
    text.push_str("; ok\n");
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    // A new journal's name must be on disk too.
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// `zone` with every complete change of its journal applied, in order.
pub fn replay(zone: Zone) -> Result<Zone, ZoneError> {
    let path = path_of(zone.file());
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(zone);
    };
    let problem = |line: usize, reason: String| ZoneError {
        file: path.clone(),
        line: Some(line),
        reason,
    };
    let mut zone = zone;
    let (mut deleted, mut added) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let line = line.trim();
        if line == "; ok" {
            zone = zone
                .with_changes(&deleted, &added)
                .map_err(|reason| problem(number, format!("a change does not apply: {reason}")))?;
            deleted.clear();
            added.clear();
            continue;
        }
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let (sign, rest) = line.split_at(1);
        let hex = rest.split(';').next().unwrap_or("").trim();
        let record = decode(hex).ok_or_else(|| problem(number, "not a record".into()))?;
        match sign {
            "-" => deleted.push(record),
            "+" => added.push(record),
            _ => return Err(problem(number, "a line starts with + or -".into())),
        }
    }
    if !deleted.is_empty() || !added.is_empty() {
        tracing::warn!(
            "{}: the last change was cut short (no `; ok`) and is left out",
            path.display()
        );
    }
    Ok(zone)
}

fn decode(hex: &str) -> Option<Record> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<_>>()?;
    Record::from_bytes(&bytes).ok()
}
