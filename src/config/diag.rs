//! Diagnostics: `file:line:col: severity: message`, the source line and a caret.

use std::fmt;

use super::source::{Location, SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where; `None` for problems with no place in a file (e.g. the file itself is missing).
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let Some(loc) = &self.location else {
            return write!(f, "{sev}: {}", self.message);
        };
        writeln!(
            f,
            "{}:{}:{}: {sev}: {}",
            loc.path, loc.line, loc.col, self.message
        )?;
        let num = loc.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, " {num} | {}", loc.line_text)?;
        let lead: String = loc
            .line_text
            .chars()
            .take(loc.col as usize - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, " {pad} | {lead}{}", "^".repeat(loc.width as usize))?;
        if let Some(exp) = &loc.expansion {
            write!(f, "\n {pad} = note: line {} as expanded by {exp}", loc.line)?;
        }
        Ok(())
    }
}

/// Diagnostics kept in full; past this many only the count goes on (a
/// hostile file can make millions, each holding its line).
pub const MAX_DIAGNOSTICS: usize = 1000;

/// The diagnostics collected while loading, in the order found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
    /// Errors and warnings past [`MAX_DIAGNOSTICS`], counted only.
    pub more_errors: usize,
    pub more_warnings: usize,
}

impl Diagnostics {
    /// Counts a diagnostic past the limit; true when it is to be kept.
    fn keep(&mut self, severity: Severity) -> bool {
        if self.items.len() < MAX_DIAGNOSTICS {
            return true;
        }
        match severity {
            Severity::Error => self.more_errors += 1,
            Severity::Warning => self.more_warnings += 1,
        }
        false
    }

    pub fn push(&mut self, sources: &SourceMap, severity: Severity, span: Span, message: String) {
        if self.keep(severity) {
            self.items.push(Diagnostic {
                severity,
                location: Some(sources.locate(span)),
                message,
            });
        }
    }

    pub fn push_unplaced(&mut self, severity: Severity, message: String) {
        if self.keep(severity) {
            self.items.push(Diagnostic {
                severity,
                location: None,
                message,
            });
        }
    }

    pub fn has_errors(&self) -> bool {
        self.more_errors > 0 || self.errors().next().is_some()
    }

    /// All errors, the ones not kept included.
    pub fn error_count(&self) -> usize {
        self.errors().count() + self.more_errors
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}")?;
        }
        if self.more_errors + self.more_warnings > 0 {
            writeln!(
                f,
                "... and {} more errors and {} more warnings (only the first {MAX_DIAGNOSTICS} diagnostics are shown)",
                self.more_errors, self.more_warnings
            )?;
        }
        Ok(())
    }
}
