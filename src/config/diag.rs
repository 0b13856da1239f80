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

/// The diagnostics collected while loading, in the order found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, sources: &SourceMap, severity: Severity, span: Span, message: String) {
        self.items.push(Diagnostic {
            severity,
            location: Some(sources.locate(span)),
            message,
        });
    }

    pub fn push_unplaced(&mut self, severity: Severity, message: String) {
        self.items.push(Diagnostic {
            severity,
            location: None,
            message,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
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
        Ok(())
    }
}
