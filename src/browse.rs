//! The built-in browser (to be built).

use std::process::ExitCode;

use crate::cli::BrowseArgs;

/// `dnstrail browse`.
pub async fn command(_args: BrowseArgs) -> anyhow::Result<ExitCode> {
    eprintln!("dnstrail: `browse` is not built yet");
    Ok(ExitCode::from(2))
}
