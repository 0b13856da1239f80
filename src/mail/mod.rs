//! Mail alerts, keepalived's `smtp_alert`: VRRP instances and sync groups
//! that change state, real servers whose checkers go up or down, mailed to
//! `notification_email` through `smtp_server`.
//!
//! - [`compose`] decides, purely, which event mails and what the mail says
//!   (keepalived 2.2.7's subjects and bodies); the VRRP node and the
//!   director core call it where they decide a transition and hand the
//!   [`Alert`] out as an effect;
//! - [`outbox`] decides, purely, when mails go out (one at a time, a
//!   budget, bursts coalesced into one mail);
//! - [`sender`] is the I/O edge: a tokio task behind a bounded queue that
//!   never blocks the protocols, mailing with lettre.

pub mod compose;
pub mod outbox;
pub mod sender;

pub use compose::Alert;
pub use sender::{Mailer, Settings, Sink};
