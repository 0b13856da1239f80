//! Which live processes each `vrrp_track_process` counts, kept from the
//! process connector's events (fork, exec, rename, exit) or rebuilt from a
//! /proc scan. Pure: the caller reads /proc and says what it found.
//!
//! A pid whose /proc entries cannot be read when an event names it (gone
//! already, or hidden by `hidepid`) keeps what it had: a process we cannot
//! see is neither added nor dropped, so it cannot flap.

use std::collections::{BTreeSet, HashMap};

use super::quorum::Cause;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    /// pid -> the trackers (indices) that count it.
    pids: HashMap<i32, BTreeSet<usize>>,
    counts: Vec<u32>,
}

impl Table {
    pub fn new(trackers: usize) -> Table {
        Table {
            pids: HashMap::new(),
            counts: vec![0; trackers],
        }
    }

    pub fn count(&self, tracker: usize) -> u32 {
        self.counts.get(tracker).copied().unwrap_or(0)
    }

    /// The pids `tracker` counts (sorted).
    pub fn pids_of(&self, tracker: usize) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .pids
            .iter()
            .filter(|(_, s)| s.contains(&tracker))
            .map(|(p, _)| *p)
            .collect();
        v.sort_unstable();
        v
    }

    fn set(&mut self, pid: i32, now: BTreeSet<usize>, cause: Cause) -> Vec<(usize, Cause)> {
        let before = self.pids.remove(&pid).unwrap_or_default();
        let mut changed = Vec::new();
        for &t in before.difference(&now) {
            if let Some(c) = self.counts.get_mut(t) {
                *c = c.saturating_sub(1);
                changed.push((t, cause));
            }
        }
        for &t in now.difference(&before) {
            if let Some(c) = self.counts.get_mut(t) {
                *c = c.saturating_add(1);
                changed.push((t, cause));
            }
        }
        if !now.is_empty() {
            self.pids.insert(pid, now);
        }
        changed
    }

    /// `pid` was (re)read after an exec or a rename: it now matches
    /// `matched` (None: it could not be read, nothing changes).
    pub fn found(&mut self, pid: i32, matched: Option<BTreeSet<usize>>) -> Vec<(usize, Cause)> {
        match matched {
            Some(m) => self.set(pid, m, Cause::Found),
            None => Vec::new(),
        }
    }

    /// `parent` forked `child`: the child counts where the parent does.
    pub fn fork(&mut self, parent: i32, child: i32) -> Vec<(usize, Cause)> {
        match self.pids.get(&parent).cloned() {
            Some(m) => self.set(child, m, Cause::Fork),
            None => Vec::new(),
        }
    }

    /// `pid` exited.
    pub fn exit(&mut self, pid: i32) -> Vec<(usize, Cause)> {
        self.set(pid, BTreeSet::new(), Cause::Exit)
    }

    /// A whole /proc scan: `seen` maps each visible pid to (its parent,
    /// the trackers that count it). `alive` says whether a pid that is no
    /// longer listed still exists (hidden rather than gone: kept).
    /// Returns each tracker whose count changed, with the cause: an exit
    /// when it went down, a fork when a new pid's parent was counted by
    /// the same tracker, else found.
    pub fn rescan(
        &mut self,
        seen: &HashMap<i32, (i32, BTreeSet<usize>)>,
        alive: &dyn Fn(i32) -> bool,
    ) -> Vec<(usize, Cause)> {
        let before = self.counts.clone();
        let old = std::mem::take(&mut self.pids);
        let mut next: HashMap<i32, BTreeSet<usize>> = HashMap::new();
        for (pid, (_, m)) in seen {
            if !m.is_empty() {
                next.insert(*pid, m.clone());
            }
        }
        for (pid, m) in &old {
            if !seen.contains_key(pid) && alive(*pid) {
                next.insert(*pid, m.clone());
            }
        }
        self.counts = vec![0; before.len()];
        for m in next.values() {
            for &t in m {
                if let Some(c) = self.counts.get_mut(t) {
                    *c += 1;
                }
            }
        }
        let mut changed = Vec::new();
        for (t, (&b, &a)) in before.iter().zip(self.counts.iter()).enumerate() {
            if a == b {
                continue;
            }
            let cause = if a < b {
                Cause::Exit
            } else if next.iter().any(|(pid, m)| {
                m.contains(&t)
                    && !old.get(pid).is_some_and(|o| o.contains(&t))
                    && seen
                        .get(pid)
                        .is_some_and(|(ppid, _)| old.get(ppid).is_some_and(|o| o.contains(&t)))
            }) {
                Cause::Fork
            } else {
                Cause::Found
            };
            changed.push((t, cause));
        }
        self.pids = next;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[usize]) -> Option<BTreeSet<usize>> {
        Some(v.iter().copied().collect())
    }

    #[test]
    fn events_keep_the_counts() {
        let mut t = Table::new(2);
        assert_eq!(t.found(10, set(&[0])), vec![(0, Cause::Found)]);
        assert_eq!(t.fork(10, 11), vec![(0, Cause::Fork)]);
        assert_eq!(t.fork(99, 12), vec![], "an untracked parent");
        assert_eq!(t.count(0), 2);
        // the child execs something else: no longer counted
        assert_eq!(t.found(11, set(&[])), vec![(0, Cause::Found)]);
        // unreadable (gone or hidden): unchanged
        assert_eq!(t.found(10, None), vec![]);
        assert_eq!(t.count(0), 1);
        assert_eq!(t.found(10, set(&[0, 1])), vec![(1, Cause::Found)]);
        assert_eq!(t.exit(10), vec![(0, Cause::Exit), (1, Cause::Exit)]);
        assert_eq!(t.exit(10), vec![], "twice");
        assert_eq!((t.count(0), t.count(1)), (0, 0));
        assert_eq!(t.found(5, set(&[7])), vec![], "no such tracker");
    }

    #[test]
    fn a_rescan_keeps_hidden_processes_and_names_causes() {
        let mut t = Table::new(1);
        let mut seen = HashMap::new();
        seen.insert(10, (1, [0].into_iter().collect()));
        assert_eq!(t.rescan(&seen, &|_| false), vec![(0, Cause::Found)]);
        seen.insert(11, (10, [0].into_iter().collect()));
        assert_eq!(t.rescan(&seen, &|_| false), vec![(0, Cause::Fork)]);
        // 11 disappears from the listing but still exists: kept
        seen.remove(&11);
        assert_eq!(t.rescan(&seen, &|p| p == 11), vec![]);
        assert_eq!(t.count(0), 2);
        // now gone
        assert_eq!(t.rescan(&seen, &|_| false), vec![(0, Cause::Exit)]);
        assert_eq!(t.pids_of(0), vec![10]);
    }
}
