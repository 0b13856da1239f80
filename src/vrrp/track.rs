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
//!
//! A `track_file`'s value is multiplied by its weight and added to the
//! priority ([`file_effect`]).

/// Up/down of one `vrrp_script` with its fall/rise counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTracker {
    pub up: bool,
    /// A run has begun and not ended (keepalived's script state `running`).
    pub running: bool,
    rise: u32,
    fall: u32,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl ScriptTracker {
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        ScriptTracker {
            up: !init_fail,
            running: false,
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

/// What a tracked file's value does to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEffect {
    /// The instance goes to FAULT.
    Fault,
    /// Added to the priority.
    Delta(i32),
}

/// keepalived's rules for a `track_file` value: with weight 0, a non-zero
/// value is a failure (FAULT) and 0 is fine (`reverse` swaps the two);
/// otherwise the value times the weight (negated with `reverse`) is added
/// to the priority, kept within -254..=253, and -254 (a product below
/// -253) means FAULT.
pub fn file_effect(value: i64, weight: i32, reverse: bool) -> FileEffect {
    if weight == 0 {
        return if (value != 0) != reverse {
            FileEffect::Fault
        } else {
            FileEffect::Delta(0)
        };
    }
    let sign: i128 = if reverse { -1 } else { 1 };
    let product = (i128::from(value) * i128::from(weight) * sign).clamp(-254, 253);
    if product <= -254 {
        FileEffect::Fault
    } else {
        FileEffect::Delta(product as i32)
    }
}

/// keepalived 2.2.7's rules for a tracked script, interface or process
/// (vrrp_track.c, keepalived_netlink.c): with weight 0 the instance is in
/// FAULT while it is down (`reverse`: while it is up); otherwise the weight
/// counts while it is up if positive, while it is down if negative, and
/// `reverse` negates what it adds (it does not swap which state counts).
pub fn process_effect(up: bool, weight: i32, reverse: bool) -> FileEffect {
    if weight == 0 {
        return if up == reverse {
            FileEffect::Fault
        } else {
            FileEffect::Delta(0)
        };
    }
    if (weight > 0) == up {
        FileEffect::Delta(if reverse { -weight } else { weight })
    } else {
        FileEffect::Delta(0)
    }
}

pub fn effective(base: u8, trackers: &[TrackState]) -> Effective {
    effective_with_files(base, trackers, &[])
}

/// [`effective`] with tracked files' effects too.
pub fn effective_with_files(base: u8, trackers: &[TrackState], files: &[FileEffect]) -> Effective {
    let mut delta: i64 = 0;
    let mut fault = false;
    for f in files {
        match f {
            FileEffect::Fault => fault = true,
            FileEffect::Delta(d) => delta += i64::from(*d),
        }
    }
    for t in trackers {
        match process_effect(t.up, t.weight, t.reverse) {
            FileEffect::Fault => fault = true,
            FileEffect::Delta(d) => delta += i64::from(d),
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
    fn file_values_follow_keepalived() {
        use FileEffect::*;
        // weight 0: non-zero is a failure, 0 is fine; reverse swaps them
        assert_eq!(file_effect(0, 0, false), Delta(0));
        assert_eq!(file_effect(1, 0, false), Fault);
        assert_eq!(file_effect(-7, 0, false), Fault);
        assert_eq!(file_effect(0, 0, true), Fault);
        assert_eq!(file_effect(3, 0, true), Delta(0));
        // value times weight, negated by reverse
        assert_eq!(file_effect(5, 1, false), Delta(5));
        assert_eq!(file_effect(5, -10, false), Delta(-50));
        assert_eq!(file_effect(-5, 10, false), Delta(-50));
        assert_eq!(file_effect(5, 10, true), Delta(-50));
        // kept within -254..=253; -254 (below -253) is FAULT
        assert_eq!(file_effect(1000, 1, false), Delta(253));
        assert_eq!(file_effect(-253, 1, false), Delta(-253));
        assert_eq!(file_effect(-254, 1, false), Fault);
        assert_eq!(file_effect(i64::MIN, 254, false), Fault);
        assert_eq!(file_effect(i64::MAX, -254, true), Delta(253));
        // combined with the base priority
        let e = effective_with_files(100, &[], &[Delta(-50), Delta(5)]);
        assert_eq!((e.priority, e.fault), (55, false));
        let e = effective_with_files(100, &[], &[Delta(253)]);
        assert_eq!((e.priority, e.fault), (254, false));
        let e = effective_with_files(100, &[], &[Delta(-253)]);
        assert_eq!((e.priority, e.fault), (1, false));
        assert!(effective_with_files(100, &[], &[Fault]).fault);
        assert_eq!(effective_with_files(255, &[], &[Delta(-50)]).priority, 255);
    }

    #[test]
    fn process_quorum_follows_keepalived() {
        use FileEffect::*;
        assert_eq!(process_effect(true, 0, false), Delta(0));
        assert_eq!(process_effect(false, 0, false), Fault);
        assert_eq!(process_effect(true, 0, true), Fault);
        assert_eq!(process_effect(false, 0, true), Delta(0));
        assert_eq!(process_effect(true, 10, false), Delta(10));
        assert_eq!(process_effect(false, 10, false), Delta(0));
        assert_eq!(process_effect(true, -10, false), Delta(0));
        assert_eq!(process_effect(false, -10, false), Delta(-10));
        assert_eq!(process_effect(true, 10, true), Delta(-10));
        assert_eq!(process_effect(false, 10, true), Delta(0));
        assert_eq!(process_effect(true, -10, true), Delta(0));
        assert_eq!(process_effect(false, -10, true), Delta(10));
        let e = effective_with_files(100, &[], &[process_effect(false, -60, false)]);
        assert_eq!((e.priority, e.fault), (40, false));
        assert_eq!(
            effective_with_files(255, &[], &[process_effect(false, -60, false)]).priority,
            255,
            "the address owner is not adjusted"
        );
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
        // reverse negates what the weight adds, as keepalived's multiplier
        // -1 does: -20 counts while down, as +20.
        let rev = |up, weight| TrackState {
            up,
            weight,
            reverse: true,
        };
        assert_eq!(effective(100, &[rev(true, -20)]).priority, 100);
        assert_eq!(effective(100, &[rev(false, -20)]).priority, 120);
        assert_eq!(effective(100, &[rev(true, 20)]).priority, 80);
        assert_eq!(effective(100, &[rev(false, 20)]).priority, 100);
        // weight 0 reverse: FAULT while up.
        assert!(effective(100, &[rev(true, 0)]).fault);
        assert!(!effective(100, &[rev(false, 0)]).fault);
    }
}
