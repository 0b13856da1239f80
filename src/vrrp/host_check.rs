//! What `-t` says about this host (keepalived's config test looks at the
//! running system too): the interfaces the file names that do not exist
//! here now. Not errors: the daemon keeps such an instance in FAULT until
//! its interface appears, and counts a missing track_interface as down.

use crate::config::model::Config;

/// Whether an interface named `name` exists in this network namespace.
fn exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// One warning per vrrp_instance interface and track_interface that does
/// not exist now.
pub fn absent_interfaces(config: &Config) -> Vec<String> {
    absent_with(config, exists)
}

fn absent_with(config: &Config, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for vi in &config.vrrp_instances {
        if !exists(&vi.interface) {
            out.push(format!(
                "vrrp_instance {}: interface {} does not exist here now; the instance will wait for it in FAULT",
                vi.name, vi.interface
            ));
        }
        for t in &vi.track_interface {
            if !exists(&t.name) {
                out.push(format!(
                    "vrrp_instance {}: track_interface {} does not exist here now; it counts as down until it appears",
                    vi.name, t.name
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadOptions, load_str};

    #[test]
    fn names_each_absent_interface() {
        let text = "vrrp_instance VI_1 {\n interface eth9\n virtual_router_id 1\n track_interface {\n  eth0\n  eth8\n }\n virtual_ipaddress {\n  10.0.0.1/24\n }\n}\n";
        let l = load_str("t.conf", text, &LoadOptions::default());
        let Some(config) = l.config else {
            panic!("{}", l.diagnostics)
        };
        let warnings = absent_with(&config, |n| n == "eth0");
        assert_eq!(
            warnings,
            [
                "vrrp_instance VI_1: interface eth9 does not exist here now; the instance will wait for it in FAULT",
                "vrrp_instance VI_1: track_interface eth8 does not exist here now; it counts as down until it appears",
            ]
        );
    }
}
