//! The quorum decision of one `vrrp_track_process`, pure and in virtual
//! time: the number of matching processes in, up/down out, with keepalived
//! 2.2.7's delays (track_process.c):
//!
//! - up while `quorum <= count <= quorum_max`;
//! - a change caused by a fork waits `fork_delay`, one caused by an exit
//!   waits `terminate_delay`; one found otherwise (an exec, a rename, a
//!   /proc scan) applies at once unless a delay is already running;
//! - while a delay runs, a count that puts the state back cancels it (a
//!   process restarted within `terminate_delay` is never seen down, a fork
//!   that exits within `fork_delay` never counts); when it ends, the count
//!   then decides.

use crate::config::model::TrackProcess;
use crate::vrrp::state::Micros;

/// What changed the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A matching process forked (its child counts too).
    Fork,
    /// A matching process exited.
    Exit,
    /// A process started or stopped matching (exec, rename), or a scan.
    Found,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    quorum: u32,
    quorum_max: u32,
    fork_delay: Micros,
    terminate_delay: Micros,
    count: u32,
    up: bool,
    /// A delayed decision is due at this time.
    due: Option<Micros>,
}

impl Quorum {
    /// Starts with `count` processes, decided at once (as keepalived after
    /// its first /proc scan).
    pub fn new(def: &TrackProcess, count: u32) -> Quorum {
        let mut q = Quorum {
            quorum: def.quorum,
            quorum_max: def.quorum_max,
            fork_delay: def.fork_delay.0.as_micros() as Micros,
            terminate_delay: def.terminate_delay.0.as_micros() as Micros,
            count,
            up: false,
            due: None,
        };
        q.up = q.met();
        q
    }

    fn met(&self) -> bool {
        self.quorum <= self.count && self.count <= self.quorum_max
    }

    pub fn up(&self) -> bool {
        self.up
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The count is now `count`; returns the new state when it changed.
    pub fn update(&mut self, now: Micros, count: u32, cause: Cause) -> Option<bool> {
        self.count = count;
        let target = self.met();
        if target == self.up {
            // Back where it was: a running delay is cancelled.
            self.due = None;
            return None;
        }
        if self.due.is_some() {
            // A delay runs: it decides, whatever else moves the count
            // meanwhile (a forked child that execs something else).
            return None;
        }
        let delay = match cause {
            Cause::Fork => self.fork_delay,
            Cause::Exit => self.terminate_delay,
            Cause::Found => 0,
        };
        if delay == 0 {
            self.up = target;
            return Some(target);
        }
        self.due = Some(now.saturating_add(delay));
        None
    }

    /// When [`Quorum::on_timer`] is due.
    pub fn poll_timeout(&self) -> Option<Micros> {
        self.due
    }

    /// Time passed; returns the new state when a delay ended with a change.
    pub fn on_timer(&mut self, now: Micros) -> Option<bool> {
        let due = self.due?;
        if now < due {
            return None;
        }
        self.due = None;
        let target = self.met();
        (target != self.up).then(|| {
            self.up = target;
            target
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{ParamMatch, Timer};
    use std::time::Duration;

    fn q(quorum: u32, quorum_max: u32, fork: u64, term: u64, count: u32) -> Quorum {
        Quorum::new(
            &TrackProcess {
                name: "t".into(),
                process: "p".into(),
                params: Vec::new(),
                param_match: ParamMatch::None,
                full_command: false,
                quorum,
                quorum_max,
                fork_delay: Timer(Duration::from_micros(fork)),
                terminate_delay: Timer(Duration::from_micros(term)),
                weight: 0,
                reverse: false,
            },
            count,
        )
    }

    #[test]
    fn quorum_and_quorum_max() {
        let mut t = q(2, 3, 0, 0, 0);
        assert!(!t.up());
        assert_eq!(t.update(1, 1, Cause::Found), None);
        assert_eq!(t.update(2, 2, Cause::Found), Some(true));
        assert_eq!(t.update(3, 3, Cause::Fork), None);
        assert_eq!(t.update(4, 4, Cause::Fork), Some(false), "above quorum_max");
        assert_eq!(t.update(5, 3, Cause::Exit), Some(true));
        assert_eq!(t.update(6, 1, Cause::Exit), Some(false));
        // quorum_max 0: up while none runs
        let mut none = q(0, 0, 0, 0, 0);
        assert!(none.up());
        assert_eq!(none.update(1, 1, Cause::Found), Some(false));
        assert_eq!(none.update(2, 0, Cause::Exit), Some(true));
    }

    #[test]
    fn terminate_delay_hides_a_restart_and_reports_a_death() {
        let mut t = q(1, u32::MAX, 0, 1_000, 1);
        assert!(t.up());
        assert_eq!(t.update(10, 0, Cause::Exit), None);
        assert_eq!(t.poll_timeout(), Some(1_010));
        // restarted within the delay: never down
        assert_eq!(t.update(500, 1, Cause::Found), None);
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.on_timer(1_010), None);
        assert!(t.up());
        // dies for good: down when the delay ends, not before
        assert_eq!(t.update(2_000, 0, Cause::Exit), None);
        assert_eq!(t.on_timer(2_999), None);
        assert!(t.up());
        assert_eq!(t.on_timer(3_000), Some(false));
        assert_eq!(t.poll_timeout(), None);
        // a start is seen at once
        assert_eq!(t.update(3_100, 1, Cause::Found), Some(true));
    }

    #[test]
    fn fork_delay_ignores_a_short_lived_child() {
        // quorum_max 1: a fork makes two for a moment
        let mut t = q(1, 1, 2_000, 0, 1);
        assert!(t.up());
        assert_eq!(t.update(0, 2, Cause::Fork), None);
        assert_eq!(t.update(100, 1, Cause::Exit), None, "child gone: cancelled");
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.on_timer(5_000), None);
        assert!(t.up());
        // a child that stays: down after fork_delay
        assert_eq!(t.update(6_000, 2, Cause::Fork), None);
        assert_eq!(t.update(6_500, 3, Cause::Fork), None);
        assert_eq!(t.poll_timeout(), Some(8_000), "the first fork's delay");
        assert_eq!(t.on_timer(8_000), Some(false));
        // fork_delay also delays reaching the quorum by a fork
        let mut t = q(2, u32::MAX, 2_000, 0, 1);
        assert_eq!(t.update(0, 2, Cause::Fork), None);
        assert_eq!(t.on_timer(2_000), Some(true));
        // an exec that reaches it is at once
        let mut t = q(2, u32::MAX, 2_000, 0, 1);
        assert_eq!(t.update(0, 2, Cause::Found), Some(true));
        // a fork's grandchild execs something else meanwhile: the delay
        // still decides (shells fork, then exec)
        let mut t = q(1, 1, 2_000, 0, 1);
        assert_eq!(t.update(0, 2, Cause::Fork), None);
        assert_eq!(t.update(10, 3, Cause::Fork), None);
        assert_eq!(t.update(20, 2, Cause::Found), None);
        assert!(t.up());
        assert_eq!(t.on_timer(2_000), Some(false));
    }

    #[test]
    fn a_timer_ends_on_what_the_count_then_says() {
        let mut t = q(1, u32::MAX, 0, 1_000, 2);
        assert_eq!(t.update(0, 1, Cause::Exit), None, "still in quorum");
        assert_eq!(t.update(10, 0, Cause::Exit), None);
        assert_eq!(t.update(20, 0, Cause::Exit), None);
        assert_eq!(t.poll_timeout(), Some(1_010));
        assert_eq!(t.on_timer(1_010), Some(false));
    }
}
