//! The text of every configuration file read, and spans into it.

use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// The smallest span covering `self` and `other` (same file assumed).
    pub fn to(self, other: Span) -> Span {
        if self.file != other.file {
            return self;
        }
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A resolved, printable position: `path:line:col` plus the line's text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub path: String,
    pub line: u32,
    pub col: u32,
    /// Width of the marked text in characters (at least 1).
    pub width: u32,
    pub line_text: String,
}

struct SourceFile {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

/// All files read while loading one configuration.
#[derive(Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            text,
            line_starts,
        });
        FileId((self.files.len() - 1) as u32)
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0 as usize].text
    }

    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id.0 as usize].path
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        let text = self.text(span.file);
        text.get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    pub fn locate(&self, span: Span) -> Location {
        let file = &self.files[span.file.0 as usize];
        let start = (span.start as usize).min(file.text.len());
        let line_idx = match file.line_starts.binary_search(&start) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = file.line_starts[line_idx];
        let line_end = file.text[line_start..]
            .find('\n')
            .map_or(file.text.len(), |i| line_start + i);
        let line_text = file.text[line_start..line_end].trim_end_matches('\r');
        let col = file.text[line_start..start].chars().count() as u32 + 1;
        let end = (span.end as usize).clamp(start, line_end);
        let width = (file.text[start..end].chars().count() as u32).max(1);
        Location {
            path: file.path.display().to_string(),
            line: line_idx as u32 + 1,
            col,
            width,
            line_text: line_text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_reports_line_column_and_width() {
        let mut map = SourceMap::default();
        let id = map.add(Path::new("k.conf"), "a {\n  priority 300\n}\n".into());
        let loc = map.locate(Span {
            file: id,
            start: 15,
            end: 18,
        });
        assert_eq!((loc.line, loc.col, loc.width), (2, 12, 3));
        assert_eq!(loc.line_text, "  priority 300");
    }
}
