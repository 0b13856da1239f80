//! The VRRP state machine of one instance (RFC 3768 / RFC 5798, with
//! keepalived's FAULT state), as a pure function of inputs and virtual
//! time. The driver feeds it received adverts and timer expiries and
//! carries out the actions (send an advert, add/remove the VIPs, GARP,
//! notify scripts).

use std::net::IpAddr;
use std::time::Duration;

use crate::config::model::InitialState;

/// Microseconds on the caller's clock.
pub type Micros = u64;

fn us(d: Duration) -> Micros {
    d.as_micros() as Micros
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// What the machine needs from the configuration.
#[derive(Debug, Clone)]
pub struct Params {
    pub version: u8,
    /// Configured priority; 255 means the address owner.
    pub priority: u8,
    pub advert_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub initial: InitialState,
    /// Our primary address on the link, for breaking equal-priority ties.
    pub primary_ip: IpAddr,
    /// Warn about adverts later than this fraction of Master_Down_Interval.
    pub late_advert_warn: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Start,
    /// The deadline from [`Vrrp::deadline`] has passed.
    Timer,
    Advert {
        src: IpAddr,
        priority: u8,
        /// Master_Adver_Interval carried by the advert (v3) or our own (v2).
        interval: Duration,
    },
    /// Effective priority after trackers (clamped by the caller's rules).
    Priority(u8),
    /// An unweighted tracker failed (true) or all recovered (false).
    Fault(bool),
    /// A vrrp_sync_group member became MASTER: follow it (from BACKUP).
    SyncMaster,
    /// A vrrp_sync_group member fell back to BACKUP: follow it (from MASTER).
    SyncBackup,
    Shutdown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send an advertisement with this priority.
    SendAdvert { priority: u8 },
    /// State changed: from, to. Entering MASTER means add the VIPs and
    /// send gratuitous ARPs; leaving it means remove them.
    Transition { from: State, to: State },
    /// A backup heard the master later than the early-warning threshold.
    LateAdvert {
        gap: Duration,
        master_down: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct Vrrp {
    pub params: Params,
    pub state: State,
    /// Current effective priority.
    pub priority: u8,
    /// The master's advert interval as learned (v3) or configured.
    pub master_adver_interval: Duration,
    deadline: Option<Micros>,
    /// Last advert heard from the current master (for the early warning).
    last_advert: Option<Micros>,
    /// Last advert heard from the master followed, priority 0 included:
    /// where the silence before a takeover began.
    last_heard: Option<Micros>,
    /// preempt_delay is owed before taking over (at start, or after hearing a lower-priority master).
    delay_owed: bool,
    /// A backup's deadline is the preempt_delay wait, not Master_Down.
    preempt_wait: bool,
    pub master_ip: Option<IpAddr>,
}

impl Vrrp {
    pub fn new(params: Params) -> Self {
        Vrrp {
            priority: params.priority,
            master_adver_interval: params.advert_int,
            state: State::Init,
            deadline: None,
            last_advert: None,
            last_heard: None,
            delay_owed: false,
            preempt_wait: false,
            master_ip: None,
            params,
        }
    }

    /// When the master this backup followed was last heard (any priority).
    pub fn last_heard(&self) -> Option<Micros> {
        self.last_heard
    }

    /// When the caller must feed [`Input::Timer`] next.
    pub fn deadline(&self) -> Option<Micros> {
        self.deadline
    }

    /// Takes over a running machine's state (a reload that kept the
    /// instance): state, timers, the master followed and the effective
    /// priority carry on; the new parameters apply from the next event.
    pub fn carry_over(&mut self, old: &Vrrp) {
        self.state = old.state;
        self.priority = old.priority;
        self.deadline = old.deadline;
        self.last_advert = old.last_advert;
        self.last_heard = old.last_heard;
        self.delay_owed = old.delay_owed;
        self.preempt_wait = old.preempt_wait;
        self.master_ip = match old.state {
            State::Master => Some(self.params.primary_ip),
            _ => old.master_ip,
        };
        if self.params.version == 3 && old.params.version == 3 && old.state == State::Backup {
            self.master_adver_interval = old.master_adver_interval;
        }
    }

    /// RFC 5798: ((256 - Priority) * Master_Adver_Interval) / 256; RFC 3768
    /// (v2): (256 - Priority) / 256 seconds, which is the same with a 1 s interval.
    pub fn skew_time(&self) -> Duration {
        let base = if self.params.version == 2 {
            Duration::from_secs(1)
        } else {
            self.master_adver_interval
        };
        base * (256 - u32::from(self.priority)) / 256
    }

    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval * 3 + self.skew_time()
    }

    fn go(&mut self, to: State, out: &mut Vec<Action>) {
        if self.state != to {
            out.push(Action::Transition {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn enter_backup(&mut self, now: Micros, out: &mut Vec<Action>) {
        // No master heard yet in this BACKUP spell (the caller sets it when
        // an advert is what sent us here).
        self.last_heard = None;
        self.go(State::Backup, out);
        self.deadline = Some(now + us(self.master_down_interval()));
        self.preempt_wait = false;
    }

    fn enter_master(&mut self, now: Micros, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        self.go(State::Master, out);
        self.master_ip = Some(self.params.primary_ip);
        self.deadline = Some(now + us(self.params.advert_int));
    }

    /// Whether an advert from (priority, src) beats us (RFC 5798 6.4.3).
    fn beats_us(&self, priority: u8, src: IpAddr) -> bool {
        priority > self.priority || (priority == self.priority && src > self.params.primary_ip)
    }

    pub fn handle(&mut self, now: Micros, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, input) {
            // Whatever the state (FAULT and INIT included: the priority an
            // instance comes back with is its current one).
            (_, Input::Priority(p)) => {
                if p != self.priority {
                    let old_down = us(self.master_down_interval());
                    self.priority = p;
                    if self.state == State::Backup
                        && !self.preempt_wait
                        && let Some(d) = self.deadline
                    {
                        // The running Master_Down timer follows the new
                        // Skew_Time (keepalived moves it the same way).
                        let new_down = us(self.master_down_interval());
                        self.deadline = Some((d + new_down).saturating_sub(old_down));
                    }
                    if self.state == State::Master {
                        // Priority changes are advertised at once.
                        out.push(Action::SendAdvert { priority: p });
                        self.deadline = Some(now + us(self.params.advert_int));
                    }
                }
            }
            (State::Init, Input::Start) => {
                if self.params.priority == 255 && self.params.initial == InitialState::Master {
                    self.enter_master(now, &mut out);
                } else {
                    self.delay_owed = !self.params.preempt_delay.is_zero();
                    self.enter_backup(now, &mut out);
                }
            }
            (_, Input::Shutdown) => {
                if self.state == State::Master {
                    // Priority 0: the backup takes over after Skew_Time, not Master_Down_Interval.
                    out.push(Action::SendAdvert { priority: 0 });
                }
                self.go(State::Init, &mut out);
                self.deadline = None;
            }
            (State::Fault, Input::Fault(false)) => self.enter_backup(now, &mut out),
            (State::Fault, _) => {}
            (_, Input::Fault(true)) => {
                if self.state == State::Master {
                    out.push(Action::SendAdvert { priority: 0 });
                }
                self.go(State::Fault, &mut out);
                self.deadline = None;
            }
            (State::Init, _) => {}
            (State::Backup, Input::SyncMaster) => self.enter_master(now, &mut out),
            (State::Master, Input::SyncBackup) => self.enter_backup(now, &mut out),
            (_, Input::SyncMaster | Input::SyncBackup) => {}
            (State::Backup, Input::Timer) => {
                if self.delay_owed && self.params.preempt {
                    self.delay_owed = false;
                    self.preempt_wait = true;
                    self.deadline = Some(now + us(self.params.preempt_delay));
                } else {
                    self.enter_master(now, &mut out);
                }
            }
            (State::Master, Input::Timer) => {
                out.push(Action::SendAdvert {
                    priority: self.priority,
                });
                // Keep the cadence: the next advert is due one interval after
                // this one was due, not after it was sent (timers fire a
                // little late; "now + interval" would drift ~1% slow at
                // advert_int 0.1). A master that fell a whole interval
                // behind starts afresh from now.
                let step = us(self.params.advert_int);
                self.deadline = Some(match self.deadline {
                    Some(due) if due <= now && now - due < step => due + step,
                    _ => now + step,
                });
            }
            (
                State::Backup,
                Input::Advert {
                    src,
                    priority,
                    interval,
                },
            ) => {
                if priority == 0 {
                    self.last_heard = Some(now);
                    // Only ever brought forward: repeated priority-0 adverts
                    // must not postpone the takeover.
                    let at = now + us(self.skew_time());
                    self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
                    self.preempt_wait = false;
                } else if !self.params.preempt || priority >= self.priority {
                    if self.params.version == 3 {
                        self.master_adver_interval = interval;
                    }
                    if let (Some(f), Some(prev)) = (self.params.late_advert_warn, self.last_advert)
                        && self.master_ip == Some(src)
                    {
                        let gap = Duration::from_micros(now.saturating_sub(prev));
                        let mdi = self.master_down_interval();
                        if gap.as_secs_f64() > mdi.as_secs_f64() * f {
                            out.push(Action::LateAdvert {
                                gap,
                                master_down: mdi,
                            });
                        }
                    }
                    self.last_advert = Some(now);
                    self.last_heard = Some(now);
                    self.master_ip = Some(src);
                    self.deadline = Some(now + us(self.master_down_interval()));
                    self.preempt_wait = false;
                } else if !self.params.preempt_delay.is_zero() {
                    // A lower-priority master: we will preempt it, after preempt_delay.
                    self.delay_owed = true;
                }
            }
            (
                State::Master,
                Input::Advert {
                    src,
                    priority,
                    interval,
                },
            ) => {
                if priority == 0 {
                    out.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    self.deadline = Some(now + us(self.params.advert_int));
                } else if self.beats_us(priority, src) {
                    if self.params.version == 3 {
                        self.master_adver_interval = interval;
                    }
                    self.master_ip = Some(src);
                    self.last_advert = Some(now);
                    self.enter_backup(now, &mut out);
                    self.last_heard = Some(now);
                }
            }
            (_, Input::Start | Input::Fault(false)) => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(priority: u8, version: u8, advert_ms: u64) -> Params {
        Params {
            version,
            priority,
            advert_int: Duration::from_millis(advert_ms),
            preempt: true,
            preempt_delay: Duration::ZERO,
            initial: InitialState::Backup,
            primary_ip: "10.0.0.1".parse().unwrap(),
            late_advert_warn: None,
        }
    }

    #[test]
    fn master_down_interval_per_rfc() {
        // v2, priority 100, advert 1 s: 3 + (256-100)/256 = 3.609375 s.
        let v = Vrrp::new(params(100, 2, 1000));
        assert_eq!(v.master_down_interval(), Duration::from_micros(3_609_375));
        // v3, priority 200, advert 0.1 s: 0.3 + 56*0.1/256 = 0.321875 s.
        let v = Vrrp::new(params(200, 3, 100));
        assert_eq!(v.master_down_interval(), Duration::from_micros(321_875));
    }

    #[test]
    fn backup_takes_over_after_master_down_interval() {
        let mut v = Vrrp::new(params(100, 2, 1000));
        let a = v.handle(0, Input::Start);
        assert_eq!(
            a,
            vec![Action::Transition {
                from: State::Init,
                to: State::Backup
            }]
        );
        assert_eq!(v.deadline(), Some(3_609_375));
        let a = v.handle(3_609_375, Input::Timer);
        assert_eq!(a[0], Action::SendAdvert { priority: 100 });
        assert_eq!(v.state, State::Master);
    }

    #[test]
    fn master_adverts_keep_their_cadence_when_the_timer_fires_late() {
        let mut v = Vrrp::new(params(100, 3, 100));
        v.handle(0, Input::Start);
        v.handle(321_875, Input::Timer);
        assert_eq!(v.state, State::Master);
        assert_eq!(v.deadline(), Some(421_875));
        // Fired 1.5 ms late: the next is still due one interval after 421.875 ms.
        v.handle(423_375, Input::Timer);
        assert_eq!(v.deadline(), Some(521_875));
        // More than an interval behind (a stalled host): start afresh.
        v.handle(700_000, Input::Timer);
        assert_eq!(v.deadline(), Some(800_000));
    }

    #[test]
    fn owner_with_state_master_starts_master_at_once() {
        let mut p = params(255, 2, 1000);
        p.initial = InitialState::Master;
        let mut v = Vrrp::new(p);
        v.handle(0, Input::Start);
        assert_eq!(v.state, State::Master);
        // state MASTER with priority 100 still waits.
        let mut p = params(100, 2, 1000);
        p.initial = InitialState::Master;
        let mut v = Vrrp::new(p);
        v.handle(0, Input::Start);
        assert_eq!(v.state, State::Backup);
    }

    #[test]
    fn master_yields_to_higher_priority_and_equal_priority_higher_ip() {
        let mut v = Vrrp::new(params(100, 2, 1000));
        v.handle(0, Input::Start);
        v.handle(3_609_375, Input::Timer);
        let higher_ip: IpAddr = "10.0.0.2".parse().unwrap();
        let lower_ip: IpAddr = "10.0.0.0".parse().unwrap();
        v.handle(
            4_000_000,
            Input::Advert {
                src: lower_ip,
                priority: 100,
                interval: Duration::from_secs(1),
            },
        );
        assert_eq!(
            v.state,
            State::Master,
            "equal priority, lower address: we stay"
        );
        v.handle(
            4_100_000,
            Input::Advert {
                src: higher_ip,
                priority: 100,
                interval: Duration::from_secs(1),
            },
        );
        assert_eq!(v.state, State::Backup);
    }

    #[test]
    fn priority_zero_makes_the_backup_take_over_after_skew_time() {
        let mut v = Vrrp::new(params(100, 2, 1000));
        v.handle(0, Input::Start);
        let m: IpAddr = "10.0.0.9".parse().unwrap();
        v.handle(
            1_000_000,
            Input::Advert {
                src: m,
                priority: 200,
                interval: Duration::from_secs(1),
            },
        );
        v.handle(
            1_500_000,
            Input::Advert {
                src: m,
                priority: 0,
                interval: Duration::from_secs(1),
            },
        );
        assert_eq!(v.deadline(), Some(1_500_000 + 609_375));
    }

    #[test]
    fn repeated_priority_zero_does_not_postpone_the_takeover() {
        let mut v = Vrrp::new(params(100, 2, 1000));
        v.handle(0, Input::Start);
        let m: IpAddr = "10.0.0.9".parse().unwrap();
        let zero = Input::Advert {
            src: m,
            priority: 0,
            interval: Duration::from_secs(1),
        };
        v.handle(1_000_000, zero.clone());
        v.handle(1_250_000, zero);
        assert_eq!(v.deadline(), Some(1_000_000 + 609_375));
    }

    #[test]
    fn nopreempt_keeps_a_lower_priority_master() {
        let mut p = params(200, 2, 1000);
        p.preempt = false;
        let mut v = Vrrp::new(p);
        v.handle(0, Input::Start);
        let m: IpAddr = "10.0.0.9".parse().unwrap();
        for t in 1..10 {
            v.handle(
                t * 1_000_000,
                Input::Advert {
                    src: m,
                    priority: 100,
                    interval: Duration::from_secs(1),
                },
            );
            assert_eq!(v.state, State::Backup);
        }
        assert_eq!(v.deadline(), Some(9_000_000 + 3_000_000 + 218_750));
    }

    #[test]
    fn preempt_delay_postpones_taking_over_a_lower_priority_master() {
        let mut p = params(200, 2, 1000);
        p.preempt_delay = Duration::from_secs(2);
        let mut v = Vrrp::new(p);
        v.handle(0, Input::Start);
        let m: IpAddr = "10.0.0.9".parse().unwrap();
        v.handle(
            500_000,
            Input::Advert {
                src: m,
                priority: 100,
                interval: Duration::from_secs(1),
            },
        );
        let first = v.deadline().unwrap();
        v.handle(first, Input::Timer);
        assert_eq!(v.state, State::Backup);
        assert_eq!(v.deadline(), Some(first + 2_000_000));
        v.handle(first + 2_000_000, Input::Timer);
        assert_eq!(v.state, State::Master);
    }

    #[test]
    fn fault_leaves_master_with_priority_zero_and_recovers_to_backup() {
        let mut v = Vrrp::new(params(100, 3, 100));
        v.handle(0, Input::Start);
        v.handle(v.deadline().unwrap(), Input::Timer);
        let a = v.handle(1_000_000, Input::Fault(true));
        assert_eq!(a[0], Action::SendAdvert { priority: 0 });
        assert_eq!(v.state, State::Fault);
        assert_eq!(v.deadline(), None);
        v.handle(2_000_000, Input::Fault(false));
        assert_eq!(v.state, State::Backup);
    }

    #[test]
    fn priority_change_is_advertised_at_once_by_a_master() {
        let mut v = Vrrp::new(params(100, 2, 1000));
        v.handle(0, Input::Start);
        v.handle(v.deadline().unwrap(), Input::Timer);
        let a = v.handle(4_000_000, Input::Priority(95));
        assert_eq!(a, vec![Action::SendAdvert { priority: 95 }]);
    }

    #[test]
    fn a_backups_master_down_timer_follows_its_priority() {
        let mut v = Vrrp::new(params(128, 2, 1000));
        v.handle(0, Input::Start);
        // 3 s + (256 - 128) / 256 s.
        assert_eq!(v.deadline(), Some(3_500_000));
        v.handle(1_000_000, Input::Priority(192));
        // Skew 0.25 s now: the takeover comes 0.25 s sooner.
        assert_eq!(v.deadline(), Some(3_250_000));
        v.handle(1_000_000, Input::Priority(64));
        assert_eq!(v.deadline(), Some(3_750_000));
    }

    #[test]
    fn priority_changes_in_fault_are_kept_and_the_preempt_wait_does_not_move() {
        let mut v = Vrrp::new(params(100, 2, 1000));
        v.handle(0, Input::Start);
        v.handle(0, Input::Fault(true));
        assert!(v.handle(1_000, Input::Priority(70)).is_empty());
        assert_eq!(v.priority, 70, "kept while in FAULT");
        let mut p = params(100, 2, 1000);
        p.preempt_delay = Duration::from_secs(10);
        let mut v = Vrrp::new(p);
        v.handle(0, Input::Start);
        let down = v.deadline().unwrap();
        v.handle(down, Input::Timer);
        assert_eq!(
            v.deadline(),
            Some(down + 10_000_000),
            "waiting preempt_delay"
        );
        v.handle(down + 1, Input::Priority(200));
        assert_eq!(v.deadline(), Some(down + 10_000_000));
    }

    #[test]
    fn late_adverts_are_reported() {
        let mut p = params(100, 2, 1000);
        p.late_advert_warn = Some(0.5);
        let mut v = Vrrp::new(p);
        v.handle(0, Input::Start);
        let m: IpAddr = "10.0.0.9".parse().unwrap();
        let adv = |t| {
            (
                t,
                Input::Advert {
                    src: m,
                    priority: 200,
                    interval: Duration::from_secs(1),
                },
            )
        };
        let (t, i) = adv(1_000_000);
        assert!(v.handle(t, i).is_empty());
        let (t, i) = adv(2_000_000);
        assert!(v.handle(t, i).is_empty());
        // 2.5 s gap > 0.5 x 3.22 s
        let (t, i) = adv(4_500_000);
        assert!(matches!(v.handle(t, i)[0], Action::LateAdvert { .. }));
    }
}
