//! Inventory of the configuration keywords that keepalived 2.2.7 accepts,
//! per configuration block.
//!
//! Source: the keepalived 2.2.7 binary shipped by Debian 12
//! (`1:2.2.7-1+b2`), queried with `keepalived --config-test`: every candidate
//! word found in the binary was placed inside each block and kept when the
//! parser did not answer "Unknown keyword". The result was cross-checked
//! against the installed `keepalived.conf(5)` man page and against
//! keepalived's own parser keyword tables (`global_parser.c`,
//! `vrrp_parser.c`, `check_parser.c`, the checker sources, `bfd_parser.c`,
//! `track_file.c`, ...). Only keyword names are listed here; no keepalived
//! code was copied.
//!
//! Notes:
//! * `include` is a parser directive that keepalived accepts on any line and
//!   in any block; it is listed only under [`Section::TopLevel`].
//! * Blocks whose lines are entries rather than keywords (`virtual_ipaddress`,
//!   `virtual_ipaddress_excluded`, `virtual_routes`, `virtual_rules`,
//!   `track_interface`, `track_script`, `track_file`, `track_process`,
//!   `track_bfd`, `unicast_peer`, `group` (sync group and `track_group`),
//!   `notification_email`, `static_ipaddress`, `static_routes`,
//!   `static_rules`, `linkbeat_interfaces`, `interface_up_down_delays`, and
//!   `interfaces` in `garp_group`) have no keyword list of their own.
//! * `vrrp_ipsets` (global_defs) is registered by keepalived 2.2.7 only when
//!   built with iptables and libipset; the Debian build rejects it.
//! * Keywords that only appeared after 2.2.7 (e.g. `tls_compliant`,
//!   `regex_stop`, a top-level `track_process` block) are deliberately absent.

/// The configuration blocks whose keywords we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Top level of the file (outside any block).
    TopLevel,
    /// `global_defs { }`.
    GlobalDefs,
    /// `vrrp_script NAME { }`.
    VrrpScript,
    /// `vrrp_instance NAME { }`.
    VrrpInstance,
    /// `vrrp_sync_group NAME { }`.
    VrrpSyncGroup,
    /// `authentication { }` inside `vrrp_instance`.
    Authentication,
    /// `virtual_server_group NAME { }`: every other line is an address entry.
    VirtualServerGroup,
    /// `virtual_server IP PORT|fwmark N|group NAME { }`.
    VirtualServer,
    /// `real_server IP PORT { }` inside `virtual_server`.
    RealServer,
    /// `HTTP_GET { }` and `SSL_GET { }` (identical tables).
    HttpGet,
    /// `url { }` inside `HTTP_GET`/`SSL_GET`.
    Url,
    /// `TCP_CHECK { }`.
    TcpCheck,
    /// `MISC_CHECK { }`.
    MiscCheck,
    /// `SMTP_CHECK { }`.
    SmtpCheck,
    /// `DNS_CHECK { }`.
    DnsCheck,
    /// `UDP_CHECK { }`.
    UdpCheck,
    /// `PING_CHECK { }`.
    PingCheck,
    /// `FILE_CHECK { }`.
    FileCheck,
    /// `BFD_CHECK { }`.
    BfdCheck,
    /// `host { }` inside `SMTP_CHECK`.
    SmtpHost,
    /// Top-level `SSL { }` (client context for `SSL_GET`).
    Ssl,
    /// `track_file NAME { }` and its deprecated synonym `vrrp_track_file NAME { }`.
    TrackFile,
    /// `vrrp_track_process NAME { }` (there is no top-level `track_process` block in 2.2.7).
    TrackProcess,
    /// `bfd_instance NAME { }`.
    BfdInstance,
    /// `garp_group { }`.
    GarpGroup,
    /// `track_group NAME { }`.
    TrackGroup,
}

/// Every keyword keepalived 2.2.7 accepts directly inside `section`.
pub fn keepalived_keywords(section: Section) -> &'static [&'static str] {
    match section {
        Section::TopLevel => TOP_LEVEL,
        Section::GlobalDefs => GLOBAL_DEFS,
        Section::VrrpScript => VRRP_SCRIPT,
        Section::VrrpInstance => VRRP_INSTANCE,
        Section::VrrpSyncGroup => VRRP_SYNC_GROUP,
        Section::Authentication => AUTHENTICATION,
        Section::VirtualServerGroup => VIRTUAL_SERVER_GROUP,
        Section::VirtualServer => VIRTUAL_SERVER,
        Section::RealServer => REAL_SERVER,
        Section::HttpGet => HTTP_GET,
        Section::Url => URL,
        Section::TcpCheck => TCP_CHECK,
        Section::MiscCheck => MISC_CHECK,
        Section::SmtpCheck => SMTP_CHECK,
        Section::DnsCheck => DNS_CHECK,
        Section::UdpCheck => UDP_CHECK,
        Section::PingCheck => PING_CHECK,
        Section::FileCheck => FILE_CHECK,
        Section::BfdCheck => BFD_CHECK,
        Section::SmtpHost => SMTP_HOST,
        Section::Ssl => SSL,
        Section::TrackFile => TRACK_FILE,
        Section::TrackProcess => TRACK_PROCESS,
        Section::BfdInstance => BFD_INSTANCE,
        Section::GarpGroup => GARP_GROUP,
        Section::TrackGroup => TRACK_GROUP,
    }
}

const TOP_LEVEL: &[&str] = &[
    "SSL", // block: see Section::Ssl
    "bfd_instance",
    "child_wait_time",
    "garp_group",
    "global_defs",
    "include", // parser directive; keepalived accepts it on any line, in any block
    "instance",
    "interface_up_down_delays", // block of entries
    "linkbeat_interfaces",      // block of entries
    "linkbeat_use_polling",     // global linkbeat setting
    "namespace_with_ipsets",
    "net_namespace",
    "net_namespace_ipvs",
    "static_ipaddress", // block of entries
    "static_routes",    // block of entries
    "static_rules",     // block of entries
    "track_file",
    "track_group",
    "use_pid_dir",
    "virtual_server",
    "virtual_server_group",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "vrrp_track_file", // deprecated synonym of track_file
    "vrrp_track_process",
];

const GLOBAL_DEFS: &[&str] = &[
    "bfd_cpu_affinity",
    "bfd_no_swap",
    "bfd_priority",
    "bfd_process_name",
    "bfd_rlimit_rtime", // deprecated: bfd_rlimit_rttime
    "bfd_rlimit_rttime",
    "bfd_rt_priority",
    "checker_cpu_affinity",
    "checker_log_all_failures",
    "checker_no_swap",
    "checker_priority",
    "checker_process_name",
    "checker_rlimit_rtime", // deprecated: checker_rlimit_rttime
    "checker_rlimit_rttime",
    "checker_rt_priority",
    "config_save_dir",
    "data_use_instance",
    "dbus_service_name",
    "default_interface",
    "disable_local_igmp",
    "dynamic_interfaces",
    "enable_dbus",
    "enable_script_security",
    "enable_snmp_checker",
    "enable_snmp_keepalived", // deprecated: enable_snmp_vrrp
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_vrrp",
    "enable_traps",
    "fifo_write_vrrp_states_on_reload",
    "include_check",
    "log_unknown_vrids",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_flush_onstop", // deprecated: lvs_flush_on_stop
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "lvs_process_name", // deprecated: checker_process_name
    "lvs_sync_daemon",
    "lvs_timeouts",
    "max_auto_priority",
    "min_auto_priority_delay",
    "nftables",
    "nftables_counters",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_priority",
    "no_checker_emails",
    "no_email_faults",
    "notification_email", // block of entries
    "notification_email_from",
    "notify_fifo",
    "notify_fifo_script",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "process_name",
    "process_names",
    "random_seed",
    "reload_check_config",
    "reload_file",
    "reload_repeat",
    "reload_time_file",
    "router_id",
    "rs_init_notifies",
    "script_user",
    "shutdown_script",
    "shutdown_script_timeout",
    "smtp_alert",
    "smtp_alert_checker",
    "smtp_alert_vrrp",
    "smtp_connect_timeout",
    "smtp_helo_name",
    "smtp_server",
    "snmp_socket",
    "startup_script",
    "startup_script_timeout",
    "tmp_config_directory",
    "umask",
    "vmac_addr_prefix",
    "vmac_prefix",
    "vrrp_check_unicast_src",
    "vrrp_cpu_affinity",
    "vrrp_down_timer_adverts",
    "vrrp_garp_extra_if",
    "vrrp_garp_interval",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_master_repeat",
    "vrrp_gna_interval",
    "vrrp_higher_prio_send_advert",
    "vrrp_ipsets",   // only in iptables+libipset builds; Debian 12 binary rejects it
    "vrrp_iptables", // legacy; maps to nftables in builds without iptables
    "vrrp_lower_prio_no_advert",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_min_garp",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "vrrp_no_swap",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "vrrp_notify_priority_changes",
    "vrrp_priority",
    "vrrp_process_name",
    "vrrp_rlimit_rtime", // deprecated: vrrp_rlimit_rttime
    "vrrp_rlimit_rttime",
    "vrrp_rt_priority",
    "vrrp_rx_bufs_multiplier",
    "vrrp_rx_bufs_policy",
    "vrrp_skip_check_adv_addr",
    "vrrp_startup_delay",
    "vrrp_strict",
    "vrrp_version",
    "vrrp_vmac_garp_intvl", // deprecated: vrrp_garp_extra_if
];

const VRRP_SCRIPT: &[&str] = &[
    "fall",
    "init_fail",
    "interval",
    "rise",
    "script",
    "timeout",
    "user",
    "weight",
];

const VRRP_INSTANCE: &[&str] = &[
    "accept",
    "advert_int",
    "authentication", // block: see Section::Authentication
    "check_unicast_src",
    "debug",
    "dont_track_primary",
    "down_timer_adverts",
    "garp_extra_if",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "garp_master_delay",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "garp_master_repeat",
    "higher_prio_send_advert",
    "interface",
    "kernel_rx_buf_size",
    "linkbeat_use_polling", // deprecated: linkbeat_interfaces
    "lower_prio_no_advert",
    "lvs_sync_daemon_interface", // deprecated: global_defs lvs_sync_daemon
    "mcast_dst_ip",
    "mcast_src_ip",
    "native_ipv6", // deprecated
    "no_accept",
    "nopreempt",
    "notify",
    "notify_backup",
    "notify_deleted",
    "notify_fault",
    "notify_master",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "notify_stop",
    "old_unicast_checksum",
    "preempt",
    "preempt_delay",
    "priority",
    "promote_secondaries",
    "skip_check_adv_addr",
    "smtp_alert",
    "state",
    "strict_mode",
    "track_bfd",
    "track_file",
    "track_interface",
    "track_process",
    "track_script",
    "track_src_ip",
    "unicast_fault_no_peer",
    "unicast_peer",
    "unicast_src_ip",
    "unicast_ttl",
    "use_ipvlan",
    "use_vmac",
    "use_vmac_addr",
    "version",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "virtual_router_id",
    "virtual_routes",
    "virtual_rules",
    "vmac_garp_intvl", // deprecated: garp_extra_if
    "vmac_xmit_base",
    "vrf",
];

const VRRP_SYNC_GROUP: &[&str] = &[
    "global_tracking", // deprecated
    "group",
    "notify",
    "notify_backup",
    "notify_fault",
    "notify_master",
    "notify_priority_changes",
    "notify_stop",
    "smtp_alert",
    "sync_group_tracking_weight",
    "track_bfd",
    "track_file",
    "track_interface",
    "track_process",
    "track_script",
];

const AUTHENTICATION: &[&str] = &["auth_pass", "auth_type"];

const VIRTUAL_SERVER_GROUP: &[&str] = &["fwmark"];

const VIRTUAL_SERVER: &[&str] = &[
    "alpha",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "flag-1",
    "flag-2",
    "flag-3",
    "ha_suspend",
    "hashed",
    "hysteresis",
    "inhibit_on_failure",
    "ip_family",
    "lb_algo", // deprecated: lvs_sched
    "lb_kind", // deprecated: lvs_method
    "lvs_method",
    "lvs_sched",
    "mh-fallback",
    "mh-port",
    "omega",
    "ops",
    "persistence_engine",
    "persistence_granularity",
    "persistence_timeout",
    "protocol",
    "quorum",
    "quorum_down",
    "quorum_up",
    "real_server", // block: see Section::RealServer
    "retry",
    "sh-fallback",
    "sh-port",
    "smtp_alert",
    "snmp_name",
    "sorry_server",
    "sorry_server_inhibit",
    "sorry_server_lvs_method", // forwarding method of sorry_server
    "virtualhost",
    "warmup",
    "weight",
];

const REAL_SERVER: &[&str] = &[
    "BFD_CHECK",
    "DNS_CHECK",
    "FILE_CHECK",
    "HTTP_GET",
    "MISC_CHECK",
    "PING_CHECK",
    "SMTP_CHECK",
    "SSL_GET",
    "TCP_CHECK",
    "UDP_CHECK",
    "alpha",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "inhibit_on_failure",
    "lthreshold",
    "lvs_method",
    "notify_down",
    "notify_up",
    "retry",
    "smtp_alert",
    "snmp_name",
    "uthreshold",
    "virtualhost",
    "warmup",
    "weight",
];

const HTTP_GET: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "enable_sni",
    "fast_recovery",
    "fwmark",
    "http_protocol",
    "log_all_failures",
    "nb_get_retry", // deprecated: retry
    "retry",
    "url", // block: see Section::Url
    "virtualhost",
    "warmup",
];

const URL: &[&str] = &[
    "digest",
    "path",
    "regex",
    "regex_max_offset",
    "regex_min_offset",
    "regex_no_match",
    "regex_options",
    "regex_stack",
    "status_code",
    "virtualhost",
];

const TCP_CHECK: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "fwmark",
    "log_all_failures",
    "retry",
    "warmup",
];

const MISC_CHECK: &[&str] = &[
    "alpha",
    "delay_before_retry",
    "delay_loop",
    "log_all_failures",
    "misc_dynamic",
    "misc_path",
    "misc_timeout",
    "retry",
    "user",
    "warmup",
];

const SMTP_CHECK: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "fwmark",
    "helo_name",
    "host", // block: see Section::SmtpHost
    "log_all_failures",
    "retry",
    "warmup",
];

const DNS_CHECK: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "fwmark",
    "log_all_failures",
    "name",
    "retry",
    "type",
    "warmup",
];

const UDP_CHECK: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "fwmark",
    "log_all_failures",
    "max_reply_length",
    "min_reply_length",
    "payload",
    "require_reply",
    "retry",
    "warmup",
];

const PING_CHECK: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "fwmark",
    "log_all_failures",
    "retry",
    "warmup",
];

const FILE_CHECK: &[&str] = &["track_file", "weight"];

const BFD_CHECK: &[&str] = &["alpha", "name"];

const SMTP_HOST: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "fwmark",
    "log_all_failures",
    "retry",
    "warmup",
];

const SSL: &[&str] = &["ca", "certificate", "key", "password"];

const TRACK_FILE: &[&str] = &["file", "init_file", "weight"];

const TRACK_PROCESS: &[&str] = &[
    "delay",
    "fork_delay",
    "full_command",
    "param_match",
    "process",
    "quorum",
    "quorum_max",
    "terminate_delay",
    "weight",
];

const BFD_INSTANCE: &[&str] = &[
    "checker",
    "hoplimit",
    "idle_tx",
    "max_hops",
    "min_rx",
    "min_tx",
    "multiplier",
    "neighbor_ip",
    "neighbour_ip", // synonym of neighbor_ip
    "passive",
    "source_ip",
    "ttl",
    "vrrp",
    "weight",
];

const GARP_GROUP: &[&str] = &["garp_interval", "gna_interval", "interface", "interfaces"];

const TRACK_GROUP: &[&str] = &["group"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const ALL: &[Section] = &[
        Section::TopLevel,
        Section::GlobalDefs,
        Section::VrrpScript,
        Section::VrrpInstance,
        Section::VrrpSyncGroup,
        Section::Authentication,
        Section::VirtualServerGroup,
        Section::VirtualServer,
        Section::RealServer,
        Section::HttpGet,
        Section::Url,
        Section::TcpCheck,
        Section::MiscCheck,
        Section::SmtpCheck,
        Section::DnsCheck,
        Section::UdpCheck,
        Section::PingCheck,
        Section::FileCheck,
        Section::BfdCheck,
        Section::SmtpHost,
        Section::Ssl,
        Section::TrackFile,
        Section::TrackProcess,
        Section::BfdInstance,
        Section::GarpGroup,
        Section::TrackGroup,
    ];

    fn has(section: Section, kw: &str) -> bool {
        keepalived_keywords(section).contains(&kw)
    }

    #[test]
    fn every_section_is_non_empty_sorted_and_unique() {
        for &s in ALL {
            let list = keepalived_keywords(s);
            assert!(!list.is_empty(), "{s:?} is empty");
            let set: HashSet<_> = list.iter().collect();
            assert_eq!(set.len(), list.len(), "{s:?} has duplicates");
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{s:?} is not sorted");
            for kw in list {
                assert!(
                    !kw.is_empty()
                        && kw
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                    "{s:?}: bad keyword {kw:?}"
                );
            }
        }
    }

    #[test]
    fn global_defs() {
        for kw in [
            "router_id",
            "vrrp_strict",
            "vrrp_mcast_group4",
            "vrrp_garp_master_delay",
            "lvs_sync_daemon",
            "notification_email",
            "enable_script_security",
        ] {
            assert!(has(Section::GlobalDefs, kw), "{kw}");
        }
        assert!(keepalived_keywords(Section::GlobalDefs).len() > 100);
    }

    #[test]
    fn top_level() {
        for kw in [
            "global_defs",
            "vrrp_instance",
            "vrrp_script",
            "vrrp_sync_group",
            "virtual_server",
            "virtual_server_group",
            "include",
            "static_ipaddress",
            "vrrp_track_process",
            "track_file",
            "bfd_instance",
            "SSL",
        ] {
            assert!(has(Section::TopLevel, kw), "{kw}");
        }
        assert!(!has(Section::TopLevel, "track_process"));
    }

    #[test]
    fn real_server_has_checkers() {
        for kw in [
            "HTTP_GET",
            "SSL_GET",
            "TCP_CHECK",
            "MISC_CHECK",
            "SMTP_CHECK",
            "DNS_CHECK",
            "UDP_CHECK",
            "PING_CHECK",
            "FILE_CHECK",
            "BFD_CHECK",
            "weight",
            "inhibit_on_failure",
        ] {
            assert!(has(Section::RealServer, kw), "{kw}");
        }
    }

    #[test]
    fn virtual_server_and_checkers() {
        for kw in [
            "lb_algo",
            "lvs_sched",
            "lb_kind",
            "lvs_method",
            "sorry_server",
            "sorry_server_lvs_method",
            "persistence_timeout",
            "real_server",
        ] {
            assert!(has(Section::VirtualServer, kw), "{kw}");
        }
        for kw in [
            "connect_ip",
            "connect_port",
            "bindto",
            "bind_port",
            "bind_if",
            "fwmark",
            "warmup",
            "delay_before_retry",
            "retry",
            "connect_timeout",
            "nb_get_retry",
            "http_protocol",
            "enable_sni",
            "fast_recovery",
            "url",
        ] {
            assert!(has(Section::HttpGet, kw), "{kw}");
        }
        for kw in [
            "path",
            "digest",
            "status_code",
            "virtualhost",
            "regex",
            "regex_no_match",
            "regex_options",
            "regex_min_offset",
            "regex_max_offset",
        ] {
            assert!(has(Section::Url, kw), "{kw}");
        }
        assert_eq!(
            keepalived_keywords(Section::VirtualServerGroup),
            &["fwmark"]
        );
        assert!(has(Section::Authentication, "auth_pass"));
        assert!(has(Section::VrrpInstance, "virtual_router_id"));
    }
}
