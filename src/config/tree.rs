//! The syntax tree: statements (`keyword args...`) with optional `{ }`
//! blocks, every word carrying its span. No meaning is attached here.

use super::lexer::{LexError, Token, TokenKind};
use super::source::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Where the `{` stands.
    pub open: Span,
    pub nodes: Vec<Node>,
}

/// One statement: `keyword arg arg ...` and maybe a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: Word,
    pub args: Vec<Word>,
    pub block: Option<Block>,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.keyword.text
    }

    /// The keyword and its arguments.
    pub fn span(&self) -> Span {
        self.args
            .last()
            .map_or(self.keyword.span, |a| self.keyword.span.to(a.span))
    }

    /// The children, or none when the statement has no block.
    pub fn children(&self) -> &[Node] {
        self.block.as_ref().map_or(&[], |b| &b.nodes)
    }
}

struct Parser<'a> {
    /// Words are moved out of the tokens as they are consumed.
    tokens: &'a mut [Token],
    pos: usize,
    errors: Vec<LexError>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek(), Some(t) if t.kind == TokenKind::Newline) {
            self.pos += 1;
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(LexError {
            span,
            message: message.into(),
        });
    }

    /// Statements until the matching `}` (when `open` is given) or the end.
    fn statements(&mut self, open: Option<Span>) -> Vec<Node> {
        let mut nodes = Vec::new();
        loop {
            self.skip_newlines();
            let Some(tok) = self.tokens.get_mut(self.pos).map(Token::take) else {
                if let Some(open) = open {
                    self.error(
                        open,
                        "unclosed '{': this block has no matching '}' before the end of the file",
                    );
                }
                return nodes;
            };
            self.pos += 1;
            match tok.kind {
                TokenKind::Close => {
                    if open.is_some() {
                        return nodes;
                    }
                    self.error(
                        tok.span,
                        "unexpected '}': there is no open block to close here",
                    );
                }
                TokenKind::Open => {
                    self.error(tok.span, "'{' without a keyword before it");
                    // Parse and drop the block so the rest stays in sync.
                    self.statements(Some(tok.span));
                }
                TokenKind::Word { text, quoted } => {
                    let keyword = Word {
                        text,
                        span: tok.span,
                        quoted,
                    };
                    nodes.push(self.statement(keyword));
                }
                TokenKind::Newline => {}
            }
        }
    }

    fn statement(&mut self, keyword: Word) -> Node {
        // Sized to fit: most statements have one or two arguments, and a
        // large file has a hundred thousand statements.
        let n = self.tokens[self.pos..]
            .iter()
            .take_while(|t| matches!(t.kind, TokenKind::Word { .. }))
            .count();
        let mut args = Vec::with_capacity(n);
        while let Some(tok) = self.tokens.get_mut(self.pos) {
            let TokenKind::Word { text, quoted } = &mut tok.kind else {
                break;
            };
            args.push(Word {
                text: std::mem::take(text),
                span: tok.span,
                quoted: *quoted,
            });
            self.pos += 1;
        }
        // A block opens on this line, or on a following line of its own.
        let mut look = self.pos;
        while matches!(self.tokens.get(look), Some(t) if t.kind == TokenKind::Newline) {
            look += 1;
        }
        let block = match self.tokens.get(look) {
            Some(t) if t.kind == TokenKind::Open => {
                let open = t.span;
                self.pos = look + 1;
                let mut nodes = self.statements(Some(open));
                // Most blocks are small (a real_server's often holds one
                // statement): give the spare room back to the allocator.
                nodes.shrink_to_fit();
                Some(Block { open, nodes })
            }
            _ => None,
        };
        Node {
            keyword,
            args,
            block,
        }
    }
}

/// Builds the statement tree of a token stream (includes already spliced in).
pub fn parse(tokens: &[Token]) -> (Vec<Node>, Vec<LexError>) {
    parse_owned(tokens.to_vec())
}

/// [`parse`], moving the words' text into the tree instead of copying it.
pub fn parse_owned(mut tokens: Vec<Token>) -> (Vec<Node>, Vec<LexError>) {
    let mut p = Parser {
        tokens: &mut tokens,
        pos: 0,
        errors: Vec::new(),
    };
    let nodes = p.statements(None);
    (nodes, p.errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lexer::lex;
    use crate::config::source::SourceMap;
    use std::path::Path;

    fn tree(text: &str) -> (Vec<Node>, Vec<String>) {
        let mut map = SourceMap::default();
        let id = map.add(Path::new("t"), text.into());
        let (toks, _) = lex(id, text);
        let (nodes, errs) = parse(&toks);
        (nodes, errs.into_iter().map(|e| e.message).collect())
    }

    fn shape(n: &Node) -> String {
        let args: Vec<&str> = n.args.iter().map(|a| a.text.as_str()).collect();
        let mut s = format!("{}({})", n.name(), args.join(","));
        if let Some(b) = &n.block {
            s.push('{');
            s.push_str(&b.nodes.iter().map(shape).collect::<Vec<_>>().join(";"));
            s.push('}');
        }
        s
    }

    #[test]
    fn brace_on_keyword_line_or_alone() {
        let (a, e1) = tree("vrrp_instance VI_1 {\n state MASTER\n}\n");
        let (b, e2) = tree("vrrp_instance VI_1\n{\n state MASTER\n}\n");
        assert!(e1.is_empty() && e2.is_empty());
        assert_eq!(shape(&a[0]), "vrrp_instance(VI_1){state(MASTER)}");
        assert_eq!(shape(&a[0]), shape(&b[0]));
    }

    #[test]
    fn one_line_blocks() {
        let (n, e) = tree("track_script { chk_a chk_b }\nx 1");
        assert!(e.is_empty());
        assert_eq!(shape(&n[0]), "track_script(){chk_a(chk_b)}");
        assert_eq!(shape(&n[1]), "x(1)");
    }

    #[test]
    fn unclosed_and_stray_braces_are_errors() {
        let (_, e) = tree("global_defs {\n router_id x\n");
        assert_eq!(
            e,
            vec!["unclosed '{': this block has no matching '}' before the end of the file"]
        );
        let (_, e) = tree("a 1\n}\n");
        assert_eq!(
            e,
            vec!["unexpected '}': there is no open block to close here"]
        );
    }
}
