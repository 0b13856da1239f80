//! Carries out the director core's kernel requests: synchronously (the
//! one-shot commands) or on a thread of its own (the daemon), so a slow or
//! silent kernel never blocks the async side. Every netlink wait is bounded
//! ([`kernel::IO_TIMEOUT`](super::kernel::IO_TIMEOUT)).

use std::sync::mpsc as std_mpsc;

use ipvs_sys::IpvsMessage;
use tokio::sync::mpsc;

use super::director::{KernelReply, KernelRequest};
use super::kernel::{Ipvs, KernelError};

/// One request against the kernel; failures are counted
/// ([`kernel::errors_total`](super::kernel::errors_total)).
pub fn execute(ipvs: &mut Ipvs, request: KernelRequest) -> KernelReply {
    let reply = run(ipvs, request);
    let failed = match &reply {
        KernelReply::Done(r) => u64::from(r.is_err()),
        KernelReply::Table(r) => u64::from(r.is_err()),
        KernelReply::Executed(Ok(results)) => results.iter().filter(|r| r.is_err()).count() as u64,
        KernelReply::Executed(Err(_)) => 1,
        KernelReply::Counters(r) => u64::from(r.is_err()),
    };
    if failed > 0 {
        super::kernel::note_errors(failed);
    }
    reply
}

fn run(ipvs: &mut Ipvs, request: KernelRequest) -> KernelReply {
    match request {
        KernelRequest::Flush => {
            KernelReply::Done(ipvs.request(IpvsMessage::Flush, false).map(|_| ()))
        }
        KernelRequest::SetTimeouts(t) => {
            KernelReply::Done(ipvs.request(IpvsMessage::SetConfig(t), false).map(|_| ()))
        }
        KernelRequest::SetSysctls(values) => KernelReply::Done(set_sysctls(&values)),
        KernelRequest::Read => KernelReply::Table(ipvs.read().map(|t| t.to_table())),
        KernelRequest::Execute(ops) => KernelReply::Executed(ipvs.execute(&ops)),
        // One service dump, no destinations: read every second while draining.
        KernelRequest::ReadCounters => KernelReply::Counters(
            ipvs.request(IpvsMessage::GetService(None), true)
                .map(|replies| {
                    replies
                        .into_iter()
                        .filter_map(|m| match m {
                            IpvsMessage::ServiceReply(e) => {
                                Some((e.service.key, e.stats64.or(e.stats).map_or(0, |s| s.conns)))
                            }
                            _ => None,
                        })
                        .collect()
                }),
        ),
    }
}

/// Writes every sysctl, then reports those that failed (each one is tried).
pub fn set_sysctls(values: &[(&'static str, u8)]) -> Result<(), KernelError> {
    let failed: Vec<_> = values
        .iter()
        .filter_map(|(name, value)| super::sysctl::write(name, *value).err())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(KernelError::Sysctl(failed))
    }
}

/// The kernel worker thread's handle: requests in; answers come back on
/// the channel given to [`spawn`]. The thread ends when this is dropped.
pub struct Worker {
    requests: std_mpsc::Sender<KernelRequest>,
}

impl Worker {
    /// Hands a request to the thread (false when it is gone).
    pub fn send(&self, request: KernelRequest) -> bool {
        self.requests.send(request).is_ok()
    }
}

/// Opens the IPVS socket here (so "no IPVS" or "permission denied" is
/// known at once) and starts the thread that owns it.
pub fn spawn(replies: mpsc::UnboundedSender<KernelReply>) -> Result<Worker, KernelError> {
    let mut ipvs = Ipvs::open()?;
    let (tx, rx) = std_mpsc::channel::<KernelRequest>();
    std::thread::Builder::new()
        .name("ipvs".into())
        .spawn(move || {
            while let Ok(request) = rx.recv() {
                if replies.send(execute(&mut ipvs, request)).is_err() {
                    break;
                }
            }
        })
        .map_err(KernelError::Io)?;
    Ok(Worker { requests: tx })
}
