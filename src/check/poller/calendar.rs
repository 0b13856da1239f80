//! The poller's deadlines: when each probe is due, and when each exchange
//! in flight times out, earliest first. Pure.
//!
//! Entries are never removed early: each carries its probe's generation,
//! and one whose probe has moved on is skipped when it comes up. Nearly
//! every exchange ends long before its timeout, so most timeout entries
//! end up stale; they are kept out of the heap. Timeouts of one length
//! come in the order they were set (each is "now + that length"), so a
//! first-in first-out queue per length holds them in time order, and a
//! stale one costs a push and a pop at either end, not two walks of a heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

/// One entry: when, which probe, its generation.
type Entry = (Instant, u32, u32);

/// Deadlines of the poller's probes (by index).
#[derive(Debug, Default)]
pub struct Calendar {
    /// When probes are due: any order of insertion.
    due: BinaryHeap<Reverse<Entry>>,
    /// Timeouts, one queue per length (a handful: one per connect_timeout
    /// in use), each in time order.
    timeouts: Vec<(Duration, VecDeque<Entry>)>,
}

/// Where the earliest entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Due,
    Timeouts(usize),
}

impl Calendar {
    /// Probe `probe` (in its generation `generation`) is due at `at`.
    pub fn push(&mut self, at: Instant, probe: u32, generation: u32) {
        self.due.push(Reverse((at, probe, generation)));
    }

    /// Probe `probe`'s exchange times out at `at`, `length` from now.
    /// Timeouts of one length must be set in time order (a later call is
    /// never earlier); one that is not goes with the due times instead.
    pub fn push_timeout(&mut self, length: Duration, at: Instant, probe: u32, generation: u32) {
        let entry = (at, probe, generation);
        let i = match self.timeouts.iter().position(|(l, _)| *l == length) {
            Some(i) => i,
            None => {
                self.timeouts.push((length, VecDeque::new()));
                self.timeouts.len() - 1
            }
        };
        let queue = &mut self.timeouts[i].1;
        match queue.back() {
            Some(last) if last.0 > at => self.due.push(Reverse(entry)),
            _ => queue.push_back(entry),
        }
    }

    fn earliest(&self) -> Option<(Entry, Source)> {
        let mut best = self.due.peek().map(|Reverse(e)| (*e, Source::Due));
        for (i, (_, queue)) in self.timeouts.iter().enumerate() {
            if let Some(e) = queue.front()
                && best.is_none_or(|(b, _)| e.0 < b.0)
            {
                best = Some((*e, Source::Timeouts(i)));
            }
        }
        best
    }

    /// The earliest entry: (when, probe, generation).
    pub fn peek(&self) -> Option<Entry> {
        self.earliest().map(|(e, _)| e)
    }

    /// Drops the earliest entry.
    pub fn pop(&mut self) {
        match self.earliest() {
            Some((_, Source::Due)) => {
                self.due.pop();
            }
            Some((_, Source::Timeouts(i))) => {
                self.timeouts[i].1.pop_front();
            }
            None => {}
        }
    }

    /// The next entry due by `now`: (probe, generation).
    pub fn pop_due(&mut self, now: Instant) -> Option<(u32, u32)> {
        let ((at, probe, generation), _) = self.earliest()?;
        if at > now {
            return None;
        }
        self.pop();
        Some((probe, generation))
    }

    pub fn len(&self) -> usize {
        self.due.len() + self.timeouts.iter().map(|(_, q)| q.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_up_in_time_order_and_only_when_due() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let second = Duration::from_secs(1);
        let mut c = Calendar::default();
        c.push(at(30), 1, 0);
        c.push(at(10), 2, 5);
        c.push_timeout(second, at(20), 3, 1);
        c.push(at(10), 4, 0);
        c.push_timeout(second, at(25), 5, 0);
        c.push_timeout(Duration::from_secs(3), at(12), 6, 0);
        // Out of order for its length: still comes up in time.
        c.push_timeout(second, at(11), 7, 0);
        assert_eq!(c.len(), 7);
        assert_eq!(c.peek().map(|e| e.0), Some(at(10)));
        assert_eq!(c.pop_due(at(5)), None);
        let mut due = vec![c.pop_due(at(10)).unwrap(), c.pop_due(at(10)).unwrap()];
        due.sort();
        assert_eq!(due, [(2, 5), (4, 0)]);
        assert_eq!(c.pop_due(at(10)), None);
        let order: Vec<_> = std::iter::from_fn(|| c.pop_due(at(100))).collect();
        assert_eq!(order, [(7, 0), (6, 0), (3, 1), (5, 0), (1, 0)]);
        assert!(c.is_empty());
        assert_eq!(c.peek(), None);
        c.push(at(1), 9, 9);
        c.pop();
        assert!(c.is_empty());
    }
}
