//! When to announce: keepalived's GARP/NA timing as a pure function of
//! virtual time (microseconds on the caller's clock, like the state
//! machine's [`Micros`]).
//!
//! Two layers:
//! - [`GarpSchedule`] (one per instance) says when a *burst* is due and how
//!   many rounds it has: on becoming MASTER a burst of `garp_master_repeat`
//!   rounds at once and, when `garp_master_delay` is non-zero, a second one
//!   that long after; every `garp_master_refresh` while MASTER a burst of
//!   `garp_master_refresh_repeat` rounds; and on hearing a lower-priority
//!   advert while MASTER the `garp_lower_prio_repeat` burst plus one
//!   `garp_lower_prio_delay` later. Leaving MASTER cancels everything
//!   pending.
//! - [`Pacer`] (one per interface, shared by the instances on it) turns a
//!   burst into timed packets: a round is one packet per VIP, rounds in
//!   order, and successive packets of one family on the interface at least
//!   `garp_interval` (ARP) / `gna_interval` (NA) apart, each family paced
//!   on its own as keepalived does. A zero interval sends the whole burst
//!   at once.
//!
//! Differences from keepalived 2.2.7, on purpose:
//! - keepalived, with a non-zero interval, drops a queued announcement for a
//!   VIP that already has one waiting, so two VIPs with repeat 2 give three
//!   packets, not four; here every round is sent (repeat x VIPs packets).
//! - keepalived starts a new delayed timer for every lower-priority advert
//!   heard; here at most one delayed lower-priority burst waits at a time
//!   (a flood of such adverts cannot multiply the delayed bursts).
//! - keepalived checks the refresh timer only when it sends an advert, so
//!   a refresh fires up to one advert interval late; here it is due exactly
//!   `garp_master_refresh` after the previous one.

use std::net::IpAddr;
use std::time::Duration;

use crate::vrrp::state::Micros;

fn us(d: Duration) -> Micros {
    Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX)
}

/// keepalived's per-VIP message when an instance starts a burst, e.g.
/// `(VI_1) Sending/queueing gratuitous ARPs on eth0 for 10.0.0.100`.
pub fn log_queueing(instance: &str, ifname: &str, vip: IpAddr) {
    let what = match vip {
        IpAddr::V4(_) => "gratuitous ARPs",
        IpAddr::V6(_) => "Unsolicited Neighbour Adverts",
    };
    tracing::info!("({instance}) Sending/queueing {what} on {ifname} for {vip}");
}

/// Upper bound on the packets one [`Pacer::plan`] call returns, whatever
/// the repeat count and VIP list (a misconfigured repeat of millions must
/// not allocate gigabytes).
pub const MAX_BURST_SENDS: usize = 10_000;

/// The per-instance timing, mapped by the caller from the configuration
/// (`VrrpInstance::garp_master_*`, falling back to `VrrpGlobals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpParams {
    /// `garp_master_delay`: the second burst after becoming MASTER; zero
    /// means none.
    pub master_delay: Duration,
    /// `garp_master_repeat`: rounds in each of the two bursts.
    pub master_repeat: u32,
    /// `garp_master_refresh`: re-announce this often while MASTER; `None`
    /// or zero means never.
    pub master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat`: rounds in a refresh burst.
    pub master_refresh_repeat: u32,
}

impl Default for GarpParams {
    /// keepalived's defaults: delay 5 s, repeat 5, no refresh, refresh repeat 1.
    fn default() -> Self {
        GarpParams {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
        }
    }
}

/// Why a burst is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurstReason {
    BecameMaster,
    /// `garp_master_delay` after becoming MASTER.
    MasterDelay,
    /// `garp_master_refresh`.
    Refresh,
    /// A lower-priority advert was heard while MASTER.
    LowerPriority,
    /// [`LOWER_PRIO_FOLLOW_UP`] after that.
    LowerPriorityFollowUp,
    /// `garp_lower_prio_delay` after that.
    LowerPriorityDelay,
}

/// The other router's gratuitous ARPs follow its advert (it adds the VIPs
/// first), so ours, sent the moment we hear the advert, can arrive before
/// them and lose: clients would stay on a router that is about to drop the
/// VIPs. A second burst this much later comes after them.
pub const LOWER_PRIO_FOLLOW_UP: Duration = Duration::from_millis(100);

/// A burst: `repeat` rounds over all the instance's VIPs, due at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    pub at: Micros,
    pub repeat: u32,
    pub reason: BurstReason,
}

/// One instance's announcement timers.
#[derive(Debug, Clone)]
pub struct GarpSchedule {
    params: GarpParams,
    master: bool,
    /// One-shot delayed bursts, at most one per reason.
    delayed: Vec<Burst>,
    refresh_at: Option<Micros>,
}

impl GarpSchedule {
    pub fn new(params: GarpParams) -> Self {
        GarpSchedule {
            params,
            master: false,
            delayed: Vec::new(),
            refresh_at: None,
        }
    }

    pub fn params(&self) -> &GarpParams {
        &self.params
    }

    /// New timing (reload). Pending delayed bursts keep their times; a
    /// running refresh restarts from `now` with the new period.
    pub fn set_params(&mut self, now: Micros, params: GarpParams) {
        self.params = params;
        if self.master {
            self.refresh_at = self.refresh_period().map(|p| now.saturating_add(p));
        }
    }

    pub fn is_master(&self) -> bool {
        self.master
    }

    fn refresh_period(&self) -> Option<Micros> {
        self.params
            .master_refresh
            .filter(|d| !d.is_zero())
            .map(|d| us(d).max(1))
    }

    fn push_delayed(&mut self, b: Burst) {
        if b.repeat == 0 || self.delayed.iter().any(|d| d.reason == b.reason) {
            return;
        }
        self.delayed.push(b);
    }

    /// The instance has just become MASTER (VIPs added): the burst to send
    /// now (`None` when `garp_master_repeat` is 0); arms the delayed burst
    /// and the refresh. Becoming MASTER again restarts all timers.
    pub fn become_master(&mut self, now: Micros) -> Option<Burst> {
        self.leave_master();
        self.master = true;
        let repeat = self.params.master_repeat;
        if !self.params.master_delay.is_zero() {
            self.push_delayed(Burst {
                at: now.saturating_add(us(self.params.master_delay)),
                repeat,
                reason: BurstReason::MasterDelay,
            });
        }
        self.refresh_at = self.refresh_period().map(|p| now.saturating_add(p));
        (repeat > 0).then_some(Burst {
            at: now,
            repeat,
            reason: BurstReason::BecameMaster,
        })
    }

    /// The instance left MASTER: nothing more is announced.
    pub fn leave_master(&mut self) {
        self.master = false;
        self.delayed.clear();
        self.refresh_at = None;
    }

    /// A lower-priority advert was heard while MASTER
    /// (`garp_lower_prio_repeat` = `repeat`, `garp_lower_prio_delay` =
    /// `delay`): the burst to send now, one [`LOWER_PRIO_FOLLOW_UP`] later
    /// and one `delay` later, unless those are already waiting. Ignored when
    /// not MASTER or `repeat` is 0.
    pub fn lower_priority_advert(
        &mut self,
        now: Micros,
        repeat: u32,
        delay: Option<Duration>,
    ) -> Option<Burst> {
        if !self.master || repeat == 0 {
            return None;
        }
        self.push_delayed(Burst {
            at: now.saturating_add(us(LOWER_PRIO_FOLLOW_UP)),
            repeat,
            reason: BurstReason::LowerPriorityFollowUp,
        });
        if let Some(d) = delay.filter(|d| !d.is_zero()) {
            self.push_delayed(Burst {
                at: now.saturating_add(us(d)),
                repeat,
                reason: BurstReason::LowerPriorityDelay,
            });
        }
        Some(Burst {
            at: now,
            repeat,
            reason: BurstReason::LowerPriority,
        })
    }

    /// When [`poll`](Self::poll) next has something to return.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.delayed
            .iter()
            .map(|b| b.at)
            .chain(self.refresh_at)
            .min()
    }

    /// The bursts due at `now`, earliest first. A refresh is re-armed one
    /// period after `now` (a late poll does not cause catch-up bursts).
    pub fn poll(&mut self, now: Micros) -> Vec<Burst> {
        let mut due: Vec<Burst> = Vec::new();
        self.delayed.retain(|b| {
            if b.at <= now {
                due.push(*b);
                false
            } else {
                true
            }
        });
        if let Some(at) = self.refresh_at.filter(|&at| at <= now) {
            if self.params.master_refresh_repeat > 0 {
                due.push(Burst {
                    at,
                    repeat: self.params.master_refresh_repeat,
                    reason: BurstReason::Refresh,
                });
            }
            self.refresh_at = self.refresh_period().map(|p| now.saturating_add(p));
        }
        due.sort_by_key(|b| b.at);
        due
    }
}

/// One announcement: send for `vip` at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedSend {
    pub at: Micros,
    pub vip: IpAddr,
}

/// Spaces announcements on one interface (keepalived's per-interface
/// `garp_interval` / `gna_interval`, the `garp_group` settings).
#[derive(Debug, Clone)]
pub struct Pacer {
    garp_interval: Micros,
    gna_interval: Micros,
    /// The earliest time the next ARP / NA may go.
    next_v4: Micros,
    next_v6: Micros,
}

impl Pacer {
    pub fn new(garp_interval: Duration, gna_interval: Duration) -> Self {
        Pacer {
            garp_interval: us(garp_interval),
            gna_interval: us(gna_interval),
            next_v4: 0,
            next_v6: 0,
        }
    }

    /// Times for a burst of `repeat` rounds over `vips` started at `now`:
    /// round by round, each VIP in order, every packet at the earliest time
    /// its family's interval allows (after packets planned earlier on this
    /// interface, by any instance). Sorted by time; at most
    /// [`MAX_BURST_SENDS`] entries.
    pub fn plan(&mut self, now: Micros, repeat: u32, vips: &[IpAddr]) -> Vec<PlannedSend> {
        let total = (repeat as usize)
            .saturating_mul(vips.len())
            .min(MAX_BURST_SENDS);
        let mut out = Vec::with_capacity(total);
        'rounds: for _ in 0..repeat {
            for &vip in vips {
                if out.len() == total {
                    break 'rounds;
                }
                let (next, interval) = match vip {
                    IpAddr::V4(_) => (&mut self.next_v4, self.garp_interval),
                    IpAddr::V6(_) => (&mut self.next_v6, self.gna_interval),
                };
                let at = now.max(*next);
                *next = at.saturating_add(interval);
                out.push(PlannedSend { at, vip });
            }
        }
        // Stable: equal times keep round/VIP order.
        out.sort_by_key(|s| s.at);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const S: Micros = 1_000_000;

    fn params(delay: u64, repeat: u32, refresh: Option<u64>, refresh_repeat: u32) -> GarpParams {
        GarpParams {
            master_delay: Duration::from_secs(delay),
            master_repeat: repeat,
            master_refresh: refresh.map(Duration::from_secs),
            master_refresh_repeat: refresh_repeat,
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }
    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last))
    }

    /// Runs the schedule from `t0` to `end`, polling at each deadline, and
    /// lists every burst (virtual time: no sleeping).
    fn run(s: &mut GarpSchedule, end: Micros) -> Vec<Burst> {
        let mut out = Vec::new();
        while let Some(t) = s.next_deadline() {
            if t > end {
                break;
            }
            out.extend(s.poll(t));
        }
        out
    }

    #[test]
    fn defaults_are_keepalived_defaults() {
        let mut s = GarpSchedule::new(GarpParams::default());
        let first = s.become_master(10 * S).unwrap();
        assert_eq!(
            first,
            Burst {
                at: 10 * S,
                repeat: 5,
                reason: BurstReason::BecameMaster
            }
        );
        assert_eq!(s.next_deadline(), Some(15 * S));
        assert_eq!(
            run(&mut s, 100 * S),
            vec![Burst {
                at: 15 * S,
                repeat: 5,
                reason: BurstReason::MasterDelay
            }]
        );
        assert_eq!(s.next_deadline(), None, "no refresh by default");
    }

    #[test]
    fn zero_delay_means_no_second_burst() {
        let mut s = GarpSchedule::new(params(0, 3, None, 1));
        assert_eq!(s.become_master(0).map(|b| b.repeat), Some(3));
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn zero_repeat_sends_nothing() {
        let mut s = GarpSchedule::new(params(5, 0, Some(10), 0));
        assert_eq!(s.become_master(0), None);
        assert!(run(&mut s, 100 * S).is_empty());
    }

    #[test]
    fn poll_before_deadline_returns_nothing() {
        let mut s = GarpSchedule::new(params(5, 2, None, 1));
        s.become_master(0);
        assert!(s.poll(5 * S - 1).is_empty());
        assert_eq!(s.poll(5 * S).len(), 1);
        assert!(s.poll(6 * S).is_empty(), "one-shot");
    }

    #[test]
    fn refresh_repeats_while_master() {
        let mut s = GarpSchedule::new(params(5, 2, Some(30), 3));
        s.become_master(0);
        let got = run(&mut s, 95 * S);
        let want = vec![
            Burst {
                at: 5 * S,
                repeat: 2,
                reason: BurstReason::MasterDelay,
            },
            Burst {
                at: 30 * S,
                repeat: 3,
                reason: BurstReason::Refresh,
            },
            Burst {
                at: 60 * S,
                repeat: 3,
                reason: BurstReason::Refresh,
            },
            Burst {
                at: 90 * S,
                repeat: 3,
                reason: BurstReason::Refresh,
            },
        ];
        assert_eq!(got, want);
        assert_eq!(s.next_deadline(), Some(120 * S));
    }

    #[test]
    fn late_poll_does_not_catch_up() {
        let mut s = GarpSchedule::new(params(0, 1, Some(10), 1));
        s.become_master(0);
        // Polled 35 s late: one refresh, the next a period later.
        assert_eq!(s.poll(45 * S).len(), 1);
        assert_eq!(s.next_deadline(), Some(55 * S));
    }

    #[test]
    fn leaving_master_cancels_everything() {
        let mut s = GarpSchedule::new(params(5, 2, Some(10), 1));
        s.become_master(0);
        s.leave_master();
        assert_eq!(s.next_deadline(), None);
        assert!(s.poll(1000 * S).is_empty());
        assert_eq!(s.lower_priority_advert(1000 * S, 2, None), None);
    }

    #[test]
    fn becoming_master_again_restarts_timers() {
        let mut s = GarpSchedule::new(params(5, 2, None, 1));
        s.become_master(0);
        s.become_master(3 * S);
        assert_eq!(
            run(&mut s, 100 * S),
            vec![Burst {
                at: 8 * S,
                repeat: 2,
                reason: BurstReason::MasterDelay
            }]
        );
    }

    #[test]
    fn lower_priority_bursts_coalesce_the_delayed_one() {
        let mut s = GarpSchedule::new(params(0, 1, None, 1));
        s.become_master(0);
        let d = Some(Duration::from_secs(5));
        for t in 1..=4 {
            let b = s.lower_priority_advert(t * S, 2, d).unwrap();
            assert_eq!(
                b,
                Burst {
                    at: t * S,
                    repeat: 2,
                    reason: BurstReason::LowerPriority
                }
            );
        }
        assert_eq!(
            run(&mut s, 100 * S),
            vec![
                Burst {
                    at: S + 100_000,
                    repeat: 2,
                    reason: BurstReason::LowerPriorityFollowUp
                },
                Burst {
                    at: 6 * S,
                    repeat: 2,
                    reason: BurstReason::LowerPriorityDelay
                }
            ]
        );
        // After they fired, new ones may be armed.
        s.lower_priority_advert(20 * S, 2, d);
        assert_eq!(s.next_deadline(), Some(20 * S + 100_000));
    }

    #[test]
    fn set_params_restarts_refresh() {
        let mut s = GarpSchedule::new(params(0, 1, None, 1));
        s.become_master(0);
        s.set_params(7 * S, params(0, 1, Some(10), 2));
        assert_eq!(s.next_deadline(), Some(17 * S));
    }

    #[test]
    fn huge_times_saturate() {
        let mut s = GarpSchedule::new(GarpParams {
            master_delay: Duration::MAX,
            master_repeat: 1,
            master_refresh: Some(Duration::MAX),
            master_refresh_repeat: 1,
        });
        s.become_master(Micros::MAX - 1);
        assert_eq!(s.next_deadline(), Some(Micros::MAX));
        assert_eq!(s.poll(Micros::MAX).len(), 2);
    }

    #[test]
    fn zero_interval_sends_the_burst_at_once() {
        let mut p = Pacer::new(Duration::ZERO, Duration::ZERO);
        let vips = [v4(100), v4(101), v6(1)];
        let got = p.plan(7, 2, &vips);
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|s| s.at == 7));
        let order: Vec<IpAddr> = got.iter().map(|s| s.vip).collect();
        assert_eq!(order, [v4(100), v4(101), v6(1), v4(100), v4(101), v6(1)]);
    }

    #[test]
    fn interval_spaces_each_family_on_its_own() {
        let ms = 1000;
        let mut p = Pacer::new(Duration::from_millis(100), Duration::from_millis(30));
        let got = p.plan(0, 2, &[v4(100), v6(1), v4(101)]);
        let want = vec![
            PlannedSend {
                at: 0,
                vip: v4(100),
            },
            PlannedSend { at: 0, vip: v6(1) },
            PlannedSend {
                at: 30 * ms,
                vip: v6(1),
            },
            PlannedSend {
                at: 100 * ms,
                vip: v4(101),
            },
            PlannedSend {
                at: 200 * ms,
                vip: v4(100),
            },
            PlannedSend {
                at: 300 * ms,
                vip: v4(101),
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn pacing_is_shared_across_bursts_on_an_interface() {
        let ms = 1000;
        let mut p = Pacer::new(Duration::from_millis(100), Duration::ZERO);
        // Instance 1's burst, then instance 2's 50 ms later on the same interface.
        let a = p.plan(0, 2, &[v4(1)]);
        let b = p.plan(50 * ms, 1, &[v4(2)]);
        assert_eq!(a.iter().map(|s| s.at).collect::<Vec<_>>(), [0, 100 * ms]);
        assert_eq!(
            b,
            vec![PlannedSend {
                at: 200 * ms,
                vip: v4(2)
            }]
        );
        // Much later: no leftover delay.
        assert_eq!(p.plan(10 * S, 1, &[v4(2)])[0].at, 10 * S);
    }

    #[test]
    fn plan_is_bounded() {
        let mut p = Pacer::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(p.plan(0, u32::MAX, &[v4(1), v4(2)]).len(), MAX_BURST_SENDS);
        assert!(p.plan(0, 5, &[]).is_empty());
        assert!(p.plan(0, 0, &[v4(1)]).is_empty());
    }

    #[test]
    fn master_burst_count_with_delay() {
        // The whole announcement of one mastership with the defaults and two
        // VIPs: 2 bursts x 5 rounds x 2 VIPs.
        let mut s = GarpSchedule::new(GarpParams::default());
        let mut p = Pacer::new(Duration::ZERO, Duration::ZERO);
        let vips = [v4(100), v6(1)];
        let mut sends = Vec::new();
        let first = s.become_master(0).unwrap();
        sends.extend(p.plan(first.at, first.repeat, &vips));
        for b in run(&mut s, 60 * S) {
            sends.extend(p.plan(b.at, b.repeat, &vips));
        }
        assert_eq!(sends.len(), 20);
        assert_eq!(sends.iter().filter(|x| x.at == 5 * S).count(), 10);
    }
}
