//! The text of every configuration file read, and spans into it.
//!
//! Besides the files themselves the map holds one *expansion* text: the
//! lines that parameter substitution, `~SEQ`/`~LST` blocks and multi-line
//! definitions produced. Each of its lines remembers the file line it came
//! from and the expansion that made it, so that a diagnostic on expanded
//! text still names the original `file:line` and the iteration.

use std::path::{Path, PathBuf};
use std::rc::Rc;

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
    /// For text that an expansion produced: which one (e.g. `~SEQ I=3 at
    /// t.conf:30`); `line_text` is then the expanded line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expansion: Option<String>,
}

/// Where a line of the expansion text comes from.
#[derive(Debug, Clone, Copy)]
pub struct LineOrigin {
    pub file: FileId,
    /// 1-based line in `file`.
    pub line: u32,
    /// The innermost expansion step, an index into the frames (or NO_FRAME).
    pub frame: u32,
}

/// No expansion frame.
pub const NO_FRAME: u32 = u32::MAX;

/// One expansion step: a `~SEQ`/`~LST` iteration or a multi-line parameter.
#[derive(Debug)]
struct Frame {
    parent: u32,
    what: Box<str>,
    file: FileId,
    line: u32,
}

struct SourceFile {
    path: PathBuf,
    text: Rc<String>,
    line_starts: Vec<u32>,
    /// For the expansion text: one entry per line.
    origins: Option<Vec<LineOrigin>>,
}

/// All files read while loading one configuration.
#[derive(Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
    frames: Vec<Frame>,
    expansion: Option<FileId>,
}

fn line_starts(text: &str) -> Vec<u32> {
    let mut starts = Vec::with_capacity(text.len() / 24 + 1);
    starts.push(0);
    starts.extend(
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i as u32 + 1),
    );
    starts.shrink_to_fit();
    starts
}

impl SourceMap {
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            line_starts: line_starts(&text),
            text: Rc::new(text),
            origins: None,
        });
        FileId((self.files.len() - 1) as u32)
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0 as usize].text
    }

    /// A shared handle on a file's text (kept while the map is changed).
    pub fn text_rc(&self, id: FileId) -> Rc<String> {
        Rc::clone(&self.files[id.0 as usize].text)
    }

    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id.0 as usize].path
    }

    /// Records an expansion step; `parent` is the enclosing one (or NO_FRAME).
    pub fn frame(&mut self, parent: u32, what: String, file: FileId, line: u32) -> u32 {
        self.frames.push(Frame {
            parent,
            what: what.into_boxed_str(),
            file,
            line,
        });
        (self.frames.len() - 1) as u32
    }

    /// Appends one expanded line; returns the span of its text.
    pub fn add_expanded(&mut self, line: &str, origin: LineOrigin) -> Span {
        let id = match self.expansion {
            Some(id) => id,
            None => {
                self.files.push(SourceFile {
                    path: PathBuf::from("<expansion>"),
                    text: Rc::new(String::new()),
                    line_starts: Vec::new(),
                    origins: Some(Vec::new()),
                });
                let id = FileId((self.files.len() - 1) as u32);
                self.expansion = Some(id);
                id
            }
        };
        let f = &mut self.files[id.0 as usize];
        // Spans handed out earlier stay valid: text is only appended.
        let text = Rc::make_mut(&mut f.text);
        let start = text.len() as u32;
        // A line break inside would shift the line table: never store one.
        text.extend(line.chars().map(|c| if c == '\n' { ' ' } else { c }));
        let end = text.len() as u32;
        text.push('\n');
        f.line_starts.push(start);
        if let Some(o) = f.origins.as_mut() {
            o.push(origin);
        }
        Span {
            file: id,
            start,
            end,
        }
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        let text = self.text(span.file);
        text.get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// `path:line` of a file line, for messages.
    pub fn describe_line(&self, file: FileId, line: u32) -> String {
        format!("{}:{line}", self.path(file).display())
    }

    fn expansion_note(&self, mut frame: u32) -> Option<String> {
        let mut parts = Vec::new();
        // Frames only point at earlier frames: the walk ends.
        while let Some(f) = self.frames.get(frame as usize) {
            parts.push(format!(
                "{} at {}",
                f.what,
                self.describe_line(f.file, f.line)
            ));
            frame = f.parent;
        }
        (!parts.is_empty()).then(|| parts.join(", within "))
    }

    pub fn locate(&self, span: Span) -> Location {
        let file = &self.files[span.file.0 as usize];
        let text: &str = &file.text;
        let start = (span.start as usize).min(text.len());
        let line_idx = match file.line_starts.binary_search(&(start as u32)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_start = file.line_starts.get(line_idx).map_or(0, |&s| s as usize);
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let col = text[line_start..start].chars().count() as u32 + 1;
        let end = (span.end as usize).clamp(start, line_end);
        let width = (text[start..end].chars().count() as u32).max(1);
        let (path, line, expansion) = match file.origins.as_ref().and_then(|o| o.get(line_idx)) {
            Some(o) => (
                self.path(o.file).display().to_string(),
                o.line,
                Some(
                    self.expansion_note(o.frame)
                        .unwrap_or_else(|| "parameter substitution".into()),
                ),
            ),
            None => (file.path.display().to_string(), line_idx as u32 + 1, None),
        };
        Location {
            path,
            line,
            col,
            width,
            line_text: line_text.to_string(),
            expansion,
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
        assert_eq!(loc.expansion, None);
    }

    #[test]
    fn expanded_lines_point_at_their_origin() {
        let mut map = SourceMap::default();
        let id = map.add(Path::new("k.conf"), "x\n~SEQ(I,1,2) priority $I\n".into());
        let f = map.frame(NO_FRAME, "~SEQ I=2".into(), id, 2);
        map.add_expanded(
            "priority 1",
            LineOrigin {
                file: id,
                line: 2,
                frame: NO_FRAME,
            },
        );
        let span = map.add_expanded(
            "priority 2",
            LineOrigin {
                file: id,
                line: 2,
                frame: f,
            },
        );
        let loc = map.locate(Span {
            start: span.start + 9,
            ..span
        });
        assert_eq!((loc.path.as_str(), loc.line, loc.col), ("k.conf", 2, 10));
        assert_eq!(loc.line_text, "priority 2");
        assert_eq!(loc.expansion.as_deref(), Some("~SEQ I=2 at k.conf:2"));
    }
}
