//! Reading configuration files into the statement tree, line by line as
//! keepalived reads them: conditional lines (`@id ...` / `@^id ...`),
//! parameters (`$NAME=value`, multi-line definitions, `$NAME` / `${NAME}`
//! and the built-ins `${_PWD}`, `${_INSTANCE}`, `${_RANDOM [MIN [MAX]]}`,
//! `${_HASH}`, `${_BANG}`, `${_ENV NAME}`), sequence and list blocks
//! (`~SEQ`, `~SEQx`, `~LST`), and `include` with its variants, csh braces
//! and `include_check`.
//!
//! Lines that need none of this (nearly all of them) are split into tokens
//! straight from the file; the others are rewritten first and their words
//! come from the expansion text of the [`SourceMap`], which remembers the
//! file line and the iteration each expanded line comes from. Tokens go
//! to the [`TreeBuilder`] one by one: no token list is ever built.
//!
//! Limits keep hostile files from hurting a running daemon: how deep
//! includes and expansions nest, how many files are read, how much text
//! expansions make. Each limit is a clear error.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::diag::{Diagnostics, Severity};
use super::expand::{self, ExpandError, Expansion, Params, Reference, check};
use super::lexer::{LexError, Token, TokenKind, lex_into};
use super::source::{FileId, LineOrigin, NO_FRAME, SourceMap, Span};
use super::tree::{Node, TreeBuilder};

/// Files nested deeper than this (through `include`) are refused.
pub const MAX_INCLUDE_DEPTH: usize = 32;
/// Most files one load reads (includes fanning out can otherwise read the
/// same small files millions of times).
pub const MAX_FILES: usize = 4096;
/// Most bytes of configuration text one load holds: files read plus the
/// text expansions produce.
pub const MAX_TEXT: usize = 512 << 20;
/// Largest single file.
pub const MAX_FILE: u64 = 256 << 20;
/// Sequences and multi-line parameters nested deeper than this are refused.
pub const MAX_EXPANSION_DEPTH: usize = 64;
/// Most lines sequences and multi-line parameters may produce in one load.
pub const MAX_EXPANDED_LINES: usize = 1_000_000;

/// One line of a parameter's value and where it was written.
struct DefLine {
    text: String,
    file: FileId,
    line: u32,
}

struct Def {
    lines: Rc<[DefLine]>,
    multiline: bool,
}

/// A multi-line definition being read.
struct Collect {
    name: String,
    lines: Vec<DefLine>,
}

/// The parameters defined so far and the values of the built-ins.
struct ParamState {
    defs: HashMap<String, Def>,
    /// `${_PWD}`: the directory of the file being read.
    pwd: String,
    /// `${_INSTANCE}`: the config id.
    instance: String,
    rng: u64,
    /// Multi-line parameters expanded into the current line: their other
    /// lines, to read after it.
    rests: Vec<(String, Rc<[DefLine]>)>,
}

impl ParamState {
    fn random(&mut self) -> u64 {
        // xorshift64*: enough for `${_RANDOM}`.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn set(&mut self, name: &str, value: String, file: FileId, line: u32) {
        self.defs.insert(
            name.to_string(),
            Def {
                lines: Rc::new([DefLine {
                    text: value,
                    file,
                    line,
                }]),
                multiline: false,
            },
        );
    }
}

fn text(text: impl Into<String>) -> Result<Expansion, ExpandError> {
    Ok(Expansion::Text {
        text: text.into(),
        rest: false,
    })
}

impl Params for ParamState {
    fn expand(&mut self, r: &Reference<'_>) -> Result<Expansion, ExpandError> {
        if let Some(d) = self.defs.get(r.name) {
            if (d.multiline && !r.at_end) || r.params.is_some() {
                return Ok(Expansion::Unknown);
            }
            return Ok(Expansion::Text {
                text: d.lines.first().map_or(String::new(), |l| l.text.clone()),
                rest: d.multiline && d.lines.len() > 1,
            });
        }
        match (r.name, r.params) {
            ("_PWD", None) => text(self.pwd.clone()),
            ("_INSTANCE", None) => text(self.instance.clone()),
            ("_HASH", None) => text("#"),
            ("_BANG", None) => text("!"),
            ("_RANDOM", p) => {
                let words: Vec<&str> = p.unwrap_or("").split_whitespace().collect();
                let nums: Option<Vec<u64>> = words.iter().map(|w| w.parse().ok()).collect();
                let Some(nums) = nums.filter(|n| n.len() <= 2) else {
                    return Err(ExpandError::RandomUsage);
                };
                let min = nums.first().copied().unwrap_or(0);
                let max = nums.get(1).copied().unwrap_or(32767);
                if max < min {
                    return Err(ExpandError::RandomRange { min, max });
                }
                let span = max - min;
                let v = if span == u64::MAX {
                    self.random()
                } else {
                    min + self.random() % (span + 1)
                };
                text(v.to_string())
            }
            ("_ENV", Some(name)) if !name.contains([' ', '\t']) => match std::env::var(name) {
                Ok(v) => text(v),
                Err(_) => Err(ExpandError::EnvUnset(name.to_string())),
            },
            ("_ENV", _) => Err(ExpandError::EnvUsage),
            _ => Ok(Expansion::Unknown),
        }
    }

    fn rest_follows(&mut self, name: &str) {
        if let Some(d) = self.defs.get(name) {
            self.rests.push((name.to_string(), Rc::clone(&d.lines)));
        }
    }
}

/// Where a logical line comes from.
#[derive(Clone, Copy)]
struct Origin {
    file: FileId,
    /// 1-based line in `file`.
    line: u32,
    frame: u32,
}

/// Decodes a file's bytes: invalid UTF-8 becomes U+FFFD, and the offsets
/// (in the decoded text) of the replaced bytes are returned.
fn decode(bytes: Vec<u8>) -> (String, Vec<u32>) {
    match String::from_utf8(bytes) {
        Ok(s) => (s, Vec::new()),
        Err(e) => {
            let bytes = e.into_bytes();
            let mut s = String::with_capacity(bytes.len() + 16);
            let mut bad = Vec::new();
            for chunk in bytes.utf8_chunks() {
                s.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    bad.push(s.len() as u32);
                    s.push(char::REPLACEMENT_CHARACTER);
                }
            }
            (s, bad)
        }
    }
}

/// The config id keepalived uses without `-i`: the host name up to its first dot.
pub fn default_config_id() -> String {
    // The UTS node name, as uname(2) gives it.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Whether a line needs more than tokenizing.
fn special(line: &str, any_dollar: bool, any_backslash: bool) -> bool {
    let s = line.trim_start_matches([' ', '\t']);
    match s.as_bytes().first() {
        Some(b'@' | b'$' | b'~') => return true,
        Some(b'i') if s.starts_with("include") => return true,
        _ => {}
    }
    (any_dollar && line.contains('$'))
        || (any_backslash
            && (line.trim_end_matches(['\r', ' ', '\t']).ends_with('\\')
                || line.contains("\\#")
                || line.contains("\\!")))
}

pub struct Reader<'a> {
    pub sources: &'a mut SourceMap,
    pub diags: &'a mut Diagnostics,
    /// Lines `@id` are kept when `id` equals this; `@^id` when it differs.
    config_id: String,
    tree: TreeBuilder,
    params: ParamState,
    /// The files being read, outermost first: (canonical path, path as named).
    stack: Vec<(PathBuf, PathBuf)>,
    /// Files already read, by canonical path (a file included twice is read once).
    seen: HashMap<PathBuf, FileId>,
    include_check: u8,
    files_read: usize,
    text_bytes: usize,
    expanded_lines: usize,
    depth: usize,
    collecting: Option<Collect>,
    /// A limit was hit: nothing more is read.
    halted: bool,
    lex_errors: Vec<LexError>,
}

impl<'a> Reader<'a> {
    pub fn new(
        sources: &'a mut SourceMap,
        diags: &'a mut Diagnostics,
        config_id: Option<&str>,
    ) -> Self {
        let config_id = config_id.map_or_else(default_config_id, str::to_string);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32)
            | 1;
        Reader {
            sources,
            diags,
            params: ParamState {
                defs: HashMap::new(),
                pwd: String::new(),
                instance: config_id.clone(),
                rng: seed,
                rests: Vec::new(),
            },
            config_id,
            tree: TreeBuilder::default(),
            stack: Vec::new(),
            seen: HashMap::new(),
            include_check: 0,
            files_read: 0,
            text_bytes: 0,
            expanded_lines: 0,
            depth: 0,
            collecting: None,
            halted: false,
            lex_errors: Vec::new(),
        }
    }

    fn report(&mut self, severity: Severity, span: Option<Span>, message: String) {
        match span {
            Some(span) => self.diags.push(self.sources, severity, span, message),
            None => self.diags.push_unplaced(severity, message),
        }
    }

    fn error(&mut self, span: Span, message: String) {
        self.report(Severity::Error, Some(span), message);
    }

    /// A limit was reached: report it once and read no further.
    fn halt(&mut self, span: Option<Span>, message: String) {
        if !self.halted {
            self.halted = true;
            self.report(Severity::Error, span, message);
        }
    }

    /// The statement tree and the structural errors, once everything is read.
    pub fn finish(mut self) -> (Vec<Node>, Vec<LexError>) {
        self.end_definition();
        let (nodes, mut errors) = self.tree.finish();
        let mut all = std::mem::take(&mut self.lex_errors);
        all.append(&mut errors);
        (nodes, all)
    }

    /// Reads the main file (`from` None) or an included one.
    pub fn read(&mut self, path: &Path, from: Option<Span>) {
        if self.halted {
            return;
        }
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
            self.report(Severity::Error, from, msg);
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.halt(
                from,
                format!("includes nest more than {MAX_INCLUDE_DEPTH} files deep here"),
            );
            return;
        }
        self.files_read += 1;
        if self.files_read > MAX_FILES {
            self.halt(
                from,
                format!("more than {MAX_FILES} configuration files read: includes fan out too far (files that include the same files again and again?)"),
            );
            return;
        }
        let file = match self.seen.get(&canonical) {
            Some(&id) => id,
            None => {
                let Some(text) = self.load_file(path, from) else {
                    return;
                };
                let (text, bad) = decode(text);
                self.text_bytes += text.len();
                if self.text_bytes > MAX_TEXT {
                    self.halt(
                        from,
                        format!("more than {} MiB of configuration text", MAX_TEXT >> 20),
                    );
                    return;
                }
                let id = self.sources.add(path, text);
                self.seen.insert(canonical.clone(), id);
                self.check_encoding(id, &bad);
                id
            }
        };
        self.read_file(file, path, canonical);
    }

    /// The bytes of a file, or None after reporting why not.
    fn load_file(&mut self, path: &Path, from: Option<Span>) -> Option<Vec<u8>> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.report(
                    Severity::Error,
                    from,
                    format!("cannot read {}: {e}", path.display()),
                );
                return None;
            }
        };
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file (a device, FIFO or socket)"
            };
            self.report(
                Severity::Error,
                from,
                format!(
                    "{} is {what}: name the configuration file itself",
                    path.display()
                ),
            );
            return None;
        }
        if meta.len() > MAX_FILE {
            self.report(
                Severity::Error,
                from,
                format!(
                    "{} is larger than {} MiB: not a configuration file",
                    path.display(),
                    MAX_FILE >> 20
                ),
            );
            return None;
        }
        match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                self.report(
                    Severity::Error,
                    from,
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    }

    /// Bytes that are not UTF-8 are fine in comments; elsewhere they are an error.
    fn check_encoding(&mut self, file: FileId, bad: &[u32]) {
        if bad.is_empty() {
            return;
        }
        let text = self.sources.text_rc(file);
        let mut last_line = usize::MAX;
        for &at in bad {
            let at = at as usize;
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            if start == last_line {
                continue;
            }
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            let mut inside = false;
            let mut errs = Vec::new();
            lex_into(
                file,
                &text[start..end],
                start as u32,
                true,
                &mut |t: Token| {
                    if (t.span.start as usize..t.span.end as usize).contains(&at) {
                        inside = true;
                    }
                },
                &mut errs,
            );
            if inside {
                last_line = start;
                self.error(
                    Span {
                        file,
                        start: at as u32,
                        end: at as u32 + 3,
                    },
                    "bytes that are not UTF-8 (shown as \u{fffd}): only comments may hold them; save the file as UTF-8".into(),
                );
            }
        }
    }

    fn read_file(&mut self, file: FileId, path: &Path, canonical: PathBuf) {
        let dir = canonical
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let saved_pwd = std::mem::replace(&mut self.params.pwd, dir);
        let saved_check = self.include_check;
        self.stack.push((canonical, path.to_path_buf()));
        self.process(file);
        self.end_definition();
        self.stack.pop();
        self.include_check = saved_check;
        self.params.pwd = saved_pwd;
    }

    /// Tokens of `text`, read as if from `path`, into the tree.
    pub fn read_text(&mut self, path: &Path, canonical: PathBuf, text: String) {
        let (text, bad) = decode(text.into_bytes());
        let file = self.sources.add(path, text);
        self.check_encoding(file, &bad);
        self.read_file(file, path, canonical);
    }

    /// Lexes `text[a..b]` of `file` (whole lines) into the tree.
    fn lex_run(&mut self, file: FileId, text: &str, a: usize, b: usize, comments: bool) {
        if a >= b {
            return;
        }
        let tree = &mut self.tree;
        lex_into(
            file,
            &text[a..b],
            a as u32,
            comments,
            &mut |t| tree.push(t),
            &mut self.lex_errors,
        );
    }

    fn newline(&mut self, span: Span) {
        self.tree.push(Token {
            kind: TokenKind::Newline,
            span,
        });
    }

    /// Every line of a file.
    fn process(&mut self, file: FileId) {
        let text = self.sources.text_rc(file);
        let t: &str = &text;
        let any_dollar = t.contains('$');
        let any_backslash = t.contains('\\');
        let mut pos = 0;
        let mut run = 0;
        let mut line_no = 1u32;
        while pos < t.len() && !self.halted {
            let end = t[pos..].find('\n').map_or(t.len(), |i| pos + i);
            if self.collecting.is_some() || special(&t[pos..end], any_dollar, any_backslash) {
                self.lex_run(file, t, run, pos, true);
                self.physical(file, t, pos, end, line_no);
                run = (end + 1).min(t.len());
            }
            pos = end + 1;
            line_no += 1;
        }
        if !self.halted {
            self.lex_run(file, t, run, t.len(), true);
            // The file's end ends its last statement.
            let end = t.len() as u32;
            self.newline(Span {
                file,
                start: end,
                end,
            });
        }
    }

    /// One line that needs keepalived's line handling.
    fn physical(&mut self, file: FileId, t: &str, start: usize, end: usize, line: u32) {
        let raw = t[start..end].trim_end_matches('\r');
        if self.collecting.is_some() {
            self.continue_definition(raw, file, line);
            return;
        }
        let d = expand::decomment(raw);
        let lead = raw.len() - raw.trim_start_matches([' ', '\t']).len();
        // Without backslashes the decommented line is the file's text
        // (less the comment): its words keep their place in the file.
        let verbatim = (!raw.contains('\\')).then_some((start + lead, start + raw.len()));
        if d.text.is_empty() {
            return;
        }
        let origin = Origin {
            file,
            line,
            frame: NO_FRAME,
        };
        if d.unterminated_quote
            && d.text.starts_with('$')
            && expand::parse_definition(&d.text).is_some()
        {
            self.error(
                self.line_span(start + lead, start + raw.len(), file),
                "unterminated quoted string in this definition".into(),
            );
        }
        self.logical(d.text, origin, verbatim, true);
    }

    fn line_span(&self, a: usize, b: usize, file: FileId) -> Span {
        Span {
            file,
            start: a as u32,
            end: b as u32,
        }
    }

    fn continue_definition(&mut self, raw: &str, file: FileId, line: u32) {
        if raw.is_empty() {
            self.end_definition();
            return;
        }
        let d = expand::decomment(raw).text;
        if d.is_empty() {
            return;
        }
        let Some(c) = self.collecting.as_mut() else {
            return;
        };
        match d.strip_suffix('\\') {
            Some(body) => {
                let body = body.trim_end_matches([' ', '\t']);
                if !body.is_empty() {
                    c.lines.push(DefLine {
                        text: body.to_string(),
                        file,
                        line,
                    });
                }
            }
            None => {
                c.lines.push(DefLine {
                    text: d,
                    file,
                    line,
                });
                self.end_definition();
            }
        }
    }

    fn end_definition(&mut self) {
        if let Some(c) = self.collecting.take() {
            let multiline = !c.lines.is_empty();
            self.params.defs.insert(
                c.name,
                Def {
                    lines: c.lines.into(),
                    multiline,
                },
            );
        }
    }

    /// A line after comment removal: conditions, definitions, sequences,
    /// substitution, includes; what remains goes to the tree.
    fn logical(
        &mut self,
        mut buf: String,
        origin: Origin,
        mut verbatim: Option<(usize, usize)>,
        from_file: bool,
    ) {
        if self.halted {
            return;
        }
        self.expanded_lines += 1;
        if self.expanded_lines > MAX_EXPANDED_LINES || self.depth >= MAX_EXPANSION_DEPTH {
            let msg = if self.depth >= MAX_EXPANSION_DEPTH {
                format!(
                    "sequences and multi-line parameters nest more than {MAX_EXPANSION_DEPTH} deep (a parameter that expands to itself?)"
                )
            } else {
                format!("sequences and parameters produce more than {MAX_EXPANDED_LINES} lines")
            };
            let span = self.span_for(&buf, origin, verbatim);
            self.halt(Some(span), msg);
            return;
        }
        self.depth += 1;
        let rests_mark = self.params.rests.len();
        'line: {
            loop {
                if buf.starts_with('@') {
                    let Some(ws) = buf.find([' ', '\t']) else {
                        break 'line;
                    };
                    let (negated, id) = match buf[1..ws].strip_prefix('^') {
                        Some(id) => (true, id),
                        None => (false, &buf[1..ws]),
                    };
                    if (id == self.config_id) == negated {
                        break 'line;
                    }
                    let skip =
                        ws + buf[ws..].len() - buf[ws..].trim_start_matches([' ', '\t']).len();
                    buf.drain(..skip);
                    verbatim = verbatim.map(|(s, e)| (s + skip, e));
                }
                if buf.starts_with('$')
                    && let Some(def) = expand::parse_definition(&buf)
                {
                    if def.multiline && from_file {
                        self.end_definition();
                        let mut lines = Vec::new();
                        if !def.value.is_empty() {
                            lines.push(DefLine {
                                text: def.value.to_string(),
                                file: origin.file,
                                line: origin.line,
                            });
                        }
                        self.collecting = Some(Collect {
                            name: def.name.to_string(),
                            lines,
                        });
                    } else {
                        let (name, value) = (def.name.to_string(), def.value.to_string());
                        self.params.set(&name, value, origin.file, origin.line);
                    }
                    break 'line;
                }
                if buf.starts_with("~SEQ") || buf.starts_with("~LST") {
                    self.sequence(&buf, origin, verbatim);
                    break 'line;
                }
                if buf.starts_with('~') || !buf.contains('$') {
                    break;
                }
                match expand::substitute(&mut buf, &mut self.params) {
                    Err(e) => {
                        let span = self.span_for(&buf, origin, verbatim);
                        self.error(span, e.to_string());
                        break 'line;
                    }
                    Ok(false) => break,
                    Ok(true) => {
                        verbatim = None;
                        buf = expand::decomment(&buf).text;
                        if !(buf.starts_with('@') || buf.contains('$')) {
                            break;
                        }
                    }
                }
            }
            if buf.is_empty() {
                break 'line;
            }
            if let Some((flags, pattern)) = expand::include_directive(&buf) {
                let pattern = pattern.to_string();
                let span = self.span_for(&buf, origin, verbatim);
                let at = Span {
                    start: span.end - pattern.len() as u32,
                    ..span
                };
                self.include(flags, &pattern, at);
                break 'line;
            }
            if expand::bare_include(&buf) {
                let span = self.span_for(&buf, origin, verbatim);
                self.error(span, "include needs a file name or glob pattern".into());
                break 'line;
            }
            self.emit(&buf, origin, verbatim);
        }
        // The other lines of multi-line parameters expanded here, the
        // innermost first.
        let rests = self.params.rests.split_off(rests_mark);
        for (name, lines) in rests.into_iter().rev() {
            let name_frame =
                self.sources
                    .frame(origin.frame, format!("${name}"), origin.file, origin.line);
            for l in lines.iter().skip(1) {
                if self.halted {
                    break;
                }
                self.logical(
                    l.text.clone(),
                    Origin {
                        file: l.file,
                        line: l.line,
                        frame: name_frame,
                    },
                    None,
                    false,
                );
            }
        }
        self.depth -= 1;
    }

    /// A span for diagnostics about a whole line: in the file when the line
    /// is the file's text, otherwise in the expansion text.
    fn span_for(&mut self, buf: &str, origin: Origin, verbatim: Option<(usize, usize)>) -> Span {
        match verbatim {
            Some((s, _)) => Span {
                file: origin.file,
                start: s as u32,
                end: (s + buf.len()) as u32,
            },
            None => self.sources.add_expanded(
                buf,
                LineOrigin {
                    file: origin.file,
                    line: origin.line,
                    frame: origin.frame,
                },
            ),
        }
    }

    /// A `~SEQ`/`~SEQx`/`~LST` line: the rest of the line once per value.
    fn sequence(&mut self, buf: &str, origin: Origin, verbatim: Option<(usize, usize)>) {
        enum Spec {
            Seq(expand::Seq),
            Lst(expand::Lst),
        }
        let parsed = if buf.starts_with("~SEQ") {
            let params = &mut self.params;
            expand::parse_seq(buf, |nums| {
                let before = params.rests.len();
                expand::substitute(nums, params)?;
                if params.rests.len() > before {
                    params.rests.truncate(before);
                    return Err(ExpandError::SeqMultiline);
                }
                Ok(())
            })
            .map(|(seq, rest)| (Spec::Seq(seq), rest))
        } else {
            expand::parse_lst(buf).map(|(l, rest)| (Spec::Lst(l), rest))
        };
        let (spec, rest_at) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let span = self.span_for(buf, origin, verbatim);
                self.error(span, e.to_string());
                return;
            }
        };
        let rest = &buf[rest_at..];
        let one = |r: &mut Self, vars: &[(&str, String)]| {
            let mut what = String::from(if matches!(spec, Spec::Seq(_)) {
                "~SEQ"
            } else {
                "~LST"
            });
            for (v, val) in vars {
                what.push_str(&format!(" {v}={val}"));
                r.params.set(v, val.clone(), origin.file, origin.line);
            }
            let frame = r
                .sources
                .frame(origin.frame, what, origin.file, origin.line);
            r.logical(rest.to_string(), Origin { frame, ..origin }, None, false);
        };
        match &spec {
            Spec::Seq(seq) => {
                for v in seq.values() {
                    if self.halted {
                        break;
                    }
                    one(self, &[(seq.var.as_str(), v)]);
                }
            }
            Spec::Lst(l) => {
                for set in &l.sets {
                    if self.halted {
                        break;
                    }
                    let vars: Vec<(&str, String)> = l
                        .vars
                        .iter()
                        .map(String::as_str)
                        .zip(set.iter().cloned())
                        .collect();
                    one(self, &vars);
                }
            }
        }
    }

    /// A line for the tree.
    fn emit(&mut self, buf: &str, origin: Origin, verbatim: Option<(usize, usize)>) {
        let undefined = if buf.contains("${") {
            expand::braced_references(buf)
        } else {
            Vec::new()
        };
        let base = match verbatim {
            Some((s, e)) if undefined.is_empty() => {
                let text = self.sources.text_rc(origin.file);
                self.lex_run(origin.file, &text, s, e, true);
                self.newline(Span {
                    file: origin.file,
                    start: e as u32,
                    end: e as u32,
                });
                self.note_include_check(buf);
                return;
            }
            _ => self.span_for(buf, origin, verbatim),
        };
        if !undefined.is_empty() {
            for (at, len, name) in undefined {
                self.error(
                    Span {
                        file: base.file,
                        start: base.start + at as u32,
                        end: base.start + (at + len) as u32,
                    },
                    format!("parameter ${{{name}}} is not defined (define it with ${name}=VALUE before this line)"),
                );
            }
            return;
        }
        let tree = &mut self.tree;
        lex_into(
            base.file,
            buf,
            base.start,
            false,
            &mut |t| tree.push(t),
            &mut self.lex_errors,
        );
        self.newline(Span {
            start: base.end,
            ..base
        });
        self.note_include_check(buf);
    }

    /// keepalived's `-e`: includes are checked as `includet` from the start
    /// (an `include_check` line in the file still changes that).
    pub fn check_all_includes(&mut self) {
        self.include_check = expand::check::ALL;
    }

    /// `include_check` in global_defs sets the checks for the includes
    /// that follow in this file (and the files it includes).
    fn note_include_check(&mut self, buf: &str) {
        if buf.starts_with("include_check") && self.tree.in_block("global_defs", 1) {
            let words: Vec<&str> = buf.split_whitespace().skip(1).collect();
            if buf.split_whitespace().next() == Some("include_check") {
                self.include_check = expand::include_check(self.include_check, &words);
            }
        }
    }

    /// `include PATTERN` and its variants, at the span of the pattern.
    fn include(&mut self, flags: u8, pattern: &str, at: Span) {
        let checks = self.include_check | flags;
        let sev = |kind: u8| {
            if checks & kind != 0 {
                Severity::Error
            } else {
                Severity::Warning
            }
        };
        let dir = self
            .stack
            .last()
            .and_then(|(_, named)| named.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let alternatives = match expand::brace_expand(pattern) {
            Ok(a) => a,
            Err(e) => {
                self.error(at, format!("include '{pattern}': {e}"));
                return;
            }
        };
        let brace = expand::has_brace(pattern);
        let mut files: Vec<PathBuf> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        let mut missing_dirs: Vec<String> = Vec::new();
        let mut wildcards = false;
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        for alt in &alternatives {
            let full = if Path::new(alt).is_absolute() {
                PathBuf::from(alt)
            } else {
                dir.join(alt)
            };
            if expand::has_wildcard(alt) {
                // The directory part before the first wildcard must exist.
                let full_str = full.to_string_lossy().into_owned();
                let cut = full_str.find(['*', '?', '[']).unwrap_or(full_str.len());
                let base_dir = full_str[..cut]
                    .rfind('/')
                    .map_or(".", |i| &full_str[..i.max(1)]);
                if !Path::new(base_dir).is_dir() {
                    missing_dirs.push(full_str);
                    continue;
                }
                wildcards = true;
                match glob::glob_with(&full_str, opts) {
                    Ok(paths) => {
                        let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                        found.sort();
                        files.extend(found);
                    }
                    Err(e) => {
                        self.error(at, format!("bad include pattern '{alt}': {e}"));
                        return;
                    }
                }
            } else if std::fs::symlink_metadata(&full).is_ok() {
                files.push(full);
            } else {
                missing.push(full.display().to_string());
            }
        }
        if files.is_empty() {
            if !missing.is_empty() || !missing_dirs.is_empty() {
                let kind = if brace { check::BRACE } else { check::MATCH };
                let msg = match (&missing[..], &missing_dirs[..]) {
                    ([one], []) if alternatives.len() == 1 => {
                        format!("included file '{one}' does not exist")
                    }
                    ([], [one]) if alternatives.len() == 1 => {
                        format!(
                            "include pattern '{one}' matches no file (its directory does not exist)"
                        )
                    }
                    _ => format!(
                        "no file named by include '{pattern}' exists ({})",
                        missing
                            .iter()
                            .chain(&missing_dirs)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.report(sev(kind), Some(at), msg);
            } else if wildcards {
                let full = if Path::new(pattern).is_absolute() {
                    PathBuf::from(pattern)
                } else {
                    dir.join(pattern)
                };
                self.report(
                    sev(check::WILDCARD),
                    Some(at),
                    format!("include pattern '{}' matches no file", full.display()),
                );
            }
            return;
        }
        missing.append(&mut missing_dirs);
        if !missing.is_empty() {
            self.report(
                sev(check::BRACE),
                Some(at),
                format!(
                    "some files named by include '{pattern}' do not exist: {}",
                    missing.join(", ")
                ),
            );
            if checks & check::BRACE != 0 {
                return;
            }
        }
        for f in files {
            if self.halted {
                return;
            }
            let meta = std::fs::metadata(&f);
            let problem = match &meta {
                Ok(m) if m.is_dir() => Some("is a directory"),
                Ok(m) if !m.is_file() => Some("is not a regular file"),
                Ok(m) if m.permissions().mode() & 0o111 != 0 => {
                    Some("is executable (keepalived reads only non-executable files)")
                }
                Ok(_) => None,
                Err(_) => Some("cannot be read"),
            };
            if let Some(p) = problem {
                self.report(
                    sev(check::READ),
                    Some(at),
                    format!("included path '{}' {p}: skipped", f.display()),
                );
                continue;
            }
            self.read(&f, Some(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_keeps_good_text_and_marks_bad_bytes() {
        let (s, bad) = decode(b"a \xd6\xf7 b".to_vec());
        assert_eq!(s, "a \u{fffd}\u{fffd} b");
        assert_eq!(bad, [2, 5]);
        let (s, bad) = decode(b"plain".to_vec());
        assert_eq!((s.as_str(), bad.len()), ("plain", 0));
    }

    #[test]
    fn special_lines() {
        assert!(!special("  real_server 1.2.3.4 80 {", false, false));
        assert!(special("  @a priority 1", false, false));
        assert!(special("$A=1", true, false));
        assert!(special(" ~SEQ(I,1,2) x", false, false));
        assert!(special("include x", false, false));
        assert!(special("script \"a $B\"", true, false));
        assert!(!special("script \"a \\\" b\"", false, true));
        assert!(special("x \\", false, true));
    }
}
