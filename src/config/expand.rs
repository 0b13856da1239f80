//! keepalived's line language, the parts that work on text before it is
//! split into words (keepalived.conf(5), "ADVANCED CONFIGURATION"):
//! comment removal as keepalived does it, `$NAME=value` definitions,
//! `$NAME` / `${NAME}` substitution, `~SEQ(...)` / `~SEQx(...)` / `~LST(...)`
//! specifications, `include` directives and csh brace expansion.
//!
//! Everything here is pure text handling; [`super::read`] drives it over the
//! files. Written from the man page and from observing keepalived 2.2.7.

/// Longest line that substitution may produce.
pub const MAX_LINE: usize = 1 << 20;
/// Most substitutions on one line (a definition that refers to itself
/// would otherwise never end).
pub const MAX_SUBSTITUTIONS: usize = 10_000;
/// Most file names one brace expression may produce.
pub const MAX_BRACE_ALTERNATIVES: usize = 1024;

/// Why a line of the parameter language cannot be read. The messages are
/// the diagnostics' text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error(
        "parameter substitution does not end on this line (more than {MAX_SUBSTITUTIONS} substitutions): a definition refers to itself"
    )]
    Endless,
    #[error(
        "parameter substitution makes this line longer than {MAX_LINE} bytes: a definition refers to itself"
    )]
    LineTooLong,
    #[error(
        "invalid ~SEQ: write ~SEQ(VAR, START, STEP, END), ~SEQ(VAR, START, END) or ~SEQ(VAR, END){0}"
    )]
    SeqSyntax(&'static str),
    #[error("~SEQ numbers are too long (at most 63 characters)")]
    SeqTooLong,
    #[error("invalid ~SEQ values: from {start} by {step} never reaches {end}")]
    SeqNeverEnds { start: i64, step: i64, end: i64 },
    #[error("~SEQx is only valid for positive numbers")]
    SeqxNegative,
    #[error("a ~SEQ number may not be a multi-line parameter")]
    SeqMultiline,
    #[error("invalid ~LST: write ~LST(VAR, V1, V2, ...) or ~LST({{VAR1, VAR2}}, {{V1, V2}}, ...)")]
    LstSyntax,
    #[error("~LST has more values in a set than variables ({0})")]
    LstTooManyValues(usize),
    #[error("the brace expression gives more than {MAX_BRACE_ALTERNATIVES} names")]
    TooManyNames,
    #[error("`${{_RANDOM [MIN [MAX]]}}` takes at most two non-negative integers")]
    RandomUsage,
    #[error("`${{_RANDOM {min} {max}}}`: MIN is above MAX")]
    RandomRange { min: u64, max: u64 },
    #[error("environment variable {0} (in `${{_ENV {0}}}`) is not set")]
    EnvUnset(String),
    #[error("`${{_ENV NAME}}` needs the name of one environment variable")]
    EnvUsage,
}

/// A line after keepalived's comment removal.
#[derive(Debug, PartialEq, Eq)]
pub struct Decommented {
    pub text: String,
    /// A `"` was left open.
    pub unterminated_quote: bool,
}

/// Removes leading blanks, the comment (`#` or `!` outside double quotes,
/// anywhere in the line) and trailing blanks; `\#` and `\!` outside quotes
/// become `#` and `!`; a `\` ending the line is kept as the line's last
/// character (a continued definition) with the blanks before it removed.
pub fn decomment(line: &str) -> Decommented {
    let s = line.trim_start_matches([' ', '\t']);
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut quote = false;
    let mut comment: Option<usize> = None;
    let mut cont = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                if comment.is_none() {
                    quote = !quote;
                }
                out.push(c);
                i += 1;
            }
            b'\\' => {
                let Some(&n) = b.get(i + 1) else {
                    cont = true;
                    break;
                };
                if !quote && (n == b'#' || n == b'!') {
                    out.push(n);
                } else {
                    out.push(c);
                    out.push(n);
                }
                i += 2;
            }
            b'#' | b'!' if !quote && comment.is_none() => {
                comment = Some(out.len());
                out.push(c);
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if let Some(at) = comment {
        out.truncate(at);
    }
    while matches!(out.last(), Some(b' ' | b'\t')) {
        out.pop();
    }
    if cont {
        out.push(b'\\');
    }
    let text = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Decommented {
        text,
        unterminated_quote: quote && comment.is_none(),
    }
}

fn name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `$NAME=value` (no blank before `=`).
#[derive(Debug, PartialEq, Eq)]
pub struct Definition<'a> {
    pub name: &'a str,
    /// The value (leading blanks removed; for a multi-line definition
    /// without the trailing `\`).
    pub value: &'a str,
    /// The value ends with `\`: the following lines continue it.
    pub multiline: bool,
}

/// A definition line (after [`decomment`]), or None.
pub fn parse_definition(line: &str) -> Option<Definition<'_>> {
    let b = line.as_bytes();
    if b.first() != Some(&b'$') || !b.get(1).copied().is_some_and(name_start) {
        return None;
    }
    let mut i = 2;
    while i < b.len() && name_char(b[i]) {
        i += 1;
    }
    if b.get(i) != Some(&b'=') {
        return None;
    }
    let name = &line[1..i];
    let value = line[i + 1..].trim_start_matches([' ', '\t']);
    match value.strip_suffix('\\') {
        Some(v) => Some(Definition {
            name,
            value: v.trim_end_matches([' ', '\t']),
            multiline: true,
        }),
        None => Some(Definition {
            name,
            value,
            multiline: false,
        }),
    }
}

/// A `$NAME` or `${NAME}` / `${NAME params}` reference.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference<'a> {
    pub name: &'a str,
    /// The words after the name inside the braces (`${_RANDOM 1 9}`).
    pub params: Option<&'a str>,
    pub braced: bool,
    /// Bytes from the `$` to the end of the reference.
    pub len: usize,
    /// Nothing follows it on the line (a multi-line definition may expand here).
    pub at_end: bool,
}

/// The reference starting at the `$` at byte `at` of `line`, if it is
/// written as one: `$NAME` must be followed by a blank, `,`, `)` or the line
/// end; `${NAME}` may stand anywhere.
pub fn reference_at(line: &str, at: usize) -> Option<Reference<'_>> {
    let b = line.as_bytes();
    let braced = b.get(at + 1) == Some(&b'{');
    let name_at = at + 1 + usize::from(braced);
    if !b.get(name_at).copied().is_some_and(name_start) {
        return None;
    }
    let mut i = name_at + 1;
    while i < b.len() && name_char(b[i]) {
        i += 1;
    }
    let name = &line[name_at..i];
    if !braced {
        return match b.get(i) {
            None | Some(b' ' | b'\t' | b',' | b')') => Some(Reference {
                name,
                params: None,
                braced,
                len: i - at,
                at_end: i == b.len(),
            }),
            _ => None,
        };
    }
    let params_from = i;
    while i < b.len() && (name_char(b[i]) || b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if b.get(i) != Some(&b'}') {
        return None;
    }
    let raw = &line[params_from..i];
    let params = raw.trim_start_matches([' ', '\t']);
    // keepalived: the parameters may not end with a blank.
    if !params.is_empty() && params.ends_with([' ', '\t']) {
        return None;
    }
    Some(Reference {
        name,
        params: (!params.is_empty()).then_some(params),
        braced,
        len: i + 1 - at,
        at_end: i + 1 == b.len(),
    })
}

/// What a reference expands to.
pub enum Expansion {
    /// Not a known parameter here: left as written.
    Unknown,
    /// The value of a one-line parameter or the first line of a
    /// multi-line one (`rest` then says there are more lines).
    Text { text: String, rest: bool },
}

/// Parameters as seen by [`substitute`].
pub trait Params {
    /// The value of `r`, or an error to report.
    fn expand(&mut self, r: &Reference<'_>) -> Result<Expansion, ExpandError>;
    /// A multi-line parameter was expanded into this line: its other
    /// lines follow the line (the reader queues them).
    fn rest_follows(&mut self, name: &str);
}

/// Replaces parameter references in `line`, rescanning each replacement
/// (values may refer to other parameters; the value is taken when it is
/// used, not when it is defined). Stops after a value that starts with `~`
/// (a sequence: its own references are for each iteration). Returns
/// whether anything was replaced.
pub fn substitute(line: &mut String, params: &mut impl Params) -> Result<bool, ExpandError> {
    let mut pos = 0;
    let mut changed = false;
    let mut count = 0;
    while let Some(off) = line[pos..].find('$') {
        let at = pos + off;
        if at + 1 >= line.len() {
            break;
        }
        let Some(r) = reference_at(line, at) else {
            pos = at + 1;
            continue;
        };
        let (text, rest) = match params.expand(&r)? {
            Expansion::Unknown => {
                pos = at + 1;
                continue;
            }
            Expansion::Text { text, rest } => (text, rest),
        };
        if rest {
            let name = r.name.to_string();
            params.rest_follows(&name);
        }
        count += 1;
        if count > MAX_SUBSTITUTIONS {
            return Err(ExpandError::Endless);
        }
        let len = r.len;
        let sequence = text.trim_start_matches([' ', '\t']).starts_with('~');
        line.replace_range(at..at + len, &text);
        changed = true;
        if line.len() > MAX_LINE {
            return Err(ExpandError::LineTooLong);
        }
        if sequence {
            break;
        }
        pos = at;
    }
    Ok(changed)
}

/// `${NAME}` references in `line` that stand outside double quotes: the
/// ones keepalived would split at the braces. (byte offset, length, name)
pub fn braced_references(line: &str) -> Vec<(usize, usize, String)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut quote = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => quote = !quote,
            b'\\' => i += 1,
            b'$' if !quote && b.get(i + 1) == Some(&b'{') => {
                if let Some(r) = reference_at(line, i) {
                    out.push((i, r.len, r.name.to_string()));
                    i += r.len;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// C's `strtol(s, &end, 0)`: the value and the bytes used (0: no number).
fn strtol(s: &str) -> (i64, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if let Some(&c @ (b'+' | b'-')) = b.get(i) {
        neg = c == b'-';
        i += 1;
    }
    let (radix, digits_at) = if b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        (16, i + 2)
    } else if b.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let mut j = digits_at;
    let mut v: i128 = 0;
    while let Some(d) = b.get(j).and_then(|&c| (c as char).to_digit(radix)) {
        v = (v * radix as i128 + d as i128).min(i64::MAX as i128 + 1);
        j += 1;
    }
    if j == digits_at {
        return (0, 0);
    }
    let v = if neg { -v } else { v };
    (v.clamp(i64::MIN as i128, i64::MAX as i128) as i64, j)
}

/// `~SEQ(var, start, step, end)` / `~SEQx(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seq {
    pub var: String,
    pub start: i64,
    pub step: i64,
    pub end: i64,
    pub hex: bool,
}

impl Seq {
    /// How many times the rest of the line is read.
    pub fn count(&self) -> u128 {
        ((self.end as i128 - self.start as i128) / self.step as i128) as u128 + 1
    }

    /// The values, formatted as they are substituted.
    pub fn values(&self) -> impl Iterator<Item = String> + '_ {
        let mut next = Some(self.start as i128);
        std::iter::from_fn(move || {
            let v = next?;
            let n = v + self.step as i128;
            next = if (self.step > 0 && n > self.end as i128)
                || (self.step < 0 && n < self.end as i128)
            {
                None
            } else {
                Some(n)
            };
            Some(if self.hex {
                format!("{:x}", v as u64)
            } else {
                v.to_string()
            })
        })
    }
}

/// Parses a line starting `~SEQ`. `numbers` is the text between the first
/// comma and the closing parenthesis; `resolve` substitutes parameters in
/// it. Returns the sequence and where the rest of the line starts.
pub fn parse_seq(
    line: &str,
    resolve: impl FnOnce(&mut String) -> Result<(), ExpandError>,
) -> Result<(Seq, usize), ExpandError> {
    let bad = || ExpandError::SeqSyntax("");
    let mut p = 4;
    let b = line.as_bytes();
    let hex = b.get(p) == Some(&b'x');
    if hex {
        p += 1;
    }
    let blanks = |mut p: usize| {
        while matches!(b.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        p
    };
    p = blanks(p);
    if b.get(p) != Some(&b'(') {
        return Err(bad());
    }
    p = blanks(p + 1);
    let var_at = p;
    while p < b.len() && !matches!(b[p], b' ' | b'\t' | b',' | b')') {
        p += 1;
    }
    let var = &line[var_at..p];
    p = blanks(p);
    if var.is_empty() || b.get(p) != Some(&b',') {
        return Err(bad());
    }
    p = blanks(p + 1);
    let Some(close) = line[p..].find(')').map(|i| p + i) else {
        return Err(ExpandError::SeqSyntax(": the closing ')' is missing"));
    };
    if close + 1 - p + 1 > 64 {
        return Err(ExpandError::SeqTooLong);
    }
    let mut nums = line[p..=close].to_string();
    resolve(&mut nums)?;
    let mut vals = Vec::new();
    let mut rest = nums.as_str();
    loop {
        let (v, used) = strtol(rest);
        vals.push(v);
        rest = rest[used..].trim_start_matches([' ', '\t']);
        match rest.as_bytes().first() {
            Some(b')') => break,
            Some(b',') if vals.len() < 3 => rest = &rest[1..],
            _ => return Err(bad()),
        }
    }
    let (start, step, end) = match vals[..] {
        [end] => (
            if end < 0 { -1 } else { 1 },
            if end < 1 { -1 } else { 1 },
            end,
        ),
        [start, end] => (start, if start <= end { 1 } else { -1 }, end),
        [start, step, end] => {
            if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                return Err(ExpandError::SeqNeverEnds { start, step, end });
            }
            (start, step, end)
        }
        _ => return Err(bad()),
    };
    if hex && (start < 0 || end < 0) {
        return Err(ExpandError::SeqxNegative);
    }
    let rest_at = blanks(close + 1);
    Ok((
        Seq {
            var: var.to_string(),
            start,
            step,
            end,
            hex,
        },
        rest_at,
    ))
}

/// `~LST(var, v1, v2, ...)` or `~LST({a, b}, {1, 2}, {3, 4})`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lst {
    pub vars: Vec<String>,
    /// One value per variable in each set (missing values are empty).
    pub sets: Vec<Vec<String>>,
}

/// Parses a line starting `~LST`; returns the list and where the rest starts.
pub fn parse_lst(line: &str) -> Result<(Lst, usize), ExpandError> {
    let bad = || ExpandError::LstSyntax;
    let b = line.as_bytes();
    let blanks = |mut p: usize| {
        while matches!(b.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        p
    };
    let mut p = blanks(4);
    if b.get(p) != Some(&b'(') {
        return Err(bad());
    }
    p = blanks(p + 1);
    let braced = b.get(p) == Some(&b'{');
    if braced {
        p = blanks(p + 1);
    }
    let end_char = if braced { b'}' } else { b',' };
    let mut vars = Vec::new();
    loop {
        let at = p;
        while p < b.len() && !matches!(b[p], b' ' | b'\t' | b',' | b'}') {
            p += 1;
        }
        vars.push(line[at..p].to_string());
        p = blanks(p);
        match b.get(p) {
            Some(&c) if c == end_char => break,
            Some(b',') => p = blanks(p + 1),
            _ => return Err(bad()),
        }
    }
    if b.get(p) == Some(&b'}') {
        p = blanks(p + 1);
    }
    if b.get(p) != Some(&b',') {
        return Err(bad());
    }
    p = blanks(p + 1);
    let mut sets = Vec::new();
    loop {
        let braced = b.get(p) == Some(&b'{');
        if braced {
            p = blanks(p + 1);
        }
        let end_char = if braced { b'}' } else { b',' };
        let mut values = Vec::new();
        loop {
            let at = p;
            while p < b.len() && !matches!(b[p], b' ' | b'\t' | b',' | b'}' | b')') {
                p += 1;
            }
            values.push(line[at..p].to_string());
            p = blanks(p);
            match b.get(p) {
                Some(&c) if c == end_char || (c == b')' && end_char == b',') => break,
                Some(b',') if values.len() < vars.len() => p = blanks(p + 1),
                Some(b',') => {
                    return Err(ExpandError::LstTooManyValues(vars.len()));
                }
                _ => return Err(bad()),
            }
        }
        values.resize(vars.len(), String::new());
        sets.push(values);
        if braced && b.get(p) == Some(&b'}') {
            p = blanks(p + 1);
        }
        match b.get(p) {
            Some(b')') => break,
            Some(b',') => p = blanks(p + 1),
            _ => return Err(bad()),
        }
    }
    if vars.iter().any(String::is_empty) {
        return Err(bad());
    }
    Ok((Lst { vars, sets }, blanks(p + 1)))
}

/// `include` variants: which missing-file problems are errors.
pub mod check {
    /// A match that cannot be read (a directory, not a regular file).
    pub const READ: u8 = 1;
    /// Nothing matches a name without wildcards.
    pub const MATCH: u8 = 2;
    /// Nothing matches a wildcard pattern.
    pub const WILDCARD: u8 = 4;
    /// One alternative of a brace expression matches nothing.
    pub const BRACE: u8 = 8;
    pub const ALL: u8 = READ | MATCH | WILDCARD | BRACE;
}

/// `include[rmwba] PATTERN`: the checks the variant adds and the pattern
/// (the rest of the line, as keepalived takes it).
pub fn include_directive(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix("include")?;
    let b = rest.as_bytes();
    let blank = |c: Option<&u8>| matches!(c, Some(b' ' | b'\t'));
    let (flags, pattern) = if blank(b.first()) {
        (0, rest)
    } else if blank(b.get(1)) {
        let f = match b[0] {
            b'r' => check::READ,
            b'm' => check::READ | check::MATCH,
            b'w' => check::READ | check::MATCH | check::WILDCARD,
            b'b' => check::READ | check::BRACE,
            b'a' => check::ALL,
            _ => return None,
        };
        (f, &rest[1..])
    } else {
        return None;
    };
    Some((flags, pattern.trim_matches([' ', '\t'])))
}

/// A line that is only an include keyword (no file named).
pub fn bare_include(line: &str) -> bool {
    matches!(
        line,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    )
}

/// The `include_check` options of a line's words: the new setting.
pub fn include_check(current: u8, args: &[&str]) -> u8 {
    if args.is_empty() {
        return check::ALL;
    }
    let mut v = current;
    for (i, w) in args.iter().enumerate() {
        let (op, name) = match w.as_bytes().first() {
            Some(b'+') => (1, &w[1..]),
            Some(b'-') => (-1, &w[1..]),
            _ => (0, *w),
        };
        if op == 0 {
            if i > 0 {
                continue;
            }
            v = 0;
        }
        let flag = match name {
            "read" => check::READ,
            "match" => check::MATCH,
            "wildcard_match" => check::WILDCARD,
            "brace_match" => check::BRACE,
            _ => 0,
        };
        if flag != 0 {
            match op {
                0 => v = check::READ | flag,
                1 => v |= flag,
                _ => v &= !flag,
            }
        }
    }
    v
}

/// Whether a pattern holds an unescaped `{`.
pub fn has_brace(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// The matching `}` of the `{` at `open`, and the top-level commas between.
fn brace_group(b: &[u8], open: usize) -> Option<(usize, Vec<usize>)> {
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((i, commas));
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// csh brace expansion, as glob(3) with GLOB_BRACE does it:
/// `{foo/{,cat,dog},bar}` gives `foo/`, `foo/cat`, `foo/dog`, `bar`, in
/// that order. An unmatched `{` stays as it is.
pub fn brace_expand(pattern: &str) -> Result<Vec<String>, ExpandError> {
    let mut out = Vec::new();
    let mut work = vec![pattern.to_string()];
    while let Some(p) = work.pop() {
        let b = p.as_bytes();
        let mut group = None;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 1,
                b'{' => {
                    if let Some(g) = brace_group(b, i) {
                        group = Some((i, g));
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let Some((open, (close, commas))) = group else {
            out.push(p);
            if out.len() > MAX_BRACE_ALTERNATIVES {
                return Err(ExpandError::TooManyNames);
            }
            continue;
        };
        let mut bounds = vec![open];
        bounds.extend(&commas);
        bounds.push(close);
        // Pushed in reverse: the first alternative is expanded first.
        for w in bounds.windows(2).rev() {
            let mut s = String::with_capacity(p.len());
            s.push_str(&p[..open]);
            s.push_str(&p[w[0] + 1..w[1]]);
            s.push_str(&p[close + 1..]);
            work.push(s);
        }
        if work.len() + out.len() > MAX_BRACE_ALTERNATIVES {
            return Err(ExpandError::TooManyNames);
        }
    }
    Ok(out)
}

/// Whether a pattern has glob wildcards.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decomment_as_keepalived() {
        let d = |s: &str| decomment(s).text;
        assert_eq!(d("   priority 100   # main"), "priority 100");
        assert_eq!(d("auth_pass a#b"), "auth_pass a");
        assert_eq!(
            d("script \"echo # not a comment\" ! but this"),
            "script \"echo # not a comment\""
        );
        assert_eq!(d("x \\# y"), "x # y");
        assert_eq!(d("\"x \\# y\""), "\"x \\# y\"");
        assert_eq!(d("$X=a   \\"), "$X=a\\");
        assert_eq!(d("a # comment \\"), "a\\");
        assert_eq!(d("! only"), "");
        assert!(decomment("a \"b").unterminated_quote);
        assert!(!decomment("a # \"b").unterminated_quote);
    }

    #[test]
    fn definitions() {
        assert_eq!(
            parse_definition("$ADDR=10.0.0.1"),
            Some(Definition {
                name: "ADDR",
                value: "10.0.0.1",
                multiline: false
            })
        );
        assert_eq!(
            parse_definition("$E="),
            Some(Definition {
                name: "E",
                value: "",
                multiline: false
            })
        );
        assert_eq!(
            parse_definition("$INSTANCE=\\"),
            Some(Definition {
                name: "INSTANCE",
                value: "",
                multiline: true
            })
        );
        assert_eq!(parse_definition("$A =1"), None);
        assert_eq!(parse_definition("$1A=1"), None);
        assert_eq!(parse_definition("$A-B=1"), None);
        assert_eq!(parse_definition("$A"), None);
    }

    #[test]
    fn references() {
        let r = reference_at("priority $P", 9).unwrap();
        assert_eq!((r.name, r.len, r.at_end, r.braced), ("P", 2, true, false));
        assert!(reference_at("a $P.1", 2).is_none());
        let r = reference_at("10.${A}.1", 3).unwrap();
        assert_eq!((r.name, r.len, r.at_end), ("A", 4, false));
        let r = reference_at("${_RANDOM 1 9}", 0).unwrap();
        assert_eq!((r.name, r.params), ("_RANDOM", Some("1 9")));
        assert!(reference_at("${_RANDOM 1 9 }", 0).is_none());
        assert!(reference_at("${A", 0).is_none());
        assert!(reference_at("$1", 0).is_none());
        assert!(reference_at("${AB-C}", 0).is_none());
        assert_eq!(reference_at("f($A, $B)", 2).unwrap().name, "A");
    }

    struct Map(Vec<(&'static str, &'static str)>);
    impl Params for Map {
        fn expand(&mut self, r: &Reference<'_>) -> Result<Expansion, ExpandError> {
            Ok(match self.0.iter().find(|(n, _)| *n == r.name) {
                Some((_, v)) => Expansion::Text {
                    text: v.to_string(),
                    rest: false,
                },
                None => Expansion::Unknown,
            })
        }
        fn rest_follows(&mut self, _: &str) {}
    }

    #[test]
    fn substitution_is_recursive_and_late() {
        let mut m = Map(vec![
            ("ADDRESS_BASE", "10.2.${ADDRESS_BASE_SUB}"),
            ("ADDRESS_BASE_SUB", "0"),
        ]);
        let mut l = "${ADDRESS_BASE}.100/32".to_string();
        assert!(substitute(&mut l, &mut m).unwrap());
        assert_eq!(l, "10.2.0.100/32");
        let mut l = "echo $HOME ${UNDEF}".to_string();
        assert!(!substitute(&mut l, &mut m).unwrap());
        assert_eq!(l, "echo $HOME ${UNDEF}");
        let mut m = Map(vec![("A", "$A")]);
        let mut l = "x $A".to_string();
        assert_eq!(substitute(&mut l, &mut m), Err(ExpandError::Endless));
        let mut m = Map(vec![("A", "x $A")]);
        let mut l = "$A".to_string();
        assert!(substitute(&mut l, &mut m).is_err());
    }

    #[test]
    fn unquoted_braced_references() {
        assert_eq!(
            braced_references("a ${X} \"${Y}\" $Z ${_RANDOM 1 2}"),
            vec![(2, 4, "X".to_string()), (17, 14, "_RANDOM".to_string())]
        );
    }

    fn seq(s: &str) -> Result<Vec<String>, String> {
        let (q, _) = parse_seq(s, |_| Ok(())).map_err(|e| e.to_string())?;
        Ok(q.values().collect())
    }

    #[test]
    fn sequences_as_the_man_page() {
        assert_eq!(seq("~SEQ(SUBNET, 0, 3) x").unwrap(), ["0", "1", "2", "3"]);
        assert_eq!(
            seq("~SEQx(SUBNET, 144, 16, 192) x").unwrap(),
            ["90", "a0", "b0", "c0"]
        );
        assert_eq!(
            seq("~SEQx(SUBNET, 0x90, 0x10, 0xc0) x").unwrap(),
            ["90", "a0", "b0", "c0"]
        );
        assert_eq!(seq("~SEQx(AD1, 0x12, -1, 0x0c) x").unwrap().len(), 7);
        assert_eq!(seq("~SEQ(I, 3)").unwrap(), ["1", "2", "3"]);
        assert_eq!(seq("~SEQ(I, -2)").unwrap(), ["-1", "-2"]);
        assert_eq!(seq("~SEQ(I, 0)").unwrap(), ["1", "0"]);
        assert_eq!(seq("~SEQ(I, 5, 3)").unwrap(), ["5", "4", "3"]);
        assert_eq!(seq("~SEQ(I, 1, 2, 6)").unwrap(), ["1", "3", "5"]);
        assert!(
            seq("~SEQ(I, 1, -1, 6)")
                .unwrap_err()
                .contains("never reaches")
        );
        assert!(seq("~SEQ(I, 1, 0, 6)").is_err());
        assert!(seq("~SEQx(I, -1, 6)").is_err());
        assert!(seq("~SEQ(I)").is_err());
        assert!(seq("~SEQ(I, a)").is_err());
        assert!(seq("~SEQ I, 1").is_err());
        let (_, rest) = parse_seq("~SEQ(I,1,3)   real_server", |_| Ok(())).unwrap();
        assert_eq!(rest, 14);
    }

    #[test]
    fn lists_as_the_man_page() {
        let (l, rest) =
            parse_lst("~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8}) 192.168.${IP}.${IP1}").unwrap();
        assert_eq!(l.vars, ["IP", "IP1"]);
        assert_eq!(l.sets, [["10", "1"], ["20", "4"], ["5", "6"], ["12", "8"]]);
        assert_eq!(
            &"~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8}) 192.168.${IP}.${IP1}"[rest..],
            "192.168.${IP}.${IP1}"
        );
        let (l, _) = parse_lst("~LST(IP, 1, 2, 3, 4) x").unwrap();
        assert_eq!(l.sets, [["1"], ["2"], ["3"], ["4"]]);
        let (l, _) = parse_lst("~LST({A, B}, {1}, 2) x").unwrap();
        assert_eq!(l.sets, [["1", ""], ["2", ""]]);
        assert_eq!(
            parse_lst("~LST({A}, {1, 2}) x"),
            Err(ExpandError::LstTooManyValues(1))
        );
        assert!(parse_lst("~LST(A) x").is_err());
        assert!(parse_lst("~LST A, 1").is_err());
    }

    #[test]
    fn include_variants() {
        assert_eq!(include_directive("include a.conf"), Some((0, "a.conf")));
        assert_eq!(
            include_directive("includer  x y"),
            Some((check::READ, "x y"))
        );
        assert_eq!(include_directive("includea x"), Some((check::ALL, "x")));
        assert_eq!(include_directive("includex x"), None);
        assert_eq!(include_directive("include"), None);
        assert_eq!(include_directive("include_check"), None);
        assert_eq!(include_check(0, &[]), check::ALL);
        assert_eq!(include_check(0, &["match"]), check::READ | check::MATCH);
        assert_eq!(
            include_check(check::ALL, &["-wildcard_match"]),
            check::ALL & !check::WILDCARD
        );
        assert_eq!(include_check(0, &["+match", "-read"]), check::MATCH);
    }

    #[test]
    fn csh_braces() {
        assert_eq!(
            brace_expand("{foo/{,cat,dog},bar}").unwrap(),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(
            brace_expand("/etc/{vrrp,lvs}.conf").unwrap(),
            ["/etc/vrrp.conf", "/etc/lvs.conf"]
        );
        assert_eq!(brace_expand("a{b").unwrap(), ["a{b"]);
        assert_eq!(brace_expand("{one}.conf").unwrap(), ["one.conf"]);
        assert!(brace_expand(&"{a,b}".repeat(12)).is_err());
        assert!(has_brace("x/{a,b}") && !has_brace("x/\\{a"));
    }
}
