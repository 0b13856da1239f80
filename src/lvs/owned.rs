//! Which services ipvsdir put in the kernel, remembered across one-shot
//! runs (`--apply-once`) so that a virtual_server removed from the config is
//! removed from the kernel next time, while services someone else created
//! are never touched. One service per line: `tcp 10.0.0.1 80`, `fwmark inet 7`.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use ipvs_sys::{Family, Protocol, ServiceKey};

fn line(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            format!("{} {addr} {port}", protocol.to_raw())
        }
        ServiceKey::Fwmark { family, mark } => format!(
            "fwmark {} {mark}",
            if *family == Family::Inet6 {
                "inet6"
            } else {
                "inet"
            }
        ),
    }
}

fn parse(l: &str) -> Option<ServiceKey> {
    let mut w = l.split_whitespace();
    let first = w.next()?;
    if first == "fwmark" {
        let family = match w.next()? {
            "inet6" => Family::Inet6,
            _ => Family::Inet,
        };
        return Some(ServiceKey::Fwmark {
            family,
            mark: w.next()?.parse().ok()?,
        });
    }
    Some(ServiceKey::Addr {
        protocol: Protocol::from_raw(first.parse().ok()?),
        addr: w.next()?.parse::<IpAddr>().ok()?,
        port: w.next()?.parse().ok()?,
    })
}

/// The remembered set; empty when the file does not exist. Unreadable lines are skipped.
pub fn load(path: &Path) -> io::Result<BTreeSet<ServiceKey>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().filter_map(parse).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

/// Writes the set atomically and safely (`safe_file`).
pub fn save(
    path: &Path,
    owned: &BTreeSet<ServiceKey>,
) -> Result<(), crate::safe_file::SafeFileError> {
    let text: String = owned.iter().map(|k| line(k) + "\n").collect();
    crate::safe_file::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/owned");
        let set: BTreeSet<ServiceKey> = [
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                addr: "fd00::1".parse().unwrap(),
                port: 53,
            },
            ServiceKey::Fwmark {
                family: Family::Inet6,
                mark: 9,
            },
        ]
        .into();
        save(&p, &set).unwrap();
        assert_eq!(load(&p).unwrap(), set);
        assert!(load(&dir.path().join("none")).unwrap().is_empty());
    }
}
