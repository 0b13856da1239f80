//! `slow_start SECS`: a real server that comes back up (its checkers say up
//! again, or the operator enables it) gets its weight ramped from 1 to its
//! full value over SECS, so a cold server (empty caches, JIT) is not handed
//! its whole share at once. Weights change in steps; each step recomputes
//! only its virtual server.

use std::time::{Duration, Instant};

use super::Director;
use crate::check::health::RsKey;
use crate::lvs::names;

/// Weights are recomputed this often during a ramp (or in 10 steps when
/// the ramp is shorter than 10 s).
const STEP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(super) struct Ramp {
    start: Instant,
    length: Duration,
    /// The virtual server (by position) to recompute at each step.
    vs: usize,
    /// How far along the ramp is, 0..1, as of the last step.
    pub fraction: f64,
    next: Instant,
}

/// The weight `full` scaled down by a ramp: at least 1 (0 stays 0: a weight
/// 0 server takes no new connections whatever the ramp).
pub(super) fn ramped(full: u32, fraction: f64) -> u32 {
    if full == 0 {
        return 0;
    }
    ((f64::from(full) * fraction) as u32).clamp(1, full)
}

impl Director {
    /// Real server `i` (plan.servers order) came back up: ramp it, if it
    /// has a slow_start.
    pub(super) fn start_ramp(&mut self, now: Instant, i: usize) {
        let (key, v, r) = &self.health.plan.servers[i];
        let vs = &self.config.virtual_servers[*v];
        let rs = &vs.real_servers[*r];
        let Some(length) = rs.slow_start else {
            return;
        };
        tracing::info!(
            "Slow start for {} of VS {}: weight ramps from 1 to {} over {} s",
            names::real_server(vs, rs),
            names::virtual_server(vs),
            rs.weight,
            length.as_secs_f64()
        );
        let step = STEP.min(length / 10).max(Duration::from_millis(100));
        self.ramps.insert(
            key.clone(),
            Ramp {
                start: now,
                length,
                vs: *v,
                fraction: 0.0,
                next: now + step,
            },
        );
    }

    /// A real server that went down, or left the file, stops ramping.
    pub(super) fn stop_ramp(&mut self, key: &RsKey) {
        self.ramps.remove(key);
    }

    /// Steps the ramps that are due; ended ramps leave the full weight.
    pub(super) fn step_ramps(&mut self, now: Instant) {
        let mut done = Vec::new();
        for (key, ramp) in self.ramps.iter_mut() {
            if now < ramp.next {
                continue;
            }
            let elapsed = now.saturating_duration_since(ramp.start);
            ramp.fraction = (elapsed.as_secs_f64() / ramp.length.as_secs_f64()).min(1.0);
            let step = STEP.min(ramp.length / 10).max(Duration::from_millis(100));
            ramp.next = now + step;
            self.table.mark_dirty(ramp.vs);
            if ramp.fraction >= 1.0 {
                done.push(key.clone());
            }
        }
        for k in done {
            self.ramps.remove(&k);
        }
    }

    /// The next ramp step.
    pub(super) fn next_ramp_step(&self) -> Option<Instant> {
        self.ramps.values().map(|r| r.next).min()
    }

    /// After a reload: ramps of real servers that left the file end; the
    /// others follow their virtual server to its new position.
    pub(super) fn reindex_ramps(&mut self) {
        if self.ramps.is_empty() {
            return;
        }
        let mut kept = crate::FastMap::default();
        for (key, v, _) in &self.health.plan.servers {
            if let Some(mut r) = self.ramps.remove(key) {
                r.vs = *v;
                kept.insert(key.clone(), r);
            }
        }
        self.ramps = kept;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ramped_weights_start_at_1_and_end_full() {
        assert_eq!(super::ramped(10, 0.0), 1);
        assert_eq!(super::ramped(10, 0.55), 5);
        assert_eq!(super::ramped(10, 1.0), 10);
        assert_eq!(super::ramped(0, 0.5), 0);
    }
}
