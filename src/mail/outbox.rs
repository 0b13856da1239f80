//! What the sender mails when: one mail at a time, at most [`BURST`] mails
//! at once and then one per [`REFILL`], and a burst of alerts beyond that
//! coalesced into one mail that lists them. Pure: the sender passes the
//! time in and reports when a mail is done.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::compose::Alert;

/// Mails that may go out back to back.
pub const BURST: u32 = 5;
/// One more mail may go out this long after the last was spent.
pub const REFILL: Duration = Duration::from_secs(12);
/// Alerts held while waiting; beyond, new ones are dropped and counted
/// (the next mail says how many).
pub const HELD: usize = 1000;

/// One mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub subject: String,
    pub body: String,
    /// How many alerts it carries (1, or more for a coalesced mail).
    pub alerts: usize,
}

#[derive(Debug)]
pub struct Outbox {
    held: VecDeque<Alert>,
    /// Alerts dropped because `HELD` were waiting; told in the next mail.
    dropped: u64,
    tokens: u32,
    /// When the next token comes (Some while below BURST).
    refill_at: Option<Instant>,
    busy: bool,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            held: VecDeque::new(),
            dropped: 0,
            tokens: BURST,
            refill_at: None,
            busy: false,
        }
    }
}

impl Outbox {
    pub fn push(&mut self, alert: Alert) {
        if self.held.len() >= HELD {
            self.dropped += 1;
            return;
        }
        self.held.push_back(alert);
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    fn refill(&mut self, now: Instant) {
        while let Some(at) = self.refill_at {
            if now < at {
                break;
            }
            self.tokens += 1;
            self.refill_at = (self.tokens < BURST).then(|| at + REFILL);
        }
    }

    /// The next mail to send now, if one may go: the oldest alert alone
    /// while tokens remain for the others, else all of them in one.
    pub fn poll(&mut self, now: Instant) -> Option<Outgoing> {
        self.refill(now);
        if self.busy || self.held.is_empty() || self.tokens == 0 {
            return None;
        }
        self.tokens -= 1;
        if self.refill_at.is_none() {
            self.refill_at = Some(now + REFILL);
        }
        self.busy = true;
        let out = if self.held.len() == 1 || self.tokens > 0 {
            let a = self.held.pop_front()?;
            Outgoing {
                subject: a.subject,
                body: a.body,
                alerts: 1,
            }
        } else {
            self.coalesce()
        };
        Some(out)
    }

    /// Everything held as one mail, whatever the rate (at stop).
    pub fn take_all(&mut self) -> Option<Outgoing> {
        match self.held.len() {
            0 => None,
            1 if self.dropped == 0 => self.held.pop_front().map(|a| Outgoing {
                subject: a.subject,
                body: a.body,
                alerts: 1,
            }),
            _ => Some(self.coalesce()),
        }
    }

    fn coalesce(&mut self) -> Outgoing {
        let n = self.held.len();
        let first = self.held.front().map_or("", |a| a.subject.as_str());
        let subject = format!("{n} alerts, the first: {first}");
        let mut body = String::new();
        for a in self.held.drain(..) {
            body.push_str(&a.subject);
            body.push_str("\r\n  ");
            body.push_str(&a.body);
            body.push_str("\r\n");
        }
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            body.push_str(&format!(
                "({dropped} more alerts were dropped: too many at once)\r\n"
            ));
        }
        Outgoing {
            subject,
            body,
            alerts: n,
        }
    }

    /// The mail handed out by [`Outbox::poll`] was sent (or failed).
    pub fn done(&mut self) {
        self.busy = false;
    }

    /// When [`Outbox::poll`] may have something that it has not now.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.busy || self.held.is_empty() || self.tokens > 0 {
            return None;
        }
        self.refill_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(i: usize) -> Alert {
        Alert {
            subject: format!("s{i}"),
            body: format!("b{i}"),
        }
    }

    #[test]
    fn single_alerts_go_alone() {
        let t = Instant::now();
        let mut o = Outbox::default();
        o.push(alert(1));
        let m = o.poll(t).unwrap();
        assert_eq!((m.subject.as_str(), m.alerts), ("s1", 1));
        assert!(o.poll(t).is_none(), "one at a time");
        o.done();
        assert!(o.poll(t).is_none());
    }

    #[test]
    fn a_burst_is_coalesced_once_the_budget_is_spent() {
        let t = Instant::now();
        let mut o = Outbox::default();
        for i in 0..100 {
            o.push(alert(i));
        }
        let mut mails = Vec::new();
        while let Some(m) = o.poll(t) {
            mails.push(m);
            o.done();
        }
        assert_eq!(mails.len(), BURST as usize);
        assert!(mails[..4].iter().all(|m| m.alerts == 1));
        assert_eq!(mails[4].alerts, 96);
        assert!(mails[4].subject.starts_with("96 alerts, the first: s4"));
        assert!(mails[4].body.contains("s99\r\n  b99\r\n"));
        // Out of tokens: the next alert waits for the refill.
        o.push(alert(100));
        assert!(o.poll(t).is_none());
        let at = o.poll_timeout().unwrap();
        assert_eq!(at, t + REFILL);
        assert_eq!(o.poll(at).unwrap().subject, "s100");
    }

    #[test]
    fn too_many_held_are_dropped_and_told() {
        let t = Instant::now();
        let mut o = Outbox::default();
        for i in 0..HELD + 7 {
            o.push(alert(i));
        }
        let m = o.take_all().unwrap();
        assert_eq!(m.alerts, HELD);
        assert!(m.body.contains("(7 more alerts were dropped"));
        assert!(o.poll(t).is_none());
    }
}
