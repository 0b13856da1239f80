//! The stop: make-before-break handoff, then every instance stops.

use std::time::Duration;

use super::super::state::{Input, Micros, State};
use super::{Effect, Event, HANDOFF_GARP_GRACE, HANDOFF_RESEND, HANDOFF_WAIT, Node, us};

/// The stop in progress: masters waiting for a successor.
#[derive(Debug, Clone)]
pub(super) struct Handoff {
    pub(super) waiting: Vec<usize>,
    pub(super) started: Micros,
    pub(super) deadline: Micros,
    pub(super) next_resend: Micros,
    /// Every successor announced itself: stop at this time.
    pub(super) grace_until: Option<Micros>,
}

impl Node {
    /// Make-before-break: a stopping master sends priority 0 but keeps its
    /// VIPs until the new master has announced itself (its advert, and a
    /// moment for its gratuitous ARPs), at most [`HANDOFF_WAIT`], so
    /// clients see no gap. `strict_mode` / `vrrp_strict` keeps RFC 5798's
    /// order (VIPs removed at once; clients wait Skew_Time).
    pub(super) fn stop(&mut self, now: Micros) {
        let masters: Vec<usize> = (0..self.instances.len())
            .filter(|&i| {
                self.instances[i].vrrp.state == State::Master && !self.instances[i].cfg.strict_mode
            })
            .collect();
        if masters.is_empty() {
            self.shutdown(now);
            return;
        }
        for &i in &masters {
            tracing::info!(
                "VRRP_Instance({}) handing over: priority 0 advert sent, VIPs kept until a new master announces itself",
                self.instances[i].name()
            );
            self.send_advert(i, 0);
            self.zero_sent[i] = true;
        }
        self.handoff = Some(Handoff {
            waiting: masters,
            started: now,
            deadline: now.saturating_add(us(HANDOFF_WAIT)),
            next_resend: now.saturating_add(us(HANDOFF_RESEND)),
            grace_until: None,
        });
    }

    /// During the handoff only adverts (a successor) and its timers count.
    pub(super) fn handle_stopping(&mut self, now: Micros, event: Event) {
        let Some(mut h) = self.handoff.take() else {
            return;
        };
        match event {
            Event::Advert {
                instance,
                src,
                priority,
                ..
            } if priority > 0 && h.waiting.contains(&instance) => {
                tracing::info!(
                    "VRRP_Instance({}) new master {src} announced itself after {:.3} s",
                    self.instances[instance].name(),
                    Duration::from_micros(now.saturating_sub(h.started)).as_secs_f64()
                );
                h.waiting.retain(|&w| w != instance);
                if h.waiting.is_empty() {
                    // Its gratuitous ARPs follow its first advert at once.
                    h.grace_until = Some(now.saturating_add(us(HANDOFF_GARP_GRACE)));
                }
            }
            Event::Timer => {
                if h.grace_until.is_some_and(|g| g <= now) {
                    self.shutdown(now);
                    return;
                }
                if h.grace_until.is_none() && h.deadline <= now {
                    for &i in &h.waiting {
                        tracing::warn!(
                            "VRRP_Instance({}) no new master within {:.1} s; removing the VIPs anyway",
                            self.instances[i].name(),
                            HANDOFF_WAIT.as_secs_f64()
                        );
                    }
                    self.shutdown(now);
                    return;
                }
                if h.grace_until.is_none() && h.next_resend <= now {
                    for &i in &h.waiting {
                        self.send_advert(i, 0);
                    }
                    // The next one on the 250 ms grid after now.
                    let step = us(HANDOFF_RESEND).max(1);
                    let behind = (now - h.next_resend) / step + 1;
                    h.next_resend = h.next_resend.saturating_add(behind.saturating_mul(step));
                }
            }
            Event::SendFailed {
                instance,
                dst,
                error,
            } => self.send_failed(now, instance, dst, &error),
            Event::AnnounceFailed {
                instance,
                vip,
                error,
            } => self.announce_failed(now, instance, vip, &error),
            _ => {}
        }
        self.handoff = Some(h);
    }

    /// Every instance stops (priority 0 from masters not yet handed over,
    /// VIPs removed unless kept, notify_stop); the report is written.
    fn shutdown(&mut self, now: Micros) {
        self.handoff = None;
        for i in 0..self.instances.len() {
            self.feed(i, now, Input::Shutdown);
        }
        self.report.dirty = true;
        self.refresh_report(now);
        self.stopped = true;
        self.effects.push_back(Effect::Stopped);
    }
}
