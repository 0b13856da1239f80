//! The IPVS side of the director: what the kernel table should hold
//! (`desired`), the minimal operations to get there (`diff`), the kernel
//! applier (`kernel`) and the `ipvsadm -Ln`-compatible views (`format`).

pub mod announce;
pub mod commands;
pub mod desired;
pub mod diff;
pub mod director;
pub mod format;
pub mod kernel;
pub mod kernel_error;
pub mod names;
pub mod overrides;
pub mod owned;
pub mod sysctl;
pub mod table;
pub mod worker;

pub use diff::{Op, diff};
pub use table::{DestKey, Table, VirtualService};
