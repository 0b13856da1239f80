//! Tokens of the keepalived.conf language: words, quoted strings, braces
//! and line ends. Comments (`#`, `!` at the start of a token) run to the end
//! of the line and are dropped. Hand-written over bytes: it runs over every
//! byte of every file, and tokens go straight to the tree (no token list).

use super::source::{FileId, Span};
use super::text::Text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word or a quoted string with its escapes resolved.
    Word {
        /// Short words inline: no allocation for most of them.
        text: Text,
        quoted: bool,
    },
    Open,
    Close,
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl Token {
    pub fn word(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word { text, .. } => Some(text.as_str()),
            _ => None,
        }
    }

    /// This token, moved out; a word leaves its text behind empty (no
    /// allocation either way).
    pub fn take(&mut self) -> Token {
        let kind = match &mut self.kind {
            TokenKind::Word { text, quoted } => TokenKind::Word {
                text: std::mem::take(text),
                quoted: *quoted,
            },
            other => other.clone(),
        };
        Token {
            kind,
            span: self.span,
        }
    }
}

/// A lexical error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub span: Span,
    pub message: String,
}

/// Blank (white space other than a line end) starting at byte `i`: its length.
#[inline]
fn blank_len(text: &str, i: usize) -> usize {
    let b = text.as_bytes()[i];
    match b {
        b' ' | b'\t' | b'\r' | 0x0b | 0x0c => 1,
        0x80.. => match text[i..].chars().next() {
            Some(c) if c.is_whitespace() => c.len_utf8(),
            _ => 0,
        },
        _ => 0,
    }
}

/// End of the bare word starting at `i`: up to white space or a brace.
#[inline]
fn word_end(text: &str, mut i: usize) -> usize {
    let bytes = text.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'}' | b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => break,
            0x80.. => {
                let c = text[i..].chars().next().unwrap_or(' ');
                if c.is_whitespace() {
                    break;
                }
                i += c.len_utf8();
            }
            _ => i += 1,
        }
    }
    i
}

/// `"..."` or `'...'` on one line, starting at the quote at `i`; `\` escapes
/// the quote, `\` and n/t/r. Returns the text, where it ends (after the
/// closing quote, or at the line end) and whether it was closed.
fn quoted(text: &str, i: usize) -> (String, usize, bool) {
    let quote = text.as_bytes()[i] as char;
    let rest = &text[i + 1..];
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((idx, c)) = chars.next() {
        match c {
            '\n' => return (out, i + 1 + idx, false),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, e)) if e == quote || e == '\\' => out.push(e),
                Some((idx, '\n')) => {
                    out.push('\\');
                    return (out, i + 1 + idx, false);
                }
                None => out.push('\\'),
                // Unknown escapes stay literal: scripts often carry shell escapes.
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
            },
            c if c == quote => return (out, i + 1 + idx + 1, true),
            c => out.push(c),
        }
    }
    (out, text.len(), false)
}

/// Splits `text` (which starts at byte `base` of `file`) into tokens, handed
/// to `emit` in order. Never fails: problems go to `errors` so that parsing
/// can go on and report everything at once. With `comments` false, `#` and
/// `!` are ordinary characters (text whose comments were already removed).
pub fn lex_into(
    file: FileId,
    text: &str,
    base: u32,
    comments: bool,
    emit: &mut impl FnMut(Token),
    errors: &mut Vec<LexError>,
) {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let mut i = 0;
    let span = |s: usize, e: usize| Span {
        file,
        start: base + s as u32,
        end: base + e as u32,
    };
    while i < len {
        let n = blank_len(text, i);
        if n > 0 {
            i += n;
            continue;
        }
        let start = i;
        let kind = match bytes[i] {
            b'#' | b'!' if comments => {
                i = text[i..].find('\n').map_or(len, |n| i + n);
                continue;
            }
            b'\n' => {
                i += 1;
                TokenKind::Newline
            }
            b'{' => {
                i += 1;
                TokenKind::Open
            }
            b'}' => {
                i += 1;
                TokenKind::Close
            }
            b'"' | b'\'' => {
                let (s, end, closed) = quoted(text, i);
                i = end;
                if !closed {
                    errors.push(LexError {
                        span: span(start, i),
                        message: "unterminated quoted string: close it with a matching quote on the same line".into(),
                    });
                }
                TokenKind::Word {
                    text: Text::from(s),
                    quoted: true,
                }
            }
            _ => {
                i = word_end(text, i);
                TokenKind::Word {
                    text: Text::from(&text[start..i]),
                    quoted: false,
                }
            }
        };
        emit(Token {
            kind,
            span: span(start, i),
        });
    }
}

/// Splits one file into tokens. Never fails: problems are returned beside
/// the tokens so that parsing can go on and report everything at once.
pub fn lex(file: FileId, text: &str) -> (Vec<Token>, Vec<LexError>) {
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    lex_into(file, text, 0, true, &mut |t| tokens.push(t), &mut errors);
    (tokens, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::SourceMap;
    use std::path::Path;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let mut map = SourceMap::default();
        let id = map.add(Path::new("t"), text.into());
        let (toks, errs) = lex(id, text);
        assert!(errs.is_empty(), "{errs:?}");
        toks.into_iter().map(|t| t.kind).collect()
    }

    fn w(s: &str) -> TokenKind {
        TokenKind::Word {
            text: s.into(),
            quoted: false,
        }
    }

    fn q(s: &str) -> TokenKind {
        TokenKind::Word {
            text: s.into(),
            quoted: true,
        }
    }

    #[test]
    fn words_braces_and_newlines() {
        assert_eq!(
            kinds("a b{\n}"),
            vec![
                w("a"),
                w("b"),
                TokenKind::Open,
                TokenKind::Newline,
                TokenKind::Close
            ]
        );
    }

    #[test]
    fn comments_with_hash_and_bang_are_dropped() {
        assert_eq!(
            kinds("! whole\nweight 2 # trailing\nx ! also\n"),
            vec![
                TokenKind::Newline,
                w("weight"),
                w("2"),
                TokenKind::Newline,
                w("x"),
                TokenKind::Newline
            ]
        );
    }

    #[test]
    fn comment_marker_inside_a_word_is_text() {
        assert_eq!(kinds("auth_pass a#b!c"), vec![w("auth_pass"), w("a#b!c")]);
    }

    #[test]
    fn quoted_strings_with_escapes() {
        assert_eq!(
            kinds(r#"script "killall -0 \"ng inx\"" 'it\'s'"#),
            vec![w("script"), q("killall -0 \"ng inx\""), q("it's")]
        );
        assert_eq!(
            kinds(r#""a # not a comment""#),
            vec![q("a # not a comment")]
        );
    }

    #[test]
    fn full_width_space_is_blank() {
        assert_eq!(kinds("a\u{3000}b"), vec![w("a"), w("b")]);
    }

    #[test]
    fn unterminated_quote_is_reported() {
        let mut map = SourceMap::default();
        let id = map.add(Path::new("t"), "script \"abc\nx".into());
        let (toks, errs) = lex(id, "script \"abc\nx");
        assert_eq!(errs.len(), 1);
        assert_eq!(toks.len(), 4);
    }
}
