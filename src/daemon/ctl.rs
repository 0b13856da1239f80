//! `ipvsdir ctl`: the operator's run-time commands, sent as one line over
//! the status socket (root only) and answered with one JSON object.
//!
//! ```text
//! drain 10.0.0.11:8080 [vs 10.0.0.1:80]     weight 0, connections finish
//! disable 10.0.0.11 [vs ...]                out of the table
//! enable 10.0.0.11 [vs ...]                 back to its checkers' verdict
//! weight 10.0.0.11:8080 5 [vs ...]          this weight while up
//! drain-director                            announced VIPs drained, then withdrawn
//! undrain-director                          announced again as health says
//! ```

use serde::{Deserialize, Serialize};

use crate::lvs::director::{Override, Target, parse_endpoint};

/// A request the status socket understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The status document (API version 1).
    Status,
    Operator(Target, Override),
    /// `drain-director` (true) or `undrain-director` (false).
    Director(bool),
}

/// The answer to an operator's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub ok: bool,
    /// The real servers it applied to, as the log names them.
    #[serde(default)]
    pub applied: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a director command does (drain-director).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Answer {
    pub fn error(e: impl std::fmt::Display) -> Self {
        Answer {
            ok: false,
            applied: Vec::new(),
            error: Some(e.to_string()),
            message: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "empty request: send `status`, or `drain|disable|enable RS [vs VS]`, or `weight RS N [vs VS]`, or `drain-director|undrain-director`"
    )]
    Empty,
    #[error(
        "unknown request `{0}`: send `status`, `drain`, `disable`, `enable`, `weight`, `drain-director` or `undrain-director`"
    )]
    Unknown(String),
    #[error("`{0}` is not a real server address: give IP or IP:PORT ([IPv6]:PORT)")]
    Address(String),
    #[error("`weight` needs a number from 0 to 65535 after the real server, not `{0}`")]
    Weight(String),
    #[error("unexpected `{0}`: the real server may be followed by `vs VIRTUAL_SERVER` only")]
    Trailing(String),
}

/// One request line.
pub fn parse(line: &str) -> Result<Request, RequestError> {
    let mut words = line.split_whitespace();
    let verb = words.next().ok_or(RequestError::Empty)?;
    match (verb, words.clone().next()) {
        ("status", _) => return Ok(Request::Status),
        ("drain-director", None) => return Ok(Request::Director(true)),
        ("undrain-director", None) => return Ok(Request::Director(false)),
        ("drain-director" | "undrain-director", Some(w)) => {
            return Err(RequestError::Trailing(w.chars().take(40).collect()));
        }
        _ => {}
    }
    let what = match verb {
        "drain" => Override::Drain,
        "disable" => Override::Disable,
        "enable" => Override::Clear,
        "weight" => Override::Weight(0),
        other => return Err(RequestError::Unknown(other.chars().take(40).collect())),
    };
    let rs = words.next().unwrap_or("");
    let (addr, port) = parse_endpoint(rs).ok_or_else(|| RequestError::Address(rs.into()))?;
    let what = match what {
        Override::Weight(_) => {
            let n = words.next().unwrap_or("");
            match n.parse::<u32>() {
                Ok(w) if w <= 65_535 => Override::Weight(w),
                _ => return Err(RequestError::Weight(n.into())),
            }
        }
        o => o,
    };
    let vs = match words.next() {
        None => None,
        Some("vs") => {
            let rest: Vec<&str> = words.collect();
            if rest.is_empty() {
                return Err(RequestError::Trailing("vs".into()));
            }
            Some(rest.join(" "))
        }
        Some(other) => return Err(RequestError::Trailing(other.into())),
    };
    Ok(Request::Operator(Target { addr, port, vs }, what))
}

/// The request line for an operator's command (what `ipvsdir ctl` sends).
pub fn line(target: &Target, what: Override) -> String {
    let rs = match (target.addr, target.port) {
        (std::net::IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    };
    let mut l = match what {
        Override::Drain => format!("drain {rs}"),
        Override::Disable => format!("disable {rs}"),
        Override::Clear => format!("enable {rs}"),
        Override::Weight(w) => format!("weight {rs} {w}"),
    };
    if let Some(vs) = &target.vs {
        l.push_str(" vs ");
        l.push_str(vs);
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_say_what_to_send() {
        for l in [
            "drain 10.0.0.11:8080",
            "disable 10.0.0.11 vs tcp 10.0.0.1:80",
            "enable [2001:db8::11]:80 vs group web",
            "weight 10.0.0.11:80 7 vs 10.0.0.1:80",
        ] {
            let Ok(Request::Operator(t, o)) = parse(l) else {
                panic!("{l}")
            };
            assert_eq!(line(&t, o), l);
        }
        assert_eq!(parse("status\n"), Ok(Request::Status));
        assert_eq!(parse(""), Err(RequestError::Empty));
        assert!(matches!(parse("drain web1"), Err(RequestError::Address(_))));
        assert!(matches!(
            parse("weight 10.0.0.1 x"),
            Err(RequestError::Weight(_))
        ));
        assert!(matches!(
            parse("weight 10.0.0.1 70000"),
            Err(RequestError::Weight(_))
        ));
        assert!(matches!(
            parse("drain 10.0.0.1 now"),
            Err(RequestError::Trailing(_))
        ));
        assert!(matches!(parse("reboot"), Err(RequestError::Unknown(_))));
        assert_eq!(parse("drain-director\n"), Ok(Request::Director(true)));
        assert_eq!(parse("undrain-director"), Ok(Request::Director(false)));
        assert!(matches!(
            parse("drain-director now"),
            Err(RequestError::Trailing(_))
        ));
    }
}
