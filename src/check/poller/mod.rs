//! The checker thread: every TCP_CHECK and plain HTTP_GET probe, each a
//! small state machine over its non-blocking socket ([`exchange`]), driven
//! by one thread with one epoll (mio) and one queue of deadlines
//! ([`calendar`]). The other checkers stay tokio tasks (see `engine`).
//!
//! Why a loop of our own for these two: they are nearly every probe a
//! large pool has, and a probe is one short exchange on a fresh
//! connection. As a tokio task each one paid for a task wake-up, entries
//! in the runtime's timer wheel (the schedule and the exchange's timeout)
//! and an I/O registration with its own bookkeeping: more user time than
//! the probe's own work. Here a probe costs one heap entry per deadline,
//! one epoll registration (closing the socket removes it) and its reads
//! into one shared buffer. Results settle exactly as the tasks' do
//! (`engine::settle`): the same board, counters, updates and schedule.

pub mod calendar;
pub mod exchange;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use tokio::sync::mpsc;

use self::calendar::Calendar;
use self::exchange::{Exchange, Io, Polled, Step};
use super::engine::{self, Board, Clock, Next, ProbeUpdate};
use super::health::ProbeId;
use super::probe::ProbeResult;
use crate::config::model::CheckCommon;

/// The token of the waker that says "stop".
const WAKE: Token = Token(usize::MAX);

/// The read buffer every probe shares: a TLS record's worth, as the client's.
const SCRATCH: usize = 16 << 10;

/// One probe the poller runs.
pub struct Probe {
    pub id: ProbeId,
    pub probe: Polled,
    pub common: CheckCommon,
}

/// Stops the checker thread when dropped (its sockets close with it).
pub struct Stop {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
    }
}

/// Starts the checker thread for `probes`; they keep their states in
/// `board` and send updates to `tx`, as the engine's tasks do. The thread
/// ends when the [`Stop`] is dropped or `tx`'s receiver is gone. Gives the
/// probes back when the thread cannot start.
pub fn start(
    probes: Vec<Probe>,
    clock: Clock,
    board: Arc<Board>,
    tx: mpsc::Sender<ProbeUpdate>,
) -> Result<Stop, (io::Error, Vec<Probe>)> {
    let poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => return Err((e, probes)),
    };
    let waker = match Waker::new(poll.registry(), WAKE) {
        Ok(w) => Arc::new(w),
        Err(e) => return Err((e, probes)),
    };
    let flag = Arc::new(AtomicBool::new(false));
    // The thread takes the probes; a thread that could not start leaves
    // them here to be handed back.
    let handoff = Arc::new(Mutex::new(Some(probes)));
    let mut poller = Poller {
        poll,
        slots: Vec::new(),
        calendar: Calendar::default(),
        again: Vec::new(),
        scratch: vec![0; SCRATCH].into_boxed_slice(),
        clock,
        board,
        tx,
        stop: flag.clone(),
    };
    let taken = handoff.clone();
    let spawned = std::thread::Builder::new()
        .name("ipvsdir-checks".into())
        .spawn(move || {
            let probes = taken.lock().unwrap_or_else(|e| e.into_inner()).take();
            poller.slots = probes
                .unwrap_or_default()
                .into_iter()
                .map(|p| Slot {
                    next: engine::first_probe(p.id, &p.common, clock),
                    probe: p,
                    generation: 0,
                    run: None,
                })
                .collect();
            poller.run();
        });
    match spawned {
        Ok(_) => Ok(Stop { flag, waker }),
        Err(e) => {
            let probes = handoff.lock().unwrap_or_else(|e| e.into_inner()).take();
            Err((e, probes.unwrap_or_default()))
        }
    }
}

struct Slot {
    probe: Probe,
    next: Next,
    /// Calendar entries of another generation are stale.
    generation: u32,
    /// In flight: when it started, and where it is.
    run: Option<(Instant, Exchange)>,
}

struct Poller {
    poll: Poll,
    slots: Vec<Slot>,
    calendar: Calendar,
    /// Probes that stopped reading only to let others have a turn.
    again: Vec<usize>,
    scratch: Box<[u8]>,
    clock: Clock,
    board: Arc<Board>,
    tx: mpsc::Sender<ProbeUpdate>,
    stop: Arc<AtomicBool>,
}

impl Poller {
    fn run(mut self) {
        for (i, slot) in self.slots.iter().enumerate() {
            self.calendar.push(slot.next.wake, i as u32, 0);
        }
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::Relaxed) && !self.tx.is_closed() {
            let timeout = if self.again.is_empty() {
                let now = Instant::now();
                self.next_live().map(|at| at.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("checker thread: epoll failed: {e}; retrying in 100 ms");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            let now = Instant::now();
            for i in std::mem::take(&mut self.again) {
                self.ready(i, None, now);
            }
            for event in &events {
                if event.token() != WAKE {
                    self.ready(event.token().0, Some(event), now);
                }
            }
            while let Some((i, generation)) = self.calendar.pop_due(now) {
                self.due(i as usize, generation, now);
            }
        }
    }

    /// The earliest calendar entry still meant, the stale ones before it
    /// dropped: an exchange that ended leaves its deadline behind, and
    /// waking for it would cost a turn of the loop for nothing.
    fn next_live(&mut self) -> Option<Instant> {
        while let Some((at, i, generation)) = self.calendar.peek() {
            match self.slots.get(i as usize) {
                Some(slot) if slot.generation == generation => return Some(at),
                _ => self.calendar.pop(),
            }
        }
        None
    }

    /// A calendar entry of probe `i` came up.
    fn due(&mut self, i: usize, generation: u32, now: Instant) {
        let slot = &mut self.slots[i];
        if slot.generation != generation {
            return;
        }
        let mut io = Io {
            registry: self.poll.registry(),
            scratch: &mut self.scratch,
        };
        let (started, step) = match slot.run.take() {
            None => {
                let started = Instant::now();
                let step = exchange::start(&slot.probe.probe, &mut io, Token(i), started);
                (started, step)
            }
            Some((started, x)) if now < x.deadline => {
                // The deadline moved on (data came): wait for the new one.
                let length = slot.probe.probe.timeout();
                self.calendar
                    .push_timeout(length, x.deadline, i as u32, generation);
                slot.run = Some((started, x));
                return;
            }
            Some((started, x)) => (
                started,
                exchange::expired(x, &slot.probe.probe, &mut io, Token(i), now),
            ),
        };
        if let Step::Wait(x) | Step::Again(x) = &step {
            // The one live entry while the probe is in flight; deadlines
            // only move later, and a turn that finds it early puts it back.
            let length = slot.probe.probe.timeout();
            self.calendar
                .push_timeout(length, x.deadline, i as u32, generation);
        }
        self.after(i, started, step);
    }

    /// Probe `i`'s socket is ready (`event`), or it asked for another turn.
    fn ready(&mut self, i: usize, event: Option<&mio::event::Event>, now: Instant) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        // An event of a connection already closed.
        let Some((started, x)) = slot.run.take() else {
            return;
        };
        let mut io = Io {
            registry: self.poll.registry(),
            scratch: &mut self.scratch,
        };
        let step = exchange::ready(x, &slot.probe.probe, event, &mut io, Token(i), now);
        self.after(i, started, step);
    }

    fn after(&mut self, i: usize, started: Instant, step: Step) {
        let slot = &mut self.slots[i];
        match step {
            Step::Wait(x) => slot.run = Some((started, x)),
            Step::Again(x) => {
                slot.run = Some((started, x));
                self.again.push(i);
            }
            Step::Done(result) => {
                let p = &slot.probe;
                let (update, next) = engine::settle(
                    &self.board,
                    self.clock,
                    p.id,
                    &p.common,
                    result,
                    slot.next,
                    started,
                );
                slot.next = next;
                slot.generation = slot.generation.wrapping_add(1);
                self.calendar.push(next.wake, i as u32, slot.generation);
                if let Some(update) = update {
                    self.send(update);
                }
            }
        }
    }

    /// Tells the director; waits when its queue is full, as the tasks do.
    fn send(&self, update: ProbeUpdate) {
        if let Err(mpsc::error::TrySendError::Full(update)) = self.tx.try_send(update) {
            // A closed receiver ends the loop at its next turn.
            let _ = self.tx.blocking_send(update);
        }
    }
}

/// One probe from start to end on this thread, with an epoll of its own:
/// the same steps as on the checker thread, for tools and tests.
pub fn probe_once(probe: &Polled) -> ProbeResult {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => return ProbeResult::local(format!("cannot watch sockets: {e}")),
    };
    let mut scratch = vec![0; SCRATCH];
    let mut events = Events::with_capacity(8);
    let token = Token(0);
    let mut io = Io {
        registry: poll.registry(),
        scratch: &mut scratch,
    };
    let mut step = exchange::start(probe, &mut io, token, Instant::now());
    loop {
        let x = match step {
            Step::Done(result) => return result,
            Step::Again(x) => {
                let mut io = Io {
                    registry: poll.registry(),
                    scratch: &mut scratch,
                };
                step = exchange::ready(x, probe, None, &mut io, token, Instant::now());
                continue;
            }
            Step::Wait(x) => x,
        };
        let now = Instant::now();
        if now >= x.deadline {
            let mut io = Io {
                registry: poll.registry(),
                scratch: &mut scratch,
            };
            step = exchange::expired(x, probe, &mut io, token, now);
            continue;
        }
        if let Err(e) = poll.poll(&mut events, Some(x.deadline - now))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return ProbeResult::local(format!("cannot watch sockets: {e}"));
        }
        let mut io = Io {
            registry: poll.registry(),
            scratch: &mut scratch,
        };
        step = match events.iter().next() {
            Some(event) => exchange::ready(x, probe, Some(event), &mut io, token, Instant::now()),
            None => Step::Wait(x),
        };
    }
}

/// [`probe_once`] off the async runtime's threads.
pub async fn probe(probe: Polled) -> ProbeResult {
    match tokio::task::spawn_blocking(move || probe_once(&probe)).await {
        Ok(result) => result,
        Err(e) => ProbeResult::local(format!("the probe's thread failed: {e}")),
    }
}
