//! The verdict on one url's response, in keepalived's order: the status
//! code, then the digest. Pure.
//!
//! The digest is keepalived's (the body bytes as received, chunk framing
//! included). A `digest` equal to the MD5 of the decoded body of a chunked
//! response is accepted too, so files written with either genhash work;
//! the caller says so once in the log.

use std::fmt::Write;

use super::response::Digests;
use crate::check::state::Reason;
use crate::config::model::Url;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `want` (hex, any case) is `got`.
fn hex_eq(got: &[u8; 16], want: &str) -> bool {
    let want = want.as_bytes();
    want.len() == 32
        && got.iter().zip(want.chunks(2)).all(|(b, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                == Some(*b)
        })
}

/// How a url came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub up: bool,
    /// Operator-facing: "ok (HTTP 200)", "HTTP status 503 not in 200-299", ...
    pub reason: Reason,
    /// Up because the digest matched the decoded body, not keepalived's.
    pub decoded_digest: bool,
}

impl Verdict {
    fn up(reason: impl Into<Reason>) -> Self {
        Verdict {
            up: true,
            reason: reason.into(),
            decoded_digest: false,
        }
    }

    fn down(reason: impl Into<Reason>) -> Self {
        Verdict {
            up: false,
            reason: reason.into(),
            decoded_digest: false,
        }
    }
}

/// The reason of a healthy url: static text for the usual status codes.
fn ok_reason(status: u16, digest: bool) -> Reason {
    match (status, digest) {
        (200, false) => "ok (HTTP 200)".into(),
        (200, true) => "ok (HTTP 200, digest matches)".into(),
        (_, false) => format!("ok (HTTP {status})").into(),
        (_, true) => format!("ok (HTTP {status}, digest matches)").into(),
    }
}

/// Judges a response: `digests` when the body was hashed completely,
/// `body_problem` when it was not read completely.
pub fn judge(
    status: u16,
    digests: Option<&Digests>,
    body_problem: Option<&str>,
    url: &Url,
) -> Verdict {
    if !url.status_codes.contains(status) {
        return Verdict::down(format!("HTTP status {status} not in {}", url.status_codes));
    }
    if let Some(want) = &url.digest {
        return match (digests, body_problem) {
            (Some(d), _) if hex_eq(&d.raw, want) => Verdict::up(ok_reason(status, true)),
            (Some(d), _) if d.decoded.is_some_and(|dec| hex_eq(&dec, want)) => Verdict {
                decoded_digest: true,
                ..Verdict::up(format!(
                    "ok (HTTP {status}, digest matches the decoded body)"
                ))
            },
            (Some(d), _) => Verdict::down(match d.decoded {
                None => format!("digest mismatch: got {}, want {want}", hex(&d.raw)),
                Some(dec) => format!(
                    "digest mismatch: got {} (decoded body {}), want {want}",
                    hex(&d.raw),
                    hex(&dec)
                ),
            }),
            (None, Some(problem)) => Verdict::down(format!("no digest: {problem}")),
            (None, None) => Verdict::down("no digest: body not read"),
        };
    }
    match body_problem {
        None => Verdict::up(ok_reason(status, false)),
        Some(p) => Verdict::up(format!("ok (HTTP {status}; {p})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::StatusCodes;

    fn url(digest: Option<&str>) -> Url {
        Url {
            path: "/".into(),
            digest: digest.map(str::to_string),
            status_codes: StatusCodes::default_2xx(),
            virtualhost: None,
        }
    }

    const RAW: [u8; 16] = [0xab; 16];
    const DEC: [u8; 16] = [0x01; 16];

    #[test]
    fn status_then_digest() {
        let d = Digests {
            raw: RAW,
            decoded: Some(DEC),
        };
        assert_eq!(
            judge(503, Some(&d), None, &url(None)).reason,
            "HTTP status 503 not in 200-299"
        );
        assert_eq!(judge(200, None, None, &url(None)).reason, "ok (HTTP 200)");
        let v = judge(200, Some(&d), None, &url(Some(&hex(&RAW).to_uppercase())));
        assert_eq!((v.up, v.decoded_digest), (true, false));
        assert_eq!(v.reason, "ok (HTTP 200, digest matches)");
        let v = judge(200, Some(&d), None, &url(Some(&hex(&DEC))));
        assert_eq!((v.up, v.decoded_digest), (true, true));
        assert_eq!(v.reason, "ok (HTTP 200, digest matches the decoded body)");
        let v = judge(200, Some(&d), None, &url(Some(&"0".repeat(32))));
        assert!(!v.up);
        assert_eq!(
            v.reason,
            format!(
                "digest mismatch: got {} (decoded body {}), want {}",
                hex(&RAW),
                hex(&DEC),
                "0".repeat(32)
            )
        );
        let v = judge(200, None, Some("body larger than 4 bytes"), &url(Some("x")));
        assert_eq!(v.reason, "no digest: body larger than 4 bytes");
        let v = judge(200, None, Some("body larger than 4 bytes"), &url(None));
        assert_eq!(
            (v.up, &*v.reason),
            (true, "ok (HTTP 200; body larger than 4 bytes)")
        );
    }

    #[test]
    fn hex_comparison() {
        assert!(hex_eq(&RAW, &hex(&RAW)));
        assert!(!hex_eq(&RAW, &hex(&RAW)[..30]));
        assert!(!hex_eq(&RAW, &format!("{}zz", &hex(&RAW)[..30])));
    }
}
