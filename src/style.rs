//! Terminal styling, decided once: colour only on a terminal, and never
//! with `NO_COLOR` set (no-color.org).

use std::io::IsTerminal;

use crate::story::Line;

/// Whether to paint, and how.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    on: bool,
}

impl Style {
    /// For what goes to stdout.
    pub fn for_stdout() -> Style {
        Style {
            on: colour_allowed() && std::io::stdout().is_terminal(),
        }
    }

    /// For what goes to stderr (logs).
    pub fn for_stderr() -> Style {
        Style {
            on: colour_allowed() && std::io::stderr().is_terminal(),
        }
    }

    /// No colour at all.
    pub fn off() -> Style {
        Style { on: false }
    }

    pub fn is_on(self) -> bool {
        self.on
    }

    /// `text` in an SGR colour or weight (`1` bold, `31` red, …).
    pub fn paint(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// One line of the story, with its step number and actor in columns.
    pub fn line(self, line: &Line) -> String {
        match line.number {
            Some(n) => format!(
                "  {}  {} {}\n",
                self.paint("36;1", &format!("{n}.")),
                // Padded before painting: escape codes have no width.
                self.paint("1", &format!("{:<10}", line.who)),
                line.text
            ),
            None => format!("      {}\n", self.paint("2", &line.text)),
        }
    }
}

fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none()
}
