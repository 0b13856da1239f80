//! What the status socket and the metrics listener do when `accept` fails
//! (out of descriptors...): wait, doubling up to a ceiling, instead of
//! spinning, and log a few lines a minute at most.

use std::time::Duration;

use crate::log_limit::{LogLimit, Verdict};

const FIRST: Duration = Duration::from_millis(50);
const MAX: Duration = Duration::from_secs(2);

pub struct Backoff {
    what: &'static str,
    next: Duration,
    lines: LogLimit<std::io::ErrorKind>,
}

impl Backoff {
    /// `what` names the listener in the log (`status socket`).
    pub fn new(what: &'static str) -> Self {
        Backoff {
            what,
            next: FIRST,
            lines: LogLimit::new(Duration::from_secs(60), 4),
        }
    }

    /// An accept succeeded: the next failure waits the least again.
    pub fn ok(&mut self) {
        self.next = FIRST;
    }

    /// An accept failed: log (rate-limited) and wait.
    pub async fn failed(&mut self, e: &std::io::Error) {
        if let Verdict::Log { suppressed } = self.lines.check(std::time::Instant::now(), &e.kind())
        {
            tracing::warn!(
                "{}: accept failed: {e}; retrying in {} ms ({suppressed} similar lines suppressed before)",
                self.what,
                self.next.as_millis()
            );
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(MAX);
    }
}
