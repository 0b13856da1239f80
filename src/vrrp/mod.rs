//! VRRP: the packet codec and receive validation, the pure per-instance
//! state machine, and (with the VRRP issue) its network driver.

pub mod packet;
pub mod state;
pub mod validate;
pub mod garp;
pub mod rtnl;
