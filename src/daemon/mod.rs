//! Wiring of the subsystems into the long-running process: the checkers
//! feeding the IPVS table (`checks`, keepalived's `--check` half), with
//! signals and logging. VRRP joins here with its issue.

pub mod checks;
pub mod names;
pub mod status;

/// Completes at the first SIGTERM or SIGINT (or at once if they cannot be caught).
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot catch SIGTERM/SIGINT");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
