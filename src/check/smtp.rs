//! SMTP_CHECK: connect, read the greeting (220), send `HELO helo_name`
//! (250 expected), send `QUIT` and read its answer, as keepalived does. Every
//! step waits at most connect_timeout. With `host { }` blocks each host is
//! checked in turn and all must pass; the first that fails is the reason.
//!
//! Replies are untrusted: a reply is read to its last line (continuation
//! lines `250-...` are followed, which keepalived does not do), at most
//! [`MAX_REPLY`] bytes, and quoted in the reason cut short and with
//! control characters replaced.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::probe::ProbeResult;
use super::tcp;

/// The most a reply (all its lines) may take.
pub const MAX_REPLY: usize = 4096;

/// One server to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub bind: Option<SocketAddr>,
    pub timeout: Duration,
}

/// What is wrong with a reply, if anything: `Ok(code)` for a complete
/// reply (its last line's code), `Err(None)` when more is needed, and
/// `Err(Some(why))` when it can never be a reply.
pub fn parse_reply(buf: &[u8]) -> Result<u16, Option<String>> {
    let mut rest = buf;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let digits = line.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
        let Some(d) = digits else {
            return Err(Some(format!("not an SMTP reply: '{}'", quote(line))));
        };
        if line.get(3) == Some(&b'-') {
            continue;
        }
        return Ok(d.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0')));
    }
    if buf.len() >= MAX_REPLY {
        return Err(Some(format!("reply longer than {MAX_REPLY} bytes")));
    }
    Err(None)
}

/// A server's words fit for a log line: at most 80 characters, printable.
pub fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut s: String = text
        .trim_end_matches(['\r', '\n'])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(80)
        .collect();
    if text.chars().count() > 80 {
        s.push_str("...");
    }
    s
}

/// Reads one whole reply within `timeout`: its code and its first line.
async fn reply(
    s: &mut TcpStream,
    timeout: Duration,
    step: &str,
) -> Result<(u16, String), ProbeResult> {
    let mut buf = Vec::with_capacity(256);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            match parse_reply(&buf) {
                Ok(code) => {
                    let first = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
                    return Ok((code, quote(first)));
                }
                Err(Some(why)) => return Err(ProbeResult::down(format!("{step}: {why}"))),
                Err(None) => {}
            }
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| ProbeResult::down(format!("{step}: read failed: {e}")))?;
            if n == 0 {
                return Err(ProbeResult::down(format!(
                    "{step}: connection closed by the server"
                )));
            }
            let room = MAX_REPLY.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..n.min(room)]);
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(ProbeResult::down(format!(
            "{step}: timed out after {:.1} s",
            timeout.as_secs_f64()
        ))),
    }
}

async fn send(s: &mut TcpStream, timeout: Duration, line: &str) -> Result<(), ProbeResult> {
    match tokio::time::timeout(timeout, s.write_all(line.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ProbeResult::down(format!("write failed: {e}"))),
        Err(_) => Err(ProbeResult::down(format!(
            "timed out after {:.1} s writing",
            timeout.as_secs_f64()
        ))),
    }
}

/// The whole dialogue with one server.
async fn dialogue(t: &Target, helo: &str) -> Result<(), ProbeResult> {
    let mut s = tcp::connect(t.addr, t.bind, t.timeout)
        .await
        .map_err(tcp::ConnectError::result)?;
    let (code, text) = reply(&mut s, t.timeout, "greeting").await?;
    if code != 220 {
        return Err(ProbeResult::down(format!("bad greeting banner: '{text}'")));
    }
    send(&mut s, t.timeout, &format!("HELO {helo}\r\n")).await?;
    let (code, text) = reply(&mut s, t.timeout, "HELO").await?;
    if code != 250 {
        return Err(ProbeResult::down(format!("bad HELO response: '{text}'")));
    }
    send(&mut s, t.timeout, "QUIT\r\n").await?;
    // Any answer to QUIT will do, as in keepalived.
    reply(&mut s, t.timeout, "QUIT").await?;
    Ok(())
}

/// Checks every target in turn; up when all pass.
pub async fn probe(targets: &[Target], helo: &str) -> ProbeResult {
    for t in targets {
        if let Err(mut r) = dialogue(t, helo).await {
            if targets.len() > 1 {
                r.reason = format!("host {}: {}", t.addr, r.reason).into();
            }
            return r;
        }
    }
    ProbeResult::up("HELO accepted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"220 mail ESMTP\r\n"), Ok(220));
        assert_eq!(parse_reply(b"220-first\r\n220 last\r\n"), Ok(220));
        assert_eq!(parse_reply(b"250-a\r\n"), Err(None));
        assert_eq!(parse_reply(b"220 no newline yet"), Err(None));
        assert_eq!(parse_reply(b""), Err(None));
        assert!(
            parse_reply(b"hello\r\n")
                .unwrap_err()
                .unwrap()
                .contains("hello")
        );
        assert!(parse_reply(b"2\n").is_err());
        let long = vec![b'2'; MAX_REPLY];
        assert!(parse_reply(&long).unwrap_err().is_some());
        assert_eq!(quote(b"554 \x1b[31mno\r\n"), "554 ?[31mno");
        assert_eq!(quote(&[b'x'; 100]).len(), 83);
        assert_eq!(quote(&[0xff, b'1']), "\u{fffd}1");
    }
}
