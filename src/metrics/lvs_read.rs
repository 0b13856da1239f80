//! The edge of the LVS metrics: reads the kernel's IPVS table, counters
//! included, when a scrape asks (on the scrape's blocking thread, never the
//! director's), on a generic-netlink socket of its own: every wait bounded
//! by [`READ_TIMEOUT`], the whole read by [`READ_BUDGET`], one read at a
//! time however many scrapers come. A failed read (no IPVS in the kernel,
//! no permission, a timeout) gives a scrape without kernel metrics and
//! `ipvsdir_lvs_read_ok 0`, logged (rate-limited), never an error page.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lvs::{ConfiguredWeight, LvsView, configured_weights};
use crate::config::model::Config;
use crate::log_limit::{LogLimit, Verdict};
use crate::lvs::kernel::{self, Ipvs, KernelError};
use crate::lvs::table::KernelTable;

/// How long one netlink send or receive of a scrape's read may block.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole read may take (a scrape should answer well within
/// Prometheus' default 10 s scrape timeout).
pub const READ_BUDGET: Duration = Duration::from_secs(5);

/// What the metrics know of LVS: the configured weights and whether to
/// read the kernel. A default one reads nothing and renders nothing.
#[derive(Debug)]
pub struct LvsReader {
    read_kernel: AtomicBool,
    configured: Mutex<Arc<Vec<ConfiguredWeight>>>,
    /// Held during a kernel read: concurrent scrapes read one after another.
    reading: Mutex<()>,
    failures: Mutex<LogLimit<String>>,
}

impl Default for LvsReader {
    fn default() -> Self {
        LvsReader {
            read_kernel: AtomicBool::new(false),
            configured: Mutex::default(),
            reading: Mutex::new(()),
            failures: Mutex::new(LogLimit::new(Duration::from_secs(600), 8)),
        }
    }
}

/// One scrape's LVS data (see [`LvsScrape::view`]).
#[derive(Debug, Default)]
pub struct LvsScrape {
    /// None: not read; `Some(None)`: the read failed.
    pub kernel: Option<Option<KernelTable>>,
    pub configured: Arc<Vec<ConfiguredWeight>>,
    pub netlink_errors: u64,
}

impl LvsScrape {
    pub fn view(&self) -> LvsView<'_> {
        LvsView {
            kernel: self.kernel.as_ref().map(Option::as_ref),
            configured: &self.configured,
            netlink_errors: self.netlink_errors,
        }
    }
}

impl LvsReader {
    /// Takes the configured weights from `config`; with `read_kernel`,
    /// scrapes read the kernel's table too (a daemon that keeps the IPVS
    /// table; not `--no-ipvs` nor VRRP only, whose reads would load ip_vs).
    pub fn configure(&self, config: &Config, read_kernel: bool) {
        self.read_kernel.store(read_kernel, Ordering::Relaxed);
        self.reconfigure(config);
    }

    /// A reload: the new file's configured weights.
    pub fn reconfigure(&self, config: &Config) {
        let weights = Arc::new(configured_weights(config));
        if let Ok(mut c) = self.configured.lock() {
            *c = weights;
        }
    }

    /// What a scrape shows now: blocking (a kernel read), so called on a
    /// blocking thread.
    pub fn scrape(&self) -> LvsScrape {
        let configured = self
            .configured
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        if !self.read_kernel.load(Ordering::Relaxed) {
            return LvsScrape {
                kernel: None,
                configured,
                netlink_errors: 0,
            };
        }
        let table = {
            let _one = self.reading.lock();
            read(READ_TIMEOUT, READ_BUDGET)
        };
        let table = match table {
            Ok(t) => Some(t),
            Err(e) => {
                if !matches!(e, KernelError::NoIpvs) {
                    kernel::note_errors(1);
                }
                self.log_failure(&e);
                None
            }
        };
        LvsScrape {
            kernel: Some(table),
            configured,
            netlink_errors: kernel::errors_total(),
        }
    }

    fn log_failure(&self, e: &KernelError) {
        let Ok(mut limit) = self.failures.lock() else {
            return;
        };
        // One key per kind of failure: a changing errno logs again.
        let key = format!("{:?}", std::mem::discriminant(e));
        if let Verdict::Log { suppressed } = limit.check(Instant::now(), &key) {
            tracing::warn!(
                target: "ipvsdir::ipvs",
                "metrics: cannot read the IPVS table, no LVS counters in this scrape: {e} \
                 ({suppressed} similar lines suppressed before)"
            );
        }
    }
}

/// The kernel's table with its counters, on a socket of its own.
pub fn read(timeout: Duration, budget: Duration) -> Result<KernelTable, KernelError> {
    let deadline = Instant::now() + budget;
    Ipvs::open_with_timeout(timeout)?.read_until(Some(deadline))
}
