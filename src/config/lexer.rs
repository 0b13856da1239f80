//! Tokens of the keepalived.conf language (nom): words, quoted strings,
//! braces and line ends. Comments (`#`, `!` at the start of a token) run to
//! the end of the line and are dropped.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{take_till, take_while, take_while1},
    character::complete::{char, one_of},
    combinator::{recognize, value},
};

use super::source::{FileId, Span};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word or a quoted string with its escapes resolved.
    Word {
        text: String,
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
            TokenKind::Word { text, .. } => Some(text),
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

#[derive(Clone)]
enum Raw<'a> {
    Newline,
    Open,
    Close,
    Word(&'a str),
    Quoted { text: String, terminated: bool },
}

fn is_blank(c: char) -> bool {
    c != '\n' && c.is_whitespace()
}

fn blank(i: &str) -> IResult<&str, &str> {
    take_while(is_blank)(i)
}

fn comment(i: &str) -> IResult<&str, &str> {
    recognize((one_of("#!"), take_till(|c| c == '\n'))).parse(i)
}

/// `"..."` or `'...'` on one line; `\` escapes the quote, `\` and n/t/r.
fn quoted(i: &str) -> IResult<&str, Raw<'_>> {
    let (rest, quote) = one_of("\"'")(i)?;
    let mut text = String::new();
    let mut chars = rest.char_indices();
    while let Some((idx, c)) = chars.next() {
        match c {
            '\n' => {
                return Ok((
                    &rest[idx..],
                    Raw::Quoted {
                        text,
                        terminated: false,
                    },
                ));
            }
            '\\' => match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, 'r')) => text.push('\r'),
                Some((_, e)) if e == quote || e == '\\' => text.push(e),
                Some((_, '\n')) | None => text.push('\\'),
                // Unknown escapes stay literal: scripts often carry shell escapes.
                Some((_, e)) => {
                    text.push('\\');
                    text.push(e);
                }
            },
            c if c == quote => {
                return Ok((
                    &rest[idx + c.len_utf8()..],
                    Raw::Quoted {
                        text,
                        terminated: true,
                    },
                ));
            }
            c => text.push(c),
        }
    }
    Ok((
        "",
        Raw::Quoted {
            text,
            terminated: false,
        },
    ))
}

fn word(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| !c.is_whitespace() && c != '{' && c != '}')(i)
}

fn raw_token(i: &str) -> IResult<&str, Raw<'_>> {
    alt((
        value(Raw::Newline, char('\n')),
        value(Raw::Open, char('{')),
        value(Raw::Close, char('}')),
        quoted,
        word.map(Raw::Word),
    ))
    .parse(i)
}

/// Splits one file into tokens. Never fails: problems are returned beside
/// the tokens so that parsing can go on and report everything at once.
pub fn lex(file: FileId, text: &str) -> (Vec<Token>, Vec<LexError>) {
    // About one token per 6 bytes in a typical file: few reallocations.
    let mut tokens = Vec::with_capacity(text.len() / 5);
    let mut errors = Vec::new();
    let mut rest = text;
    let offset = |r: &str| (text.len() - r.len()) as u32;
    loop {
        if let Ok((r, _)) = blank(rest) {
            rest = r;
        }
        if let Ok((r, _)) = comment(rest) {
            rest = r;
        }
        if rest.is_empty() {
            break;
        }
        let start = offset(rest);
        let Ok((r, raw)) = raw_token(rest) else {
            // Unreachable for well-formed UTF-8, but never loop forever.
            break;
        };
        rest = r;
        let span = Span {
            file,
            start,
            end: offset(rest),
        };
        let kind = match raw {
            Raw::Newline => TokenKind::Newline,
            Raw::Open => TokenKind::Open,
            Raw::Close => TokenKind::Close,
            Raw::Word(w) => TokenKind::Word {
                text: w.to_string(),
                quoted: false,
            },
            Raw::Quoted { text, terminated } => {
                if !terminated {
                    errors.push(LexError {
                        span,
                        message: "unterminated quoted string: close it with a matching quote on the same line".into(),
                    });
                }
                TokenKind::Word { text, quoted: true }
            }
        };
        tokens.push(Token { kind, span });
    }
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
