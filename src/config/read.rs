//! Reading configuration files into one token stream: `include` (globs,
//! relative to the including file, loops refused) and keepalived's
//! conditional lines (`@id ...` / `@^id ...`, selected by `--config-id`).

use std::path::{Path, PathBuf};

use super::diag::{Diagnostics, Severity};
use super::lexer::{Token, TokenKind, lex};
use super::source::{SourceMap, Span};

pub struct Reader<'a> {
    pub sources: &'a mut SourceMap,
    pub diags: &'a mut Diagnostics,
    /// Lines `@id` are kept when `id` equals this; `@^id` when it differs.
    pub config_id: Option<&'a str>,
    /// The files being read, outermost first: (canonical path, path as named).
    stack: Vec<(PathBuf, PathBuf)>,
}

/// A line's first word that the reader acts on: `include`, a condition
/// (`@id`, `@^id`), a parameter definition (`$NAME=...`).
fn special(first: &str) -> bool {
    first == "include" || first.starts_with('@') || (first.starts_with('$') && first.contains('='))
}

impl<'a> Reader<'a> {
    pub fn new(
        sources: &'a mut SourceMap,
        diags: &'a mut Diagnostics,
        config_id: Option<&'a str>,
    ) -> Self {
        Reader {
            sources,
            diags,
            config_id,
            stack: Vec::new(),
        }
    }

    fn error(&mut self, span: Span, message: String) {
        self.diags
            .push(self.sources, Severity::Error, span, message);
    }

    fn warn(&mut self, span: Span, message: String) {
        self.diags
            .push(self.sources, Severity::Warning, span, message);
    }

    /// Tokens of `path` with its includes spliced in. `from` is the
    /// `include` statement that asked for it (None for the main file).
    pub fn read(&mut self, path: &Path, from: Option<Span>) -> Vec<Token> {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(pos) = self.stack.iter().position(|(c, _)| *c == canonical) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|(_, named)| named.display().to_string())
                .chain(std::iter::once(path.display().to_string()))
                .collect();
            let msg = format!(
                "include loop: {} is already being read ({}); remove one of these includes",
                path.display(),
                chain.join(" -> ")
            );
            match from {
                Some(span) => self.error(span, msg),
                None => self.diags.push_unplaced(Severity::Error, msg),
            }
            return Vec::new();
        }
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!(
                        "{} is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
                        path.display(),
                        e.utf8_error().valid_up_to()
                    );
                    match from {
                        Some(span) => self.error(span, msg),
                        None => self.diags.push_unplaced(Severity::Error, msg),
                    }
                    return Vec::new();
                }
            },
            Err(e) => {
                let msg = format!("cannot read {}: {e}", path.display());
                match from {
                    Some(span) => self.error(span, msg),
                    None => self.diags.push_unplaced(Severity::Error, msg),
                }
                return Vec::new();
            }
        };
        self.read_text(path, canonical, text)
    }

    /// Tokens of `text`, read as if from `path`, with its includes spliced in.
    pub fn read_text(&mut self, path: &Path, canonical: PathBuf, text: String) -> Vec<Token> {
        let file = self.sources.add(path, text);
        let (tokens, errors) = lex(file, self.sources.text(file));
        for e in errors {
            self.error(e.span, e.message);
        }
        // Most files have no include, no `@id` line and no `$NAME=`: their
        // tokens are the output as they are (large files: no copy).
        if !tokens
            .split_inclusive(|t| t.kind == TokenKind::Newline)
            .any(|line| line.first().and_then(Token::word).is_some_and(special))
        {
            return tokens;
        }
        self.stack.push((canonical, path.to_path_buf()));
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut tokens = tokens;
        let mut out = Vec::with_capacity(tokens.len());
        let mut rest = &mut tokens[..];
        while !rest.is_empty() {
            let len = rest
                .iter()
                .position(|t| t.kind == TokenKind::Newline)
                .map_or(rest.len(), |i| i + 1);
            let (line, tail) = rest.split_at_mut(len);
            rest = tail;
            let Some(skip) = self.select_line(line) else {
                continue;
            };
            let line = &mut line[skip..];
            match line.first().and_then(Token::word) {
                Some("include") => self.include(line, &dir, &mut out),
                Some(w) if w.starts_with('$') && w.contains('=') => {
                    self.error(
                        line[0].span,
                        "parameter definitions ($NAME=value) are not supported yet: write the value in place".into(),
                    );
                }
                // Moved, not cloned: the lexer's tokens are not used again.
                _ => out.extend(line.iter_mut().map(Token::take)),
            }
        }
        self.stack.pop();
        out
    }

    /// Applies a leading `@id` / `@^id` condition: how many tokens to drop
    /// from the front of the line (0 or 1), or None to drop the line.
    fn select_line(&self, line: &[Token]) -> Option<usize> {
        let Some(first) = line.first().and_then(Token::word) else {
            return Some(0);
        };
        let Some(cond) = first.strip_prefix('@') else {
            return Some(0);
        };
        let (negated, id) = match cond.strip_prefix('^') {
            Some(id) => (true, id),
            None => (false, cond),
        };
        let matches = self.config_id == Some(id);
        (matches != negated).then_some(1)
    }

    fn include(&mut self, line: &[Token], dir: &Path, out: &mut Vec<Token>) {
        let span = line[0].span;
        let patterns: Vec<&Token> = line[1..]
            .iter()
            .filter(|t| t.kind != TokenKind::Newline)
            .collect();
        if patterns.is_empty() || patterns.iter().any(|t| t.word().is_none()) {
            self.error(span, "include needs a file name or glob pattern".into());
            return;
        }
        for tok in patterns {
            let Some(pattern) = tok.word() else { continue };
            let full = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                dir.join(pattern)
            };
            let full_str = full.to_string_lossy().into_owned();
            let is_glob = pattern.contains(['*', '?', '[']);
            let mut files: Vec<PathBuf> = match glob::glob(&full_str) {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(e) => {
                    self.error(tok.span, format!("bad include pattern '{pattern}': {e}"));
                    continue;
                }
            };
            files.sort();
            if files.is_empty() {
                if is_glob {
                    self.warn(
                        tok.span,
                        format!("include pattern '{full_str}' matches no file"),
                    );
                } else {
                    self.error(
                        tok.span,
                        format!("included file '{full_str}' does not exist"),
                    );
                }
                continue;
            }
            for f in files {
                if !f.is_file() {
                    self.error(
                        tok.span,
                        format!("included path '{}' is not a regular file", f.display()),
                    );
                    continue;
                }
                let tokens = self.read(&f, Some(tok.span));
                out.extend(tokens);
                // Keep the file boundary a statement boundary.
                out.push(Token {
                    kind: TokenKind::Newline,
                    span: tok.span,
                });
            }
        }
    }
}
