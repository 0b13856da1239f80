//! One response read off a connection, sans I/O: the driver (the tokio
//! client for SSL_GET and genhash, the checker thread's poller for plain
//! HTTP_GET) reads into a buffer of its own and hands the bytes here; this
//! keeps the head until it is complete, then streams the body into its
//! digest, and says how the response ended (closed early, an error half
//! way, too large). The head is copied only when it spans reads.

use super::client::{FetchError, Keep, Phase, Response};
use super::response::{Body, Head, Progress, parse_head};

/// A response being read.
pub struct Reader {
    max_body: u64,
    keep: Keep,
    /// The head's bytes so far, when it did not come in one read.
    partial: Vec<u8>,
    /// Once the head is complete: it, the head bytes kept, and the body.
    body: Option<(Head, Option<Vec<u8>>, Body)>,
    problem: Option<String>,
}

impl Reader {
    pub fn new(max_body: u64, keep: Keep) -> Reader {
        Reader {
            max_body,
            keep,
            partial: Vec::new(),
            body: None,
            problem: None,
        }
    }

    /// What the connection is waiting for now.
    pub fn phase(&self) -> Phase {
        match self.body {
            None => Phase::WaitingForResponse,
            Some(_) => Phase::ReadingBody,
        }
    }

    /// Takes the next bytes read (never empty): `More` while the response
    /// goes on; `Done` when it is complete (or reading it stops: too large).
    pub fn feed(&mut self, data: &[u8]) -> Result<Progress, FetchError> {
        let Some((_, _, body)) = self.body.as_mut() else {
            return self.feed_head(data);
        };
        let progress = body.feed(data);
        Ok(self.settle(progress))
    }

    fn feed_head(&mut self, data: &[u8]) -> Result<Progress, FetchError> {
        // Usually the whole head is in the first read: parse it in place.
        let whole = if self.partial.is_empty() {
            data
        } else {
            self.partial.extend_from_slice(data);
            &self.partial
        };
        let head = match parse_head(whole) {
            Ok(Some(head)) => head,
            Ok(None) => {
                if self.partial.is_empty() {
                    self.partial.extend_from_slice(data);
                }
                return Ok(Progress::More);
            }
            Err(e) => return Err(FetchError::BadResponse(e.to_string())),
        };
        let head_bytes = self.keep.head.then(|| whole[..head.len].to_vec());
        let mut body = Body::new(head.framing, self.max_body, self.keep.hash, self.keep.body);
        // The body's first bytes: what followed the head in this read.
        let first_len = whole.len() - head.len;
        let first = &data[data.len() - first_len.min(data.len())..];
        let progress = body.feed(first);
        self.partial = Vec::new();
        self.body = Some((head, head_bytes, body));
        Ok(self.settle(progress))
    }

    fn settle(&mut self, progress: Progress) -> Progress {
        if progress == Progress::TooLarge {
            self.problem = Some(format!("body larger than {} bytes", self.max_body));
            return Progress::Done;
        }
        progress
    }

    /// The server closed the connection: the response as far as it went,
    /// or why there is none.
    pub fn closed(mut self) -> Result<Response, FetchError> {
        match &self.body {
            None => Err(FetchError::ClosedEarly),
            Some((_, _, body)) => {
                if !body.closed() {
                    self.problem = Some(format!(
                        "body incomplete after {} bytes: connection closed early",
                        body.len()
                    ));
                }
                self.finish()
            }
        }
    }

    /// A read failed with `error` (worded): the response as far as it went
    /// once the head is in, else the error.
    pub fn failed(mut self, error: String) -> Result<Response, FetchError> {
        match &self.body {
            None => Err(FetchError::Io(error)),
            Some((_, _, body)) => {
                self.problem = Some(format!(
                    "body incomplete after {} bytes: {error}",
                    body.len()
                ));
                self.finish()
            }
        }
    }

    /// The response, once `feed` said `Done` (or after `closed`/`failed`).
    pub fn finish(self) -> Result<Response, FetchError> {
        let Some((head, head_bytes, body)) = self.body else {
            return Err(FetchError::ClosedEarly);
        };
        let body_len = body.len();
        let (digests, kept) = body.digests();
        Ok(Response {
            head,
            head_bytes,
            body_len,
            digests: digests.filter(|_| self.problem.is_none()),
            body_problem: self.problem,
            body: kept,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ALL: Keep = Keep {
        hash: true,
        head: true,
        body: true,
    };

    fn read_in_pieces(wire: &[u8], cut: usize) -> Result<Response, FetchError> {
        let mut r = Reader::new(1 << 20, KEEP_ALL);
        for piece in [&wire[..cut], &wire[cut..]] {
            if piece.is_empty() {
                continue;
            }
            if r.feed(piece)? == Progress::Done {
                return r.finish();
            }
        }
        r.closed()
    }

    #[test]
    fn a_response_split_anywhere_reads_the_same() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let whole = read_in_pieces(wire, wire.len()).unwrap();
        assert_eq!(whole.head.status, 200);
        assert!(whole.body_problem.is_none());
        for cut in 1..wire.len() {
            let r = read_in_pieces(wire, cut).unwrap();
            assert_eq!(r.head, whole.head, "{cut}");
            assert_eq!(r.head_bytes, whole.head_bytes, "{cut}");
            assert_eq!(r.body, whole.body, "{cut}");
            assert_eq!(r.digests, whole.digests, "{cut}");
        }
    }

    #[test]
    fn how_a_response_ends() {
        let mut r = Reader::new(1 << 20, KEEP_ALL);
        assert_eq!(r.phase(), Phase::WaitingForResponse);
        assert_eq!(r.feed(b"HTTP/1.0 200 OK\r\n").unwrap(), Progress::More);
        assert!(matches!(r.closed(), Err(FetchError::ClosedEarly)));

        let mut r = Reader::new(1 << 20, KEEP_ALL);
        r.feed(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        assert_eq!(r.phase(), Phase::ReadingBody);
        let resp = r.closed().unwrap();
        assert_eq!(
            resp.body_problem.as_deref(),
            Some("body incomplete after 3 bytes: connection closed early")
        );
        assert!(resp.digests.is_none());

        let mut r = Reader::new(4, KEEP_ALL);
        assert_eq!(
            r.feed(b"HTTP/1.0 200 OK\r\n\r\nabcdef").unwrap(),
            Progress::Done
        );
        let resp = r.finish().unwrap();
        assert_eq!(
            resp.body_problem.as_deref(),
            Some("body larger than 4 bytes")
        );

        let r = Reader::new(4, KEEP_ALL);
        assert_eq!(
            r.failed("connection reset by peer".into()).unwrap_err(),
            FetchError::Io("connection reset by peer".into())
        );
        let mut r = Reader::new(1 << 20, KEEP_ALL);
        assert!(matches!(
            r.feed(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(FetchError::BadResponse(_))
        ));
    }
}
