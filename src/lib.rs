//! ipvsdir: a Linux load-balancer director configured with keepalived.conf
//! syntax. See `ARCHITECTURE` in the repository for the shape: pure cores
//! (config, VRRP, checks, IPVS diff) and thin async drivers.

pub mod check;
pub mod config;
pub mod daemon;
pub mod docs;
pub mod log_limit;
pub mod lvs;
pub mod mail;
pub mod metrics;
pub mod report_file;
pub mod safe_file;
pub mod script;
pub mod time_format;
pub mod timer;
pub mod track_file;
pub mod track_process;
pub mod vrrp;

/// A hash map with a fast hasher, for maps keyed by what the configuration
/// holds (not by network input) and rebuilt at every reload: SipHash was a
/// third of a reload's work on large files.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
