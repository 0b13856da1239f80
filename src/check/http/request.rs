//! Where an HTTP_GET / SSL_GET connects, and the request it sends, rendered
//! once per url as the bytes keepalived 2.2.7 writes (`check_http.c`,
//! verified against its `genhash` on loopback):
//!
//! ```text
//! GET <path> HTTP/1.0|1.1
//! User-Agent: KeepAliveClient
//! Connection: close            (only for http_protocol 1.0C and 1.1)
//! Host: <virtualhost>          (or <ip>:<port>, [ipv6]:<port>; the port is always written)
//! ```
//!
//! Plain `1.0` sends no `Connection` header, as keepalived does: an HTTP/1.0
//! request without `keep-alive` already asks the server to close.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::config::model::{CheckCommon, HttpCheck, HttpVersion};

/// The User-Agent keepalived sends; some server configurations match on it.
pub const USER_AGENT_VALUE: &str = "KeepAliveClient";

/// Largest body read (and hashed) before giving up: 4 GiB. The body is
/// streamed into the digest, never held, so this only bounds a server that
/// would send forever.
pub const DEFAULT_MAX_BODY: u64 = 4 << 30;

/// Where and how to connect: one per HTTP_GET / SSL_GET checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// connect_ip / connect_port (default: the real server).
    pub connect: SocketAddr,
    /// Source address from bindto + bind_port (port 0: any).
    pub bind: Option<SocketAddr>,
    /// SSL_GET.
    pub tls: bool,
    /// enable_sni: send the url's virtualhost as TLS SNI (none without one).
    pub enable_sni: bool,
    /// http_protocol.
    pub version: HttpVersion,
    /// connect_timeout: for the connect (and TLS handshake), then the
    /// longest the connection may stay silent (restarted by every read).
    pub timeout: Duration,
    /// Body bytes read at most; more fails a digest check.
    pub max_body: u64,
}

impl HttpTarget {
    /// The target of a configured checker (bind_if and fwmark are not applied).
    pub fn from_checker(common: &CheckCommon, http: &HttpCheck) -> HttpTarget {
        let connect = SocketAddr::new(common.connect_ip, common.connect_port);
        let bind = match (common.bindto, common.bind_port) {
            (Some(ip), port) => Some(SocketAddr::new(ip, port.unwrap_or(0))),
            (None, Some(port)) => {
                let any = if connect.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                };
                Some(SocketAddr::new(any, port))
            }
            (None, None) => None,
        };
        HttpTarget {
            connect,
            bind,
            tls: http.tls,
            enable_sni: http.enable_sni,
            version: http.http_protocol,
            timeout: common.connect_timeout.0,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// The value of the Host header: the virtualhost when there is one, else the
/// connect address with its port (IPv6 in brackets), as keepalived writes it.
pub fn host_header(connect: SocketAddr, virtualhost: Option<&str>) -> String {
    match (virtualhost, connect.ip()) {
        (Some(vh), _) => vh.to_string(),
        (None, IpAddr::V4(ip)) => format!("{ip}:{}", connect.port()),
        (None, IpAddr::V6(ip)) => format!("[{ip}]:{}", connect.port()),
    }
}

/// The TLS server name for `virtualhost` when SNI is enabled: the host part
/// without a `:port`. `None` when there is nothing a DNS name can be made of
/// (no virtualhost, an IP literal, an invalid name): then no SNI is sent.
pub fn sni_name(enable_sni: bool, virtualhost: Option<&str>) -> Option<String> {
    let vh = virtualhost.filter(|_| enable_sni)?;
    if vh.starts_with('[') {
        return None;
    }
    let host = match vh.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => vh,
    };
    match ServerName::try_from(host) {
        Ok(ServerName::DnsName(_)) => Some(host.to_string()),
        _ => None,
    }
}

/// Why a request cannot be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("url path {0:?} must be visible ASCII without spaces")]
    Path(String),
    #[error("virtualhost {0:?} is not a valid header value")]
    Host(String),
}

/// One GET, rendered once and written as is by every probe of a checker.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    /// The request head, CRLF line ends and the final blank line.
    bytes: Arc<[u8]>,
    /// TLS server name: the SNI name, else the connect address (rustls
    /// sends no SNI for an address).
    pub(super) server_name: ServerName<'static>,
}

impl PreparedRequest {
    pub fn new(
        target: &HttpTarget,
        path: &str,
        virtualhost: Option<&str>,
    ) -> Result<Self, RequestError> {
        if path.is_empty() || !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RequestError::Path(path.to_string()));
        }
        let host = host_header(target.connect, virtualhost);
        if host.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(RequestError::Host(host));
        }
        let (minor, connection) = match target.version {
            HttpVersion::Http10 => (0, ""),
            HttpVersion::Http10Close => (0, "Connection: close\r\n"),
            HttpVersion::Http11 => (1, "Connection: close\r\n"),
        };
        let text = format!(
            "GET {path} HTTP/1.{minor}\r\nUser-Agent: {USER_AGENT_VALUE}\r\n{connection}Host: {host}\r\n\r\n"
        );
        let server_name = match sni_name(target.enable_sni, virtualhost) {
            Some(name) => ServerName::try_from(name).map_err(|_| RequestError::Host(host))?,
            None => ServerName::IpAddress(target.connect.ip().into()),
        };
        Ok(PreparedRequest {
            bytes: text.into_bytes().into(),
            server_name,
        })
    }

    /// The bytes that go on the wire.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The request head as text (it is ASCII).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(connect: &str, version: HttpVersion) -> HttpTarget {
        HttpTarget {
            connect: connect.parse().unwrap(),
            bind: None,
            tls: false,
            enable_sni: false,
            version,
            timeout: Duration::from_secs(1),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    #[test]
    fn host_header_like_keepalived() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:8080".parse().unwrap();
        assert_eq!(host_header(v4, None), "10.0.0.1:80");
        assert_eq!(host_header(v6, None), "[2001:db8::1]:8080");
        assert_eq!(host_header(v6, Some("www.example.com")), "www.example.com");
    }

    #[test]
    fn request_bytes() {
        let t = target("10.0.0.1:80", HttpVersion::Http10);
        let r = PreparedRequest::new(&t, "/x?a=1", None).unwrap();
        assert_eq!(
            r.text(),
            "GET /x?a=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1:80\r\n\r\n"
        );
        let t = target("[::1]:81", HttpVersion::Http11);
        let r = PreparedRequest::new(&t, "/", Some("www.example.com")).unwrap();
        assert_eq!(
            r.text(),
            "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n"
        );
        assert!(PreparedRequest::new(&t, "/a b", None).is_err());
        assert!(PreparedRequest::new(&t, "/", Some("a\r\nX: y")).is_err());
    }

    #[test]
    fn sni_only_for_dns_names() {
        assert_eq!(sni_name(false, Some("www.example.com")), None);
        assert_eq!(sni_name(true, None), None);
        assert_eq!(
            sni_name(true, Some("www.example.com")).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            sni_name(true, Some("www.example.com:8443")).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(sni_name(true, Some("10.0.0.1")), None);
        assert_eq!(sni_name(true, Some("[::1]:443")), None);
    }

    #[test]
    fn target_from_checker() {
        use crate::config::model::{StatusCodes, Timer, Url};
        let mut common = CheckCommon {
            connect_ip: "10.0.0.1".parse().unwrap(),
            connect_port: 443,
            bindto: None,
            bind_port: Some(4000),
            bind_if: None,
            fwmark: None,
            connect_timeout: Timer(Duration::from_millis(2500)),
            delay_loop: Timer::secs(6),
            retry: 1,
            delay_before_retry: Timer::secs(1),
            warmup: Timer::secs(0),
            alpha: false,
            log_all_failures: false,
        };
        let http = HttpCheck {
            tls: true,
            urls: vec![Url {
                path: "/".into(),
                digest: None,
                status_codes: StatusCodes::default_2xx(),
                virtualhost: None,
            }],
            http_protocol: HttpVersion::Http11,
            enable_sni: true,
            fast_recovery: false,
        };
        let t = HttpTarget::from_checker(&common, &http);
        assert_eq!(t.connect, "10.0.0.1:443".parse().unwrap());
        assert_eq!(t.bind, Some("0.0.0.0:4000".parse().unwrap()));
        assert_eq!(t.timeout, Duration::from_millis(2500));
        assert!(t.tls && t.enable_sni);
        assert_eq!(t.version, HttpVersion::Http11);
        common.bindto = Some("10.0.0.9".parse().unwrap());
        common.bind_port = None;
        let t = HttpTarget::from_checker(&common, &http);
        assert_eq!(t.bind, Some("10.0.0.9:0".parse().unwrap()));
    }
}
