//! VRRP: the packet codec and receive validation, the pure per-instance
//! state machine, and (with the VRRP issue) its network driver.

pub mod driver;
pub mod garp;
pub mod host_check;
pub mod instance;
pub mod node;
pub mod notify;
pub mod packet;
pub mod rtnl;
pub mod socket;
pub mod state;
pub mod statics;
pub mod status;
pub mod track;
pub mod validate;
