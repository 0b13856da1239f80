//! The poller's deadlines: when each probe is due and when each exchange
//! in flight times out, earliest first. Entries are never removed: each
//! carries its probe's generation, and one whose probe has moved on (a new
//! generation) is skipped when it comes up. Pure.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Deadlines of the poller's probes (by index).
#[derive(Debug, Default)]
pub struct Calendar {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Calendar {
    /// Probe `probe` (in its generation `generation`) wants a turn at `at`.
    pub fn push(&mut self, at: Instant, probe: u32, generation: u32) {
        self.heap.push(Reverse((at, probe, generation)));
    }

    /// The earliest entry: (when, probe, generation).
    pub fn peek(&self) -> Option<(Instant, u32, u32)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    /// Drops the earliest entry.
    pub fn pop(&mut self) {
        self.heap.pop();
    }

    /// The next entry due by `now`: (probe, generation).
    pub fn pop_due(&mut self, now: Instant) -> Option<(u32, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, probe, generation)) = self.heap.pop()?;
                Some((probe, generation))
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_come_up_in_time_order_and_only_when_due() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut c = Calendar::default();
        c.push(at(30), 1, 0);
        c.push(at(10), 2, 5);
        c.push(at(20), 3, 1);
        c.push(at(10), 4, 0);
        assert_eq!(c.peek().map(|e| e.0), Some(at(10)));
        assert_eq!(c.pop_due(at(5)), None);
        let mut due = vec![c.pop_due(at(10)).unwrap(), c.pop_due(at(10)).unwrap()];
        due.sort();
        assert_eq!(due, [(2, 5), (4, 0)]);
        assert_eq!(c.pop_due(at(10)), None);
        assert_eq!(c.pop_due(at(100)), Some((3, 1)));
        assert_eq!(c.pop_due(at(100)), Some((1, 0)));
        assert!(c.is_empty());
        assert_eq!(c.peek(), None);
        c.push(at(1), 9, 9);
        c.pop();
        assert!(c.is_empty());
    }
}
