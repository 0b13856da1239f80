//! `genhash`: fetch a url the way HTTP_GET / SSL_GET does and print the MD5
//! digest of its body, the value to write as `digest` in a `url` block.
//!
//! Options and output follow keepalived 2.2.7's `genhash`: without
//! `--verbose` the output is the digest alone (32 lowercase hex characters and
//! a newline); with `--verbose`, keepalived's sections (response head as a hex
//! dump and as text, the body as a hex dump, the digest) preceded by the
//! request that was sent, and the response time at the end.
//!
//! The digest is keepalived's: the MD5 of the body bytes as received (for a
//! chunked response, chunk framing included), and the head is shown exactly
//! as the server sent it.
//!
//! Differences from keepalived's genhash: failures are errors (keepalived
//! prints them on stdout and exits 0), a body cut short included; the timeout
//! defaults to 5 s (keepalived waits forever); the body is dumped in one
//! piece (keepalived: one dump per read); `--fwmark` is not supported. The
//! status code is not judged here, like keepalived: the digest of an error
//! page is still a digest.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::model::HttpVersion;

use super::http::{DEFAULT_MAX_BODY, FetchError, Fetched, HttpTarget, fetch, hex};

/// `ipvsdir genhash` options (keepalived's long and short names).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct GenhashArgs {
    /// Address of the web server.
    #[arg(short = 's', long, value_name = "IP")]
    pub server: IpAddr,
    /// Port of the web server.
    #[arg(short = 'p', long)]
    pub port: u16,
    /// Path to fetch.
    #[arg(short = 'u', long, value_name = "PATH", default_value = "/")]
    pub url: String,
    /// Use TLS (as SSL_GET does: no certificate verification).
    #[arg(short = 'S', long)]
    pub use_ssl: bool,
    /// Host header to send (default: IP:PORT).
    #[arg(short = 'V', long = "use-virtualhost", value_name = "HOST")]
    pub virtualhost: Option<String>,
    /// HTTP protocol: 1.0, 1.1 or 1.0c (1.0 with "Connection: close").
    #[arg(short = 'P', long, value_name = "VERSION", default_value = "1.0", value_parser = parse_protocol)]
    pub protocol: HttpVersion,
    /// Seconds allowed for the connect, and for each wait for the server
    /// after it (the checker's connect_timeout).
    #[arg(short = 't', long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Also print the request, the response head and body, the digest bytes.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Send the virtualhost as TLS SNI (with --use-ssl and --use-virtualhost).
    #[arg(short = 'I', long = "use-sni", visible_alias = "sni")]
    pub sni: bool,
}

/// `1.0`, `1.1`, `1.0c` / `1.0C`.
pub fn parse_protocol(s: &str) -> Result<HttpVersion, String> {
    match s {
        "1.0" => Ok(HttpVersion::Http10),
        "1.0c" | "1.0C" => Ok(HttpVersion::Http10Close),
        "1.1" => Ok(HttpVersion::Http11),
        _ => Err(format!("'{s}' is not one of 1.0, 1.0c, 1.1")),
    }
}

/// Seconds, fractions allowed; more than zero.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("'{s}': the timeout must be more than 0"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{s}': {e}"))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenhashError {
    /// No response: connection, TLS, timeout or protocol failure.
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// A response came, but not a whole body to hash.
    #[error("HTTP {status}: {problem}; no digest")]
    Body { status: u16, problem: String },
}

/// What genhash found, for callers that want more than text.
#[derive(Debug, Clone)]
pub struct GenhashReport {
    /// keepalived's MD5 of the body, 32 lowercase hex characters.
    pub digest: String,
    /// MD5 of the decoded body, when it differs (chunked).
    pub decoded_digest: Option<String>,
    pub fetched: Fetched,
}

/// The probe target genhash uses for `args`.
pub fn target(args: &GenhashArgs) -> HttpTarget {
    HttpTarget {
        connect: SocketAddr::new(args.server, args.port),
        bind: None,
        tls: args.use_ssl,
        enable_sni: args.sni,
        version: args.protocol,
        timeout: args.timeout,
        max_body: DEFAULT_MAX_BODY,
    }
}

/// Fetches the url (with the checker's code) and returns digest and response.
pub async fn genhash_report(args: &GenhashArgs) -> Result<GenhashReport, GenhashError> {
    let fetched = fetch(
        &target(args),
        &args.url,
        args.virtualhost.as_deref(),
        args.verbose,
    )
    .await?;
    match (fetched.digests, &fetched.body_problem) {
        (Some(d), _) => Ok(GenhashReport {
            digest: hex(&d.raw),
            decoded_digest: d.decoded.map(|d| hex(&d)),
            fetched,
        }),
        (None, problem) => Err(GenhashError::Body {
            status: fetched.status,
            problem: problem.clone().unwrap_or_else(|| "body not read".into()),
        }),
    }
}

/// Runs genhash and returns the text to print (ends with a newline).
pub async fn genhash(args: &GenhashArgs) -> Result<String, GenhashError> {
    let report = genhash_report(args).await?;
    Ok(if args.verbose {
        verbose_text(&report, &args.url)
    } else {
        format!("{}\n", report.digest)
    })
}

const DELIM_BEGIN: &str = "-----------------------[";
const DELIM_END: &str = "]-----------------------\n";

fn section(out: &mut String, title: &str) {
    out.push_str(DELIM_BEGIN);
    out.push_str(title);
    out.push_str(DELIM_END);
}

/// keepalived's verbose layout, with the request first.
fn verbose_text(report: &GenhashReport, path: &str) -> String {
    let f = &report.fetched;
    let mut out = String::new();
    section(&mut out, "       HTTP Request        ");
    out.push_str(&f.request);
    section(&mut out, "    HTTP Header Buffer    ");
    hex_dump(&mut out, &f.head);
    section(&mut out, " HTTP Header Ascii Buffer ");
    out.push_str(&String::from_utf8_lossy(&f.head));
    out.push('\n');
    if let Some(body) = f.body.as_deref().filter(|b| !b.is_empty()) {
        section(&mut out, "        HTML Buffer        ");
        hex_dump(&mut out, body);
    }
    out.push('\n');
    section(&mut out, "    HTML hash resulting    ");
    if let Some(d) = &f.digests {
        hex_dump(&mut out, &d.raw);
    }
    section(&mut out, " HTML hash final resulting ");
    out.push_str(&report.digest);
    out.push_str("\n\n");
    if let Some(decoded) = &report.decoded_digest {
        // Not in keepalived's output: what a digest of the decoded body is.
        let _ = writeln!(
            out,
            "Chunked body; digest of the decoded body (also accepted): {decoded}\n"
        );
    }
    let _ = writeln!(
        out,
        "Global response time for [{path}] = {} usecs",
        f.elapsed.as_micros()
    );
    out
}

/// keepalived's dump_buffer: decimal offset, 16 bytes in two groups of 8,
/// then the printable characters.
pub fn hex_dump(out: &mut String, data: &[u8]) {
    for (n, line) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:04}  ", n * 16);
        for i in 0..16 {
            if i == 8 {
                out.push_str("- ");
            }
            match line.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  ");
        for i in 0..16 {
            out.push(match line.get(i) {
                Some(&b) if (0x20..0x7f).contains(&b) => b as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_matches_keepalived_layout() {
        let mut out = String::new();
        hex_dump(&mut out, b"HTTP/1.1 200 OK\r\n-Test: a\r\n\r\n");
        assert_eq!(
            out,
            "0000  48 54 54 50 2f 31 2e 31 - 20 32 30 30 20 4f 4b 0d   HTTP/1.1 200 OK.\n\
             0016  0a 2d 54 65 73 74 3a 20 - 61 0d 0a 0d 0a            .-Test: a....   \n"
        );
    }

    #[test]
    fn protocols() {
        assert_eq!(parse_protocol("1.0c"), Ok(HttpVersion::Http10Close));
        assert_eq!(parse_protocol("1.1"), Ok(HttpVersion::Http11));
        assert!(parse_protocol("2").is_err());
        assert!(parse_seconds("0").is_err());
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
    }
}
