//! Reading one HTTP/1.x response, sans I/O: feed it the bytes as they
//! arrive, in pieces of any size, and it finds the head (status line and
//! headers, parsed with `httparse`), where the body ends, and the digests.
//!
//! keepalived's digest is the MD5 of the body bytes as they came off the
//! wire: for a chunked response, the chunk-size lines and the trailer are
//! part of it. That is the digest computed here (`raw`); for a chunked body
//! the MD5 of the decoded body is computed beside it (`decoded`), so a
//! `digest` written for either is recognised. Nothing of the body is kept
//! unless asked (genhash --verbose).
//!
//! Where the body ends: at `Content-Length` bytes, at the end of the chunked
//! encoding, or at the close of the connection. keepalived reads to the close
//! in every case and cuts its digest at `Content-Length`; the bytes hashed
//! are the same for any server that closes after its response (we ask it to)
//! and stops reading earlier for one that keeps the connection open.
//! A chunked body that breaks the chunked syntax is hashed to the close of
//! the connection, as keepalived does, without a decoded digest.

use md5::{Digest, Md5};

/// Largest response head (status line + headers) accepted.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Headers parsed without an allocation; a response with more is parsed
/// again with room for all of them (the head is at most 64 KiB).
const HEADERS_INLINE: usize = 32;

/// The status line and what the body framing needs from the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub status: u16,
    /// Reason phrase of the status line (lossy UTF-8).
    pub reason: String,
    /// Bytes of the head, the final blank line included.
    pub len: usize,
    pub framing: Framing,
}

/// How the end of the body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    Close,
}

/// Why the head could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// More than [`MAX_HEADER_BYTES`] without the end of the head.
    TooLarge,
    /// Not an HTTP/1.x response head (httparse's words).
    Invalid(String),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::TooLarge => {
                write!(f, "response head larger than {MAX_HEADER_BYTES} bytes")
            }
            HeadError::Invalid(e) => f.write_str(e),
        }
    }
}

/// Lenient as keepalived, which only looks for a status code and the blank
/// line: what real servers get slightly wrong is still a response.
fn parser() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true);
    config
}

/// Parses the head at the start of `buf`: `Ok(None)` until it is complete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut inline = [httparse::EMPTY_HEADER; HEADERS_INLINE];
    match parse_with(buf, &mut inline) {
        Err(httparse::Error::TooManyHeaders) => {
            // Every header takes a line: that many is always enough.
            let lines = buf.iter().filter(|&&b| b == b'\n').count() + 1;
            let mut all = vec![httparse::EMPTY_HEADER; lines];
            parse_with(buf, &mut all).map_err(|e| HeadError::Invalid(e.to_string()))
        }
        other => other.map_err(|e| HeadError::Invalid(e.to_string())),
    }
    .and_then(|head| match head {
        None if buf.len() >= MAX_HEADER_BYTES => Err(HeadError::TooLarge),
        head => Ok(head),
    })
}

fn parse_with<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
) -> Result<Option<Head>, httparse::Error> {
    let mut resp = httparse::Response::new(headers);
    let len = match parser().parse_response(&mut resp, buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    if len > MAX_HEADER_BYTES {
        return Ok(None);
    }
    Ok(Some(Head {
        minor_version: resp.version.unwrap_or(1),
        status: resp.code.unwrap_or(0),
        reason: resp.reason.unwrap_or("").to_string(),
        len,
        framing: framing(resp.headers),
    }))
}

/// RFC 9112 6.3: chunked when it is the last transfer coding; else a
/// valid Content-Length; else the close. An invalid or contradictory
/// Content-Length is ignored (read to the close), as keepalived does.
fn framing(headers: &[httparse::Header<'_>]) -> Framing {
    let mut te = None;
    let mut length: Option<Option<u64>> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            length = Some(match length {
                None => v,
                Some(prev) if prev == v => v,
                Some(_) => None,
            });
        }
    }
    if let Some(te) = te {
        let last = te.rsplit(|&b| b == b',').next().unwrap_or(b"");
        return if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Framing::Chunked
        } else {
            Framing::Close
        };
    }
    match length {
        Some(Some(n)) => Framing::Length(n),
        _ => Framing::Close,
    }
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size (`digits` so far).
    Size {
        size: u64,
        digits: u32,
    },
    /// Whitespace after the size, before `;` or the line end.
    SizeSpace {
        size: u64,
    },
    /// A chunk extension, up to the line end.
    Extension {
        size: u64,
    },
    /// After the CR of the size line.
    SizeLf {
        size: u64,
    },
    /// Chunk data still to come.
    Data {
        left: u64,
    },
    /// The CRLF after the data.
    DataCr,
    DataLf,
    /// Start of a trailer line (or of the final blank line).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// After the CR of the final blank line.
    FinalLf,
    Done,
}

/// What the body reader makes of the bytes fed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The body goes on.
    More,
    /// The body ended (the bytes after its end are not part of it).
    Done,
    /// More than the cap arrived: reading stops, there is no digest.
    TooLarge,
}

/// The body of one response, fed piece by piece.
#[derive(Debug, Clone)]
pub struct Body {
    framing: Framing,
    chunk: Chunk,
    /// Bytes of the body as received (what keepalived hashes).
    raw_len: u64,
    max: u64,
    raw: Option<Md5>,
    decoded: Option<Md5>,
    kept: Option<Vec<u8>>,
}

/// The digests of a complete body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// keepalived's: MD5 of the body bytes as received.
    pub raw: [u8; 16],
    /// MD5 of the decoded body, when it differs from the raw bytes (chunked).
    pub decoded: Option<[u8; 16]>,
}

impl Body {
    /// A body framed by `framing`, read up to `max` bytes; hashed when
    /// `hash`, kept in memory when `keep`.
    pub fn new(framing: Framing, max: u64, hash: bool, keep: bool) -> Body {
        Body {
            framing,
            chunk: Chunk::Size { size: 0, digits: 0 },
            raw_len: 0,
            max,
            raw: hash.then(Md5::new),
            decoded: (hash && framing == Framing::Chunked).then(Md5::new),
            kept: keep.then(Vec::new),
        }
    }

    /// Body bytes received so far (as on the wire).
    pub fn len(&self) -> u64 {
        self.raw_len
    }

    pub fn is_empty(&self) -> bool {
        self.raw_len == 0
    }

    /// Takes the next bytes received.
    pub fn feed(&mut self, data: &[u8]) -> Progress {
        let (used, done) = match self.framing {
            Framing::Length(n) => {
                let used = (n - self.raw_len).min(data.len() as u64) as usize;
                (used, self.raw_len + used as u64 == n)
            }
            Framing::Close => (data.len(), false),
            Framing::Chunked => match self.decode(data) {
                Some(used) => (used, self.chunk == Chunk::Done),
                None => {
                    // Not chunked after all: keepalived's digest is the
                    // bytes to the close; there is no decoded one.
                    self.framing = Framing::Close;
                    self.decoded = None;
                    (data.len(), false)
                }
            },
        };
        if self.raw_len + used as u64 > self.max {
            return Progress::TooLarge;
        }
        let used = &data[..used];
        self.raw_len += used.len() as u64;
        if let Some(h) = self.raw.as_mut() {
            h.update(used);
        }
        if let Some(k) = self.kept.as_mut() {
            k.extend_from_slice(used);
        }
        if done {
            return Progress::Done;
        }
        Progress::More
    }

    /// The connection closed: `true` when that ends the body properly.
    pub fn closed(&self) -> bool {
        match self.framing {
            Framing::Close => true,
            Framing::Length(n) => self.raw_len == n,
            Framing::Chunked => self.chunk == Chunk::Done,
        }
    }

    /// Decodes chunked framing from `data`, hashing the chunk data into the
    /// decoded digest. Returns how many bytes belong to the body (up to its
    /// end), or `None` on a syntax error.
    fn decode(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < data.len() && self.chunk != Chunk::Done {
            let b = data[i];
            self.chunk = match self.chunk {
                Chunk::Data { left } => {
                    let n = (left.min((data.len() - i) as u64)) as usize;
                    if let Some(h) = self.decoded.as_mut() {
                        h.update(&data[i..i + n]);
                    }
                    i += n;
                    match left - n as u64 {
                        0 => Chunk::DataCr,
                        left => Chunk::Data { left },
                    }
                }
                state => {
                    i += 1;
                    chunk_step(state, b)?
                }
            };
        }
        Some(i)
    }

    /// The digests, when hashing was asked for and the body is complete.
    pub fn digests(self) -> (Option<Digests>, Option<Vec<u8>>) {
        let digests = self.raw.map(|raw| Digests {
            raw: raw.finalize().into(),
            decoded: self.decoded.map(|d| d.finalize().into()),
        });
        (digests, self.kept)
    }
}

/// One byte of chunked framing outside chunk data (RFC 9112 7.1); bare LF
/// line ends are accepted.
fn chunk_step(state: Chunk, b: u8) -> Option<Chunk> {
    Some(match (state, b) {
        (Chunk::Size { size, digits }, _) if b.is_ascii_hexdigit() => {
            if digits >= 16 {
                return None;
            }
            let v = (b as char).to_digit(16)? as u64;
            Chunk::Size {
                size: size << 4 | v,
                digits: digits + 1,
            }
        }
        (Chunk::Size { digits: 0, .. }, _) => return None,
        (Chunk::Size { size, .. } | Chunk::SizeSpace { size }, b' ' | b'\t') => {
            Chunk::SizeSpace { size }
        }
        (Chunk::Size { size, .. } | Chunk::SizeSpace { size }, b';') => Chunk::Extension { size },
        (Chunk::Extension { size }, b'\r' | b'\n')
        | (Chunk::Size { size, .. } | Chunk::SizeSpace { size }, b'\r' | b'\n') => {
            if b == b'\r' {
                Chunk::SizeLf { size }
            } else {
                after_size_line(size)
            }
        }
        (Chunk::Extension { size }, _) => Chunk::Extension { size },
        (Chunk::SizeLf { size }, b'\n') => after_size_line(size),
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataCr | Chunk::DataLf, b'\n') => Chunk::Size { size: 0, digits: 0 },
        (Chunk::TrailerStart, b'\r') => Chunk::FinalLf,
        (Chunk::TrailerStart | Chunk::FinalLf, b'\n') => Chunk::Done,
        (Chunk::Trailer, b'\n') => Chunk::TrailerStart,
        (Chunk::TrailerStart | Chunk::Trailer, _) => Chunk::Trailer,
        _ => return None,
    })
}

fn after_size_line(size: u64) -> Chunk {
    if size == 0 {
        Chunk::TrailerStart
    } else {
        Chunk::Data { left: size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    /// Feeds `body` in two pieces split at `at`.
    fn feed_split(framing: Framing, body: &[u8], at: usize) -> (Progress, Body) {
        let mut b = Body::new(framing, u64::MAX, true, false);
        let mut p = b.feed(&body[..at]);
        if p == Progress::More {
            p = b.feed(&body[at..]);
        }
        (p, b)
    }

    #[test]
    fn head_with_odd_case_and_many_headers() {
        let mut head =
            b"HTTP/1.1 200 OK\r\nContent-type: text/html\r\ncontent-LENGTH: 5\r\n".to_vec();
        for i in 0..150 {
            head.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\nhello");
        let h = parse_head(&head).unwrap().unwrap();
        assert_eq!((h.status, h.minor_version), (200, 1));
        assert_eq!(h.reason, "OK");
        assert_eq!(h.framing, Framing::Length(5));
        assert_eq!(&head[h.len..], b"hello");
        for cut in 0..h.len {
            assert_eq!(parse_head(&head[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn framing_rules() {
        let f = |h: &str| parse_head(h.as_bytes()).unwrap().unwrap().framing;
        assert_eq!(f("HTTP/1.0 200 OK\r\n\r\n"), Framing::Close);
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 3\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Framing::Close
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            Framing::Close
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Framing::Close
        );
        assert_eq!(
            f("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"),
            Framing::Length(0)
        );
    }

    #[test]
    fn bad_and_huge_heads() {
        assert!(matches!(
            parse_head(b"garbage\r\n\r\n"),
            Err(HeadError::Invalid(_))
        ));
        let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        big.resize(MAX_HEADER_BYTES, b'a');
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn chunked_split_at_every_byte() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for at in 0..=wire.len() {
            let (p, b) = feed_split(Framing::Chunked, wire, at);
            assert_eq!(p, Progress::Done, "split at {at}");
            assert!(b.closed());
            assert_eq!(b.len(), wire.len() as u64);
            let (d, _) = b.digests();
            let d = d.unwrap();
            assert_eq!(d.raw, md5(wire), "split at {at}");
            assert_eq!(d.decoded, Some(md5(b"hello world0123456789")));
        }
    }

    #[test]
    fn bytes_after_the_end_are_not_the_body() {
        let (p, b) = feed_split(Framing::Chunked, b"1\r\na\r\n0\r\n\r\nEXTRA", 3);
        assert_eq!(p, Progress::Done);
        assert_eq!(b.len(), 11);
        let (p, b) = feed_split(Framing::Length(5), b"helloEXTRA", 2);
        assert_eq!(p, Progress::Done);
        assert_eq!(b.digests().0.unwrap().raw, md5(b"hello"));
    }

    #[test]
    fn length_and_close_split_at_every_byte() {
        let body = b"some body bytes\n";
        for at in 0..=body.len() {
            let (p, b) = feed_split(Framing::Length(body.len() as u64), body, at);
            assert_eq!(p, Progress::Done);
            let d = b.digests().0.unwrap();
            assert_eq!((d.raw, d.decoded), (md5(body), None));
            let (p, b) = feed_split(Framing::Close, body, at);
            assert_eq!(p, Progress::More);
            assert!(b.closed());
            assert_eq!(b.digests().0.unwrap().raw, md5(body));
        }
    }

    #[test]
    fn broken_chunking_is_hashed_to_the_close() {
        let wire = b"5\r\nhelloXX garbage";
        let (p, b) = feed_split(Framing::Chunked, wire, 4);
        assert_eq!(p, Progress::More);
        assert!(b.closed());
        let d = b.digests().0.unwrap();
        assert_eq!((d.raw, d.decoded), (md5(wire), None));
    }

    #[test]
    fn incomplete_and_too_large() {
        let mut b = Body::new(Framing::Length(10), u64::MAX, false, false);
        assert_eq!(b.feed(b"short"), Progress::More);
        assert!(!b.closed());
        let mut b = Body::new(Framing::Close, 4, true, true);
        assert_eq!(b.feed(b"1234"), Progress::More);
        assert_eq!(b.feed(b"5"), Progress::TooLarge);
        assert_eq!(b.digests().1.unwrap(), b"1234");
    }
}
