//! The project's one rate limiter for repeated log lines: a condition that
//! recurs (a flood of bad packets, a script failing every second) logs its
//! first line, then at most one line per period per key, and what was
//! held back is reported as "N similar ... suppressed" when the period ends
//! (see [`LogLimit::flush`]), even if the condition has stopped.
//!
//! Keys are small, fixed values chosen by the caller (an instance index and
//! a drop reason), never raw packet fields: the key space is bounded by
//! construction, and [`LogLimit::new`] caps it again (`max_keys`) so that no
//! input can grow the map. Pure: the caller passes the time in.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What to do with one occurrence of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `suppressed` lines of this key were held back before it
    /// (already reported by `flush` if it ran in between: then 0).
    Log { suppressed: u64 },
    /// Hold it back (counted, reported later).
    Suppress,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the current period of this key started.
    since: Instant,
    /// Lines logged in the current period.
    logged: u32,
    suppressed: u64,
}

/// Per-key rate limiter; see the module docs.
#[derive(Debug)]
pub struct LogLimit<K> {
    period: Duration,
    /// Lines logged per period per key before the rest are held back.
    burst: u32,
    max_keys: usize,
    slots: HashMap<K, Slot>,
    /// Occurrences of keys that found the map full (logged by `flush`).
    overflow: u64,
}

impl<K: Eq + Hash + Clone> LogLimit<K> {
    /// At most one line per `period` per key; at most `max_keys` keys
    /// tracked at once.
    pub fn new(period: Duration, max_keys: usize) -> Self {
        Self::with_burst(period, 1, max_keys)
    }

    /// At most `burst` lines per `period` per key (a short series, such as
    /// a few state changes, passes whole; a flood does not).
    pub fn with_burst(period: Duration, burst: u32, max_keys: usize) -> Self {
        LogLimit {
            period,
            burst: burst.max(1),
            max_keys: max_keys.max(1),
            slots: HashMap::new(),
            overflow: 0,
        }
    }

    /// One occurrence of `key` at `now`.
    pub fn check(&mut self, now: Instant, key: &K) -> Verdict {
        if let Some(s) = self.slots.get_mut(key) {
            if now.saturating_duration_since(s.since) < self.period {
                if s.logged < self.burst {
                    s.logged += 1;
                    return Verdict::Log { suppressed: 0 };
                }
                s.suppressed += 1;
                return Verdict::Suppress;
            }
            let suppressed = std::mem::take(&mut s.suppressed);
            s.since = now;
            s.logged = 1;
            return Verdict::Log { suppressed };
        }
        if self.slots.len() >= self.max_keys {
            self.expire(now);
            if self.slots.len() >= self.max_keys {
                self.overflow += 1;
                return Verdict::Suppress;
            }
        }
        self.slots.insert(
            key.clone(),
            Slot {
                since: now,
                logged: 1,
                suppressed: 0,
            },
        );
        Verdict::Log { suppressed: 0 }
    }

    /// Keys whose period has ended with lines held back: each with how many
    /// (their counts restart). The second value counts occurrences that
    /// found the key space full. Keys quiet for a whole period are
    /// forgotten.
    pub fn flush(&mut self, now: Instant) -> (Vec<(K, u64)>, u64) {
        let mut due = Vec::new();
        for (k, s) in &mut self.slots {
            if s.suppressed > 0 && now.saturating_duration_since(s.since) >= self.period {
                due.push((k.clone(), std::mem::take(&mut s.suppressed)));
                // The report is this period's line: a flood that goes on
                // gets one report per period.
                s.since = now;
                s.logged = self.burst;
            }
        }
        self.expire(now);
        (due, std::mem::take(&mut self.overflow))
    }

    /// Everything held back, whatever the periods (before the keys change
    /// meaning, e.g. at a reload); the limiter starts afresh.
    pub fn drain(&mut self) -> (Vec<(K, u64)>, u64) {
        let due = self
            .slots
            .drain()
            .filter(|(_, s)| s.suppressed > 0)
            .map(|(k, s)| (k, s.suppressed))
            .collect();
        (due, std::mem::take(&mut self.overflow))
    }

    /// When `flush` next has something to report, if ever.
    pub fn next_flush(&self) -> Option<Instant> {
        let held = self
            .slots
            .values()
            .filter(|s| s.suppressed > 0)
            .map(|s| s.since + self.period)
            .min();
        if self.overflow > 0 {
            // Reported with the next flush of any key, or a period from now
            // at the latest (the caller's clock decides "now").
            return held.or(self.slots.values().map(|s| s.since + self.period).min());
        }
        held
    }

    fn expire(&mut self, now: Instant) {
        let period = self.period;
        self.slots
            .retain(|_, s| s.suppressed > 0 || now.saturating_duration_since(s.since) < period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_secs(10);

    #[test]
    fn first_line_logs_then_one_per_period_with_the_count() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(P, 8);
        assert_eq!(l.check(t0, &1), Verdict::Log { suppressed: 0 });
        for ms in 1..1000 {
            let t = t0 + Duration::from_millis(ms);
            assert_eq!(l.check(t, &1), Verdict::Suppress);
        }
        // Another key is independent.
        assert_eq!(l.check(t0, &2), Verdict::Log { suppressed: 0 });
        assert_eq!(l.check(t0 + P, &1), Verdict::Log { suppressed: 999 });
    }

    #[test]
    fn flush_reports_what_was_held_back_after_the_condition_stopped() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(P, 8);
        l.check(t0, &"checksum");
        for _ in 0..5 {
            l.check(t0 + Duration::from_secs(1), &"checksum");
        }
        assert_eq!(l.next_flush(), Some(t0 + P));
        assert_eq!(l.flush(t0 + Duration::from_secs(9)), (vec![], 0));
        assert_eq!(l.flush(t0 + P), (vec![("checksum", 5)], 0));
        assert_eq!(l.next_flush(), None);
        // Quiet for a period: forgotten, so the next one logs at once.
        assert_eq!(l.flush(t0 + 2 * P), (vec![], 0));
        assert!(l.slots.is_empty());
        assert_eq!(
            l.check(t0 + 2 * P, &"checksum"),
            Verdict::Log { suppressed: 0 }
        );
    }

    #[test]
    fn a_burst_passes_whole_then_the_rest_is_counted() {
        let t0 = Instant::now();
        let mut l = LogLimit::with_burst(P, 3, 8);
        for i in 0..3 {
            let t = t0 + Duration::from_millis(i);
            assert_eq!(l.check(t, &1), Verdict::Log { suppressed: 0 });
        }
        for i in 3..10 {
            let t = t0 + Duration::from_millis(i);
            assert_eq!(l.check(t, &1), Verdict::Suppress);
        }
        assert_eq!(l.flush(t0 + P), (vec![(1, 7)], 0));
        // The report was the next period's line: the flood goes on held back.
        assert_eq!(l.check(t0 + P, &1), Verdict::Suppress);
        assert_eq!(l.flush(t0 + 2 * P), (vec![(1, 1)], 0));
        // Quiet for a period, then a new burst.
        assert_eq!(l.flush(t0 + 3 * P), (vec![], 0));
        for _ in 0..3 {
            assert_eq!(l.check(t0 + 3 * P, &1), Verdict::Log { suppressed: 0 });
        }
        assert_eq!(l.check(t0 + 3 * P, &1), Verdict::Suppress);
    }

    #[test]
    fn the_key_space_is_capped() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(P, 4);
        for k in 0..4 {
            assert_eq!(l.check(t0, &k), Verdict::Log { suppressed: 0 });
        }
        for k in 4..10_000 {
            assert_eq!(l.check(t0, &k), Verdict::Suppress);
        }
        assert_eq!(l.slots.len(), 4);
        let (due, overflow) = l.flush(t0 + P);
        assert!(due.is_empty());
        assert_eq!(overflow, 9_996);
        // Expired keys make room again.
        assert_eq!(l.check(t0 + P, &77), Verdict::Log { suppressed: 0 });
    }
}
