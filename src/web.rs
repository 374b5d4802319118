//! The web server of www.example.com (to be built).

use std::process::ExitCode;

use crate::cli::WebArgs;

/// `dnstrail web`.
pub async fn command(_args: WebArgs) -> anyhow::Result<ExitCode> {
    eprintln!("dnstrail: `web` is not built yet");
    Ok(ExitCode::from(2))
}
