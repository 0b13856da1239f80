//! Wiring of the subsystems into the long-running process: the checkers
//! feeding the IPVS table (`checks`, keepalived's `--check` half), with
//! signals and logging. VRRP joins here with its issue.

pub mod accept;
pub mod checks;
pub mod control;
pub mod ctl;
pub mod dump;
pub mod lock;
pub mod log;
pub mod pid1;
pub mod process;
pub mod run;
pub mod status;
pub mod sync_daemon;
pub mod transitions;
