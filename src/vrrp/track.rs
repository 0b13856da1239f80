//! Trackers and the effective priority, as pure functions.
//!
//! A `vrrp_script` is up or down after `rise` consecutive successes or
//! `fall` consecutive failures; it starts up (down with `init_fail`). A
//! tracked interface is up while it is admin-up with carrier.
//!
//! keepalived's weight rules: a positive weight is added while the tracker
//! is up, a negative one while it is down; `reverse` inverts which state
//! counts as up; a tracker without weight (weight 0) that is down puts the
//! instance into FAULT. The address owner (priority 255) is never adjusted;
//! other priorities stay within 1..=254.

/// Up/down of one `vrrp_script` with its fall/rise counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTracker {
    pub up: bool,
    rise: u32,
    fall: u32,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl ScriptTracker {
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        ScriptTracker {
            up: !init_fail,
            rise: rise.max(1),
            fall: fall.max(1),
            streak: 0,
        }
    }

    /// Feeds one script result; returns true when `up` changed.
    pub fn record(&mut self, success: bool) -> bool {
        if success == self.up {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if success { self.rise } else { self.fall };
        if self.streak >= needed {
            self.up = success;
            self.streak = 0;
            return true;
        }
        false
    }
}

/// One tracker's current contribution input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackState {
    pub up: bool,
    /// The weight in force (track_* override or the script's own); 0 = FAULT when down.
    pub weight: i32,
    pub reverse: bool,
}

/// What the trackers make of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub priority: u8,
    /// An unweighted tracker is down.
    pub fault: bool,
}

pub fn effective(base: u8, trackers: &[TrackState]) -> Effective {
    let mut delta: i64 = 0;
    let mut fault = false;
    for t in trackers {
        let up = t.up != t.reverse;
        if t.weight == 0 {
            fault |= !t.up;
        } else if (t.weight > 0) == up {
            // Positive weights count while up, negative ones while down.
            delta += i64::from(t.weight);
        }
    }
    let priority = if base == 255 {
        255
    } else {
        (i64::from(base) + delta).clamp(1, 254) as u8
    };
    Effective { priority, fault }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_and_rise_need_consecutive_results() {
        let mut t = ScriptTracker::new(2, 3, false);
        assert!(t.up);
        assert!(!t.record(false));
        assert!(!t.record(false));
        assert!(!t.record(true), "a success resets the failure streak");
        assert!(!t.record(false));
        assert!(!t.record(false));
        assert!(t.record(false));
        assert!(!t.up);
        assert!(!t.record(true));
        assert!(t.record(true));
        assert!(t.up);
    }

    #[test]
    fn init_fail_starts_down() {
        let mut t = ScriptTracker::new(1, 1, true);
        assert!(!t.up);
        assert!(t.record(true));
    }

    #[test]
    fn weights_follow_keepalived() {
        let s = |up, weight| TrackState {
            up,
            weight,
            reverse: false,
        };
        // tomcat seed: weight -5 drops 100 to 95 while the check fails.
        assert_eq!(effective(100, &[s(false, -5)]).priority, 95);
        assert_eq!(effective(100, &[s(true, -5)]).priority, 100);
        assert_eq!(effective(100, &[s(true, 10)]).priority, 110);
        assert_eq!(effective(100, &[s(false, 10)]).priority, 100);
        assert!(effective(100, &[s(false, 0)]).fault);
        assert!(!effective(100, &[s(true, 0)]).fault);
        // clamped, and the owner is never adjusted
        assert_eq!(effective(250, &[s(true, 50)]).priority, 254);
        assert_eq!(effective(10, &[s(false, -50)]).priority, 1);
        assert_eq!(effective(255, &[s(false, -50)]).priority, 255);
        let rev = TrackState {
            up: true,
            weight: -20,
            reverse: true,
        };
        assert_eq!(
            effective(100, &[rev]).priority,
            80,
            "reverse: up counts as down"
        );
    }
}
