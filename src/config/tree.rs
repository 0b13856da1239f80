//! The syntax tree: statements (`keyword args...`) with optional `{ }`
//! blocks, every word carrying its span. No meaning is attached here.

use super::lexer::{LexError, Token, TokenKind};
use super::source::Span;

pub use super::text::Text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: Text,
    pub span: Span,
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Where the `{` stands.
    pub open: Span,
    pub nodes: Box<[Node]>,
}

/// One statement: `keyword arg arg ...` and maybe a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: Word,
    pub args: Box<[Word]>,
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

/// Blocks nested deeper than this are refused (keepalived's own grammar
/// goes about six deep); deeper text is skipped without recursion.
pub const MAX_DEPTH: usize = 100;

/// A block being read: its statement, and where its statements start in
/// the builder's node stack.
struct OpenBlock {
    /// None: a `{` without a keyword, read and dropped.
    head: Option<(Word, Box<[Word]>)>,
    open: Span,
    start: usize,
}

/// Where the builder stands between tokens.
enum State {
    /// At the start of a statement.
    Idle,
    /// Reading a statement's words (on its first line); its arguments are
    /// the builder's word stack.
    Words(Word),
    /// A statement's line ended: a `{` on a following line still opens its block.
    Ended(Word),
}

/// Builds the statement tree from tokens handed in one at a time (no token
/// list, no recursion: any nesting depth is safe). Arguments and the
/// statements of open blocks wait on two stacks and each list is moved out
/// once, at its exact size: a large file has hundreds of thousands of
/// statements, and growing a vector for each was a large share of the load.
pub struct TreeBuilder {
    /// The statements read so far: the file's, then each open block's.
    nodes: Vec<Node>,
    /// The current statement's arguments.
    words: Vec<Word>,
    stack: Vec<OpenBlock>,
    state: State,
    /// Inside a block past [`MAX_DEPTH`]: how many `{` are open there.
    skip: u64,
    errors: Vec<LexError>,
}

impl Default for TreeBuilder {
    fn default() -> Self {
        TreeBuilder {
            nodes: Vec::new(),
            words: Vec::new(),
            stack: Vec::new(),
            state: State::Idle,
            skip: 0,
            errors: Vec::new(),
        }
    }
}

impl TreeBuilder {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(LexError {
            span,
            message: message.into(),
        });
    }

    /// The current statement's keyword and arguments, taken.
    fn take_statement(&mut self) -> Option<(Word, Box<[Word]>)> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Words(k) | State::Ended(k) => Some((k, self.words.drain(..).collect())),
            State::Idle => None,
        }
    }

    /// Ends a statement that has no block.
    fn flush(&mut self) {
        if let Some((keyword, args)) = self.take_statement() {
            self.nodes.push(Node {
                keyword,
                args,
                block: None,
            });
        }
    }

    fn open(&mut self, span: Span) {
        let head = self.take_statement();
        if head.is_none() {
            self.error(span, "'{' without a keyword before it");
        }
        if self.stack.len() >= MAX_DEPTH {
            self.error(
                span,
                format!("blocks are nested more than {MAX_DEPTH} deep here: this block and everything in it are ignored"),
            );
            self.skip = 1;
            return;
        }
        self.stack.push(OpenBlock {
            head,
            open: span,
            start: self.nodes.len(),
        });
    }

    fn close_block(&mut self) {
        let Some(b) = self.stack.pop() else { return };
        let nodes: Box<[Node]> = self.nodes.drain(b.start..).collect();
        if let Some((keyword, args)) = b.head {
            self.nodes.push(Node {
                keyword,
                args,
                block: Some(Block {
                    open: b.open,
                    nodes,
                }),
            });
        }
    }

    /// Whether the innermost open block is `keyword`'s, `depth` blocks deep.
    pub fn in_block(&self, keyword: &str, depth: usize) -> bool {
        self.stack.len() == depth
            && self
                .stack
                .last()
                .and_then(|b| b.head.as_ref())
                .is_some_and(|(k, _)| k.text == keyword)
    }

    /// Takes the next token.
    pub fn push(&mut self, tok: Token) {
        if self.skip > 0 {
            match tok.kind {
                TokenKind::Open => self.skip += 1,
                TokenKind::Close => self.skip -= 1,
                _ => {}
            }
            return;
        }
        match tok.kind {
            TokenKind::Word { text, quoted } => {
                let w = Word {
                    text,
                    span: tok.span,
                    quoted,
                };
                match &self.state {
                    State::Words(_) => self.words.push(w),
                    State::Ended(_) => {
                        self.flush();
                        self.state = State::Words(w);
                    }
                    State::Idle => self.state = State::Words(w),
                }
            }
            TokenKind::Newline => {
                self.state = match std::mem::replace(&mut self.state, State::Idle) {
                    State::Words(k) => State::Ended(k),
                    other => other,
                };
            }
            TokenKind::Open => self.open(tok.span),
            TokenKind::Close => {
                self.flush();
                if self.stack.is_empty() {
                    self.error(
                        tok.span,
                        "unexpected '}': there is no open block to close here",
                    );
                } else {
                    self.close_block();
                }
            }
        }
    }

    /// The tree and the structural errors (unclosed blocks, stray braces).
    pub fn finish(mut self) -> (Vec<Node>, Vec<LexError>) {
        self.skip = 0;
        self.flush();
        while let Some(b) = self.stack.last() {
            let open = b.open;
            self.error(
                open,
                "unclosed '{': this block has no matching '}' before the end of the file",
            );
            self.close_block();
        }
        let mut top = std::mem::take(&mut self.nodes);
        top.shrink_to_fit();
        (top, self.errors)
    }
}

/// Builds the statement tree of a token stream (includes already spliced in).
pub fn parse(tokens: &[Token]) -> (Vec<Node>, Vec<LexError>) {
    parse_owned(tokens.to_vec())
}

/// [`parse`], moving the words' text into the tree instead of copying it.
pub fn parse_owned(tokens: Vec<Token>) -> (Vec<Node>, Vec<LexError>) {
    let mut b = TreeBuilder::default();
    for t in tokens {
        b.push(t);
    }
    b.finish()
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
