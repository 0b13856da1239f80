//! The syntax tree: statements (`keyword args...`) with optional `{ }`
//! blocks, every word carrying its span. No meaning is attached here.

use super::lexer::{LexError, Token, TokenKind};
use super::source::Span;

/// A word's text: up to 22 bytes inline (keywords, addresses, numbers: most
/// words), longer ones on the heap. A large file has a million words; one
/// allocation each would be most of the tree's memory.
#[derive(Clone)]
pub enum Text {
    Inline { len: u8, buf: [u8; 22] },
    Heap(Box<str>),
}

impl Text {
    pub fn as_str(&self) -> &str {
        match self {
            // Only whole UTF-8 strings are stored (see From<&str>).
            Text::Inline { len, buf } => std::str::from_utf8(&buf[..*len as usize]).unwrap_or(""),
            Text::Heap(s) => s,
        }
    }

    /// The bytes, without the UTF-8 check `as_str` makes (comparisons: a
    /// large file compares millions of words).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, buf } => &buf[..*len as usize],
            Text::Heap(s) => s.as_bytes(),
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        if s.len() <= 22 {
            let mut buf = [0; 22];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Text::Inline {
                len: s.len() as u8,
                buf,
            }
        } else {
            Text::Heap(s.into())
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= 22 {
            Text::from(s.as_str())
        } else {
            Text::Heap(s.into_boxed_str())
        }
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::from("")
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// A block being read: its statement and the statements inside so far.
struct OpenBlock {
    /// None: a `{` without a keyword, read and dropped.
    head: Option<(Word, Vec<Word>)>,
    open: Span,
    nodes: Vec<Node>,
}

/// Where the builder stands between tokens.
enum State {
    /// At the start of a statement.
    Idle,
    /// Reading a statement's words (on its first line).
    Words(Word, Vec<Word>),
    /// A statement's line ended: a `{` on a following line still opens its block.
    Ended(Word, Vec<Word>),
}

/// Builds the statement tree from tokens handed in one at a time (no token
/// list, no recursion: any nesting depth is safe).
pub struct TreeBuilder {
    top: Vec<Node>,
    stack: Vec<OpenBlock>,
    state: State,
    /// Inside a block past [`MAX_DEPTH`]: how many `{` are open there.
    skip: u64,
    errors: Vec<LexError>,
}

impl Default for TreeBuilder {
    fn default() -> Self {
        TreeBuilder {
            top: Vec::new(),
            stack: Vec::new(),
            state: State::Idle,
            skip: 0,
            errors: Vec::new(),
        }
    }
}

fn node(keyword: Word, args: Vec<Word>, block: Option<Block>) -> Node {
    Node {
        keyword,
        args: args.into_boxed_slice(),
        block,
    }
}

impl TreeBuilder {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(LexError {
            span,
            message: message.into(),
        });
    }

    fn container(&mut self) -> &mut Vec<Node> {
        match self.stack.last_mut() {
            Some(b) => &mut b.nodes,
            None => &mut self.top,
        }
    }

    /// Ends a statement that has no block.
    fn flush(&mut self) {
        if let State::Words(k, a) | State::Ended(k, a) =
            std::mem::replace(&mut self.state, State::Idle)
        {
            let n = node(k, a, None);
            self.container().push(n);
        }
    }

    fn open(&mut self, span: Span) {
        let head = match std::mem::replace(&mut self.state, State::Idle) {
            State::Words(k, a) | State::Ended(k, a) => Some((k, a)),
            State::Idle => {
                self.error(span, "'{' without a keyword before it");
                None
            }
        };
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
            nodes: Vec::new(),
        });
    }

    fn close_block(&mut self) {
        let Some(b) = self.stack.pop() else { return };
        if let Some((k, a)) = b.head {
            // Boxed to fit: most blocks are small (a real_server's often
            // holds one statement).
            let n = node(
                k,
                a,
                Some(Block {
                    open: b.open,
                    nodes: b.nodes.into_boxed_slice(),
                }),
            );
            self.container().push(n);
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
                    text: Text::from(text),
                    span: tok.span,
                    quoted,
                };
                match &mut self.state {
                    State::Words(_, args) => args.push(w),
                    State::Ended(..) => {
                        self.flush();
                        self.state = State::Words(w, Vec::new());
                    }
                    State::Idle => self.state = State::Words(w, Vec::new()),
                }
            }
            TokenKind::Newline => {
                self.state = match std::mem::replace(&mut self.state, State::Idle) {
                    State::Words(k, a) => State::Ended(k, a),
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
        let mut top = std::mem::take(&mut self.top);
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
