//! The up/down logic of one checker, as keepalived has it, as a pure state
//! machine: feed it probe results with the time they finished, it says
//! whether the checker changed state and when to probe next.
//!
//! - Starts up, or down with `alpha` (until the first success).
//! - A success while down brings it up at once.
//! - A failure while up is retried after `delay_before_retry`, `retry`
//!   times; when the initial attempt and all retries failed in a row it
//!   goes down. (keepalived: "retry: additional checks if check of an alive
//!   server fails"; MISC_CHECK's default retry 0 means down on the first failure.)
//! - While down it is probed every `delay_loop`.
//! - A probe that could not start for a reason on this host (out of
//!   descriptors, a bindto address that is not here) is no verdict: the
//!   state stays, and the next attempt backs off (`delay_loop`, doubling
//!   with each such probe in a row, up to 30 s or `delay_loop` if longer).

use std::time::Duration;

use crate::config::model::CheckCommon;

/// Why a probe said what it said (static text in the common cases).
pub type Reason = std::borrow::Cow<'static, str>;

/// Milliseconds on the caller's clock (virtual in tests, monotonic in the daemon).
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastResult {
    pub ok: bool,
    pub reason: Reason,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerState {
    pub up: bool,
    /// Consecutive failures while up (the retries used so far, plus one).
    pub failures: u32,
    /// When `up` last changed (or the checker started).
    pub since: Millis,
    pub last: Option<LastResult>,
    /// A weight a MISC_CHECK with misc_dynamic reported (exit status - 2).
    pub dynamic_weight: Option<u32>,
    /// Probes in a row that could not start for a reason on this host.
    pub local_problems: u32,
}

/// The longest wait between attempts while this host is short of
/// something (unless delay_loop is longer).
const LOCAL_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the caller does after feeding a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Some(new state) when the checker went up or down.
    pub changed: Option<bool>,
    /// The misc_dynamic weight changed: the IPVS table needs it even when
    /// the checker stayed up.
    pub weight_changed: bool,
    /// Something a report shows changed: the state, the weight, or the last
    /// result's verdict or reason (not merely its time).
    pub news: bool,
    /// This checker's first result (the director's announcements wait for
    /// every real server's first verdict, a state change or not).
    pub first: bool,
    /// Delay until the next probe starts.
    pub next: Duration,
}

impl CheckerState {
    pub fn new(common: &CheckCommon, now: Millis) -> Self {
        CheckerState {
            up: !common.alpha,
            failures: 0,
            since: now,
            last: None,
            dynamic_weight: None,
            local_problems: 0,
        }
    }

    /// A probe that could not start for a reason on this host: nothing
    /// changes but the wait until the next attempt, which backs off.
    pub fn on_local_problem(&mut self, common: &CheckCommon) -> Duration {
        self.local_problems = self.local_problems.saturating_add(1);
        let delay_loop = common.delay_loop.0;
        let doubled = delay_loop.saturating_mul(1 << (self.local_problems.min(16) - 1));
        doubled.min(LOCAL_BACKOFF_MAX.max(delay_loop))
    }

    /// Applies one probe result that finished at `now`.
    pub fn on_result(
        &mut self,
        common: &CheckCommon,
        ok: bool,
        reason: Reason,
        dynamic_weight: Option<u32>,
        now: Millis,
    ) -> Step {
        self.local_problems = 0;
        let first = self.last.is_none();
        // The same verdict for the same reason keeps the text it had.
        let news = match &mut self.last {
            Some(l) if l.ok == ok && l.reason == reason => {
                l.at = now;
                false
            }
            _ => {
                self.last = Some(LastResult {
                    ok,
                    reason,
                    at: now,
                });
                true
            }
        };
        if ok {
            self.failures = 0;
            // As keepalived: a success without a weight of its own (MISC_CHECK's
            // exit 0 after a misc_dynamic weight) means the configured one.
            let weight_changed = dynamic_weight != self.dynamic_weight;
            self.dynamic_weight = dynamic_weight;
            let changed = (!self.up).then(|| {
                self.up = true;
                self.since = now;
                true
            });
            return Step {
                changed,
                weight_changed,
                news: news || weight_changed || changed.is_some(),
                first,
                next: common.delay_loop.0,
            };
        }
        if !self.up {
            return Step {
                changed: None,
                weight_changed: false,
                news,
                first,
                next: common.delay_loop.0,
            };
        }
        self.failures += 1;
        if self.failures <= common.retry {
            return Step {
                changed: None,
                weight_changed: false,
                news,
                first,
                next: common.delay_before_retry.0,
            };
        }
        self.up = false;
        self.failures = 0;
        self.since = now;
        Step {
            changed: Some(false),
            weight_changed: false,
            news: true,
            first,
            next: common.delay_loop.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Timer;

    fn common(retry: u32, alpha: bool) -> CheckCommon {
        CheckCommon {
            connect_ip: "127.0.0.1".parse().unwrap(),
            connect_port: 80,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Timer::secs(5),
            delay_loop: Timer::secs(6),
            retry,
            delay_before_retry: Timer::secs(2),
            warmup: Timer::secs(0),
            alpha,
            log_all_failures: false,
        }
    }

    /// Drives the machine with results on a virtual clock; returns
    /// (time of each state change, new state).
    fn drive(c: &CheckCommon, results: &[bool]) -> Vec<(Millis, bool)> {
        let mut now = 0;
        let mut s = CheckerState::new(c, now);
        let mut changes = Vec::new();
        for &ok in results {
            let step = s.on_result(c, ok, "".into(), None, now);
            if let Some(up) = step.changed {
                changes.push((now, up));
            }
            now += step.next.as_millis() as u64;
        }
        changes
    }

    #[test]
    fn down_after_the_attempt_and_all_retries_fail_spaced_by_delay_before_retry() {
        let c = common(3, false);
        // ok at 0, then failures at 6, 8, 10, 12 (retries after 2 s): down at 12.
        assert_eq!(
            drive(&c, &[true, false, false, false, false]),
            vec![(12_000, false)]
        );
        // Three failures then a success: never down.
        assert_eq!(drive(&c, &[true, false, false, false, true, false]), vec![]);
    }

    #[test]
    fn retry_zero_is_down_on_first_failure_and_up_on_first_success() {
        let c = common(0, false);
        assert_eq!(
            drive(&c, &[false, false, true]),
            vec![(0, false), (12_000, true)]
        );
    }

    #[test]
    fn alpha_starts_down_until_the_first_success() {
        let c = common(1, true);
        assert_eq!(drive(&c, &[false, false, true]), vec![(12_000, true)]);
        let s = CheckerState::new(&c, 0);
        assert!(!s.up);
    }

    #[test]
    fn while_down_probes_every_delay_loop() {
        let c = common(1, true);
        let mut s = CheckerState::new(&c, 0);
        let step = s.on_result(&c, false, "refused".into(), None, 0);
        assert_eq!(step.next, Duration::from_secs(6));
        assert_eq!(s.last.as_ref().unwrap().reason, "refused");
    }

    #[test]
    fn news_is_a_change_of_state_verdict_reason_or_weight() {
        let c = common(1, false);
        let mut s = CheckerState::new(&c, 0);
        let step = s.on_result(&c, true, "connected".into(), None, 0);
        assert!(step.news && step.changed.is_none(), "the first result");
        let step = s.on_result(&c, true, "connected".into(), None, 1);
        assert!(!step.news, "the same again");
        assert_eq!(s.last.as_ref().unwrap().at, 1, "its time still moves");
        let step = s.on_result(&c, false, "refused".into(), None, 2);
        assert!(step.news && step.changed.is_none(), "a failure, retried");
        let step = s.on_result(&c, false, "refused".into(), None, 3);
        assert!(step.news && step.changed == Some(false), "down");
        let step = s.on_result(&c, false, "refused".into(), None, 4);
        assert!(!step.news, "still down, same reason");
        let step = s.on_result(&c, false, "timed out".into(), None, 5);
        assert!(step.news && step.changed.is_none(), "another reason");
        let step = s.on_result(&c, true, "exit 2: weight 0".into(), Some(0), 6);
        assert!(step.news && step.changed == Some(true) && step.weight_changed);
        let step = s.on_result(&c, true, "exit 2: weight 0".into(), Some(0), 7);
        assert!(!step.news && !step.weight_changed);
    }

    #[test]
    fn a_local_problem_keeps_the_state_and_backs_off() {
        let mut c = common(0, false);
        c.delay_loop = Timer::secs(1);
        let mut s = CheckerState::new(&c, 0);
        s.on_result(&c, true, "connected".into(), None, 0);
        let before = s.clone();
        let s_ = Duration::from_secs;
        let waits: Vec<_> = (0..7).map(|_| s.on_local_problem(&c)).collect();
        assert_eq!(waits, [s_(1), s_(2), s_(4), s_(8), s_(16), s_(30), s_(30)]);
        assert_eq!(
            (s.up, &s.last, s.since),
            (before.up, &before.last, before.since)
        );
        for _ in 0..100 {
            assert_eq!(s.on_local_problem(&c), s_(30));
        }
        // A verdict ends the run of local problems.
        s.on_result(&c, true, "connected".into(), None, 1);
        assert_eq!(s.on_local_problem(&c), s_(1));
        c.delay_loop = Timer::secs(60);
        assert_eq!(s.on_local_problem(&c), s_(60));
    }

    #[test]
    fn a_success_without_a_weight_brings_back_the_configured_one() {
        let c = common(0, false);
        let mut s = CheckerState::new(&c, 0);
        let step = s.on_result(&c, true, "".into(), Some(7), 0);
        assert!(step.weight_changed);
        assert_eq!(s.dynamic_weight, Some(7));
        let step = s.on_result(&c, true, "".into(), Some(7), 1);
        assert!(!step.weight_changed);
        // keepalived's misc_dynamic: exit 0 is the configured weight again.
        let step = s.on_result(&c, true, "".into(), None, 2);
        assert!(step.weight_changed);
        assert_eq!(s.dynamic_weight, None);
    }
}
